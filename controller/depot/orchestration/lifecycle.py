"""What follows from host results, for every deployment alike: a lost lease makes a host
Inconclusive (and once, re-verified), an unsuccessful step cancels that host's later steps when
the step says so, an unreachable host is tried again until its contact timeout, a deployment
whose failures exceed its failure budget pauses itself, and a deployment completes with its
outcome when no host has anything left to do.

All state changes go through depot.orchestration.service.
"""

from __future__ import annotations

import datetime as dt
from typing import Collection

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from depot.deployments.models import Deployment, HostResult, Run, Step
from depot.notifications import service as notifications
from depot.orchestration.counts import finished_and_failed, status_counts
from depot.orchestration.models import Transition
from depot.orchestration.service import set_deployment_state, set_host_status
from depot.orchestration.states import (
    SUCCESSFUL_HOST_STATUSES, DeploymentOutcome, DeploymentState, HostStatus,
)

H = HostStatus
# A host with a row in one of these still has work in the deployment.
PENDING = (H.READY, H.ACTIVE, H.DEFERRED)
NOT_SUCCESSFUL = (H.FAILED, H.UNREACHABLE, H.UNKNOWN, H.INCONCLUSIVE, H.CANCELLED)
OUTCOME_EVENTS = {DeploymentOutcome.SUCCESS: "deployment.succeeded", DeploymentOutcome.FAILED: "deployment.failed",
                  DeploymentOutcome.CANCELLED: "deployment.cancelled"}


def mark_inconclusive(session: Session, rows: list[HostResult], *, cause: str, actor: str) -> None:
    """Active rows whose result was lost become Inconclusive; the first time, they go back to
    Ready so that a new attempt verifies them (detection runs first, so nothing is repeated)."""
    if not rows:
        return
    set_host_status(session, rows, H.INCONCLUSIVE, cause=cause, actor=actor, reason=cause)
    counts = dict(session.execute(
        select(Transition.entity_id, func.count()).where(
            Transition.entity == "host_result", Transition.to_state == H.INCONCLUSIVE.value,
            Transition.entity_id.in_([r.id for r in rows])).group_by(Transition.entity_id)).all())
    session.flush()
    first_time = [r for r in rows if counts.get(r.id, 0) <= 1]
    set_host_status(session, first_time, H.READY, cause="re-verify after an inconclusive attempt", actor=actor,
                    reason="re-verifying: the last attempt's result was lost; detection decides what is left to do",
                    next_attempt_at=None)


def expire_leases(session: Session, now: dt.datetime, actor: str, gone: Collection[str] = ()) -> int:
    """Active rows whose worker stopped renewing its lease (the worker died), and at once those of
    the ``gone`` workers: workers known to be dead without waiting for their leases (a worker of
    this node whose process is no longer alive)."""
    lapsed = HostResult.lease_expires_at < now
    if gone:
        lapsed = or_(lapsed, HostResult.claimed_by.in_(list(gone)))
    rows = session.scalars(select(HostResult).where(HostResult.status == H.ACTIVE, lapsed)
                           .order_by(HostResult.id).with_for_update(skip_locked=True)).all()
    by_worker: dict[str, list[HostResult]] = {}
    for row in rows:
        by_worker.setdefault(row.claimed_by or "?", []).append(row)
    for worker, group in by_worker.items():
        cause = (f"worker {worker} is gone (its process ended) with no result" if worker in gone
                 else f"the lease of worker {worker} expired with no result")
        mark_inconclusive(session, group, cause=cause, actor=actor)
    return len(rows)


def close_lost_runs(session: Session, now: dt.datetime, stale_before: dt.datetime,
                    gone: Collection[str] = ()) -> list[int]:
    """Runs that never ended because their worker died: unfinished, of a ``gone`` worker or with no
    heartbeat since ``stale_before`` (a lease ago), and with no Active host left (expire_leases
    made them Inconclusive first). They end with status "lost"; returns their ids."""
    lost = Run.heartbeat_at < stale_before
    if gone:
        lost = or_(lost, Run.worker.in_(list(gone)))
    active = exists().where(HostResult.run_id == Run.id, HostResult.status == H.ACTIVE)
    runs = session.scalars(select(Run).where(Run.finished_at.is_(None), lost, ~active)
                           .order_by(Run.id).with_for_update(skip_locked=True)).all()
    for run in runs:
        run.status, run.finished_at = "lost", now
    return [run.id for run in runs]


def wake_due(session: Session, now: dt.datetime, actor: str) -> None:
    """Deferred rows whose time has come are Ready again."""
    rows = session.scalars(select(HostResult).where(
        HostResult.status == H.DEFERRED, HostResult.next_attempt_at <= now)).all()
    set_host_status(session, rows, H.READY, cause="deferral over", actor=actor)


