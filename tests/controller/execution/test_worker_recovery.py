"""A dead worker's work is recovered: at once when its presence on this node shows it died,
otherwise when its leases run out; its runs are closed as lost; a worker restarted under the same
name takes over its predecessor's leftovers; run secrets left by dead processes are swept.
On SQLite and PostgreSQL."""

import datetime as dt
import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import select

from depot.config import Settings
from depot.database.core import transaction, utcnow
from depot.deployments.models import Deployment, HostResult, Run, Step
from depot.execution import worker as worker_module
from depot.execution.presence import Presence, sweep_secrets
from depot.execution.worker import Worker
from depot.orchestration import lifecycle
from depot.orchestration.models import Transition
from depot.orchestration.states import DeploymentState, HostStatus
from depot.security import load_keys

H = HostStatus


class Holder:
    """Another process present under ``name`` (as a worker is) until it is killed."""

    def __init__(self, base, name):
        code = ("import sys, time; from depot.execution.presence import Presence\n"
                "assert Presence(sys.argv[1]).register(sys.argv[2]); print('ready', flush=True); time.sleep(600)")
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(base), name], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def presence_dir(tmp_path):
    (tmp_path / "shm").mkdir()
    return tmp_path / "shm"


@pytest.fixture
def holders():
    started = []
    yield started
    for h in started:
        if h.proc.poll() is None:
            h.kill()


def test_presence_tells_a_dead_process_from_a_live_one_and_from_an_unknown_one(presence_dir, holders):
    live, dead = Holder(presence_dir, "node:1"), Holder(presence_dir, "node:2")
    holders += [live, dead]
    dead.kill()
    presence = Presence(presence_dir)
    assert not presence.gone("node:1")
    assert presence.gone("node:2")
    assert not presence.gone("elsewhere:3")            # never present here: the lease decides
    assert set(presence.names()) == {"node:1", "node:2"}
    # A name is held once on a node; the dead one's name can be taken again.
    assert not Presence(presence_dir).register("node:1", wait=0.2)
    again = Presence(presence_dir)
    assert again.register("node:2") and not presence.gone("node:2")
    again.release()
    assert presence.gone("node:2")
    assert oct((presence_dir / f"depot-workers-{os.geteuid()}").stat().st_mode & 0o777) == "0o700"


def active_run(factory, worker_name, hosts, lease=600):
    """A deployment of one step whose hosts ``worker_name`` has claimed under one run."""
    with transaction(factory) as s:
        d = Deployment(name=f"d-{worker_name}", state=DeploymentState.ACTIVE)
        d.steps = [Step(position=1, name="s", action="script", script="true", target_ids=[])]
        s.add(d)
        s.flush()
        run = Run(deployment_id=d.id, step_id=d.steps[0].id, worker=worker_name, hosts=list(hosts), status="running")
        s.add(run)
        s.flush()
        for host in hosts:
            s.add(HostResult(deployment_id=d.id, step_id=d.steps[0].id, position=1, host=host, status=H.ACTIVE,
                             run_id=run.id, claimed_by=worker_name, started_at=utcnow(),
                             lease_expires_at=utcnow() + dt.timedelta(seconds=lease)))
        return d.id, run.id


def make_worker(sessions, tmp_path, presence_dir, name="me:1", lease=60):
    settings = Settings(data_dir=tmp_path / "data", worker_name=name, lease_seconds=lease)
    w = Worker(sessions, settings, load_keys(settings.data_dir))
    w.presence = Presence(presence_dir)
    return w


def host_rows(factory, deployment_id):
    with factory() as s:
        return s.scalars(select(HostResult).where(HostResult.deployment_id == deployment_id)
                         .order_by(HostResult.host)).all()


def transitions(factory, row_id):
    with factory() as s:
        return [(t.from_state, t.to_state, t.cause, t.actor) for t in s.scalars(select(Transition).where(
            Transition.entity == "host_result", Transition.entity_id == row_id).order_by(Transition.id))]


def test_a_dead_workers_leases_are_expired_at_once_and_its_run_closed_as_lost(sessions, tmp_path, presence_dir,
                                                                               holders):
    dead, live = Holder(presence_dir, "node:100"), Holder(presence_dir, "node:200")
    holders += [dead, live]
    d_dead, run_dead = active_run(sessions, "node:100", ["h1", "h2"])
    d_live, run_live = active_run(sessions, "node:200", ["h3"])
    d_far, run_far = active_run(sessions, "far:300", ["h4"])        # another node: nothing known here
    w = make_worker(sessions, tmp_path, presence_dir)
    w.recover(utcnow())
    assert all(r.status is H.ACTIVE for d in (d_dead, d_live, d_far) for r in host_rows(sessions, d))
    dead.kill()
    w.recover(utcnow())   # leases still have ten minutes to run: the presence decides
    for row in host_rows(sessions, d_dead):
        assert row.status is H.READY
        assert [(f, t) for f, t, _, _ in transitions(sessions, row.id)] == [("active", "inconclusive"),
                                                                            ("inconclusive", "ready")]
        assert "worker node:100 is gone" in transitions(sessions, row.id)[0][2]
        assert transitions(sessions, row.id)[0][3] == "worker:me:1"
    assert all(r.status is H.ACTIVE for d in (d_live, d_far) for r in host_rows(sessions, d))
    with sessions() as s:
        assert (s.get(Run, run_dead).status, s.get(Run, run_dead).finished_at is not None) == ("lost", True)
        assert s.get(Run, run_live).finished_at is None and s.get(Run, run_far).finished_at is None


