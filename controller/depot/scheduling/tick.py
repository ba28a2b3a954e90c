"""The scheduler tick: starts the ready deployments whose schedule is due, and runs completed
ones again at the next occurrence of a recurring schedule (depot.deployments.service.rerun).

:func:`tick` runs in the caller's transaction with an injected ``now``. For every READY deployment
with a schedule it asks :func:`depot.scheduling.misfire.due_runs` (with the deployment's maintenance
windows and exclusions) what to do:

* ``fire`` - start the deployment through the deployments service (``start``, or ``rerun`` for a
  completed one that was not cancelled; actor ``scheduler``), and store the occurrence as
  ``last_fired``;
* ``skip`` - store the skipped occurrence as ``last_fired`` (a missed run dropped by the misfire rule);
* ``defer`` / ``none`` - nothing but ``next_run_at`` (the window a deferred run waits for, or the next
  occurrence).

Draft deployments are never looked at: a draft never runs; nor are those whose ``next_run_at`` is
still ahead (the index on it makes a tick cost what is due). A deployment that cannot start (its
targets no longer resolve, ...) is logged and its occurrence is recorded, so it is not retried on
every tick. On PostgreSQL the tick takes a transaction-level advisory lock first, so one tick runs at
a time across every controller process; a second tick waits, then sees the first one's work (the
deployment is active, ``last_fired`` moved on). SQLite serialises writers by itself.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import and_, or_, select, text
from sqlalchemy.orm import Session, selectinload

from depot.deployments import service as deployments
from depot.deployments.models import Deployment
from depot.errors import DepotError
from depot.orchestration.states import DeploymentOutcome, DeploymentState
from depot.scheduling import service as windows_service
from depot.scheduling.misfire import Action, due_runs
from depot.scheduling.rules import SchedulingError, require_aware

log = logging.getLogger(__name__)

#: pg_advisory_xact_lock key of the scheduler tick ("depotsch" in ASCII, as a signed 64-bit integer).
ADVISORY_LOCK_KEY = int.from_bytes(b"depotsch", "big", signed=True)


def tick(session: Session, now: datetime, actor: str = "scheduler") -> list[int]:
    """Start the deployments whose schedule is due at ``now`` (aware); return their ids."""
    now = require_aware(now, "now")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    # Only what may be due: next_run_at is the next occurrence, or the window a deferred run waits
    # for, as the last evaluation found it; NULL is "not worked out" (windows just changed) or "no
    # occurrence left". So a tick costs what is due, not every scheduled deployment.
    due_now = Deployment.schedule_next_run_at <= now
    candidates = session.scalars(
        select(Deployment).where(Deployment.schedule_rrule.is_not(None), or_(
            and_(Deployment.state == DeploymentState.READY,
                 or_(due_now, Deployment.schedule_next_run_at.is_(None))),
            # a completed one whose schedule has occurrences left and was not cancelled
            and_(Deployment.state == DeploymentState.COMPLETED, Deployment.outcome != DeploymentOutcome.CANCELLED,
                 due_now)))
        .options(selectinload(Deployment.maintenance_windows)).order_by(Deployment.id).with_for_update()).all()
    started: list[int] = []
    for deployment in candidates:
        try:
            schedule, policy = deployments.schedule_of(deployment)
            windows = windows_service.windows_of(deployment)
            due = due_runs(schedule, deployment.schedule_last_fired, now, policy,
                           windows=None if windows.unrestricted else windows)
        except SchedulingError as e:
            log.error("deployment %s: its stored schedule is unusable (%s); not scheduling it", deployment.id, e)
            continue
        deployment.schedule_next_run_at = due.run_at if due.action is Action.DEFER else due.next_occurrence
        if due.action is Action.FIRE:
            deployment.schedule_last_fired = due.last_fired
            try:
                if deployment.state is DeploymentState.READY:
                    deployments.start(session, deployment, actor)
                elif not deployments.rerun(session, deployment, actor):
                    log.info("deployment %s: nothing to run again at %s (%s)", deployment.id, due.last_fired,
                             due.reason)
                    continue
            except DepotError as e:   # raised before anything is written
                log.warning("deployment %s: scheduled start failed: %s (%s)", deployment.id, e, due.reason)
                continue
            started.append(deployment.id)
            log.info("deployment %s started by its schedule: %s", deployment.id, due.reason)
        elif due.action is Action.SKIP:
            deployment.schedule_last_fired = due.last_fired
            log.info("deployment %s: %s", deployment.id, due.reason)
        elif due.action is Action.DEFER:
            log.debug("deployment %s: %s", deployment.id, due.reason)
    session.flush()
    return started


__all__ = ["ADVISORY_LOCK_KEY", "tick"]
