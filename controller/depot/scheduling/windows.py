"""Maintenance windows: when a host may be worked on.

**Windows.** A :class:`OneOffWindow` is open from ``start`` to ``end``. A :class:`RecurringWindow`
opens at every occurrence of a :class:`~depot.scheduling.rules.Schedule` (so in the local wall time
of its zone, with the schedule's gap and fold rules) and stays open for ``duration`` of *elapsed*
time: a 4-hour window opening at 01:00 on the night the clocks spring forward closes at 06:00
local time, four real hours later. All intervals are half-open, ``[start, end)``: a window is open
at its start and closed at its end.

**Exclusions** (freeze periods) are the same two kinds of periods, layered on top: while an
exclusion is active the window set is closed, whatever its windows say. :func:`freeze_day` makes a
one-off exclusion covering whole local days.

**One set** (:class:`WindowSet`, e.g. the windows of one deployment): open at ``t`` when ``t`` is
inside at least one of its windows - or the set has no windows at all, meaning "no restriction" -
and inside none of its exclusions::

    open(t) = (no windows or any(window contains t)) and not any(exclusion contains t)

**Several sets** (:class:`AllOf`, :func:`host_windows`): a host may be worked on at ``t`` when
*every* set that applies to it is open at ``t`` - the deployment's windows AND its target groups'
windows. The windows of all the groups a host belongs to form one set (:meth:`WindowSet.merge`):
their windows are united (a host in two groups may run in either group's windows, as in MECM),
every group's exclusions apply (a freeze on any of its groups freezes the host), and a group without
windows adds no restriction and no opening. With no windows anywhere a host is always open, except
during exclusions.

**Fitting.** A step starts on a host at ``t`` only when ``[t, t + timeout)`` lies entirely inside
one open stretch (:meth:`fits`): a step whose timeout ends exactly when the window closes fits.
Adjacent or overlapping windows form one stretch. Searches forward (:meth:`next_open`,
:meth:`next_fit`) look at most ``horizon`` ahead (default :data:`DEFAULT_HORIZON`, a year and a day)
and return ``None`` past it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import chain
from typing import Iterable, NamedTuple, Sequence, Union

from depot.scheduling.rules import (
    Schedule, SchedulingError, as_timedelta, format_duration, get_zone, local_to_utc, occurrences_between,
    require_aware,
)

#: How far :meth:`WindowSet.next_open` and :meth:`WindowSet.next_fit` look ahead by default.
DEFAULT_HORIZON = timedelta(days=366)
#: The longest a recurring window may stay open after each occurrence.
MAX_RECURRING_DURATION = timedelta(days=31)

_TICK = timedelta(microseconds=1)


class Interval(NamedTuple):
    """A half-open stretch of time ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


class OpenStretch(NamedTuple):
    """The open stretch around a moment (:meth:`WindowSet.open_interval_at`): ``start``/``end`` are
    ``None`` when the stretch reaches beyond the search horizon on that side (open for as long as
    looked: e.g. a set without windows)."""

    start: datetime | None
    end: datetime | None


# --------------------------------------------------------------------------------------------
# Interval arithmetic on sorted lists


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping and touching intervals joined."""
    out: list[Interval] = []
    for iv in sorted(intervals):
        if out and iv.start <= out[-1].end:
            if iv.end > out[-1].end:
                out[-1] = Interval(out[-1].start, iv.end)
        else:
            out.append(iv)
    return out


def _clip(intervals: list[Interval], start: datetime, end: datetime) -> list[Interval]:
    return [Interval(max(iv.start, start), min(iv.end, end)) for iv in intervals if iv.end > start and iv.start < end]


def _subtract(base: list[Interval], cut: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for iv in base:
        pieces = [iv]
        for c in cut:
            if c.start >= iv.end:
                break
            if c.end <= iv.start:
                continue
            rest = []
            for p in pieces:
                if c.end <= p.start or c.start >= p.end:
                    rest.append(p)
                    continue
                if p.start < c.start:
                    rest.append(Interval(p.start, c.start))
                if c.end < p.end:
                    rest.append(Interval(c.end, p.end))
            pieces = rest
        out.extend(pieces)
    return out


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i].start, b[j].start), min(a[i].end, b[j].end)
        if start < end:
            out.append(Interval(start, end))
        if a[i].end < b[j].end:
            i += 1
        else:
            j += 1
    return out


def _range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    return require_aware(start, "start"), require_aware(end, "end")


# --------------------------------------------------------------------------------------------
# Windows and exclusion periods


@dataclass(frozen=True)
class OneOffWindow:
    """Open from ``start`` to ``end`` (aware datetimes; stored in UTC). Also used as a one-off
    exclusion period."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start, end = require_aware(self.start, "start"), require_aware(self.end, "end")
        if end <= start:
            raise SchedulingError("end", "must be after start")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def length(self) -> timedelta:
        """How long the window stays open."""
        return self.end - self.start

    def intervals(self, start: datetime, end: datetime) -> list[Interval]:
        """The window's intervals that overlap ``[start, end)`` (not clipped)."""
        start, end = _range(start, end)
        return [Interval(self.start, self.end)] if self.end > start and self.start < end else []