def test_across_nodes_the_lease_and_the_run_heartbeat_decide(sessions, tmp_path, presence_dir):
    d, run_id = active_run(sessions, "far:1", ["h1"], lease=600)
    now = utcnow()
    with transaction(sessions) as s:   # the far worker's heartbeat: leases renewed, its run seen alive
        lifecycle.renew_leases(s, "far:1", now + dt.timedelta(seconds=30), now)
    with transaction(sessions) as s:
        assert lifecycle.expire_leases(s, now + dt.timedelta(seconds=10), "worker:me") == 0
        assert lifecycle.close_lost_runs(s, now + dt.timedelta(seconds=10), now - dt.timedelta(seconds=1)) == []
    later = now + dt.timedelta(seconds=61)
    with transaction(sessions) as s:   # no heartbeat for a lease: the hosts, then the run
        assert lifecycle.expire_leases(s, later, "worker:me") == 1
        assert lifecycle.close_lost_runs(s, later, later - dt.timedelta(seconds=60)) == [run_id]
    assert [r.status for r in host_rows(sessions, d)] == [H.READY]
    with sessions() as s:
        assert s.get(Run, run_id).status == "lost"


def test_a_run_with_a_stale_heartbeat_but_a_live_lease_is_not_closed(sessions):
    d, run_id = active_run(sessions, "far:1", ["h1"], lease=600)
    now = utcnow()
    with transaction(sessions) as s:
        assert lifecycle.close_lost_runs(s, now, now + dt.timedelta(seconds=1), ["far:1"]) == []


def test_a_worker_restarted_under_its_name_takes_over_its_predecessors_leftovers(sessions, tmp_path, presence_dir,
                                                                                  monkeypatch):
    d, run_id = active_run(sessions, "fixed-name", ["h1", "h2"], lease=600)
    w = make_worker(sessions, tmp_path, presence_dir, name="fixed-name")
    run_dir = tmp_path / "data" / "runs" / str(run_id)
    (run_dir / "env").mkdir(parents=True)
    (run_dir / "artifacts").mkdir()
    monkeypatch.setattr(worker_module, "sweep_secrets", lambda: [])
    w.start()
    try:
        assert [r.status for r in host_rows(sessions, d)] == [H.READY, H.READY]
        with sessions() as s:
            assert s.get(Run, run_id).status == "lost"
        assert not (run_dir / "env").exists() and (run_dir / "artifacts").exists()
        assert not w.presence.gone("fixed-name")
    finally:
        w.presence.release()


def test_start_sweeps_the_presence_files_of_dead_workers_that_hold_nothing(sessions, tmp_path, presence_dir, holders,
                                                                           monkeypatch):
    holders += [Holder(presence_dir, "node:7"), Holder(presence_dir, "node:8"), Holder(presence_dir, "node:9")]
    active_run(sessions, "node:8", ["h1"])
    holders[0].kill()
    holders[1].kill()
    monkeypatch.setattr(worker_module, "sweep_secrets", lambda: [])
    w = make_worker(sessions, tmp_path, presence_dir)
    w.start()
    try:
        # node:7 is dead and holds nothing: forgotten. node:8 is dead with work: kept until recovered
        # (start only takes over its own name's leftovers; ticks recover node:8). node:9 lives.
        assert set(w.presence.names()) == {"me:1", "node:8", "node:9"}
    finally:
        w.presence.release()


def test_sweep_secrets_removes_only_directories_of_dead_pids(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    for name in (f"depot-secrets-{dead.pid}-abc", f"depot-secrets-{os.getpid()}-def", "depot-secrets-xyz",
                 f"depot-secrets-{os.getppid()}-ghi"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "secrets.yml").write_text("x")
    assert sweep_secrets(str(tmp_path)) == [str(tmp_path / f"depot-secrets-{dead.pid}-abc")]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([
        f"depot-secrets-{os.getpid()}-def", "depot-secrets-xyz", f"depot-secrets-{os.getppid()}-ghi"])
