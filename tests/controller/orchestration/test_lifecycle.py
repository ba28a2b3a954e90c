"""What follows from host results, on SQLite and PostgreSQL: lost results, cascades, contact
retries and completion - fed the way the worker feeds them."""

import datetime as dt

import pytest
from sqlalchemy import select

from depot.database.core import transaction, utcnow
from depot.deployments.models import Deployment, HostResult, Run, Step
from depot.execution.events import StepResult
from depot.execution.runner import EventSink, apply_results, finish_run
from depot.orchestration import lifecycle
from depot.orchestration.states import DeploymentOutcome, DeploymentState, HostStatus

H = HostStatus


@pytest.fixture
def factory(sessions):
    return sessions


def deployment(factory, hosts=("h1", "h2"), steps=2, only_if_successful=True, contact_timeout=0):
    with transaction(factory) as s:
        d = Deployment(name="d", state=DeploymentState.ACTIVE)
        d.steps = [Step(position=p, name=f"s{p}", action="script", script="true", target_ids=[],
                        only_run_further_steps_if_successful=only_if_successful,
                        machine_contact_timeout=contact_timeout) for p in range(1, steps + 1)]
        s.add(d)
        s.flush()
        for step in d.steps:
            for host in hosts:
                s.add(HostResult(deployment_id=d.id, step_id=step.id, position=step.position, host=host))
        return d.id


def claim_step(factory, deployment_id, position, worker="w1"):
    """Rows of a step made Active under one run, as a worker's claim does."""
    with transaction(factory) as s:
        rows = s.scalars(select(HostResult).where(HostResult.deployment_id == deployment_id,
                                                  HostResult.position == position)).all()
        run = Run(deployment_id=deployment_id, step_id=rows[0].step_id, worker=worker, hosts=[r.host for r in rows])
        s.add(run)
        s.flush()
        for r in rows:
            r.status, r.run_id, r.claimed_by = H.ACTIVE, run.id, worker
            r.first_contact_at = utcnow()
            r.lease_expires_at = utcnow() + dt.timedelta(seconds=60)
        return run.id


def statuses(factory, deployment_id):
    with factory() as s:
        return {(r.host, r.position): r.status for r in s.scalars(select(HostResult).where(
            HostResult.deployment_id == deployment_id))}


def test_a_run_that_dies_mid_way_leaves_inconclusive_hosts_that_are_reverified_once(factory):
    d = deployment(factory, steps=1)
    run_id = claim_step(factory, d, 1)
    sink = EventSink(factory, run_id, d, "worker:w1", batch_size=100, batch_seconds=60)
    sink.handle({"event": "runner_on_ok", "event_data": {"host": "h1", "task_action": "depot.software.step",
                                                          "res": {"outcome": "success", "rc": 0}}})
    sink.flush()
    finish_run(factory, run_id, "failed", sink.events, "worker:w1")   # h2 never reported
    assert statuses(factory, d) == {("h1", 1): H.SUCCESS, ("h2", 1): H.READY}
    with factory() as s:
        h2 = s.scalar(select(HostResult).where(HostResult.host == "h2"))
        assert "re-verifying" in h2.reason
    # The re-verification is lost as well: now it stays Inconclusive, and the deployment completes.
    run_id = claim_step_host(factory, d, "h2")
    finish_run(factory, run_id, "failed", 0, "worker:w1")
    assert statuses(factory, d)[("h2", 1)] is H.INCONCLUSIVE
    with factory() as s:
        assert s.get(Deployment, d).outcome is DeploymentOutcome.FAILED


def claim_step_host(factory, deployment_id, host):
    with transaction(factory) as s:
        row = s.scalar(select(HostResult).where(HostResult.deployment_id == deployment_id, HostResult.host == host,
                                                HostResult.status == H.READY))
        run = Run(deployment_id=deployment_id, step_id=row.step_id, worker="w1", hosts=[host])
        s.add(run)
        s.flush()
        row.status, row.run_id, row.claimed_by = H.ACTIVE, run.id, "w1"
        return run.id


def test_an_expired_lease_makes_hosts_inconclusive(factory):
    d = deployment(factory, steps=1)
    claim_step(factory, d, 1, worker="dead")
    with transaction(factory) as s:
        assert lifecycle.expire_leases(s, utcnow() + dt.timedelta(seconds=120), "worker:w2") == 2
    assert set(statuses(factory, d).values()) == {H.READY}   # back for re-verification


