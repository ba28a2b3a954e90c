"""Hints, within one process, from state changes to those who wait for them, sent when the
transaction that made the change commits (never before, never on a rollback).

- Work may be claimable: a transaction that starts a deployment, makes a host Ready or finishes
  a host wakes the workers of this process, so that they claim at once instead of at their next
  poll. Workers in other processes (``depot worker``) still find the work by polling
  (``worker_poll_interval``): the hint only shortens the wait.
- A deployment's host results changed: readers that cache what is derived from them (the
  report's counts) know their copy is out of date. Changes made by other processes are not
  seen here: such caches also expire on their own.
"""

from __future__ import annotations

import threading

from sqlalchemy import event
from sqlalchemy.orm import Session

_KEY = "depot.work_available"
_CHANGED = "depot.host_results_changed"


class Signal:
    """A generation counter: ``wait(seen)`` returns as soon as ``notify()`` was called after the
    caller read ``seen`` (so a notification between two waits is not lost), or after ``timeout``."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        with self._condition:
            return self._generation

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Whether a notification came (since ``seen``) before ``timeout`` seconds passed."""
        with self._condition:
            return self._condition.wait_for(lambda: self._generation != seen, timeout)


work_available = Signal()


class Versions:
    """A counter per deployment, increased whenever a committed transaction changed its host results."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[int, int] = {}

    def get(self, deployment_id: int) -> int:
        return self._versions.get(deployment_id, 0)

    def bump(self, deployment_ids) -> None:
        with self._lock:
            for deployment_id in deployment_ids:
                self._versions[deployment_id] = self._versions.get(deployment_id, 0) + 1


host_results_versions = Versions()


def mark(session: Session) -> None:
    """Wake this process's workers when ``session``'s transaction commits."""
    session.info[_KEY] = True


def host_results_changed(session: Session, deployment_ids) -> None:
    """Tell this process's readers, when ``session``'s transaction commits, that these
    deployments' host results changed."""
    session.info.setdefault(_CHANGED, set()).update(deployment_ids)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    changed = session.info.pop(_CHANGED, None)
    if changed:
        host_results_versions.bump(changed)
    if session.info.pop(_KEY, False):
        work_available.notify()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)
    session.info.pop(_CHANGED, None)
