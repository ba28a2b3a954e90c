"""The controller-level retry of a failed host (issue 4 item 5), with an injected clock: after the
step's interval up to its count, or - retry after reboot - once the host's boot id changes."""

import datetime as dt

import pytest
from sqlalchemy import select

from depot.database.core import transaction
from depot.deployments.models import Deployment, HostResult, Run, Step
from depot.execution.events import StepResult
from depot.execution.runner import apply_results
from depot.orchestration import lifecycle
from depot.orchestration.states import DeploymentState, HostStatus

H = HostStatus
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def factory(sessions):
    return sessions


def deployment(factory, **step):
    with transaction(factory) as s:
        d = Deployment(name="d", state=DeploymentState.ACTIVE)
        d.steps = [Step(position=1, name="s1", action="script", script="true", **step)]
        s.add(d)
        s.flush()
        s.add(HostResult(deployment_id=d.id, step_id=d.steps[0].id, position=1, host="h1"))
        return d.id


def run_once(factory, deployment_id, result, now):
    """Claim h1 as a worker would, then apply ``result``; returns the row's state afterwards."""
    with transaction(factory) as s:
        lifecycle.wake_due(s, now, "w")
        row = s.scalar(select(HostResult).where(HostResult.deployment_id == deployment_id))
        assert row.status is H.READY, row.reason
        run = Run(deployment_id=deployment_id, step_id=row.step_id, worker="w", hosts=["h1"])
        s.add(run)
        s.flush()
        row.status, row.run_id, row.first_contact_at = H.ACTIVE, run.id, now
        apply_results(s, run.id, [result], {}, "w", now=now)
        lifecycle.settle(s, "w")
    with factory() as s:
        row = s.scalar(select(HostResult).where(HostResult.deployment_id == deployment_id))
        return row.status, row.reason, row.next_attempt_at, row.retries_done, row.wait_boot_id


FAILED = StepResult("h1", H.FAILED, "failure", 1603, boot_id="boot-1")


def test_a_failed_host_is_retried_after_the_interval_up_to_the_count(factory):
    d = deployment(factory, retry_count=2, retry_interval=300)
    status, reason, at, done, _ = run_once(factory, d, FAILED, NOW)
    assert (status, at, done) == (H.DEFERRED, NOW + dt.timedelta(seconds=300), 1)
    assert "retry 1 of 2 at 2026-11-23 12:05:00 UTC" in reason
    status, _, at, done, _ = run_once(factory, d, FAILED, at)
    assert (status, done) == (H.DEFERRED, 2)
    status, _, _, done, _ = run_once(factory, d, FAILED, at)
    assert (status, done) == (H.FAILED, 2)                   # no retry left
    with factory() as s:
        assert s.get(Deployment, d).state is DeploymentState.COMPLETED


def test_a_retry_that_succeeds_ends_in_success(factory):
    d = deployment(factory, retry_count=3, retry_interval=60)
    _, _, at, _, _ = run_once(factory, d, FAILED, NOW)
    status, _, _, done, _ = run_once(factory, d, StepResult("h1", H.SUCCESS, "success", 0), at)
    assert (status, done) == (H.SUCCESS, 1)


def test_unreachable_and_unknown_are_not_retried_as_failures(factory):
    d = deployment(factory, retry_count=3, machine_contact_timeout=1)
    status, *_ = run_once(factory, d, StepResult("h1", H.UNKNOWN, "bogus"), NOW)
    assert status is H.UNKNOWN


def test_retry_after_reboot_waits_for_a_new_boot_id(factory):
    d = deployment(factory, retry_count=1, retry_interval=120, retry_after_reboot=True)
    status, reason, at, done, wait = run_once(factory, d, FAILED, NOW)
    assert (status, done, wait) == (H.DEFERRED, 1, "boot-1") and "once the host has rebooted" in reason
    # Polled every interval: the step reports it has not rebooted, and it keeps waiting.
    polled = at
    status, _, at, done, wait = run_once(factory, d, StepResult("h1", H.DEFERRED, "awaiting_reboot", boot_id="boot-1"),
                                         polled)
    assert (status, at, done, wait) == (H.DEFERRED, polled + dt.timedelta(seconds=120), 1, "boot-1")
    # Rebooted: the step ran, and succeeded.
    status, _, _, done, wait = run_once(factory, d, StepResult("h1", H.SUCCESS, "success", 0, boot_id="boot-2"), at)
    assert (status, done, wait) == (H.SUCCESS, 1, None)
