"""Every state a deployment or a host can be in, and the one table of allowed transitions.

Like Prefect's orchestration rules, nothing changes a state except through
:mod:`depot.orchestration.service`, which checks these tables and records who or what caused
each change.
"""

from __future__ import annotations

import enum


class DeploymentState(str, enum.Enum):
    DRAFT = "draft"          # being edited; never runs, its schedule is ignored
    READY = "ready"          # complete and approved to run; any edit returns it to draft
    ACTIVE = "active"        # started: hosts are being worked on
    PAUSED = "paused"        # started, held: claims no new host (failure budget, or an operator); resume or cancel
    COMPLETED = "completed"  # every host is done; see the outcome
    ARCHIVED = "archived"    # kept for the record, read-only


class DeploymentOutcome(str, enum.Enum):
    SUCCESS = "success"      # every host of every step succeeded (or was skipped by design)
    FAILED = "failed"        # a step marked "fail overall deployment if not successful" failed somewhere
    CANCELLED = "cancelled"  # an operator cancelled it


class HostStatus(str, enum.Enum):
    READY = "ready"                    # waiting: for contact, for its turn, for an earlier step
    ACTIVE = "active"                  # a worker is running the step on the host
    SUCCESS = "success"
    SUCCESS_REBOOT_PENDING = "success_reboot_pending"  # installed; a reboot is still needed to finish
    FAILED = "failed"
    UNREACHABLE = "unreachable"        # no contact within the step's machine contact timeout
    INCONCLUSIVE = "inconclusive"      # was active, no result came back (worker lost, connection lost)
    DEFERRED = "deferred"              # not now, with the reason and when: outside its window, not on the LAN,
                                       # no user session, a retry's interval or reboot awaited
    CANCELLED = "cancelled"            # never ran: cancelled by an operator or by an earlier step's failure
    UNKNOWN = "unknown"                # a result that cannot be interpreted: a bug, reported as such


TERMINAL_HOST_STATUSES = frozenset({
    HostStatus.SUCCESS, HostStatus.SUCCESS_REBOOT_PENDING, HostStatus.FAILED, HostStatus.UNREACHABLE,
    HostStatus.CANCELLED, HostStatus.UNKNOWN,
})
SUCCESSFUL_HOST_STATUSES = frozenset({HostStatus.SUCCESS, HostStatus.SUCCESS_REBOOT_PENDING})

D = DeploymentState
DEPLOYMENT_TRANSITIONS: dict[DeploymentState, frozenset[DeploymentState]] = {
    D.DRAFT: frozenset({D.READY, D.ARCHIVED}),
    D.READY: frozenset({D.DRAFT, D.ACTIVE, D.ARCHIVED}),
    D.ACTIVE: frozenset({D.PAUSED, D.COMPLETED}),
    # A paused deployment completes when it is cancelled, or when nothing is left to do.
    D.PAUSED: frozenset({D.ACTIVE, D.COMPLETED}),
    # COMPLETED -> ACTIVE: the next occurrence of a recurring schedule runs it again (rerun).
    D.COMPLETED: frozenset({D.ARCHIVED, D.ACTIVE}),
    D.ARCHIVED: frozenset(),
}

H = HostStatus
HOST_TRANSITIONS: dict[HostStatus, frozenset[HostStatus]] = {
    H.READY: frozenset({H.ACTIVE, H.DEFERRED, H.CANCELLED, H.UNREACHABLE}),
    # ACTIVE -> READY: the host was offline and its contact timeout has not run out yet.
    H.ACTIVE: frozenset({H.SUCCESS, H.SUCCESS_REBOOT_PENDING, H.FAILED, H.UNREACHABLE, H.INCONCLUSIVE,
                         H.DEFERRED, H.UNKNOWN, H.READY}),
    H.DEFERRED: frozenset({H.READY, H.CANCELLED, H.UNREACHABLE}),
    # An inconclusive host is re-verified: it runs again, and detection keeps that from repeating work.
    H.INCONCLUSIVE: frozenset({H.READY, H.CANCELLED}),
    # Final within one run of the deployment. A recurring schedule's next run of a completed
    # deployment (depot.deployments.service.rerun) is the one way back to READY.
    H.SUCCESS_REBOOT_PENDING: frozenset({H.SUCCESS, H.READY}),
    H.SUCCESS: frozenset({H.READY}),
    H.FAILED: frozenset({H.READY}),
    H.UNREACHABLE: frozenset({H.READY}),
    H.CANCELLED: frozenset({H.READY}),
    H.UNKNOWN: frozenset({H.READY}),
}


class InvalidTransition(ValueError):
    """A state change the rules do not allow; the message names both states and the allowed ones."""


def check(kind: str, ident: object, current: enum.Enum, target: enum.Enum,
          table: dict) -> None:
    if target not in table[current]:
        allowed = ", ".join(sorted(s.value for s in table[current])) or "none: it is final"
        raise InvalidTransition(f"{kind} {ident}: cannot go from {current.value} to {target.value} (allowed: {allowed})")