@dataclass(frozen=True)
class RecurringWindow:
    """Opens at every occurrence of ``schedule`` and stays open for ``duration`` (elapsed time;
    a timedelta or seconds, more than zero, at most :data:`MAX_RECURRING_DURATION`). Also used as a
    recurring exclusion period (e.g. every 24 December, 3 days)."""

    schedule: Schedule
    duration: timedelta

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, Schedule):
            raise SchedulingError("schedule", "expected a schedule")
        duration = as_timedelta(self.duration, "duration")
        if duration > MAX_RECURRING_DURATION:
            raise SchedulingError("duration", f"must be at most {format_duration(MAX_RECURRING_DURATION)}")
        object.__setattr__(self, "duration", duration)

    @property
    def length(self) -> timedelta:
        """How long each opening lasts."""
        return self.duration

    def intervals(self, start: datetime, end: datetime) -> list[Interval]:
        """The openings that overlap ``[start, end)``: occurrences ``o`` with
        ``start - duration < o < end`` give ``[o, o + duration)`` (not clipped)."""
        start, end = _range(start, end)
        return [Interval(o, o + self.duration)
                for o in occurrences_between(self.schedule, start - self.duration + _TICK, end)]


Window = Union[OneOffWindow, RecurringWindow]


def freeze_day(day: date, timezone: str, *, days: int = 1) -> OneOffWindow:
    """A one-off period covering ``days`` whole local days from ``day`` in ``timezone``: from local
    midnight to local midnight (23 or 25 hours on the days the clocks change; a midnight that falls
    in a gap is shifted forward like any wall time). Use it as an exclusion (freeze day)."""
    if not isinstance(day, date) or isinstance(day, datetime):
        raise SchedulingError("day", "expected a date")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise SchedulingError("days", "must be a whole number of at least 1")
    zone = get_zone(timezone)
    first = datetime.combine(day, time())
    return OneOffWindow(local_to_utc(first, zone), local_to_utc(first + timedelta(days=days), zone))


def _windows(values: Iterable[Window], field: str) -> tuple[Window, ...]:
    if values is None:
        return ()
    values = tuple(values)
    for i, w in enumerate(values):
        if not isinstance(w, (OneOffWindow, RecurringWindow)):
            raise SchedulingError(field, f"item {i} is not a one-off or recurring window")
    return values


# --------------------------------------------------------------------------------------------
# Queries shared by a window set and a combination of sets


def _spans(horizon: timedelta) -> list[timedelta]:
    """Growing search spans: a day, then four times more each time, ending with ``horizon``."""
    out, span = [], timedelta(days=1)
    while span < horizon:
        out.append(span)
        span *= 4
    out.append(horizon)
    return out


class OpenTimes:
    """The queries on "when is it open", built on :meth:`open_intervals`."""

    def open_intervals(self, start: datetime, end: datetime) -> list[Interval]:  # pragma: no cover
        """The open stretches within ``[start, end)``: sorted, disjoint, not touching, clipped to it."""
        raise NotImplementedError

    def is_open(self, at: datetime) -> bool:
        """Whether a host may be worked on at ``at``."""
        at = require_aware(at, "at")
        return bool(self.open_intervals(at, at + _TICK))

    def open_interval_at(self, at: datetime, horizon: timedelta = DEFAULT_HORIZON) -> OpenStretch | None:
        """The open stretch containing ``at``, exclusions cut out, or ``None`` if closed at ``at``.
        A side that reaches beyond ``horizon`` from ``at`` is ``None``."""
        at = require_aware(at, "at")
        horizon = as_timedelta(horizon, "horizon")
        if not self.is_open(at):
            return None
        spans = _spans(horizon)
        for span in spans:
            lo, hi = at - span, at + span
            iv = next(iv for iv in self.open_intervals(lo, hi) if iv.start <= at < iv.end)
            open_before, open_after = iv.start <= lo, iv.end >= hi
            if not (open_before or open_after) or span == spans[-1]:
                return OpenStretch(None if open_before else iv.start, None if open_after else iv.end)
        raise AssertionError("unreachable")  # pragma: no cover

    def next_open(self, after: datetime, horizon: timedelta = DEFAULT_HORIZON) -> datetime | None:
        """The first moment at or after ``after`` when it is open (``after`` itself if open then),
        or ``None`` if it does not open within ``horizon``."""
        after = require_aware(after, "after")
        horizon = as_timedelta(horizon, "horizon")
        lo = after
        for span in _spans(horizon):
            hi = after + span
            found = self.open_intervals(lo, hi)
            if found:
                return found[0].start
            lo = hi
        return None

    def fits(self, at: datetime, duration: timedelta | int | float) -> bool:
        """Whether ``[at, at + duration)`` is open throughout: a step with that execution timeout
        may start at ``at``."""
        at = require_aware(at, "at")
        duration = as_timedelta(duration, "duration")
        return self.open_intervals(at, at + duration) == [Interval(at, at + duration)]

    def next_fit(self, after: datetime, duration: timedelta | int | float,
                 horizon: timedelta = DEFAULT_HORIZON) -> datetime | None:
        """The first moment ``t >= after`` such that :meth:`fits` ``(t, duration)``: ``after``
        itself, or the start of a later open stretch long enough; ``None`` if there is none
        starting within ``horizon``."""
        after = require_aware(after, "after")
        duration = as_timedelta(duration, "duration")
        horizon = as_timedelta(horizon, "horizon")
        for span in _spans(horizon):
            # Look ``duration`` beyond the span so that a stretch starting within it is seen whole.
            for iv in self.open_intervals(after, after + span + duration):
                if iv.start > after + span:
                    break
                if iv.end - iv.start >= duration:
                    return iv.start
        return None


