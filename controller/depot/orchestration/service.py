"""The one place that changes states. Each function checks the transition against
:mod:`depot.orchestration.states`, applies it, and records it with its cause and actor."""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import insert
from sqlalchemy.orm import Session

from depot.database.core import utcnow
from depot.deployments.models import Deployment, HostResult
from depot.orchestration import signals
from depot.orchestration.models import Transition
from depot.orchestration.states import (
    DEPLOYMENT_TRANSITIONS, HOST_TRANSITIONS, TERMINAL_HOST_STATUSES, DeploymentOutcome, DeploymentState,
    HostStatus, InvalidTransition, check,
)

__all__ = ["InvalidTransition", "set_deployment_state", "set_host_status"]


def set_deployment_state(session: Session, deployment: Deployment, target: DeploymentState, *, cause: str,
                         actor: str, outcome: DeploymentOutcome | None = None) -> None:
    check("deployment", deployment.id, deployment.state, target, DEPLOYMENT_TRANSITIONS)
    if (target is DeploymentState.COMPLETED) != (outcome is not None):
        raise InvalidTransition(f"deployment {deployment.id}: an outcome goes with completed, and only with it")
    now = utcnow()
    session.add(Transition(entity="deployment", entity_id=deployment.id, from_state=deployment.state.value,
                           to_state=target.value, cause=cause, actor=actor, at=now))
    if deployment.state is DeploymentState.COMPLETED and target is DeploymentState.ACTIVE:   # a rerun
        deployment.started_at = now
        deployment.outcome = deployment.finished_at = None
    deployment.state = target
    if target is DeploymentState.ACTIVE:
        signals.mark(session)
    if target is DeploymentState.ACTIVE and deployment.started_at is None:
        deployment.started_at = now
    if target is DeploymentState.COMPLETED:
        deployment.outcome = outcome
        deployment.finished_at = now


def set_host_status(session: Session, rows: Iterable[HostResult], target: HostStatus, *, cause: str, actor: str,
                    **fields) -> list[HostResult]:
    """Move every row to ``target`` (all or none: one invalid row rejects the batch) and set
    ``fields`` on them. Returns the rows."""
    rows = list(rows)
    for row in rows:
        check("host result", f"{row.id} ({row.host}, step {row.position})", row.status, target, HOST_TRANSITIONS)
    now = utcnow()
    if rows and (target is HostStatus.READY or target in TERMINAL_HOST_STATUSES):
        signals.mark(session)   # claimable now, or a turn, a host or a concurrency slot freed
    if rows:
        signals.host_results_changed(session, {row.deployment_id for row in rows})
        session.execute(insert(Transition), [
            dict(entity="host_result", entity_id=row.id, from_state=row.status.value, to_state=target.value,
                 cause=cause, actor=actor, at=now) for row in rows])
    for row in rows:
        row.status = target
        if target is HostStatus.ACTIVE:
            row.started_at = now
        if target in TERMINAL_HOST_STATUSES:
            row.finished_at = now
            row.claimed_by = None
            row.lease_expires_at = None
        for key, value in fields.items():
            setattr(row, key, value)
    return rows