def cascade(session: Session, deployment: Deployment, actor: str, reason: str = "the deployment was cancelled") -> None:
    """Later steps of a host whose earlier step was not successful, where that step says
    "only run further steps if successful", are cancelled; on a cancelled deployment every host
    that is not active is cancelled."""
    if deployment.cancel_requested:
        rows = session.scalars(select(HostResult).where(
            HostResult.deployment_id == deployment.id,
            HostResult.status.in_([H.READY, H.DEFERRED, H.INCONCLUSIVE])).order_by(HostResult.id)
            .with_for_update()).all()
        set_host_status(session, rows, H.CANCELLED, cause="deployment cancelled", actor=actor, reason=reason)
        return
    earlier = aliased(HostResult)
    blockers = (select(earlier.host, earlier.position, Step.position)
                .join(Step, Step.id == earlier.step_id)
                .where(earlier.deployment_id == deployment.id, earlier.status.in_(NOT_SUCCESSFUL),
                       Step.only_run_further_steps_if_successful.is_(True)))
    blocked: dict[str, int] = {}
    for host, position, _ in session.execute(blockers).all():
        blocked[host] = min(position, blocked.get(host, position))
    if not blocked:
        return
    rows = session.scalars(select(HostResult).where(
        HostResult.deployment_id == deployment.id, HostResult.host.in_(list(blocked)),
        HostResult.status.in_([H.READY, H.DEFERRED]))).all()
    for position in sorted(set(blocked.values())):
        doomed = [r for r in rows if blocked[r.host] == position and r.position > position]
        set_host_status(session, doomed, H.CANCELLED, cause=f"step {position} was not successful on this host",
                        actor=actor, reason=f"not run: step {position} was not successful on this host")


def complete_if_done(session: Session, deployment: Deployment, actor: str) -> bool:
    pending = session.scalar(select(func.count()).select_from(HostResult).where(
        HostResult.deployment_id == deployment.id, HostResult.status.in_(PENDING)))
    if pending:
        return False
    if deployment.cancel_requested:
        outcome = DeploymentOutcome.CANCELLED
        cause = "cancelled"
    else:
        failed = session.scalar(select(func.count()).select_from(HostResult).join(Step, Step.id == HostResult.step_id).where(
            HostResult.deployment_id == deployment.id, HostResult.status.not_in(list(SUCCESSFUL_HOST_STATUSES)),
            HostResult.status != H.CANCELLED, Step.fail_deployment_if_unsuccessful.is_(True)))
        outcome = DeploymentOutcome.FAILED if failed else DeploymentOutcome.SUCCESS
        cause = "every host is done"
    set_deployment_state(session, deployment, DeploymentState.COMPLETED, cause=cause, actor=actor, outcome=outcome)
    notifications.emit(session, deployment, "deployment.completed")
    notifications.emit(session, deployment, OUTCOME_EVENTS[outcome])
    return True


def failure_counts(session: Session, deployment: Deployment) -> tuple[int, int]:
    """(finished, failed) host results of the deployment: what the failure budget looks at."""
    return finished_and_failed(status_counts(session, deployment.id))


def pause(session: Session, deployment: Deployment, reason: str, actor: str) -> None:
    set_deployment_state(session, deployment, DeploymentState.PAUSED, cause=reason, actor=actor)
    deployment.pause_reason = reason
    notifications.emit(session, deployment, "deployment.paused", {"reason": reason})


def resume(session: Session, deployment: Deployment, actor: str) -> None:
    set_deployment_state(session, deployment, DeploymentState.ACTIVE, cause="resumed", actor=actor)
    deployment.budget_acknowledged = failure_counts(session, deployment)[1]
    deployment.pause_reason = None


def check_budget(session: Session, deployment: Deployment, actor: str) -> bool:
    """Pause an active deployment whose failure rate over its finished host results exceeds its
    budget (once min_sample have finished, and only on failures not yet acknowledged by a resume)."""
    if deployment.failure_budget_percent is None or deployment.state is not DeploymentState.ACTIVE:
        return False
    finished, failed = failure_counts(session, deployment)
    if finished < deployment.failure_budget_min_sample or failed <= deployment.budget_acknowledged:
        return False
    if failed * 100 <= deployment.failure_budget_percent * finished:
        return False
    pause(session, deployment, f"failure budget exceeded: {failed} of {finished} finished host results failed "
          f"({failed * 100 / finished:.0f}% > {deployment.failure_budget_percent}%)", actor)
    return True


def settle(session: Session, actor: str, deployment_ids: list[int] | None = None) -> None:
    """Apply cascade, the failure budget and completion to started deployments (or the given ones)."""
    query = select(Deployment).where(Deployment.state.in_([DeploymentState.ACTIVE, DeploymentState.PAUSED]))
    if deployment_ids is not None:
        query = query.where(Deployment.id.in_(deployment_ids))
    for deployment in session.scalars(query).all():
        cascade(session, deployment, actor)
        session.flush()
        if not complete_if_done(session, deployment, actor):
            check_budget(session, deployment, actor)
            notifications.check_thresholds(session, deployment)


def renew_leases(session: Session, worker: str, until: dt.datetime, now: dt.datetime | None = None) -> None:
    """The worker's heartbeat: its Active rows' leases run until ``until``, and its unfinished runs
    are seen alive ``now``."""
    session.execute(update(HostResult).where(HostResult.claimed_by == worker, HostResult.status == H.ACTIVE)
                    .values(lease_expires_at=until))
    if now is not None:
        session.execute(update(Run).where(Run.worker == worker, Run.finished_at.is_(None)).values(heartbeat_at=now))
