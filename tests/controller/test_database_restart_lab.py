"""PostgreSQL restarted in the middle of a deployment (issue 5, item 11): `depot serve` on a
private PostgreSQL cluster of this test's own deploys to eight lab hosts; while every host is
Active (its installer running) the cluster is stopped, kept down until results have arrived that
could not be written, and started again.

What must hold: the API answers during the outage with a clear 503 (not a hang, not a 500) and
works again at once afterwards; every write acknowledged before the outage is still there; the
deployment completes with every host's true result (its installer ran exactly once: it appends a
line to a file on the host); no run crashed; the results reported during the outage were kept and
written once the database was back (the run's event writer retried them).

The machine's shared PostgreSQL server is never touched: the cluster is initdb'ed into a
directory of this test, on a free port of 127.0.0.1, run as the ``postgres`` OS user."""

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.lab import HOST_INSTALLERS

pytestmark = pytest.mark.lab
DEPOT = str(Path(sys.executable).with_name("depot"))
MARKER = "/opt/depot-restart/agent"
COUNT = "/opt/depot-restart/runs"     # one line per installer run, on each host
QUICK, SLOW = 4, 20                   # seconds the installers of h1-h4 and of h5-h8 take
RETRY_LOGGED = "result(s) failed (the database is unreachable)"