def test_failure_cancels_the_hosts_later_steps_only(factory):
    d = deployment(factory)
    run_id = claim_step(factory, d, 1)
    with transaction(factory) as s:
        apply_results(s, run_id, [StepResult("h1", H.FAILED, "failure", 1603), StepResult("h2", H.SUCCESS, "success", 0)],
                      {}, "worker:w1")
        lifecycle.settle(s, "worker:w1")
    assert statuses(factory, d) == {("h1", 1): H.FAILED, ("h2", 1): H.SUCCESS, ("h1", 2): H.CANCELLED, ("h2", 2): H.READY}


def test_without_only_run_further_steps_the_later_step_stays(factory):
    d = deployment(factory, only_if_successful=False)
    run_id = claim_step(factory, d, 1)
    with transaction(factory) as s:
        apply_results(s, run_id, [StepResult("h1", H.FAILED, "failure", 1603)], {}, "worker:w1")
        lifecycle.settle(s, "worker:w1")
    assert statuses(factory, d)[("h1", 2)] is H.READY


@pytest.mark.parametrize("timeout, waited, expected", [(0, 10_000, H.READY), (60, 10, H.READY), (60, 61, H.UNREACHABLE)])
def test_unreachable_is_retried_until_the_contact_timeout(factory, timeout, waited, expected):
    d = deployment(factory, hosts=("h1",), steps=1, contact_timeout=timeout)
    run_id = claim_step(factory, d, 1)
    with transaction(factory) as s:
        row = s.scalar(select(HostResult).where(HostResult.deployment_id == d))
        now = row.first_contact_at + dt.timedelta(seconds=waited)
        apply_results(s, run_id, [StepResult("h1", H.UNREACHABLE, "unreachable", reason="timed out")], {}, "w", now=now)
    with factory() as s:
        row = s.scalar(select(HostResult).where(HostResult.deployment_id == d))
        assert (row.status, row.contact_attempts) == (expected, 1)
        if expected is H.READY:
            assert row.next_attempt_at > now and "next contact attempt" in row.reason


def test_completion_outcomes(factory):
    d = deployment(factory, steps=1)
    run_id = claim_step(factory, d, 1)
    with transaction(factory) as s:
        apply_results(s, run_id, [StepResult("h1", H.SUCCESS, "success", 0),
                                  StepResult("h2", H.SUCCESS_REBOOT_PENDING, "soft_reboot", 3010)], {}, "w")
        lifecycle.settle(s, "w")
    with factory() as s:
        assert (s.get(Deployment, d).state, s.get(Deployment, d).outcome) == (DeploymentState.COMPLETED, DeploymentOutcome.SUCCESS)


def test_a_halted_run_gives_back_the_hosts_whose_step_never_began(factory, tmp_path):
    """A run holding more hosts than forks is halted (cancel, pause): the hosts whose step began
    finish it, those whose step never began (skipped on the stop file) go back to Ready."""
    from depot.execution.runner import Stop
    d = deployment(factory, steps=1)
    run_id = claim_step(factory, d, 1)
    sink = EventSink(factory, run_id, d, "worker:w1", batch_size=100, batch_seconds=60)
    halted = [False]
    stop = Stop(lambda: halted[0], lambda: False, sink, tmp_path / "stop")
    step = {"host": "h1", "task_action": "depot.software.step"}
    sink.handle({"event": "runner_on_start", "event_data": step})
    assert stop.check() is False and not (tmp_path / "stop").exists()
    halted[0] = True
    assert stop.check() is False and (tmp_path / "stop").exists() and stop.requested   # the run goes on
    sink.handle({"event": "runner_on_start", "event_data": dict(step, host="h2")})
    sink.handle({"event": "runner_on_skipped", "event_data": dict(step, host="h2", res={"skipped": True})})
    sink.handle({"event": "runner_on_ok", "event_data": dict(step, res={"outcome": "success", "rc": 0})})
    sink.flush()
    finish_run(factory, run_id, "successful", sink.events, "worker:w1", {"h1", "h2"} - sink.started)
    assert statuses(factory, d) == {("h1", 1): H.SUCCESS, ("h2", 1): H.READY}
    with factory() as s:
        h2 = s.scalar(select(HostResult).where(HostResult.host == "h2"))
        assert (h2.run_id, h2.claimed_by, h2.lease_expires_at) == (None, None, None)


def test_a_stopping_worker_stops_the_run_at_once(factory, tmp_path):
    from depot.execution.runner import Stop
    sink = EventSink(factory, 0, 0, "worker:w1", batch_size=100, batch_seconds=60)
    stop = Stop(lambda: False, lambda: True, sink, tmp_path / "stop")
    assert stop.check() is True and stop.requested
