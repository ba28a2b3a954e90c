"""Two `depot worker` processes share a deployment on PostgreSQL; one is killed with SIGKILL while
its hosts are mid-step (DESIGN.md §3.5). Its leases run out, the other worker makes its hosts
Inconclusive and re-verifies them, every host ends terminal, nothing is installed twice, and the
dead worker's runs are closed as lost.

The dead worker is treated as one on another machine: its presence file on this node is removed
before the kill, so only its leases (DEPOT_LEASE_SECONDS=6) tell the survivor it is gone. As a
service manager does, what the dead worker started (ansible-playbook, ssh) is ended with it, and
the installers it had started on its hosts are ended there too (the first attempt is lost on
the host as well; see test_crash_recovery_lab for a first attempt that completes on the host).
The API is `depot serve --no-worker`. Figures are printed (pytest -s)."""

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from depot.execution.presence import Presence
from tests.controller.conftest import postgres_database
from tests.controller.test_crash_recovery_lab import alive, descendants, log_count, ok, wait_for

pytestmark = pytest.mark.lab
DEPOT = str(Path(sys.executable).with_name("depot"))
HOSTS = ["h1", "h2", "h3", "h4", "h5", "h6"]
BASE = "/opt/depot-wloss"
MARKER = f"{BASE}/agent"
LOG = f"{BASE}/log"
INSTALLER = f"""#!/bin/sh
mkdir -p {BASE}
echo "start $$" >> {LOG}
sleep 6
echo installed > "$1"
echo "done $$" >> {LOG}
"""
LEASE = 6


@pytest.fixture
def database():
    with postgres_database("depot_wloss") as url:
        yield url


@pytest.fixture
def processes(tmp_path):
    """Started subprocesses, ended at the end of the test (those still running)."""
    started = []

    def start(name, argv, env):
        log = (tmp_path / f"{name}.log").open("w")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def rows(engine, query, **params):
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(text(query), params)]


