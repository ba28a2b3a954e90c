"""Hostile input through the real API: every user-supplied string (names, versions, arguments,
command lines, detection paths, scripts, target names, groups, host lists, filters, inventory
paths, credential fields, upload file names, content names) is fed Jinja2 lookups, shell
metacharacters, path traversal, NUL bytes and oversized values. Each request must be rejected with
a clear 4xx that changed nothing, or stored byte-for-byte; and nothing may run: the payloads touch
marker files that must never appear. Content URLs (SSRF) are depot.packages.urls; here, through
the API with each role. The lab test at the end runs a real deployment carrying the payloads."""

import hashlib
import ipaddress
import os
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.controller.auth import bearer

API = "/api/v1"
MARKER_DIR = "/var/tmp"     # on the controller and, through their overlay, on every lab host
REFUSED = (400, 403, 404, 405, 409, 413, 422)


def payloads(tag: str) -> dict[str, str]:
    """One payload per hostile class; each would create ``/var/tmp/depot-pwned-<tag>-<class>`` if
    anything templated or shell-interpreted it."""
    def m(kind):
        return f"{MARKER_DIR}/depot-pwned-{tag}-{kind}"
    return {
        "jinja_lookup": "{{ lookup('pipe', 'touch %s') }}" % m("jinja_lookup"),
        "jinja_statement": "{%% set x = lookup('pipe', 'touch %s') %%}" % m("jinja_statement"),
        "jinja_query": "{{ query('pipe', 'touch %s') }}" % m("jinja_query"),
        "semicolon": "x; touch %s" % m("semicolon"),
        "command_substitution": "$(touch %s)" % m("command_substitution"),
        "backticks": "`touch %s`" % m("backticks"),
        "and_or_pipe": "x && touch %s || true | cat" % m("and_or_pipe"),
        "newline": "x\ntouch %s\n" % m("newline"),
        "quotes": "'\"; touch %s; echo \"'" % m("quotes"),
        "yaml_tag": "!!python/object/apply:os.system ['touch %s']" % m("yaml_tag"),
        "unsafe_tag": "!unsafe '{{ lookup(\"pipe\", \"touch %s\") }}'" % m("unsafe_tag"),
        "traversal": "../../../../etc/passwd",
        "absolute": "/etc/passwd",
        "nul": "a\x00b",
        "controls_unicode": "\x1b[31mred\x1b[0m \u202eevil\u202c \u00e9\u4e2d",
    }


def markers(tag: str) -> list[Path]:
    return sorted(Path(MARKER_DIR).glob(f"depot-pwned-{tag}-*"))


class Feeder:
    """Sends hostile requests and checks each outcome: a 4xx with a reason that changed no table,
    or a success whose stored value (read back with GET) is byte-for-byte what was sent."""

    def __init__(self, client, table_counts):
        self.client = client
        self.table_counts = table_counts
        self.rejected = self.stored = 0

    def send(self, method, url, *, expect_value=None, read=None, refuse=False, **kwargs):
        before = self.table_counts()
        response = self.client.request(method, API + url, **kwargs)
        assert response.status_code < 500, (url, response.status_code, response.text)
        if response.status_code >= 400:
            assert response.status_code in REFUSED, (url, response.status_code, response.text)
            detail = response.json()["detail"]
            assert detail, response.text
            assert self.table_counts() == before, f"{method} {url} was refused but changed tables"
            self.rejected += 1
            return response
        assert not refuse, f"{method} {url} should have been refused: {response.text}"
        if read is not None:
            body = response.json()
            assert read(body) == expect_value, (url, read(body), expect_value)
            if "id" in body and method in ("POST", "PATCH"):
                again = self.client.get(API + url.split("?")[0].rstrip("/") + (
                    f"/{body['id']}" if method == "POST" else "")).json()
                assert read(again) == expect_value, (url, read(again), expect_value)
        self.stored += 1
        return response


@pytest.fixture
def tag():
    value = uuid.uuid4().hex[:12]
    yield value
    for path in markers(value):      # never expected; removed so that a failure does not linger
        path.unlink()


@pytest.fixture
def feed(client, table_counts):
    return Feeder(client, table_counts)


def assert_nothing_ran(tag):
    assert markers(tag) == [], "a hostile payload executed on the controller"


# --- packages ------------------------------------------------------------------------------------