class Cluster:
    """A private PostgreSQL cluster: initdb, start, stop, as the ``postgres`` OS user."""

    def __init__(self, bindir: Path, base: Path, port: int):
        self.bindir, self.base, self.port = bindir, base, port
        self.data, self.log = base / "data", base / "postgres.log"

    def _run(self, *argv, timeout=120):
        return subprocess.run([str(self.bindir / argv[0]), *argv[1:]], user="postgres", group="postgres",
                              cwd=self.base, env=dict(PATH=os.defpath, LANG="C.UTF-8"), capture_output=True,
                              text=True, timeout=timeout, check=True)

    def init(self):
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self):
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database):
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def cluster():
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    try:
        import pwd
        pwd.getpwnam("postgres")
    except KeyError:
        binaries = []
    if not binaries or os.geteuid() != 0:
        pytest.skip("needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin), a postgres user, and root")
    base = Path(tempfile.mkdtemp(prefix="depot-pg-", dir="/var/tmp"))
    shutil.chown(base, "postgres", "postgres")
    with socket.socket() as s:     # a free port on loopback (the cluster binds it right after)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pg = Cluster(Path(binaries[-1]).parent, base, port)
    try:
        pg.init()
        pg.start()
        import psycopg
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE depot")
        yield pg
    finally:
        try:
            pg.stop("immediate")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def controller(lab, tmp_path, cluster):
    """`depot serve` (API + worker) on the private cluster, on the lab bridge; yields (client, log path)."""
    port = 19500 + os.getpid() % 500
    url = f"http://{lab.bridge_address}:{port}"
    env = dict(os.environ, DEPOT_DATA_DIR=str(tmp_path / "data"), DEPOT_PUBLIC_URL=url,
               DEPOT_DATABASE_URL=cluster.url("depot"),
               DEPOT_WORKER_POLL_INTERVAL="0.3", DEPOT_EVENT_BATCH_SECONDS="0.2")
    token = subprocess.run([DEPOT, "admin", "create", "restart"], env=env, capture_output=True, text=True,
                           check=True).stdout.strip()
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    server = subprocess.Popen([DEPOT, "serve", "--host", lab.bridge_address, "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=url + "/api/v1", timeout=30, headers={"Authorization": f"Bearer {token}"})
    try:
        for _ in range(150):
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log_path.read_text()
            time.sleep(0.2)
        yield client, log_path
    finally:
        server.terminate()
        server.wait(timeout=120)
        log.close()
        client.close()
        print(f"\n--- serve.log (tail) ---\n{log_path.read_text()[-4000:]}")


def ok(response):
    assert response.status_code < 300, (response.status_code, response.text)
    return response.json()


def test_postgresql_restart_during_a_deployment_loses_nothing(controller, cluster, lab, lab_inventory):
    api, serve_log = controller
    for host in lab.hosts:
        lab.exec(host.name, ["rm", "-rf", "/opt/depot-restart"], check=False)
    installer = (
        "#!/bin/sh\n"
        f"mkdir -p /opt/depot-restart && hostname >> {COUNT}\n"
        "case $(hostname) in\n"
        f"  h1|h2|h3|h4) exec {HOST_INSTALLERS}/slow \"$1\" {QUICK} ;;\n"
        f"  *) exec {HOST_INSTALLERS}/slow \"$1\" {SLOW} ;;\n"
        "esac\n")
    target = ok(api.post("/targets", json=dict(name="lab", kind="group", inventory=str(lab_inventory), group="lab")))
    package = ok(api.post("/packages", json=dict(
        name="agent", version="1.0", platform="linux", installer_type="script",
        options=dict(install_command=["{installer}", MARKER], detection=dict(rules=[dict(type="file", path=MARKER)])))))
    ok(api.post(f"/packages/{package['id']}/content", files={"file": ("agent-setup", installer.encode())}))
    deployment = ok(api.post("/deployments", json=dict(name="restart", steps=[
        dict(name="agent", action="package", package_id=package["id"], target_ids=[target["id"]],
             machine_contact_timeout=10)])))
    d = deployment["id"]
    ok(api.post(f"/deployments/{d}/ready"))
    assert ok(api.post(f"/deployments/{d}/start"))["host_results"] == len(lab.hosts)

    # Every host Active: its installer has started (content downloaded, nothing more to fetch).
    deadline = time.monotonic() + 120
    while not all(lab.host_path(h.name, COUNT).exists() for h in lab.hosts):
        assert time.monotonic() < deadline, "the installers did not all start"
        time.sleep(0.2)
    counts = ok(api.get(f"/deployments/{d}/report"))["counts"]
    # Writes acknowledged just before the outage.
    acknowledged = [ok(api.post("/packages", json=dict(name=f"before-{i}", version="1.0", platform="linux",
                                                       installer_type="script",
                                                       options=dict(install_command=["/bin/true"]))))["id"]
                    for i in range(3)]

    # The outage: stopped (fast: sessions are terminated), kept down until the run has had
    # results it could not write (the quick hosts finished meanwhile), then started again.
    cluster.stop("fast")
    down_at = time.monotonic()
    during: list[tuple[str, int, str]] = []
    probes = [("GET", f"/deployments/{d}", None), ("GET", "/health", None), ("GET", "/packages", None),
              ("POST", "/packages", dict(name="during", version="1.0", platform="linux", installer_type="script",
                                         options=dict(install_command=["/bin/true"])))]
    while True:
        for method, path, body in probes:
            try:
                r = api.request(method, path, json=body)
            except httpx.TransportError as e:   # a hang (timeout) or a dropped connection: not clean
                pytest.fail(f"{method} {path} during the outage: {type(e).__name__}: {e}")
            during.append((f"{method} {path}", r.status_code, r.text))
        retried = RETRY_LOGGED in serve_log.read_text()
        if (retried and time.monotonic() - down_at >= 5) or time.monotonic() - down_at >= 30:
            break
        time.sleep(0.5)
    cluster.start()
    outage = time.monotonic() - down_at

    # Right after the restart the API works again: dead pooled connections are replaced.
    after = [api.get(f"/deployments/{d}"), api.get("/health"), api.get("/packages")]
    print(f"\nrestart: outage {outage:.1f} s, {len(during)} requests during it: "
          f"{sorted({s for _, s, _ in during})} statuses; first requests after: {[r.status_code for r in after]}; "
          f"hosts active before: {counts.get('active')}")
    assert during and all(status == 503 for _, status, _ in during), [x for x in during if x[1] != 503][:5]
    assert all("database is unavailable" in text for _, _, text in during), during[0]
    assert all(r.status_code == 200 for r in after), [(r.status_code, r.text) for r in after]
    assert retried, "no result arrived during the outage: the test did not exercise the retried writes"

    deadline = time.monotonic() + 180
    while ok(api.get(f"/deployments/{d}"))["state"] != "completed":
        assert time.monotonic() < deadline, "the deployment did not complete after the restart"
        time.sleep(1)
    # Each run records its own end (just after its hosts' last results): one that crashed never does.
    while not all(r["finished_at"] for r in ok(api.get(f"/deployments/{d}/runs"))["items"]):
        assert time.monotonic() < deadline, "a run did not record its end: it crashed in the controller"
        time.sleep(0.5)
    final = ok(api.get(f"/deployments/{d}"))
    assert final["outcome"] == "success", final
    rows = ok(api.get(f"/deployments/{d}/report", params=dict(page_size=100)))["items"]
    assert sorted(r["host"] for r in rows) == sorted(h.name for h in lab.hosts)
    for row in rows:
        # The true result, from the run that ran the installer (not re-verified after a lost run).
        assert (row["status"], row["rc"]) == ("success", 0), row
        assert "inconclusive" not in (row["reason"] or "").lower(), row
        assert lab.host_path(row["host"], COUNT).read_text().split() == [row["host"]], "installer ran more than once"
        assert lab.host_path(row["host"], MARKER).exists()
    # No run crashed: each recorded its own end, as ansible-runner reported it.
    runs = ok(api.get(f"/deployments/{d}/runs"))["items"]
    assert runs and all(r["finished_at"] is not None and r["status"] == "successful" for r in runs), \
        [(r["status"], r["finished_at"]) for r in runs]
    log_text = serve_log.read_text()
    assert "crashed" not in log_text and "Cancel Callback" not in log_text, log_text[-3000:]
    # Every write acknowledged before the outage is there; the one refused during it is not.
    names = {p["name"]: p["id"] for p in ok(api.get("/packages", params=dict(page_size=100)))["items"]}
    assert all(ok(api.get(f"/packages/{i}"))["name"].startswith("before-") for i in acknowledged)
    assert {"agent", "before-0", "before-1", "before-2"} <= set(names) and "during" not in names, names
    events = sum(r["events"] for r in runs)
    print(f"restart: {len(runs)} run(s), {events} events recorded, {len(rows)} hosts, all success, "
          f"installers ran once each")
    assert events > 0