@dataclass(frozen=True)
class WindowSet(OpenTimes):
    """The windows and exclusions of one owner (a deployment, a target group): open inside any of
    ``windows`` (or always, if there are none) and outside all ``exclusions``."""

    windows: Sequence[Window] = ()
    exclusions: Sequence[Window] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "windows", _windows(self.windows, "windows"))
        object.__setattr__(self, "exclusions", _windows(self.exclusions, "exclusions"))

    @classmethod
    def merge(cls, sets: Iterable["WindowSet"]) -> "WindowSet":
        """One set from several owners of the same kind (all the target groups of a host): the union
        of their windows, with the exclusions of all of them. A set without windows contributes no
        opening (and no restriction)."""
        sets = [s for s in sets if s is not None]
        return cls(tuple(chain.from_iterable(s.windows for s in sets)),
                   tuple(chain.from_iterable(s.exclusions for s in sets)))

    @property
    def unrestricted(self) -> bool:
        """True when there are neither windows nor exclusions: always open."""
        return not self.windows and not self.exclusions

    def open_intervals(self, start: datetime, end: datetime) -> list[Interval]:
        start, end = _range(start, end)
        if end <= start:
            return []
        if self.windows:
            base = _clip(_merge(chain.from_iterable(w.intervals(start, end) for w in self.windows)), start, end)
        else:
            base = [Interval(start, end)]
        if self.exclusions and base:
            base = _subtract(base, _merge(chain.from_iterable(e.intervals(start, end) for e in self.exclusions)))
        return base


@dataclass(frozen=True)
class AllOf(OpenTimes):
    """Open when every one of ``sets`` is open (with no sets: always open)."""

    sets: Sequence[OpenTimes] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sets", tuple(s for s in self.sets if s is not None))

    def open_intervals(self, start: datetime, end: datetime) -> list[Interval]:
        start, end = _range(start, end)
        if end <= start:
            return []
        result = [Interval(start, end)]
        for s in self.sets:
            result = _intersect(result, s.open_intervals(start, end))
            if not result:
                break
        return result


def host_windows(deployment: WindowSet | None = None, groups: Iterable[WindowSet] = ()) -> AllOf:
    """When a host may be worked on for a deployment: the deployment's set AND the merged set of
    the host's target groups (see the module docstring)."""
    return AllOf((deployment or WindowSet(), WindowSet.merge(groups)))


def check_window_fits(window: Window | WindowSet, timeout: timedelta | int | float, *,
                      field: str | None = None) -> None:
    """Raise :class:`SchedulingError` if ``window`` is too short for a step with ``timeout`` ever to
    start in it: a one-off window shorter than the timeout (field ``end``), a recurring window whose
    duration is shorter (field ``duration``), a window set none of whose windows is long enough
    (field ``windows``; a set without windows always passes). ``field`` overrides the field name."""
    timeout = as_timedelta(timeout, "timeout")
    if isinstance(window, WindowSet):
        if not window.windows:
            return
        length = max(w.length for w in window.windows)
        name = field or "windows"
    elif isinstance(window, OneOffWindow):
        length, name = window.length, field or "end"
    elif isinstance(window, RecurringWindow):
        length, name = window.duration, field or "duration"
    else:
        raise SchedulingError(field or "window", "expected a window or a window set")
    if length < timeout:
        raise SchedulingError(name, f"the window is open for {format_duration(length)}, shorter than the step timeout "
                                    f"of {format_duration(timeout)}: the step could never start in it")


__all__ = [
    "AllOf", "DEFAULT_HORIZON", "Interval", "MAX_RECURRING_DURATION", "OneOffWindow", "OpenStretch", "OpenTimes",
    "RecurringWindow", "Window", "WindowSet", "check_window_fits", "freeze_day", "host_windows",
]
