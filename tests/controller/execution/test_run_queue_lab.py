"""Runs that hold more hosts than forks, on the lab: one ansible-playbook start-up for all of
them, never more installers at once than forks, and a cancel that lets the hosts that began
their step finish while the queued ones never start."""

import hashlib
import shutil
import time

import pytest
from sqlalchemy import select

from depot.database.core import transaction
from depot.deployments import service
from depot.deployments.models import Deployment, HostResult, Run, Step
from depot.orchestration.states import DeploymentOutcome, HostStatus
from depot.packages.models import Package
from depot.targets.models import Target
from tests.controller.running import lab_worker, run_until_complete, start

pytestmark = pytest.mark.lab
H = HostStatus
MARKER = "/opt/depot-queue/agent"
TIMES = "/opt/depot-queue/times"
# Records when it ran (one clock: every lab host is on this machine), sleeps, installs MARKER.
INSTALLER = (f"#!/bin/sh\nset -eu\nmkdir -p /opt/depot-queue\necho \"start $(date +%s.%N)\" >> {TIMES}\n"
             f"sleep \"$1\"\necho installed > {MARKER}\necho \"end $(date +%s.%N)\" >> {TIMES}\n").encode()


@pytest.fixture
def queued(tmp_path, lab, lab_inventory):
    """A worker with 2 forks taking up to 3 hosts per fork, and a one-step deployment maker."""
    for host in lab.hosts:
        shutil.rmtree(lab.host_path(host.name, "/opt/depot-queue"), ignore_errors=True)
    www = tmp_path / "www"
    www.mkdir()
    (www / "timed").write_bytes(INSTALLER)
    url = lab.serve(www) + "/timed"
    with lab_worker(tmp_path / "data", worker_forks=2, worker_hosts_per_fork=3) as (_, factory, worker):
        def deployment(seconds: int) -> int:
            with transaction(factory) as s:
                target = Target(name=f"lab{seconds}", kind="group", inventory=str(lab_inventory), group="lab")
                package = Package(name=f"timed{seconds}", version="1", platform="linux", installer_type="script",
                                  content_url=url, content_sha256=hashlib.sha256(INSTALLER).hexdigest(),
                                  content_filename="timed", options=dict(
                                      install_command=["{installer}", str(seconds)],
                                      detection=dict(rules=[dict(type="file", path=MARKER)])))
                s.add_all([target, package])
                s.flush()
                d = Deployment(name=f"queued {seconds}s")
                d.steps = [Step(position=1, name="timed", action="package", package_id=package.id,
                                target_ids=[target.id])]
                s.add(d)
                s.flush()
                return d.id
        yield factory, worker, deployment


def intervals(lab, hosts):
    """(start, end) of every installer run on ``hosts``."""
    spans = []
    for host in hosts:
        path = lab.host_path(host, TIMES)
        if path.exists():
            stamps = dict(line.split() for line in path.read_text().splitlines())
            spans.append((float(stamps["start"]), float(stamps.get("end", "inf"))))
    return spans


def most_at_once(spans):
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def test_one_run_holds_six_hosts_and_runs_two_at_a_time(queued, lab):
    factory, worker, deployment = queued
    hosts = [h.name for h in lab.hosts][:6]
    d = deployment(2)
    start(factory, d, hosts)
    run_until_complete(factory, worker, [d])
    with factory() as s:
        assert s.get(Deployment, d).outcome is DeploymentOutcome.SUCCESS
        runs = s.scalars(select(Run).where(Run.deployment_id == d)).all()
        assert [(len(r.hosts), r.forks, r.status) for r in runs] == [(6, 2, "successful")]
    # Nothing halted it: no stop file (a raw ansible-playbook with the run's vars would skip its step).
    assert not (worker.settings.data_dir / "runs" / str(runs[0].id) / "stop").exists()
    spans = intervals(lab, hosts)
    assert len(spans) == 6                       # every installer ran, once
    assert most_at_once(spans) <= 2              # never more than the run's forks


def test_a_cancel_lets_begun_steps_finish_and_queued_hosts_never_start(queued, lab):
    factory, worker, deployment = queued
    hosts = [h.name for h in lab.hosts][:6]
    d = deployment(20)
    start(factory, d, hosts)
    worker.tick()                                # claims all six into one run with two forks
    deadline = time.monotonic() + 120
    while len(intervals(lab, hosts)) < 2:        # two installers are running
        assert time.monotonic() < deadline, "the first two installers never started"
        time.sleep(0.2)
    with transaction(factory) as s:
        service.cancel(s, s.get(Deployment, d), "user:test")
    run_until_complete(factory, worker, [d])

    began = {host for host in hosts if lab.host_path(host, TIMES).exists()}
    assert len(began) == 2
    with factory() as s:
        rows = {r.host: r for r in s.scalars(select(HostResult).where(HostResult.deployment_id == d))}
        assert s.get(Deployment, d).outcome is DeploymentOutcome.CANCELLED
        assert {h for h, r in rows.items() if r.status is H.SUCCESS} == began
        assert {h for h, r in rows.items() if r.status is H.CANCELLED} == set(hosts) - began
        runs = s.scalars(select(Run).where(Run.deployment_id == d)).all()
        assert len(runs) == 1 and runs[0].status == "successful"   # it ended on its own, not killed
    assert all(lab.host_path(h, MARKER).exists() == (h in began) for h in hosts)
