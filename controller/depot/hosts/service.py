"""Host check-ins (DESIGN.md §3.4, the agentless answer to "install on next contact"): a host -
its logon script, an inventory sync, a scan - tells the controller it is here, and its pending
work is made due at once. A check-in is authenticated by a per-host token signed with the
controller's key, so a token opens the door for its own host only."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from depot.deployments.models import Deployment, HostResult, Step
from depot.errors import Unauthorized
from depot.hosts.models import Host
from depot.hosts.schemas import HostRead, PendingStep
from depot.orchestration.service import set_host_status
from depot.orchestration.states import DeploymentState, HostStatus
from depot.scheduling.service import windows_for_host
from depot.security import Keys
from depot.targets.models import Target

H = HostStatus
STARTED = (DeploymentState.ACTIVE, DeploymentState.PAUSED)


def _message(name: str, expires: int) -> str:
    return f"host checkin\0{name}\0{expires}"


def checkin_token(keys: Keys, name: str, now: dt.datetime, ttl: dt.timedelta) -> tuple[str, dt.datetime]:
    expires = int((now + ttl).timestamp())
    return f"{expires}.{keys.sign(_message(name, expires))}", dt.datetime.fromtimestamp(expires, dt.timezone.utc)


def verify_token(keys: Keys, name: str, token: str | None, now: dt.datetime) -> None:
    expires, _, signature = (token or "").partition(".")
    if not expires.isdigit() or not keys.verify(_message(name, int(expires)), signature):
        raise Unauthorized(f"no valid check-in token for host {name}")
    if int(expires) < now.timestamp():
        raise Unauthorized(f"the check-in token for host {name} has expired")


def _pending(session: Session, name: str):
    return session.execute(
        select(HostResult, Deployment).join(Deployment, Deployment.id == HostResult.deployment_id)
        .where(HostResult.host == name, Deployment.state.in_(STARTED),
               HostResult.status.in_([H.READY, H.DEFERRED]))
        .order_by(HostResult.deployment_id, HostResult.position)).all()


def checkin(session: Session, name: str, address: str | None, now: dt.datetime, actor: str) -> tuple[int, int]:
    """Record the check-in and make the host's waiting work due now: an offline wait, a retry
    interval, a Wake-on-LAN boot wait or a deferral ends (a host outside its windows or off the
    LAN is deferred again by the next claim pass, with its reason). Returns (pending, made due)."""
    host = session.scalar(select(Host).where(Host.name == name).with_for_update())
    if host is None:
        host = Host(name=name, checkins=0)
        session.add(host)
    host.last_checkin_at, host.last_address, host.checkins = now, address, host.checkins + 1
    pending = _pending(session, name)
    due = 0
    for row, _ in pending:
        if row.status is H.DEFERRED:
            set_host_status(session, [row], H.READY, cause="host checked in", actor=actor, next_attempt_at=now,
                            reason=f"checked in at {now:%H:%M:%S} UTC")
            due += 1
        elif row.next_attempt_at is not None and row.next_attempt_at > now:
            row.next_attempt_at = now
            row.reason = f"checked in at {now:%H:%M:%S} UTC"
            due += 1
    session.flush()
    return len(pending), due


def overview(session: Session, name: str, now: dt.datetime) -> HostRead:
    """What the controller knows of the host and, per pending step, when its windows next open."""
    host = session.scalar(select(Host).where(Host.name == name))
    items = []
    for row, deployment in _pending(session, name):
        step = session.get(Step, row.step_id)
        windows = windows_for_host(deployment, [t for i in row.targets or [] if (t := session.get(Target, i))])
        timeout = dt.timedelta(seconds=step.execution_timeout)
        open_now = windows.fits(now, timeout)
        items.append(PendingStep(
            deployment_id=deployment.id, deployment_state=deployment.state.value, step_id=step.id,
            position=row.position, status=row.status, reason=row.reason, next_attempt_at=row.next_attempt_at,
            window_open_now=open_now, next_window_at=now if open_now else windows.next_fit(now, timeout)))
    return HostRead(name=name, last_checkin_at=host.last_checkin_at if host else None,
                    last_address=host.last_address if host else None, checkins=host.checkins if host else 0,
                    pending=items)
