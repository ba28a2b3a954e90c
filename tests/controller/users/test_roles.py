"""Who may do what. The whole route table × every role against the matrix below: no request is
let through above its role, none is refused at or above it, none gets in without a token. Then the
object-level rules: script steps and command lines are the privileged role's, a token is its
owner's (or an admin's), tokens are stored hashed, expire and can be revoked."""

import datetime as dt
import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from depot.database.core import transaction
from depot.users.models import ApiToken
from tests.controller.auth import bearer

ROLES = ["viewer", "operator", "privileged", "admin"]
OPEN = {("GET", "/api/v1/health"), ("GET", "/api/v1/content/{sha256}/{filename}"),
        ("HEAD", "/api/v1/content/{sha256}/{filename}"), ("POST", "/api/v1/hosts/{name}/checkin")}


def required_role(method: str, path: str) -> str:
    """The matrix: what each route needs, written out independently of the code that enforces it."""
    if path.startswith(("/api/v1/credentials", "/api/v1/users", "/api/v1/audit")) or path.endswith("/checkin-token"):
        return "admin"
    if path.startswith(("/api/v1/runs", "/api/v1/schedules", "/api/v1/tokens")):
        return "viewer"           # reads, previews, and each user's own tokens
    return "viewer" if method in ("GET", "HEAD") else "operator"


def routes(app):
    """Every operation of the OpenAPI document (the route table as clients see it)."""
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            yield method.upper(), path


def concrete(path: str) -> str:
    return (path.replace("{name}", "web1").replace("{sha256}", "0" * 64).replace("{filename}", "f")
            .replace("{run_id}", "1").replace("{token_id}", "999"))


@pytest.fixture
def clients(app):
    with TestClient(app) as anonymous:
        yield {None: anonymous, **{role: TestClient(app, headers=bearer(app, role)) for role in ROLES}}


def test_every_route_against_every_role(app, clients):
    checked = 0
    for method, path in sorted(routes(app)):
        url = concrete(path)
        for role, client in clients.items():
            response = client.request(method, url, json={}) if method not in ("GET", "HEAD") else \
                client.request(method, url)
            checked += 1
            where = f"{role} {method} {path}: {response.status_code} {response.text[:200]}"
            if (method, path) in OPEN:   # no user: health, signed content URLs, host check-in tokens
                assert response.status_code < 500, where
                continue
            if role is None:
                assert response.status_code == 401, where
            elif ROLES.index(role) < ROLES.index(required_role(method, path)):
                assert response.status_code == 403, where
            else:
                assert response.status_code not in (401, 403), where
    assert checked >= 5 * 60   # the whole table: a route added without a role shows up here


def test_an_unknown_expired_or_revoked_token_is_refused(app, client):
    new = client.post("/api/v1/tokens", json={"name": "ci", "expires_in_days": 1}).json()
    assert new["token"].startswith("dpt_") and new["prefix"] == new["token"][:10]
    with TestClient(app, headers={"Authorization": f"Bearer {new['token']}"}) as mine:
        assert mine.get("/api/v1/deployments").status_code == 200
        assert client.post(f"/api/v1/tokens/{new['id']}/revoke").json()["revoked_at"]
        r = mine.get("/api/v1/deployments")
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
    with transaction(app.state.sessionmaker) as session:   # stored as its hash only
        row = session.get(ApiToken, new["id"])
        assert row.token_hash == hashlib.sha256(new["token"].encode()).hexdigest()
        row.revoked_at, row.expires_at = None, row.created_at - dt.timedelta(seconds=1)
    with TestClient(app, headers={"Authorization": f"Bearer {new['token']}"}) as mine:
        assert "expired" in mine.get("/api/v1/deployments").json()["detail"]
    for header in ("Bearer dpt_forged", "Basic dpt_x", "dpt_x"):
        with TestClient(app, headers={"Authorization": header}) as forged:
            assert forged.get("/api/v1/deployments").status_code == 401
    assert "token" not in client.get("/api/v1/tokens").json()["items"][0]


