"""Claiming work: which Ready (step, host) rows a worker may take now.

A row is claimable when its deployment is active and not being cancelled, its next attempt is
due, its step's turn has come (every host finished the earlier steps, or with a pipelined
deployment this host did), no other deployment is acting on the host (per-host exclusivity,
with a visible "queued behind deployment N"), and the deployment's concurrency limit leaves
room. On PostgreSQL, claim passes of all workers take turns under a transaction-level advisory
lock (exclusivity and concurrency limits are decided from rows of several deployments, which
row locks alone cannot protect), and candidate rows are locked FOR UPDATE SKIP LOCKED against
the API's concurrent changes. A pass takes milliseconds; the runs it starts go on in parallel.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from depot.deployments.models import Deployment, HostResult
from depot.orchestration.service import set_host_status
from depot.orchestration.states import DeploymentState, HostStatus

H = HostStatus
UNFINISHED = (H.READY, H.ACTIVE, H.DEFERRED)
CLAIM_LOCK = 0x6465706F74  # "depot": the advisory lock key of claim passes


@dataclass
class Batch:
    """Rows of one step of one deployment, run together by one ansible-runner invocation."""

    deployment_id: int
    step_id: int
    rows: list[HostResult]


def _current_positions(session: Session, deployment_ids: set[int]) -> dict[int, int]:
    """Per deployment, the first step position some host has not finished."""
    return dict(session.execute(
        select(HostResult.deployment_id, func.min(HostResult.position))
        .where(HostResult.deployment_id.in_(deployment_ids), HostResult.status.in_(UNFINISHED))
        .group_by(HostResult.deployment_id)).all())


def _host_positions(session: Session, deployment_ids: set[int], hosts: set[str]) -> dict[tuple[int, str], int]:
    """Per (deployment, host), the first step position that host has not finished."""
    rows = session.execute(
        select(HostResult.deployment_id, HostResult.host, func.min(HostResult.position))
        .where(HostResult.deployment_id.in_(deployment_ids), HostResult.host.in_(hosts),
               HostResult.status.in_(UNFINISHED))
        .group_by(HostResult.deployment_id, HostResult.host)).all()
    return {(d, h): p for d, h, p in rows}


def _owners(session: Session, hosts: set[str]) -> dict[str, int]:
    """Per host, the deployment acting on it: the lowest-id active deployment that has started
    on the host (some row of it there ran) and still has unfinished rows there."""
    started = set(session.execute(
        select(HostResult.deployment_id, HostResult.host).join(Deployment, Deployment.id == HostResult.deployment_id)
        .where(HostResult.host.in_(hosts), HostResult.started_at.is_not(None),
               Deployment.state == DeploymentState.ACTIVE)).all())
    unfinished = session.execute(
        select(HostResult.deployment_id, HostResult.host)
        .where(HostResult.host.in_(hosts), HostResult.status.in_(UNFINISHED)).distinct()).all()
    owners: dict[str, int] = {}
    for deployment_id, host in unfinished:
        if (deployment_id, host) in started:
            owners[host] = min(deployment_id, owners.get(host, deployment_id))
    return owners


def claim(session: Session, worker: str, capacity: int, now: dt.datetime, lease_seconds: int,
          postgres: bool) -> list[Batch]:
    if capacity <= 0:
        return []
    if postgres:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK})
    query = (select(HostResult).join(Deployment, Deployment.id == HostResult.deployment_id)
             .where(HostResult.status == H.READY, Deployment.state == DeploymentState.ACTIVE,
                    Deployment.cancel_requested.is_(False),
                    or_(HostResult.next_attempt_at.is_(None), HostResult.next_attempt_at <= now))
             .order_by(HostResult.deployment_id, HostResult.position, HostResult.id)
             .limit(max(capacity * 4, 100)))
    if postgres:
        query = query.with_for_update(skip_locked=True, of=HostResult)
    candidates = session.scalars(query).all()
    if not candidates:
        return []
    deployment_ids = {r.deployment_id for r in candidates}
    hosts = {r.host for r in candidates}
    deployments = {d.id: d for d in session.scalars(select(Deployment).where(Deployment.id.in_(deployment_ids)))}
    current = _current_positions(session, deployment_ids)
    per_host = _host_positions(session, deployment_ids, hosts)
    owners = _owners(session, hosts)
    active = dict(session.execute(
        select(HostResult.deployment_id, func.count()).where(
            HostResult.deployment_id.in_(deployment_ids), HostResult.status == H.ACTIVE)
        .group_by(HostResult.deployment_id)).all())

    taken: list[HostResult] = []
    taken_hosts: set[str] = set()
    for row in candidates:
        deployment = deployments[row.deployment_id]
        turn = per_host.get((row.deployment_id, row.host)) if deployment.pipelined else current.get(row.deployment_id)
        if row.position != turn or row.host in taken_hosts:
            continue
        owner = owners.get(row.host)
        if owner is not None and owner != row.deployment_id:
            if row.queued_behind != owner:
                row.queued_behind = owner
                row.reason = f"queued behind deployment {owner}"
            continue
        limit = deployment.max_concurrent_hosts
        if limit is not None and active.get(row.deployment_id, 0) >= limit:
            continue
        taken.append(row)
        taken_hosts.add(row.host)
        active[row.deployment_id] = active.get(row.deployment_id, 0) + 1
        owners[row.host] = row.deployment_id
        if len(taken) >= capacity:
            break

    set_host_status(session, taken, H.ACTIVE, cause="claimed", actor=f"worker:{worker}", claimed_by=worker,
                    lease_expires_at=now + dt.timedelta(seconds=lease_seconds), queued_behind=None, reason=None)
    for row in taken:
        row.first_contact_at = row.first_contact_at or now
    batches: dict[tuple[int, int], Batch] = {}
    for row in taken:
        batches.setdefault((row.deployment_id, row.step_id), Batch(row.deployment_id, row.step_id, [])).rows.append(row)
    return list(batches.values())
