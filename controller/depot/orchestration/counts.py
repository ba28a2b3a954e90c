"""How a deployment's host results stand: counts by status, and the failure rate the failure
budget and the notification thresholds both look at."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from depot.deployments.models import HostResult
from depot.orchestration.states import TERMINAL_HOST_STATUSES, HostStatus

# Finished host results (cancelled ones never ran), and those of them that failed.
FINISHED = frozenset(TERMINAL_HOST_STATUSES - {HostStatus.CANCELLED})
FAILURES = frozenset({HostStatus.FAILED, HostStatus.UNREACHABLE, HostStatus.UNKNOWN})


def status_counts(session: Session, deployment_id: int) -> dict[HostStatus, int]:
    return dict(session.execute(select(HostResult.status, func.count())
                                .where(HostResult.deployment_id == deployment_id).group_by(HostResult.status)).all())


def finished_and_failed(counts: dict[HostStatus, int]) -> tuple[int, int]:
    return sum(counts.get(s, 0) for s in FINISHED), sum(counts.get(s, 0) for s in FAILURES)