def test_a_killed_workers_hosts_are_reclaimed_by_the_other_worker(lab, lab_inventory, database, processes, tmp_path):
    for host in HOSTS:
        shutil.rmtree(lab.host_path(host, BASE), ignore_errors=True)
    port = 17000 + (os.getpid() + 500) % 1000
    url = f"http://{lab.bridge_address}:{port}"
    env = dict(os.environ, DEPOT_DATA_DIR=str(tmp_path / "data"), DEPOT_DATABASE_URL=database, DEPOT_PUBLIC_URL=url,
               DEPOT_WORKER_POLL_INTERVAL="0.3", DEPOT_EVENT_BATCH_SECONDS="0.2", DEPOT_LEASE_SECONDS=str(LEASE),
               DEPOT_WORKER_FORKS="3")
    token = subprocess.run([DEPOT, "admin", "create", "wloss"], env=env, capture_output=True, text=True,
                           check=True).stdout.strip()   # migrates the fresh database too
    api_proc = processes("api", [DEPOT, "serve", "--no-worker", "--host", lab.bridge_address, "--port", str(port)], env)
    tag = os.getpid()
    names = {"A": f"wA-{tag}", "B": f"wB-{tag}"}
    workers = {k: processes(f"worker-{k}", [DEPOT, "worker"], dict(env, DEPOT_WORKER_NAME=n)) for k, n in names.items()}
    api = httpx.Client(base_url=url + "/api/v1", timeout=30, headers={"Authorization": f"Bearer {token}"})

    def healthy():
        assert api_proc.poll() is None, (tmp_path / "api.log").read_text()
        try:
            return api.get("/health").status_code == 200
        except httpx.TransportError:
            return False
    wait_for("the API", healthy, 30, 0.2)
    for k in names:
        wait_for(f"worker {k} to start", lambda: "started" in (tmp_path / f"worker-{k}.log").read_text(), 30)

    target = ok(api.post("/targets", json=dict(name="wloss", kind="host", inventory=str(lab_inventory), hosts=HOSTS)))
    package = ok(api.post("/packages", json=dict(
        name="wloss-agent", version="1.0", platform="linux", installer_type="script",
        options=dict(install_command=["{installer}", MARKER], detection=dict(rules=[dict(type="file", path=MARKER)])))))
    ok(api.post(f"/packages/{package['id']}/content", files={"file": ("wloss-setup", INSTALLER.encode())}))
    deployment = ok(api.post("/deployments", json=dict(name="wloss", steps=[
        dict(name="agent", action="package", package_id=package["id"], target_ids=[target["id"]],
             machine_contact_timeout=30)])))
    ok(api.post(f"/deployments/{deployment['id']}/ready"))
    ok(api.post(f"/deployments/{deployment['id']}/start"))

    engine = create_engine(database)
    try:
        # Both workers have their three hosts Active (three forks each), every installer started.
        def split():
            active = rows(engine, "SELECT host, claimed_by FROM host_results WHERE status = 'active'")
            owners = {}
            for r in active:
                owners.setdefault(r["claimed_by"], []).append(r["host"])
            started = all(log_count(lab, h, "start", LOG) == 1 for h in HOSTS)
            return started and len(active) == len(HOSTS) and owners
        owners = wait_for("both workers to run their hosts", split, 60)
        assert sorted(owners) == sorted(names.values()) and all(len(h) == 3 for h in owners.values()), owners
        victim, survivor = names["A"], names["B"]
        lost_hosts, kept_hosts = sorted(owners[victim]), sorted(owners[survivor])
        lost_rows = rows(engine, "SELECT id, host FROM host_results WHERE claimed_by = :w", w=victim)

        # As if the victim ran on another machine: no presence of it here, only its leases.
        Presence().path(victim).unlink()
        children = descendants(workers["A"].pid)
        killed_at = dt.datetime.now(dt.timezone.utc)
        os.kill(workers["A"].pid, signal.SIGKILL)
        workers["A"].wait(10)
        for pid in children:   # its control group goes with it
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        for host in lost_hosts:   # and its installers on its hosts
            os.killpg(int(re.search(r"start (\d+)", lab.host_path(host, LOG).read_text()).group(1)), signal.SIGKILL)
        runs_at_kill = rows(engine, "SELECT id, worker, status, finished_at FROM runs ORDER BY id")
        assert [r["status"] for r in runs_at_kill if r["worker"] == victim] == ["running"]

        wait_for("the deployment to complete",
                 lambda: ok(api.get(f"/deployments/{deployment['id']}"))["state"] == "completed", 120, 0.5)
        wait_for("every run to end", lambda: all(r["finished_at"] for r in rows(engine, "SELECT finished_at FROM runs")),
                 30)
        final = ok(api.get(f"/deployments/{deployment['id']}"))
        results = {r["host"]: r for r in rows(engine, "SELECT * FROM host_results")}
        transitions = rows(engine, "SELECT * FROM transitions WHERE entity = 'host_result' ORDER BY id")
        runs = rows(engine, "SELECT id, worker, status, finished_at, events FROM runs ORDER BY id")
    finally:
        engine.dispose()

    assert final["outcome"] == "success"
    assert {h: results[h]["status"] for h in HOSTS} == {h: "success" for h in HOSTS}
    assert all(results[h]["claimed_by"] is None and results[h]["lease_expires_at"] is None for h in HOSTS)
    # Nothing ran twice to completion; the victim's hosts were installed by the survivor after its
    # first attempt was lost; the survivor's own hosts ran once.
    starts = {h: log_count(lab, h, "start", LOG) for h in HOSTS}
    dones = {h: log_count(lab, h, "done", LOG) for h in HOSTS}
    assert dones == {h: 1 for h in HOSTS}
    assert starts == {**{h: 2 for h in lost_hosts}, **{h: 1 for h in kept_hosts}}
    # The victim's lease expired: the survivor made its hosts Inconclusive, re-verified and ran them.
    inconclusive_at = []
    for row in lost_rows:
        path = [t for t in transitions if t["entity_id"] == row["id"]]
        assert [(t["from_state"], t["to_state"]) for t in path] == [
            ("ready", "active"), ("active", "inconclusive"), ("inconclusive", "ready"), ("ready", "active"),
            ("active", "success")], (row["host"], path)
        assert path[0]["actor"] == f"worker:{victim}"
        assert f"the lease of worker {victim} expired" in path[1]["cause"]
        assert {t["actor"] for t in path[1:]} == {f"worker:{survivor}"}
        inconclusive_at.append(path[1]["at"])
    for host in kept_hosts:
        row_id = results[host]["id"]
        assert [(t["from_state"], t["to_state"], t["actor"]) for t in transitions if t["entity_id"] == row_id] == [
            ("ready", "active", f"worker:{survivor}"), ("active", "success", f"worker:{survivor}")]
    # The victim's run is closed as lost; the survivor's runs ended on their own terms.
    assert [r["status"] for r in runs if r["worker"] == victim] == ["lost"]
    assert all(r["finished_at"] for r in runs)
    assert {r["status"] for r in runs if r["worker"] == survivor} == {"successful"}
    print(f"\nhosts: {len(HOSTS)} ({victim}: {lost_hosts}, {survivor}: {kept_hosts}); host transitions: "
          f"{len(transitions)}; starts {starts}; dones {dones}; lease {LEASE} s; kill to Inconclusive: "
          f"{(min(inconclusive_at) - killed_at).total_seconds():.1f} s; runs: "
          f"{[(r['id'], r['worker'], r['status'], r['events']) for r in runs]}")
