"""`depot serve` killed with SIGKILL in the middle of a deployment, and started again on the same
data directory (DESIGN.md §3.5): what reached the database is kept, the hosts that were Active
become Inconclusive and are re-verified by detection, nothing is installed twice, and the dead
process's run is closed as lost instead of "running" forever.

Six lab hosts run one package step whose installer logs "start", sleeps, creates the detection
marker and logs "done". The serve process is killed once every installer has started. A crash
of the controller does not stop installers already running on hosts (they run detached from the
ssh session, in a session of their own): on h1-h3 the test ends them (the first attempt is lost
on the host too), on h4-h6 it lets them finish before the restart. Then:

- h1-h3: the re-verification finds nothing installed and installs: 2 starts, 1 done;
- h4-h6: the re-verification's detection finds the marker: 1 start, 1 done, outcome "already".

Recovery is immediate: the restarted worker sees that the dead worker's process is gone (its
presence lock on this node was released by the kernel) and does not wait out the lease, which
is left at its default of 60 s here. Figures are printed (pytest -s)."""

import datetime as dt
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.lab
DEPOT = str(Path(sys.executable).with_name("depot"))
HOSTS = ["h1", "h2", "h3", "h4", "h5", "h6"]
LOST_ON_HOST = HOSTS[:3]       # the first attempt is ended on the host as well
DONE_ON_HOST = HOSTS[3:]       # the first attempt completes on the host after the crash
BASE = "/opt/depot-crash"
MARKER = f"{BASE}/agent"
LOG = f"{BASE}/log"
INSTALLER = f"""#!/bin/sh
mkdir -p {BASE}
echo "start $$" >> {LOG}
sleep 8
echo installed > "$1"
echo "done $$" >> {LOG}
"""
TERMINAL = {"success", "success_reboot_pending", "failed", "unreachable", "cancelled", "unknown"}


def ok(response):
    assert response.status_code < 300, (response.status_code, response.text)
    return response.json()


def wait_for(what, predicate, timeout, interval=0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


class Serve:
    """`depot serve` as a subprocess on the lab bridge, on one data directory across restarts."""

    def __init__(self, lab, tmp_path):
        self.port = 17000 + os.getpid() % 1000
        self.url = f"http://{lab.bridge_address}:{self.port}"
        self.tmp_path = tmp_path
        self.env = dict(os.environ, DEPOT_DATA_DIR=str(tmp_path / "data"), DEPOT_PUBLIC_URL=self.url,
                        DEPOT_WORKER_POLL_INTERVAL="0.3", DEPOT_EVENT_BATCH_SECONDS="0.2")
        self.env.pop("DEPOT_DATABASE_URL", None)
        self.env.pop("DEPOT_LEASE_SECONDS", None)   # the default (60 s): recovery must not wait for it
        self.bridge = lab.bridge_address
        self.proc = None
        self.logs = []
        self.token = subprocess.run([DEPOT, "admin", "create", "crash"], env=self.env, capture_output=True,
                                    text=True, check=True).stdout.strip()
        self.api = httpx.Client(base_url=self.url + "/api/v1", timeout=30,
                                headers={"Authorization": f"Bearer {self.token}"})

    @property
    def db(self) -> Path:
        return self.tmp_path / "data" / "depot.db"

    def start(self):
        log = (self.tmp_path / f"serve-{len(self.logs)}.log").open("w")
        self.logs.append(log)
        self.proc = subprocess.Popen([DEPOT, "serve", "--host", self.bridge, "--port", str(self.port)],
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT)

        def healthy():
            assert self.proc.poll() is None, Path(log.name).read_text()
            try:
                return self.api.get("/health").status_code == 200
            except httpx.TransportError:
                return False
        wait_for("depot serve to answer", healthy, 30, 0.2)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for log in self.logs:
            log.close()


@pytest.fixture
def serve(lab, tmp_path):
    s = Serve(lab, tmp_path)
    yield s
    s.stop()


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process of the machine."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[1])
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):
            continue
        found[int(entry)] = (ppid, cmd)
    return found


