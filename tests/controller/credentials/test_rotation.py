"""Key rotation: `depot admin rotate-key` puts a new key in front, re-encrypts every stored
secret (credentials, webhook secrets) with it in one transaction, and a running controller on the
same data directory follows the key file; `--retire` drops the old keys only when nothing needs them.
With keys in DEPOT_SECRET_KEY the rotation is done there, with `depot admin reencrypt`."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
import pytest
from sqlalchemy import text

from depot.packages import content
from depot.security import Keys

DEPOT = str(Path(sys.executable).with_name("depot"))
SECRET = "rotation-canary-1b7e"
CREDENTIAL = {"name": "fleet", "kind": "ssh_password", "username": "deployer", "secret": SECRET}
WEBHOOK = {"name": "hook", "channel": "webhook", "address": "https://hooks.example.com/depot", "secret": SECRET + "-hook",
           "events": ["deployment.failed"]}


def depot(settings, *argv, **env):
    environment = dict(os.environ, DEPOT_DATA_DIR=str(settings.data_dir), DEPOT_DATABASE_URL=settings.database_url,
                       **env)
    environment.pop("DEPOT_SECRET_KEY", None) if "DEPOT_SECRET_KEY" not in env else None
    return subprocess.run([DEPOT, *argv], env=environment, capture_output=True, text=True, timeout=120)


def stored(app):
    with app.state.engine.connect() as c:
        return [bytes(c.execute(text(f"SELECT secret FROM {table}")).scalar_one())
                for table in ("credentials", "notification_subscriptions")]


def key_file(settings):
    return [line for line in (settings.data_dir / "secret.key").read_text().splitlines()
            if line and not line.startswith("#")]


@pytest.fixture
def secrets(client):
    for path, body in (("/api/v1/credentials", CREDENTIAL), ("/api/v1/notifications/subscriptions", WEBHOOK)):
        assert client.post(path, json=body).status_code == 201
    return client


def test_rotate_then_retire(secrets, app, settings):
    client = secrets
    (old_key,) = key_file(settings)
    before = stored(app)
    old_url = content.signed_url(app.state.keys, "http://c", "a" * 64, "setup.exe")

    done = depot(settings, "admin", "rotate-key")
    assert done.returncode == 0, done.stderr
    assert "1 credentials, 1 subscriptions" in done.stderr
    new_key, second = key_file(settings)
    assert second == old_key and new_key != old_key
    assert oct((settings.data_dir / "secret.key").stat().st_mode & 0o777) == "0o600"
    after = stored(app)
    newest = Fernet(new_key.encode())
    assert [newest.decrypt(t).decode() for t in after] == [SECRET, SECRET + "-hook"]
    assert all(a != b for a, b in zip(after, before))
    # The running controller follows the file: it encrypts with the new key and still reads what
    # the old one signed (a content URL handed out before the rotation).
    assert client.patch("/api/v1/credentials/1", json={"secret": SECRET + "-2"}).status_code == 200
    assert newest.decrypt(stored(app)[0]).decode() == SECRET + "-2"
    assert content.verify_url(app.state.keys, "a" * 64, "setup.exe", *_query(old_url))
    assert SECRET not in depot(settings, "settings").stdout

    done = depot(settings, "admin", "rotate-key", "--retire")
    assert done.returncode == 0, done.stderr
    (newest_key,) = key_file(settings)
    assert newest_key not in (old_key, new_key)
    for token in stored(app):
        for retired in (old_key, new_key):
            with pytest.raises(InvalidToken):
                Fernet(retired.encode()).decrypt(token)
    assert app.state.keys.decrypt(stored(app)[0]) == SECRET + "-2"
    assert not content.verify_url(app.state.keys, "a" * 64, "setup.exe", *_query(old_url))
    audit = client.get("/api/v1/audit", params={"action": "keys.reencrypt"}).json()["items"]
    assert [e["actor"] for e in audit] == ["cli", "cli"]


def _query(url):
    from urllib.parse import parse_qs, urlsplit
    query = parse_qs(urlsplit(url).query)
    return int(query["expires"][0]), query["signature"][0]


def test_a_secret_no_key_opens_stops_the_rotation_and_changes_nothing(secrets, app, settings):
    foreign = Keys(Fernet.generate_key()).encrypt("from another controller")
    with app.state.engine.begin() as c:
        c.execute(text("UPDATE notification_subscriptions SET secret = :s"), {"s": foreign})
    before, keys_before = stored(app), key_file(settings)
    done = depot(settings, "admin", "rotate-key", "--retire")
    assert done.returncode != 0
    assert "subscriptions 1 ('hook') opens with none of the keys" in done.stderr
    assert stored(app) == before                       # one transaction: the credential was not re-encrypted
    assert key_file(settings)[1:] == keys_before       # the new key stays in front; the old ones all kept
    assert app.state.keys.decrypt(stored(app)[0]) == SECRET


def test_keys_from_the_environment(secrets, app, settings, tmp_path):
    (old_key,) = key_file(settings)
    refused = depot(settings, "admin", "rotate-key", DEPOT_SECRET_KEY=old_key)
    assert refused.returncode == 2 and "DEPOT_SECRET_KEY" in refused.stderr
    assert key_file(settings) == [old_key]

    new_key = depot(settings, "admin", "new-key").stdout.strip()
    Fernet(new_key.encode())
    done = depot(settings, "admin", "reencrypt", DEPOT_SECRET_KEY=f"{new_key},{old_key}")
    assert done.returncode == 0, done.stderr
    assert "opens with the first key alone" in done.stderr
    assert [Fernet(new_key.encode()).decrypt(t).decode() for t in stored(app)] == [SECRET, SECRET + "-hook"]


@pytest.mark.parametrize("value, message", [
    ("not-a-key", "key 1 is not a Fernet key"),
    (",", "no key given"),
    ("{k},{k}", "the same key is given twice"),
])
def test_bad_keys_are_refused_clearly(value, message, tmp_path):
    from depot.security import KeyConfigError, load_keys
    key = Fernet.generate_key().decode()
    with pytest.raises(KeyConfigError, match=message):
        load_keys(tmp_path, value.format(k=key))