def test_a_token_is_its_owners_and_an_admins(app, client):
    viewer = TestClient(app, headers=bearer(app, "viewer", "vera"))
    other = TestClient(app, headers=bearer(app, "viewer", "otto"))
    token = viewer.post("/api/v1/tokens", json={"name": "mine"}).json()
    assert other.post(f"/api/v1/tokens/{token['id']}/revoke").status_code == 404
    assert all(t["user_id"] != token["user_id"] for t in other.get("/api/v1/tokens").json()["items"])
    assert client.post(f"/api/v1/tokens/{token['id']}/revoke").status_code == 200   # an admin may


def test_an_inactive_users_tokens_stop_working(app, client):
    headers = bearer(app, "operator", "olga")
    with app.state.sessionmaker() as session:
        from depot.users.models import User
        olga = session.scalar(select(User).where(User.name == "olga")).id
    assert client.patch(f"/api/v1/users/{olga}", json={"active": False}).status_code == 200
    with TestClient(app, headers=headers) as c:
        assert c.get("/api/v1/deployments").status_code == 401


@pytest.fixture
def web(client, inventory):
    return client.post("/api/v1/targets", json={"name": "web", "kind": "group", "group": "web",
                                                "inventory": str(inventory)}).json()["id"]


@pytest.mark.parametrize("step", [
    {"action": "script", "script": "id"},
    {"action": "package", "options": {"install_command": ["/bin/sh", "-c", "id"]}},
    {"action": "package", "options": {"detection": {"rules": [{"type": "script", "script": "true"}]}}},
])
def test_scripts_and_command_lines_are_the_privileged_roles(app, client, web, table_counts, step):
    package = client.post("/api/v1/packages", json={"name": "p", "version": "1", "platform": "linux",
                                                    "installer_type": "deb", "product_id": "p"}).json()["id"]
    if step["action"] == "package":
        step = {**step, "package_id": package}
    body = {"name": "d", "steps": [{**step, "target_ids": [web]}]}
    with TestClient(app, headers=bearer(app, "operator")) as operator:
        before = table_counts()
        r = operator.post("/api/v1/deployments", json=body)
        assert r.status_code == 403 and "privileged" in r.json()["detail"], r.text
        assert table_counts() == before
        # A privileged user makes it; the operator can neither start nor edit it, but can cancel it.
        with TestClient(app, headers=bearer(app, "privileged")) as privileged:
            d = privileged.post("/api/v1/deployments", json=body)
            assert d.status_code == 201, d.text
            assert operator.post(f"/api/v1/deployments/{d.json()['id']}/ready").status_code == 403
            assert privileged.post(f"/api/v1/deployments/{d.json()['id']}/ready").status_code == 200
            assert operator.post(f"/api/v1/deployments/{d.json()['id']}/start").status_code == 403
            assert operator.patch(f"/api/v1/deployments/{d.json()['id']}", json={"name": "x"}).status_code == 403
            assert privileged.post(f"/api/v1/deployments/{d.json()['id']}/start").status_code == 200
            assert operator.post(f"/api/v1/deployments/{d.json()['id']}/cancel").status_code == 200


def test_a_script_policy_is_the_privileged_roles(app):
    with TestClient(app, headers=bearer(app, "operator")) as operator:
        r = operator.post("/api/v1/policies", json={"name": "s", "category": "script", "script": "id"})
        assert r.status_code == 403
    with TestClient(app, headers=bearer(app, "privileged")) as privileged:
        policy = privileged.post("/api/v1/policies", json={"name": "s", "category": "script", "script": "id"}).json()
    with TestClient(app, headers=bearer(app, "operator", "op2")) as operator:
        assert operator.post(f"/api/v1/policies/{policy['id']}/publish").status_code == 403


def test_the_first_admin_is_made_once_by_the_cli(tmp_path, monkeypatch, capsys):
    from depot import cli

    monkeypatch.setenv("DEPOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DEPOT_DATABASE_URL", raising=False)
    cli.get_settings.cache_clear()
    try:
        assert cli.main(["admin", "create", "root"]) == 0
        token = capsys.readouterr().out.strip()
        assert token.startswith("dpt_")
        assert cli.main(["admin", "create", "second"]) == 2
        assert "an admin exists already" in capsys.readouterr().err
    finally:
        cli.get_settings.cache_clear()