def test_package_fields_are_stored_inert_or_refused(client, feed, tag):
    for n, (kind, value) in enumerate(payloads(tag).items()):
        feed.send("POST", "/packages", json=dict(name=value, version=f"n{n}", platform="linux",
                                                 installer_type="script"), read=lambda b: b["name"], expect_value=value)
        feed.send("POST", "/packages", json=dict(name=f"v{n}", version=value, platform="linux", installer_type="deb",
                                                 product_id=value), read=lambda b: (b["version"], b["product_id"]),
                  expect_value=(value, value))
        options = dict(arguments=[value, "--x=" + value], install_command=["{installer}", value],
                       uninstall_command=value + " --remove", environment={"DEPOT_HI": value},
                       detection=dict(rules=[dict(type="file", path="/opt/" + value)]))
        r = feed.send("POST", "/packages", json=dict(name=f"o{n}", version="1", platform="linux",
                                                     installer_type="script", options=options),
                      read=lambda b: b["options"], expect_value=options)
        if r.status_code == 201:
            patched = dict(options, arguments=[value])
            feed.send("PATCH", f"/packages/{r.json()['id']}", json=dict(name=value + "-renamed", options=patched),
                      read=lambda b: (b["name"], b["options"]), expect_value=(value + "-renamed", patched))
    assert feed.stored > 0
    assert_nothing_ran(tag)


def test_oversized_fields_are_refused(client, feed):
    feed.send("POST", "/packages", json=dict(name="x" * 201, version="1", platform="linux", installer_type="deb"),
              refuse=True)
    feed.send("POST", "/packages", json=dict(name="x", version="1" * 101, platform="linux", installer_type="deb"),
              refuse=True)
    feed.send("POST", "/packages", json=dict(name="x", version="1", platform="linux", installer_type="deb",
                                             content_url="https://203.0.113.7/" + "a" * 2000,
                                             content_sha256="0" * 64), refuse=True)
    feed.send("POST", "/deployments", json=dict(name="d" * 201), refuse=True)
    feed.send("POST", "/targets", json=dict(name="t" * 201, kind="host", hosts=["h"], inventory="/etc/hostname"),
              refuse=True)
    feed.send("POST", "/credentials", json=dict(name="c", kind="run_as", username="u", secret="s" * 65537),
              refuse=True)
    feed.send("POST", "/packages", content=b"{" * 100_000, headers={"content-type": "application/json"}, refuse=True)
    assert feed.rejected == 7