def descendants(pid: int) -> dict[int, str]:
    table = processes()
    children: dict[int, list[int]] = {}
    for p, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(p)
    found, todo = {}, list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found[p] = table[p][1]
        todo += children.get(p, [])
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def snapshot(db: Path) -> dict:
    """What reached the database, read raw (the file as the dead process left it)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as c:
        c.row_factory = sqlite3.Row
        return {table: [dict(r) for r in c.execute(f"SELECT * FROM {table} ORDER BY id")]
                for table in ("transitions", "host_results", "runs")}


def log_count(lab, host, word, log=LOG) -> int:
    """How many lines of the host's installer log begin with ``word``."""
    path = lab.host_path(host, log)
    lines = path.read_text().splitlines() if path.exists() else []
    return sum(1 for line in lines if line.split()[0] == word)


def test_serve_killed_mid_deployment_recovers_without_losing_events_or_installing_twice(serve, lab, lab_inventory):
    for host in HOSTS:
        shutil.rmtree(lab.host_path(host, BASE), ignore_errors=True)
    serve.start()
    api = serve.api
    target = ok(api.post("/targets", json=dict(name="crash", kind="host", inventory=str(lab_inventory),
                                               hosts=HOSTS)))
    package = ok(api.post("/packages", json=dict(
        name="crash-agent", version="1.0", platform="linux", installer_type="script",
        options=dict(install_command=["{installer}", MARKER], detection=dict(rules=[dict(type="file", path=MARKER)])))))
    ok(api.post(f"/packages/{package['id']}/content", files={"file": ("crash-setup", INSTALLER.encode())}))
    deployment = ok(api.post("/deployments", json=dict(name="crash", steps=[
        dict(name="agent", action="package", package_id=package["id"], target_ids=[target["id"]],
             machine_contact_timeout=30)])))
    ok(api.post(f"/deployments/{deployment['id']}/ready"))
    assert ok(api.post(f"/deployments/{deployment['id']}/start"))["host_results"] == len(HOSTS)

    # Every installer has started on its host: every host is Active, mid-step.
    wait_for("every installer to start", lambda: all(log_count(lab, h, "start") == 1 for h in HOSTS), 90)
    assert all(log_count(lab, h, "done") == 0 for h in HOSTS)
    children = descendants(serve.proc.pid)
    os.kill(serve.proc.pid, signal.SIGKILL)
    serve.proc.wait(10)
    killed_at = time.monotonic()
    # What a crash of the process alone leaves: ansible-playbook runs under a pty of its own session
    # (pexpect), so it is not in serve's process group; the pty's hangup ends it and its ssh.
    time.sleep(2)
    survivors = {p: c for p, c in children.items() if alive(p)}
    print(f"\nprocesses under serve at the kill: {len(children)}; alive 2 s later: {len(survivors)}")
    for p, c in sorted(survivors.items()):
        print(f"  survivor {p}: {c[:120]}")
    # Under a service manager the whole control group goes with the main process: end what is left.
    for p in survivors:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass

    before = snapshot(serve.db)
    active_at_kill = {r["id"]: r for r in before["host_results"] if r["status"] == "active"}
    assert sorted(r["host"] for r in active_at_kill.values()) == HOSTS
    dead_runs = [r for r in before["runs"] if r["finished_at"] is None]
    assert dead_runs and all(r["status"] == "running" for r in dead_runs)
    dead_worker = dead_runs[0]["worker"]
    assert dead_worker.endswith(f":{serve.proc.pid}")

    # On the hosts the first attempt goes on without the controller; end it on h1-h3, let it finish on h4-h6.
    for host in LOST_ON_HOST:
        pid = int(re.search(r"start (\d+)", lab.host_path(host, LOG).read_text()).group(1))
        os.killpg(pid, signal.SIGKILL)    # the installer is a session leader on the host (the module's run)
    wait_for("the first attempts on h4-h6 to finish", lambda: all(log_count(lab, h, "done") == 1 for h in DONE_ON_HOST),
             30)
    assert all(not lab.host_path(h, MARKER).exists() for h in LOST_ON_HOST)
    assert before == snapshot(serve.db)   # nothing wrote meanwhile

    restarted, restarted_wall = time.monotonic(), dt.datetime.now(dt.timezone.utc)
    serve.start()
    state = wait_for("the deployment to complete after the restart",
                     lambda: (d := ok(api.get(f"/deployments/{deployment['id']}")))["state"] == "completed" and d, 120)
    recovery = time.monotonic() - restarted
    # The deployment completes with the last result; its run records its end right after.
    wait_for("every run to end", lambda: all(r["finished_at"] for r in snapshot(serve.db)["runs"]), 30)
    after = snapshot(serve.db)

    # Every host ended terminal, successfully.
    assert state["outcome"] == "success"
    rows = {r["host"]: r for r in after["host_results"]}
    assert {h: rows[h]["status"] for h in HOSTS} == {h: "success" for h in HOSTS}
    # Nothing installed twice; where the first attempt completed on the host, detection found it.
    starts = {h: log_count(lab, h, "start") for h in HOSTS}
    dones = {h: log_count(lab, h, "done") for h in HOSTS}
    assert dones == {h: 1 for h in HOSTS}
    assert starts == {**{h: 2 for h in LOST_ON_HOST}, **{h: 1 for h in DONE_ON_HOST}}
    assert {h: rows[h]["outcome"] for h in DONE_ON_HOST} == {h: "already" for h in DONE_ON_HOST}
    assert {h: rows[h]["outcome"] for h in LOST_ON_HOST} == {h: "success" for h in LOST_ON_HOST}

    # No event that reached the database was lost: every transition row is there, unchanged.
    after_by_id = {t["id"]: t for t in after["transitions"]}
    assert all(after_by_id.get(t["id"]) == t for t in before["transitions"])
    # Each host that was Active at the kill: Active -> Inconclusive (its worker gone) -> Ready
    # (re-verify) -> Active -> Success, the recovery by the new process's worker.
    new_worker, inconclusive_at = None, []
    for row_id, row in active_at_kill.items():
        path = [t for t in after["transitions"] if t["entity"] == "host_result" and t["entity_id"] == row_id]
        assert [(t["from_state"], t["to_state"]) for t in path] == [
            ("ready", "active"), ("active", "inconclusive"), ("inconclusive", "ready"), ("ready", "active"),
            ("active", "success")], (row["host"], path)
        assert path[0]["actor"] == f"worker:{dead_worker}"
        assert f"worker {dead_worker} is gone" in path[1]["cause"]
        assert "re-verify" in path[2]["cause"]
        inconclusive_at.append(dt.datetime.fromisoformat(path[1]["at"]).replace(tzinfo=dt.timezone.utc))
        new_worker = new_worker or path[1]["actor"]
        assert {t["actor"] for t in path[1:]} == {new_worker} != {f"worker:{dead_worker}"}
        assert new_worker.endswith(f":{serve.proc.pid}")
    # The dead process's run is closed as lost (its events up to the crash kept); the new ones finished.
    runs = {r["id"]: r for r in after["runs"]}
    for run in dead_runs:
        assert (runs[run["id"]]["status"], runs[run["id"]]["finished_at"] is not None) == ("lost", True)
        assert runs[run["id"]]["events"] == run["events"]
    new_runs = [r for r in after["runs"] if r["worker"] != dead_worker]
    assert new_runs and all(r["status"] == "successful" and r["finished_at"] for r in new_runs)
    assert not (Path(dead_runs[0]["artifact_dir"]).parent / "env").exists()   # staged private files dropped

    print(f"hosts: {len(HOSTS)}; transitions before restart: {len(before['transitions'])}, after: "
          f"{len(after['transitions'])}; events in the database at the kill: {sum(r['events'] for r in dead_runs)}, "
          f"after: {sum(r['events'] for r in after['runs'])}; starts {starts}; dones {dones}; "
          f"down {restarted - killed_at:.1f} s; restart to Inconclusive "
          f"{(min(inconclusive_at) - restarted_wall).total_seconds():.1f} s (lease 60 s); "
          f"restart to completion {recovery:.1f} s; "
          f"runs: {[(r['id'], r['status']) for r in after['runs']]}")
