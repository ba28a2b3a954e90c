"""Misfires: what the scheduler tick does with occurrences whose time has come - or gone.

The tick calls :func:`due_runs` for a schedule with the time of the last occurrence it handled
(``last_fired``) and the current time (``now``, injected). The answer (:class:`DueRuns`) is at most
ONE run: however many occurrences fell in ``(last_fired, now]`` - after a controller outage, or
while waiting for a window - they **coalesce** into a single run that stands for the latest of them.

**On time or missed.** The latest due occurrence is *on time* when ``now`` is at most ``tolerance``
after it (default :data:`DEFAULT_TOLERANCE`, one minute: the slack of a tick that runs every few
seconds, like Quartz's misfire threshold). On time, it fires now - under every policy, except that
``wait_for_window`` still waits for an open window. Later than that, it is *missed*, and the
schedule's :class:`MisfirePolicy` decides:

``run_late``
    Fire once, late, if it can start within ``grace`` of the missed occurrence (plus the
    tolerance): at ``now`` if the windows (when given) are open, else at the next window opening if
    that is still within the grace. Otherwise the missed occurrences are dropped (``skip``) and the
    schedule waits for its next occurrence.
``skip``
    Drop the missed occurrences; the schedule waits for its next occurrence.
``wait_for_window``
    Defer the coalesced run to the next open maintenance window (:meth:`~WindowSet.next_open`, or
    :meth:`~WindowSet.next_fit` when a ``duration`` is given): fire now if open, otherwise the
    answer is ``defer`` with ``run_at`` the opening. Without windows (``windows=None``) it is always
    open, so it fires now.

So a controller that was down for a day never fires yesterday's occurrences outside a window: with
``skip`` they are dropped, with ``run_late`` they fire only within their grace and only in an open
window (when windows are given), and with ``wait_for_window`` they fire when a window opens.

**What the tick stores.** ``DueRuns.last_fired`` is the value to store after acting: the latest
occurrence handled when the answer is ``fire`` or ``skip``, unchanged for ``none`` and ``defer`` -
a deferred run is not stored anywhere; the next tick re-evaluates and fires it once the window is
open (occurrences that arrive meanwhile join it). ``last_fired=None`` means the schedule never
fired: every occurrence since its start counts (pass the creation time instead to ignore
occurrences before the schedule existed).

**Bounded work.** The latest occurrence is found by looking back from ``now`` in growing steps,
and the coalesced occurrences are counted up to :data:`MAX_COUNTED`: a schedule firing every minute
after a year of downtime costs a few thousand occurrences, not half a million.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from depot.scheduling.rules import (
    Schedule, SchedulingError, as_timedelta, format_duration, local_to_utc, next_occurrence, occurrences_between,
    previous_occurrence, require_aware,
)
from depot.scheduling.windows import DEFAULT_HORIZON, OpenTimes

#: How late a tick may be and still count an occurrence as on time.
DEFAULT_TOLERANCE = timedelta(minutes=1)
#: Default grace of ``run_late``.
DEFAULT_GRACE = timedelta(hours=1)
#: Coalesced occurrences are counted up to this number (``DueRuns.coalesced_more`` says there were more).
MAX_COUNTED = 1000


class Misfire(str, enum.Enum):
    """What to do with missed occurrences (see the module docstring)."""

    RUN_LATE = "run_late"
    SKIP = "skip"
    WAIT_FOR_WINDOW = "wait_for_window"


@dataclass(frozen=True)
class MisfirePolicy:
    """A schedule's misfire rule: ``rule`` (a :class:`Misfire` or its value) and ``grace`` (how
    late ``run_late`` may still start a run; a timedelta or seconds, zero or more; ignored by the
    other rules)."""

    rule: Misfire = Misfire.RUN_LATE
    grace: timedelta = DEFAULT_GRACE

    def __post_init__(self) -> None:
        try:
            rule = Misfire(self.rule)
        except ValueError:
            raise SchedulingError("misfire", f"{self.rule!r} is not one of "
                                             f"{', '.join(m.value for m in Misfire)}") from None
        object.__setattr__(self, "rule", rule)
        object.__setattr__(self, "grace", as_timedelta(self.grace, "grace", positive=False))

    @classmethod
    def run_late(cls, grace: timedelta | int | float = DEFAULT_GRACE) -> "MisfirePolicy":
        return cls(Misfire.RUN_LATE, grace)

    @classmethod
    def skip(cls) -> "MisfirePolicy":
        return cls(Misfire.SKIP, timedelta(0))

    @classmethod
    def wait_for_window(cls) -> "MisfirePolicy":
        return cls(Misfire.WAIT_FOR_WINDOW, timedelta(0))


class Action(str, enum.Enum):
    NONE = "none"  # nothing due
    FIRE = "fire"  # start one run now
    DEFER = "defer"  # one run is due but must wait (for a window): re-evaluated on the next tick
    SKIP = "skip"  # the due occurrences are dropped


@dataclass(frozen=True)
class DueRuns:
    """The answer of :func:`due_runs`.

    ``action``: see :class:`Action`. ``run_at``: ``now`` for ``fire``; the window opening for
    ``defer`` (``None`` if no window opens within the horizon); else ``None``. ``occurrence``: the
    latest due occurrence, which the run stands for (or which is skipped). ``coalesced``: how many
    occurrences in ``(last_fired, now]`` this covers (counted up to :data:`MAX_COUNTED`,
    ``coalesced_more`` if there were more). ``late_by``: ``now - occurrence``. ``last_fired``: what
    to store after acting. ``next_occurrence``: the schedule's next occurrence after ``now``.
    ``reason``: one sentence for the log, the audit trail and the UI."""

    action: Action
    run_at: datetime | None
    occurrence: datetime | None
    coalesced: int
    coalesced_more: bool
    late_by: timedelta | None
    last_fired: datetime | None
    next_occurrence: datetime | None
    reason: str

    @property
    def runs(self) -> list[datetime]:
        """The runs to start now: ``[run_at]`` when firing, else ``[]`` (never more than one)."""
        return [self.run_at] if self.action is Action.FIRE else []


def due_runs(schedule: Schedule, last_fired: datetime | None, now: datetime, policy: MisfirePolicy, *,
             windows: OpenTimes | None = None, duration: timedelta | int | float | None = None,
             tolerance: timedelta | int | float = DEFAULT_TOLERANCE,
             horizon: timedelta = DEFAULT_HORIZON) -> DueRuns:
    """What to do at ``now`` for ``schedule``, last fired (or skipped) at ``last_fired``.

    ``windows``: when the schedule's runs may start (e.g. the deployment's
    :class:`~depot.scheduling.windows.WindowSet`); ``None`` means always. ``duration``: when given,
    a window must fit it (:meth:`~depot.scheduling.windows.OpenTimes.fits`), not merely be open.
    See the module docstring for the rules."""
    now = require_aware(now, "now")
    if last_fired is not None:
        last_fired = require_aware(last_fired, "last_fired")
    if not isinstance(policy, MisfirePolicy):
        raise SchedulingError("misfire", "expected a misfire policy")
    tolerance = as_timedelta(tolerance, "tolerance", positive=False)
    if duration is not None:
        duration = as_timedelta(duration, "duration")

    upcoming = next_occurrence(schedule, now)
    occurrence = previous_occurrence(schedule, now, after=last_fired)
    if occurrence is None:
        return DueRuns(Action.NONE, None, None, 0, False, None, last_fired, upcoming,
                       f"nothing due; next occurrence {_when(upcoming)}")

    since = last_fired + timedelta(microseconds=1) if last_fired is not None \
        else local_to_utc(schedule.start, schedule.zone) - timedelta(days=2)
    counted = len(occurrences_between(schedule, since, now + timedelta(microseconds=1), limit=MAX_COUNTED + 1))
    coalesced, more = min(counted, MAX_COUNTED), counted > MAX_COUNTED
    late_by = now - occurrence
    what = _what(occurrence, coalesced, more)

    def answer(action: Action, run_at: datetime | None, reason: str) -> DueRuns:
        stored = occurrence if action in (Action.FIRE, Action.SKIP) else last_fired
        return DueRuns(action, run_at, occurrence, coalesced, more, late_by, stored, upcoming, reason)

    def open_now() -> bool:
        if windows is None:
            return True
        return windows.fits(now, duration) if duration is not None else windows.is_open(now)

    def next_window() -> datetime | None:
        return windows.next_fit(now, duration, horizon) if duration is not None else windows.next_open(now, horizon)

    on_time = late_by <= tolerance
    if policy.rule is Misfire.WAIT_FOR_WINDOW:
        if open_now():
            return answer(Action.FIRE, now, f"{what}: firing now, a window is open")
        opening = next_window()
        if opening is None:
            return answer(Action.DEFER, None,
                          f"{what}: waiting for a window; none opens within {format_duration(horizon)}")
        return answer(Action.DEFER, opening, f"{what}: waiting for the next window, at {_when(opening)}")
    if on_time:
        return answer(Action.FIRE, now, f"{what}: on time")
    missed = f"{what}: missed by {format_duration(late_by)}"
    then = f"next occurrence {_when(upcoming)}"
    if policy.rule is Misfire.SKIP:
        return answer(Action.SKIP, None, f"{missed}; skipped (misfire rule skip), {then}")
    # run_late: the grace is counted from the occurrence; the tick's tolerance is added when checking
    # it, so that a run deferred to a window opening right at the deadline is not lost to tick jitter.
    grace = format_duration(policy.grace)
    deadline = occurrence + policy.grace
    if now > deadline + tolerance:
        return answer(Action.SKIP, None, f"{missed}, beyond the grace of {grace}; skipped, {then}")
    if open_now():
        return answer(Action.FIRE, now, f"{what}: running {format_duration(late_by)} late, within the grace of {grace}")
    opening = next_window()
    if opening is not None and opening <= deadline:
        return answer(Action.DEFER, opening,
                      f"{missed}; will run late when the next window opens at {_when(opening)}, within the grace")
    return answer(Action.SKIP, None, f"{missed} and no window opens within the grace of {grace}; skipped, {then}")


def _when(at: datetime | None) -> str:
    return "none (the schedule has ended)" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _what(occurrence: datetime, coalesced: int, more: bool) -> str:
    if coalesced <= 1:
        return f"occurrence of {_when(occurrence)}"
    return f"{coalesced}{'+' if more else ''} occurrences up to {_when(occurrence)} coalesced into one run"


__all__ = ["Action", "DEFAULT_GRACE", "DEFAULT_TOLERANCE", "DueRuns", "MAX_COUNTED", "Misfire", "MisfirePolicy",
           "due_runs"]
