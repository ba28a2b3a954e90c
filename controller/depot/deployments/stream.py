"""A deployment's changes, live, as server-sent events (``GET /api/v1/deployments/{id}/stream``).

The stream polls the transitions table (depot.orchestration.models.Transition: every state change
with its cause and actor) for the deployment's rows newer than those already sent, about twice a
second while things change and once a second when idle, each poll a short transaction of its own
in a worker thread: no database connection is held between polls, and the request's own session
has closed before the first byte is sent.

Events (``data`` is JSON):

- ``hello`` (first): the deployment (state, outcome, ...), counts by status (whole deployment and
  per step position) and whether this connection resumed (``Last-Event-ID``) or started afresh;
  its ``id`` is the cursor, so a reconnect picks up where it left.
- ``update`` (``id``: the newest transition sent): ``hosts``, the host results that changed
  (transition id ``t``, host result ``id``, host, step position, ``from`` and ``status``, the cause,
  and the row's rc, outcome and reason now), ``deployment`` when it changed, and the counts.
- ``end``: the deployment finished (completed or archived) or was deleted; the stream ends.
- ``reconnect``: the stream has been open for ``LIFETIME_SECONDS``; it ends and the client reconnects
  at once with ``Last-Event-ID`` (so a server shutting down never waits long for open streams, and a
  revoked token stops getting data at the next reconnect).
- ``: keepalive`` comments when nothing else was sent for a while.

Transition ids are handed out when a row is inserted but become visible when its transaction
commits, and on PostgreSQL two workers may commit out of order. So a poll does not only look past
the newest id sent: it looks again at the last ``LOOKBACK_SECONDS`` worth of ids and sends what it
had not seen yet (clients keep each host's newest transition, so a late one never wins over a
newer one).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import AsyncIterator

from fastapi.responses import StreamingResponse
from sqlalchemy import func, select, union_all
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from depot.database.core import first_line, is_disconnect, transaction
from depot.deployments import service
from depot.deployments.models import Deployment, HostResult
from depot.orchestration.models import Transition
from depot.orchestration.states import DeploymentState

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5          # the next poll, after one that found changes
IDLE_POLL_SECONDS = 1.0     # ... after one that found none
LIFETIME_SECONDS = 30.0     # then `reconnect`
KEEPALIVE_SECONDS = 10.0
LOOKBACK_SECONDS = 10.0     # ids are looked at again for this long (out-of-order commits)
UNAVAILABLE_RETRY_SECONDS = 2.0
DETAIL_BATCH = 1000         # transitions fetched (and sent) per query and event
RETRY_MS = 2000             # the client's reconnection delay after a lost connection
FINISHED = frozenset({DeploymentState.COMPLETED, DeploymentState.ARCHIVED})
DEPLOYMENT_FIELDS = ("id", "name", "state", "outcome", "cancel_requested", "pause_reason", "started_at",
                     "finished_at", "updated_at")


def _json(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def format_event(name: str, data: dict, ident: int | None = None) -> str:
    """One server-sent event. ``json.dumps`` escapes newlines, so ``data`` is a single line."""
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, default=_json, separators=(',', ':'))}\n\n"


@dataclass
class Cursor:
    """What a stream has sent: every transition id at or below ``floor`` is sent or not this
    deployment's; above it, ``sent`` are. ``marks`` remembers the newest id of the table at each
    poll, so ``floor`` follows it ``LOOKBACK_SECONDS`` behind."""

    floor: int
    last: int
    sent: set[int] = field(default_factory=set)
    marks: deque = field(default_factory=deque)

    def advance(self, now: float, newest: int) -> None:
        self.marks.append((now, newest))
        while self.marks and self.marks[0][0] <= now - LOOKBACK_SECONDS:
            self.floor = max(self.floor, self.marks.popleft()[1])
        self.sent = {i for i in self.sent if i > self.floor}


@dataclass
class Poll:
    deployment: dict
    changes: list[dict]          # host results, in transition order
    deployment_changes: list[dict]
    counts: dict[str, int] | None
    step_counts: dict[int, dict[str, int]] | None


def _deployment(session: Session, deployment_id: int) -> dict | None:
    row = session.execute(select(*(getattr(Deployment, f) for f in DEPLOYMENT_FIELDS))
                          .where(Deployment.id == deployment_id)).first()
    return None if row is None else dict(row._mapping)


def _ids_after(session: Session, deployment_id: int, floor: int) -> list[int]:
    """Ids of this deployment's transitions (its own and its host results') above ``floor``."""
    hosts = (select(Transition.id).join(HostResult, HostResult.id == Transition.entity_id)
             .where(Transition.entity == "host_result", Transition.id > floor, HostResult.deployment_id == deployment_id))
    own = select(Transition.id).where(Transition.entity == "deployment", Transition.entity_id == deployment_id,
                                      Transition.id > floor)
    return list(session.scalars(union_all(hosts, own)))


def _details(session: Session, ids: list[int]) -> tuple[list[dict], list[dict]]:
    host_changes, deployment_changes = [], []
    for start in range(0, len(ids), DETAIL_BATCH):
        batch = ids[start:start + DETAIL_BATCH]
        rows = session.execute(
            select(Transition.id, Transition.entity, Transition.from_state, Transition.to_state, Transition.cause,
                   Transition.actor, Transition.at, HostResult.id.label("result_id"), HostResult.host,
                   HostResult.position, HostResult.step_id, HostResult.rc, HostResult.outcome, HostResult.reason)
            .outerjoin(HostResult, (Transition.entity == "host_result") & (HostResult.id == Transition.entity_id))
            .where(Transition.id.in_(batch)).order_by(Transition.id))
        for r in rows:
            common = {"t": r.id, "from": r.from_state, "status": r.to_state, "cause": r.cause, "actor": r.actor,
                      "at": r.at}
            if r.entity == "deployment":
                deployment_changes.append(common)
            elif r.result_id is not None:
                host_changes.append({**common, "id": r.result_id, "host": r.host, "position": r.position,
                                     "step_id": r.step_id, "rc": r.rc, "outcome": r.outcome, "reason": r.reason})
    return host_changes, deployment_changes


def _counts(session: Session, deployment_id: int) -> tuple[dict[str, int], dict[int, dict[str, int]]]:
    by_step = service.step_status_counts(session, deployment_id)
    totals: dict[str, int] = {}
    for counts in by_step.values():
        for status, n in counts.items():
            totals[status] = totals.get(status, 0) + n
    return totals, by_step


def open_cursor(sessions: sessionmaker[Session], last_event_id: int | None) -> Cursor:
    """A fresh stream starts after the newest transition; a resumed one after ``last_event_id``
    (never past the newest: a cursor from another database would hide everything)."""
    with transaction(sessions) as session:
        newest = session.scalar(select(func.max(Transition.id))) or 0
    start = newest if last_event_id is None else max(0, min(last_event_id, newest))
    return Cursor(floor=start, last=start)


def poll(sessions: sessionmaker[Session], deployment_id: int, cursor: Cursor, with_counts: bool) -> Poll | None:
    """What changed since the cursor (None: the deployment is gone). The deployment is read first:
    once it reads completed, every host transition that completion depended on is visible to the
    queries after it."""
    with transaction(sessions) as session:
        deployment = _deployment(session, deployment_id)
        if deployment is None:
            return None
        newest = session.scalar(select(func.max(Transition.id))) or 0
        fresh = sorted(set(_ids_after(session, deployment_id, cursor.floor)) - cursor.sent)
        changes, deployment_changes = _details(session, fresh) if fresh else ([], [])
        counts = by_step = None
        if with_counts or fresh:
            counts, by_step = _counts(session, deployment_id)
    cursor.sent.update(fresh)
    cursor.last = max([cursor.last, *fresh])
    cursor.advance(time.monotonic(), newest)
    return Poll(deployment, changes, deployment_changes, counts, by_step)


def _updates(found: Poll, last: int) -> list[str]:
    """``update`` events for one poll: host changes in batches, the last one with the rest."""
    batches = [found.changes[i:i + DETAIL_BATCH] for i in range(0, len(found.changes), DETAIL_BATCH)] or [[]]
    out = []
    for hosts in batches[:-1]:
        out.append(format_event("update", {"hosts": hosts, "deployment_changes": [], "deployment": None,
                                           "counts": None, "step_counts": None}, max(c["t"] for c in hosts)))
    out.append(format_event("update", {"hosts": batches[-1], "deployment_changes": found.deployment_changes,
                                       "deployment": found.deployment, "counts": found.counts,
                                       "step_counts": found.step_counts}, last))
    return out


async def events(sessions: sessionmaker[Session], deployment_id: int, last_event_id: int | None) -> AsyncIterator[str]:
    opened = time.monotonic()
    cursor = await run_in_threadpool(open_cursor, sessions, last_event_id)
    start = cursor.last
    found = await run_in_threadpool(poll, sessions, deployment_id, cursor, True)
    if found is None:
        yield format_event("end", {"reason": "deleted"})
        return
    yield f"retry: {RETRY_MS}\n\n"
    yield format_event("hello", {"deployment": found.deployment, "counts": found.counts,
                                 "step_counts": found.step_counts, "resumed": last_event_id is not None}, start)
    changed = bool(found.changes or found.deployment_changes)
    if changed:
        for event in _updates(found, cursor.last):
            yield event
    known, sent_at = found.deployment, time.monotonic()
    while True:
        if known["state"] in FINISHED:
            yield format_event("end", {"reason": "finished", "deployment": known})
            return
        if time.monotonic() - opened >= LIFETIME_SECONDS:
            yield format_event("reconnect", {"after_ms": 0}, cursor.last)
            return
        if time.monotonic() - sent_at >= KEEPALIVE_SECONDS:
            yield ": keepalive\n\n"
            sent_at = time.monotonic()
        await asyncio.sleep(POLL_SECONDS if changed else IDLE_POLL_SECONDS)
        try:
            found = await run_in_threadpool(poll, sessions, deployment_id, cursor, False)
        except (OperationalError, InterfaceError, PoolTimeout, DBAPIError) as e:
            if not is_disconnect(e):
                log.error("deployment %s stream: database error", deployment_id, exc_info=e)
                yield format_event("error", {"detail": "database error: the stream ends"})
                return
            log.warning("deployment %s stream: the database is unavailable: %s", deployment_id, first_line(e))
            yield ": the database is unavailable; retrying\n\n"
            changed = False
            await asyncio.sleep(UNAVAILABLE_RETRY_SECONDS)
            continue
        if found is None:
            yield format_event("end", {"reason": "deleted"})
            return
        changed = bool(found.changes or found.deployment_changes)
        # A change without a transition (cancel requested, a pause reason) is sent as well.
        if changed or found.deployment != known:
            for event in _updates(found, cursor.last):
                yield event
            sent_at = time.monotonic()
        known = found.deployment


def response(sessions: sessionmaker[Session], deployment_id: int, last_event_id: str | None) -> StreamingResponse:
    try:
        resume = int(last_event_id) if last_event_id is not None else None
    except ValueError:
        resume = None   # not one of ours: start afresh
    return StreamingResponse(events(sessions, deployment_id, resume), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"})
