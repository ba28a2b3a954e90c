"""From ansible-runner events to host results: which events matter, and what status each
outcome of depot.software.step means in this product.

Pure functions, so every mapping is unit-tested without running anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from depot.orchestration.states import HostStatus

STEP_ACTION = "depot.software.step"
RESULT_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped")

# The action plugin's outcome -> the host's status for the step.
OUTCOME_STATUS = {
    "success": HostStatus.SUCCESS,
    "already": HostStatus.SUCCESS,
    "hard_reboot": HostStatus.SUCCESS,       # the installer rebooted; detection verified it afterwards
    "soft_reboot": HostStatus.SUCCESS,       # SUCCESS_REBOOT_PENDING when the reboot is still owed
    "would_change": HostStatus.SUCCESS,      # check mode
    "failure": HostStatus.FAILED,
    "not_detected": HostStatus.FAILED,
    "timeout": HostStatus.FAILED,
    "retry": HostStatus.FAILED,              # still busy after every retry
    "reboot_timeout": HostStatus.FAILED,
    "invalid": HostStatus.FAILED,
    "unreachable": HostStatus.UNREACHABLE,
    "no_user_session": HostStatus.DEFERRED,
    "awaiting_reboot": HostStatus.DEFERRED,  # retry after reboot: the boot id has not changed yet
}


@dataclass
class StepResult:
    """What one host's step ended with, as read from its events."""

    host: str
    status: HostStatus
    outcome: str | None = None
    rc: int | None = None
    reason: str | None = None
    attempts: list = field(default_factory=list)
    boot_id: str | None = None


def _host(event: dict) -> str | None:
    data = event.get("event_data") or {}
    return data.get("host") or data.get("remote_addr")


def step_result(event: dict) -> StepResult | None:
    """The host's result when ``event`` is the end of a depot.software.step task, or when the host
    became unreachable at any task; None for every other event."""
    kind = event.get("event")
    if kind not in RESULT_EVENTS:
        return None
    data = event.get("event_data") or {}
    host = _host(event)
    res = data.get("res") or {}
    if kind == "runner_on_unreachable":
        result = StepResult(host, HostStatus.UNREACHABLE, outcome="unreachable", reason=_msg(res) or "unreachable")
        if data.get("task_action") == STEP_ACTION:
            # The step lost the host after it had started (a connection lost mid-attempt that did
            # not come back): what it did before that is part of the record.
            result.attempts, result.boot_id = _attempts(res), _boot_id(res)
        return result
    if data.get("task_action") != STEP_ACTION:
        return None
    outcome = res.get("outcome")
    if kind == "runner_on_skipped" and outcome is None:
        return None  # skipped by a condition, not by the step itself (which says why in outcome)
    status = OUTCOME_STATUS.get(outcome)
    if status is None:
        return StepResult(host, HostStatus.UNKNOWN, outcome=outcome, rc=_rc(res),
                          reason=f"result cannot be interpreted (outcome {outcome!r}): {_msg(res) or 'no message'}")
    if outcome == "unreachable" and res.get("unreachable"):
        status = HostStatus.UNREACHABLE
    if status is HostStatus.SUCCESS and res.get("reboot_required"):
        status = HostStatus.SUCCESS_REBOOT_PENDING
    if kind == "runner_on_failed" and status in (HostStatus.SUCCESS, HostStatus.SUCCESS_REBOOT_PENDING):
        status = HostStatus.UNKNOWN  # a failed task that claims success is a contradiction: a bug
    return StepResult(host, status, outcome=outcome, rc=_rc(res), reason=_msg(res), attempts=_attempts(res),
                      boot_id=_boot_id(res))


def step_started(event: dict) -> tuple[str | None, bool]:
    """(host, True) when ``event`` begins a host's depot.software.step task, (host, False) when
    it is that task skipped by its condition (the step never began), else (None, False)."""
    data = event.get("event_data") or {}
    kind = event.get("event")
    if data.get("task_action") != STEP_ACTION or kind not in ("runner_on_start", "runner_on_skipped"):
        return None, False
    if kind == "runner_on_skipped" and (data.get("res") or {}).get("outcome") is not None:
        return None, False
    return _host(event), kind == "runner_on_start"


def _attempts(res: dict) -> list[dict]:
    return [{k: a.get(k) for k in ("rc", "class", "status", "duration")} for a in res.get("attempts") or []]


def _boot_id(res: dict) -> str | None:
    boot_id = res.get("boot_id")
    return str(boot_id)[:100] if boot_id else None


def _rc(res: dict) -> int | None:
    rc = res.get("rc")
    return rc if isinstance(rc, int) and not isinstance(rc, bool) else None


def _msg(res: dict) -> str | None:
    msg = res.get("msg")
    return str(msg)[:2000] if msg else None


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def stdout_lines(event: dict) -> tuple[str | None, list[str]]:
    """(host, lines) of a host's result display text, for the per-host log tail; banners and
    other hosts' lines are not part of it."""
    if not str(event.get("event", "")).startswith(("runner_on_", "runner_item_on_", "runner_retry")):
        return None, []
    text = ANSI.sub("", event.get("stdout") or "")
    return _host(event), [line for line in text.splitlines() if line.strip()]