def test_a_large_script_is_stored_byte_for_byte(client, feed, tag):
    """No field of unbounded length is templated or run by the controller: a 1 MiB script full of
    payloads is kept exactly as sent (it runs only on the hosts, as the script it is)."""
    script = "\n".join(payloads(tag).values()).replace("\x00", "")
    script = (script + "\n") * (1024 * 1024 // (len(script) + 1))
    feed.send("POST", "/deployments", json=dict(name="big", steps=[dict(action="script", script=script)]),
              read=lambda b: b["steps"][0]["script"], expect_value=script)
    assert_nothing_ran(tag)


# --- uploads and content names -------------------------------------------------------------------

def _content_files(settings):
    directory = Path(settings.data_dir) / "content" / "sha256"
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


@pytest.mark.parametrize("filename, stored", [
    ("../../etc/passwd", "passwd"),
    ("/etc/passwd", "passwd"),
    ("..\\..\\windows\\win.ini", "win.ini"),
    ("C:\\Windows\\System32\\evil.exe", "evil.exe"),
    ("x/../../y.deb", "y.deb"),
    ("{{ lookup('pipe', 'id') }}.deb", "{{ lookup('pipe', 'id') }}.deb"),
    ("$(id);`id`.sh", "$(id);`id`.sh"),
    ("a\x00b", None),
    ("a\nb", None),
    ("..", None),
    ("../..", None),
    ("", None),
    ("n" * 256, None),
])
def test_upload_file_names_are_reduced_to_a_plain_name_or_refused(client, settings, table_counts, filename, stored):
    package = client.post(f"{API}/packages", json=dict(name="p", version="1", platform="linux",
                                                       installer_type="script")).json()
    before = table_counts()
    # The raw multipart body: clients would escape the name, an attacker does not.
    boundary = "hostile-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"".encode()
            + filename.encode("utf-8", "surrogatepass")
            + f"\"\r\nContent-Type: application/octet-stream\r\n\r\nAAAA\r\n--{boundary}--\r\n".encode())
    r = client.post(f"{API}/packages/{package['id']}/content", content=body,
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    if stored is None:
        assert r.status_code == 422 and "plain file name" in r.text, r.text
        assert table_counts() == before and _content_files(settings) == []
        return
    assert r.status_code == 200, r.text
    assert r.json()["content_filename"] == stored
    # Stored under its sha256 inside the content store, nowhere else.
    assert _content_files(settings) == [hashlib.sha256(b"AAAA").hexdigest()]
    source = client.get(f"{API}/packages/{package['id']}/content-source").json()
    assert "/../" not in source["src"] and "\\" not in source["src"]


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(client, settings, table_counts):
    package = client.post(f"{API}/packages", json=dict(name="p", version="1", platform="linux",
                                                       installer_type="script")).json()
    before = table_counts()
    limit = settings.max_upload_bytes
    r = client.post(f"{API}/packages/{package['id']}/content", files={"file": ("big.bin", b"x" * (limit + 1))})
    assert r.status_code == 413 and str(limit) in r.text
    # Declared too large up front (Content-Length): refused before reading.
    r = client.post(f"{API}/packages/{package['id']}/content", content=b"x" * (limit + 70 * 1024),
                    headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413
    assert table_counts() == before
    directory = Path(settings.data_dir) / "content" / "sha256"
    assert not directory.exists() or list(directory.iterdir()) == []      # no partial upload left behind
    assert client.get(f"{API}/packages/{package['id']}").json()["content_sha256"] is None


@pytest.mark.parametrize("path", [
    "/content/..%2F..%2Fetc%2Fpasswd/passwd?expires=9999999999&signature=x",
    "/content/../../../etc/passwd",
    "/content/%2e%2e/%2e%2e/secret.key",
    "/content/" + "0" * 64 + "/..%2F..%2Fsecret.key?expires=9999999999&signature=x",
    "/content/" + "0" * 63 + "/x?expires=9999999999&signature=x",
    "/hosts/..%2F..%2Fetc%2Fpasswd",
    "/hosts/{{ lookup('pipe','id') }}",
])
def test_content_and_host_names_do_not_reach_files(client, settings, path):
    r = client.get(API + path)
    assert r.status_code in (403, 404, 422), (path, r.status_code, r.text)
    assert "root:" not in r.text and settings.data_dir.joinpath("secret.key").read_text().split()[-1] not in r.text


# --- deployments, policies, targets, credentials ---------------------------------------------------

def test_deployment_policy_and_credential_fields_are_stored_inert_or_refused(client, feed, tag, inventory):
    target = client.post(f"{API}/targets", json=dict(name="web", kind="group", group="web",
                                                     inventory=str(inventory))).json()["id"]
    for n, value in enumerate(payloads(tag).values()):
        step = dict(name=value, action="script", script=value, target_ids=[target],
                    options=dict(arguments=[value], environment={"X": value}))
        feed.send("POST", "/deployments", json=dict(name=value, steps=[step]),
                  read=lambda b: (b["name"], b["steps"][0]["name"], b["steps"][0]["script"], b["steps"][0]["options"]),
                  expect_value=(value, value, value, step["options"]))
        feed.send("POST", "/policies", json=dict(name=f"{n}{value}", category="script", script=value,
                                                 options=dict(arguments=[value])),
                  read=lambda b: (b["name"], b["script"], b["options"]), expect_value=(f"{n}{value}", value,
                                                                                     dict(arguments=[value])))
        feed.send("POST", "/credentials", json=dict(name=f"{n}{value}", kind="run_as", username=value, secret=value,
                                                    options=dict(domain=value)),
                  read=lambda b: (b["name"], b["username"], b["options"]["domain"], "secret" in b),
                  expect_value=(f"{n}{value}", value, value, False))
    assert feed.stored > 0
    assert_nothing_ran(tag)


def test_target_fields_are_stored_inert_or_refused(client, feed, tag, inventory):
    """Target names, groups, host lists and filter values go to ansible-inventory's output only as
    data: a hostile group or host is not in the inventory (refused), a name or filter value is
    stored, and resolving runs nothing."""
    for n, value in enumerate(payloads(tag).values()):
        feed.send("POST", "/targets", json=dict(name=value, kind="group", group="web", inventory=str(inventory)),
                  read=lambda b: b["name"], expect_value=value)
        # Stored as given (or refused); resolving finds no such group or host, and says so.
        for r in (feed.send("POST", "/targets", json=dict(name=f"g{n}", kind="group", group=value,
                                                          inventory=str(inventory)),
                            read=lambda b: b["group"], expect_value=value),
                  feed.send("POST", "/targets", json=dict(name=f"h{n}", kind="host", hosts=["web1", value],
                                                          inventory=str(inventory)),
                            read=lambda b: b["hosts"], expect_value=["web1", value])):
            if r.status_code == 201 and n < 4:      # resolving runs ansible-inventory: a few suffice
                hosts = client.get(f"{API}/targets/{r.json()['id']}/hosts")
                assert hosts.status_code == 422 and "not in the inventory" in hosts.text, hosts.text
        filters = [dict(var="os_family", op="ne", value=value)]
        r = feed.send("POST", "/targets", json=dict(name=f"f{n}", kind="dynamic", group="all", filters=filters,
                                                    inventory=str(inventory)),
                      read=lambda b: b["filters"], expect_value=filters)
        if r.status_code == 201 and n < 4:
            hosts = client.get(f"{API}/targets/{r.json()['id']}/hosts").json()
            assert sorted(hosts["hosts"]) == ["db1", "lone", "web1", "web2"]
    # Host patterns are names, not patterns: none selects anything.
    for pattern in ("all", "web:&db", "~.*", "*", "web1,db1", "all:!web", "web[0:1]"):
        r = client.post(f"{API}/targets/resolve", json=dict(kind="host", hosts=[pattern], inventory=str(inventory)))
        assert r.status_code == 422 and "not in the inventory" in r.text, (pattern, r.text)
    assert_nothing_ran(tag)


def test_inventory_paths_cannot_read_the_controllers_files(app, client, settings, table_counts, inventory):
    """An inventory source is read (or run) by the controller and its host names are shown, so it
    would read any file: only an admin names a new one, and nobody the data directory (its secret
    key would come back as a host name)."""
    key = settings.data_dir / "secret.key"
    assert key.is_file()
    traversal = os.path.relpath("/etc/hostname", os.getcwd())
    with TestClient(app, headers=bearer(app, "operator")) as operator:
        before = table_counts()
        for source in (str(key), str(settings.data_dir), str(settings.data_dir / ".." / "data" / "secret.key")):
            for who in (client, operator):
                for url, body in (("/targets/resolve", dict(kind="group", group="all", inventory=source)),
                                  ("/targets", dict(name="t", kind="group", group="all", inventory=source))):
                    r = who.post(API + url, json=body)
                    assert r.status_code == 422 and "data directory" in r.text, (source, r.text)
                    assert key.read_text().split()[-1] not in r.text
        for source in (traversal, "/etc/hostname", str(inventory)):
            for url, body in (("/targets/resolve", dict(kind="group", group="all", inventory=source)),
                              ("/targets", dict(name="t", kind="group", group="all", inventory=source))):
                r = operator.post(API + url, json=body)
                assert r.status_code == 403 and "admin" in r.json()["detail"], r.text
        assert table_counts() == before
        # Once an admin has made a target of an inventory, operators use it.
        assert client.post(f"{API}/targets", json=dict(name="web", kind="group", group="web",
                                                       inventory=str(inventory))).status_code == 201
        r = operator.post(f"{API}/targets", json=dict(name="db", kind="group", group="db", inventory=str(inventory)))
        assert r.status_code == 201, r.text
        assert operator.post(f"{API}/targets/resolve", json=dict(kind="group", group="db",
                                                                 inventory=str(inventory))).json()["hosts"] == ["db1"]
        assert operator.patch(f"{API}/targets/{r.json()['id']}", json=dict(group="web")).status_code == 200
        r = operator.patch(f"{API}/targets/{r.json()['id']}", json=dict(inventory=traversal))
        assert r.status_code == 403


def test_package_command_lines_are_the_privileged_roles(app, table_counts):
    """Package command lines run as given on every targeted host, like a policy's."""
    body = dict(name="p", version="1", platform="linux", installer_type="script",
                options=dict(install_command=["/bin/sh", "-c", "id"]))
    with TestClient(app, headers=bearer(app, "operator")) as operator, \
            TestClient(app, headers=bearer(app, "privileged")) as privileged:
        before = table_counts()
        for options in (dict(install_command=["/bin/sh", "-c", "id"]), dict(arguments=["x"]),
                        dict(detection=dict(rules=[dict(type="script", script="id")]))):
            r = operator.post(f"{API}/packages", json=dict(body, options=options))
            assert r.status_code == 403 and "privileged" in r.json()["detail"], r.text
        assert table_counts() == before
        package = privileged.post(f"{API}/packages", json=body).json()
        plain = operator.post(f"{API}/packages", json=dict(body, name="q", options={})).json()
        assert operator.patch(f"{API}/packages/{plain['id']}", json=dict(options=body["options"])).status_code == 403
        assert operator.patch(f"{API}/packages/{package['id']}", json=dict(version="2")).status_code == 200


# --- content URLs (SSRF) ---------------------------------------------------------------------------

SHA = "0" * 64
REFUSED_URLS = [
    "http://localhost/agent.deb", "http://localhost:8080/api/v1/users", "http://127.0.0.1/x", "http://[::1]/x",
    "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/x", "http://10.0.0.5/x", "http://172.16.0.1/x",
    "http://192.168.1.1/x", "http://[fd12::1]/x", "http://100.64.1.1/x", "http://0.0.0.0/x",
    "http://2130706433/x", "http://0x7f.1/x", "http://0177.0.0.1/x", "http://127.1/x",
    "http://[::ffff:127.0.0.1]/x", "http://[::ffff:169.254.169.254]/x", "http://[64:ff9b::a9fe:a9fe]/x",
    "ftp://203.0.113.7/x", "file:///etc/passwd", "gopher://203.0.113.7/x",
    "http://user:pass@203.0.113.7/x", "http://203.0.113.7%2f@127.0.0.1/x", "http://203.0.113.7\\@127.0.0.1/x",
    "http://[fe80::1%25eth0]/x",
]
PUBLIC_URLS = ["http://203.0.113.7/agent.deb", "https://203.0.113.7:8443/a/b.deb?x=1", "http://[2001:db8::7]/x"]


def _package(name, url):
    return dict(name=name, version="1", platform="linux", installer_type="deb", product_id="agent",
                content_url=url, content_sha256=SHA)


@pytest.mark.parametrize("role", ["operator", "privileged"])
def test_non_admins_cannot_point_content_at_internal_addresses(app, client, table_counts, role):
    with TestClient(app, headers=bearer(app, role)) as user:
        existing = user.post(f"{API}/packages", json=_package("ok", PUBLIC_URLS[0]))
        assert existing.status_code == 201, existing.text
        before = table_counts()
        for n, url in enumerate(REFUSED_URLS):
            r = user.post(f"{API}/packages", json=_package(f"p{n}", url))
            assert r.status_code == 422, (url, r.text)
            assert r.json()["detail"][0]["loc"][-1] == "content_url" and r.json()["detail"][0]["msg"]
            r = user.patch(f"{API}/packages/{existing.json()['id']}", json=dict(content_url=url))
            assert r.status_code == 422, (url, r.text)
        assert table_counts() == before
        assert user.get(f"{API}/packages/{existing.json()['id']}").json()["content_url"] == PUBLIC_URLS[0]
        for n, url in enumerate(PUBLIC_URLS):
            assert user.post(f"{API}/packages", json=_package(f"pub{n}", url)).status_code == 201, url
            assert user.patch(f"{API}/packages/{existing.json()['id']}", json=dict(content_url=url)).status_code == 200
        # Editing other fields of a package an admin pointed inward is not changing its URL.
        inner = client.post(f"{API}/packages", json=_package("inner", "http://10.0.0.5/agent.deb")).json()
        assert user.patch(f"{API}/packages/{inner['id']}", json=dict(version="2")).status_code == 200


def test_admins_may_use_any_http_url(client):
    for n, url in enumerate(u for u in REFUSED_URLS if u.startswith("http://") and "@" not in u and "%" not in u):
        r = client.post(f"{API}/packages", json=_package(f"a{n}", url))
        assert r.status_code == 201, (url, r.text)
        assert r.json()["content_url"] == url
    assert client.post(f"{API}/packages", json=_package("ftp", "ftp://203.0.113.7/x")).status_code == 422


def test_viewers_cannot_set_content_urls_at_all(app, table_counts):
    with TestClient(app, headers=bearer(app, "viewer")) as viewer:
        before = table_counts()
        assert viewer.post(f"{API}/packages", json=_package("v", PUBLIC_URLS[0])).status_code == 403
        assert table_counts() == before


def test_allowed_networks_open_an_internal_mirror_to_non_admins(app, settings):
    settings.content_url_allowed_networks = [ipaddress.ip_network("10.0.0.0/24")]
    with TestClient(app, headers=bearer(app, "operator")) as operator:
        assert operator.post(f"{API}/packages", json=_package("m", "http://10.0.0.5/agent.deb")).status_code == 201
        assert operator.post(f"{API}/packages", json=_package("n", "http://10.0.1.5/agent.deb")).status_code == 422
        # never the controller itself (DEPOT_PUBLIC_URL)
        settings.public_url = "http://10.0.0.9:8080"
        r = operator.post(f"{API}/packages", json=_package("c", "http://10.0.0.9:8080/api/v1/content/x"))
        assert r.status_code == 422 and "this controller" in r.text


def test_the_setting_is_read_from_the_environment(monkeypatch, tmp_path):
    from depot.config import Settings

    monkeypatch.setenv("DEPOT_CONTENT_URL_ALLOWED_NETWORKS", '["10.1.0.0/16", "fd00::/8"]')
    settings = Settings(data_dir=tmp_path)
    assert [str(n) for n in settings.content_url_allowed_networks] == ["10.1.0.0/16", "fd00::/8"]
    monkeypatch.delenv("DEPOT_CONTENT_URL_ALLOWED_NETWORKS")
    assert Settings(data_dir=tmp_path).content_url_allowed_networks == []


# --- on the lab: the payloads go all the way to real hosts, and nothing runs but the installer -------

@pytest.fixture
def lab_controller(tmp_path, lab):
    """The API (as an admin) and an in-process worker on a database of their own."""
    from depot.api import create_app
    from depot.config import Settings
    from depot.database.migrate import upgrade
    from depot.execution.worker import Worker

    settings = Settings(data_dir=tmp_path / "data", worker_name="hostile", worker_forks=4, event_batch_seconds=0.2,
                        lease_seconds=120, public_url=f"http://{lab.bridge_address}:9")
    upgrade(settings.database_url)
    app = create_app(settings)
    worker = Worker(app.state.sessionmaker, settings, app.state.keys)
    try:
        with TestClient(app, headers=bearer(app)) as client:
            yield app, client, worker
    finally:
        worker.stop()
        worker.drain(60)


def _ok(response):
    assert response.status_code < 300, (response.status_code, response.text)
    return response.json()


def _host_markers(lab, tag):
    """Names of marker files anywhere a payload could have touched one, on every lab host."""
    listing = lab.exec(lab.hosts[0], "true")   # the lab answers
    assert listing.returncode == 0
    found = []
    for host in lab.hosts:
        out = lab.exec(host, ["sh", "-c", "ls -a /tmp /var/tmp /root /opt 2>/dev/null"]).stdout
        out = out.decode() if isinstance(out, bytes) else out
        found += [f"{host.name}:{line}" for line in out.splitlines() if f"depot-pwned-{tag}" in line]
    return found


@pytest.mark.lab
def test_a_deployment_carrying_payloads_runs_nothing_but_the_installer(lab_controller, lab, lab_inventory, tmp_path,
                                                                        tag):
    from tests.controller.running import run_until_complete

    app, api, worker = lab_controller
    hostile = {k: v for k, v in payloads(tag).items() if k != "nul"}    # argv and environ cannot carry NUL
    out = f"/opt/depot-hi-{tag}"
    installer = (f"#!/bin/sh\nmkdir -p {out}\nprintf '%s\\0' \"$@\" > {out}/argv\n"
                 f"printf '%s' \"$DEPOT_HI\" > {out}/env\n").encode()
    www = tmp_path / "www"
    www.mkdir()
    (www / "setup.sh").write_bytes(installer)
    url = lab.serve(www) + "/setup.sh"
    sha = hashlib.sha256(installer).hexdigest()
    # The lab's web server is on a private address: an admin's to use, not an operator's.
    with TestClient(app, headers=bearer(app, "operator")) as operator:
        r = operator.post(f"{API}/packages", json=dict(name="x", version="1", platform="linux", installer_type="script",
                                                       content_url=url, content_sha256=sha))
        assert r.status_code == 422 and "internal address" in r.text, r.text

    arguments = list(hostile.values())
    package = _ok(api.post(f"{API}/packages", json=dict(
        name=hostile["jinja_lookup"], version=hostile["jinja_query"], platform="linux", installer_type="script",
        product_id=hostile["jinja_statement"], content_url=url, content_sha256=sha,
        options=dict(install_command=["{installer}", "{product_id}", hostile["semicolon"]], arguments=arguments,
                     environment={"DEPOT_HI": hostile["jinja_lookup"]},
                     detection=dict(rules=[dict(type="file", path=f"{out}/argv")])))))
    hosts_target = _ok(api.post(f"{API}/targets", json=dict(
        name=hostile["quotes"], kind="host", hosts=["h1", "h2"], inventory=str(lab_inventory))))
    macs = [lab.host(h).mac for h in ("h1", "h2")]
    dynamic_target = _ok(api.post(f"{API}/targets", json=dict(
        name=hostile["backticks"], kind="dynamic", group="lab", inventory=str(lab_inventory),
        filters=[dict(var="depot_mac", op="in", value=macs + [hostile["jinja_lookup"]])])))
    assert sorted(_ok(api.get(f"{API}/targets/{dynamic_target['id']}/hosts"))["hosts"]) == ["h1", "h2"]
    heredoc = "\n".join(hostile.values())
    script = (f"# {hostile['jinja_lookup']}\n"
              f"printf '%s\\0' \"$@\" > {out}/script-argv\n"
              f"printf '%s' \"$DEPOT_HI\" > {out}/script-env\n"
              f"cat > {out}/script-text <<'DEPOT_EOF'\n{heredoc}\nDEPOT_EOF\n")
    deployment = _ok(api.post(f"{API}/deployments", json=dict(name=hostile["command_substitution"], steps=[
        dict(name=hostile["jinja_lookup"], action="package", package_id=package["id"],
             target_ids=[hosts_target["id"]], machine_contact_timeout=30),
        dict(name=hostile["jinja_statement"], action="script", script=script, target_ids=[dynamic_target["id"]],
             machine_contact_timeout=30,
             options=dict(arguments=arguments, environment={"DEPOT_HI": hostile["jinja_query"]})),
    ])))
    _ok(api.post(f"{API}/deployments/{deployment['id']}/ready"))
    _ok(api.post(f"{API}/deployments/{deployment['id']}/start"))
    run_until_complete(app.state.sessionmaker, worker, [deployment["id"]])

    report = _ok(api.get(f"{API}/deployments/{deployment['id']}/report", params=dict(page_size=100)))["items"]
    assert sorted((r["host"], r["position"], r["status"]) for r in report) == [
        ("h1", 1, "success"), ("h1", 2, "success"), ("h2", 1, "success"), ("h2", 2, "success")], report
    for host in ("h1", "h2"):
        def read(name, host=host):
            return lab.host_path(host, f"{out}/{name}").read_bytes().decode()
        # The installer got {installer}, the product id, the command line's own item and every
        # argument as one argv item each, verbatim; the environment value likewise.
        argv = read("argv").split("\0")[:-1]
        assert argv == [hostile["jinja_statement"], hostile["semicolon"]] + arguments
        assert read("env") == hostile["jinja_lookup"]
        assert read("script-argv").split("\0")[:-1] == arguments
        assert read("script-env") == hostile["jinja_query"]
        assert read("script-text") == heredoc + "\n"
    # The names reached Ansible as text: its log shows them literally.
    runs = _ok(api.get(f"{API}/deployments/{deployment['id']}/runs"))["items"]
    logs = "".join(api.get(f"{API}/runs/{run['id']}/log").text for run in runs)
    assert f"Step 1: {hostile['jinja_lookup']}" in logs and f"Step 1: {hostile['jinja_statement']}" in logs
    # ... and no payload ran: no marker on the controller or on any host.
    assert_nothing_ran(tag)
    assert _host_markers(lab, tag) == []
    # The check itself can see a marker where one would be made.
    probe = f"{MARKER_DIR}/depot-pwned-{tag}-probe"
    lab.exec("h1", ["touch", probe])
    try:
        assert _host_markers(lab, tag) == [f"h1:depot-pwned-{tag}-probe"]
    finally:
        lab.exec("h1", ["rm", "-f", probe])
