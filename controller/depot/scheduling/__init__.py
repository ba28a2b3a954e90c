"""The time arithmetic of DESIGN.md §3.4: schedules, maintenance windows and misfires.

Pure functions of their inputs: no database, no clock (every "now" is a parameter), no I/O.

* :mod:`depot.scheduling.rules` - :class:`Schedule` (RRULE + IANA zone, evaluated in local wall
  time; spring gaps shift forward, autumn folds run once, at the first instant) and the queries
  :func:`next_occurrences`, :func:`preview`, :func:`previous_occurrence`, :func:`occurrences_between`.
* :mod:`depot.scheduling.windows` - :class:`OneOffWindow`, :class:`RecurringWindow`,
  :func:`freeze_day`, :class:`WindowSet` (union of windows minus exclusions), :class:`AllOf` /
  :func:`host_windows` (deployment AND groups) with ``is_open``, ``open_interval_at``,
  ``next_open``, ``fits``, ``next_fit``; :func:`check_window_fits`.
* :mod:`depot.scheduling.misfire` - :func:`due_runs` with a :class:`MisfirePolicy`
  (``run_late`` within a grace, ``skip``, ``wait_for_window``); missed occurrences coalesce into
  one run.

Invalid input raises :class:`SchedulingError` (a ``ValueError``) whose ``field`` names the input.
"""

from depot.scheduling.misfire import (
    DEFAULT_GRACE, DEFAULT_TOLERANCE, MAX_COUNTED, Action, DueRuns, Misfire, MisfirePolicy, due_runs,
)
from depot.scheduling.rules import (
    MAX_COUNT, MAX_PREVIEW, UTC, Occurrence, Schedule, SchedulingError, as_timedelta, first_occurrence,
    format_duration, get_zone, local_time_kind, local_to_utc, next_occurrence, next_occurrences,
    occurrences_between, preview, previous_occurrence, require_aware, utc_to_local,
)
from depot.scheduling.windows import (
    DEFAULT_HORIZON, MAX_RECURRING_DURATION, AllOf, Interval, OneOffWindow, OpenStretch, OpenTimes,
    RecurringWindow, Window, WindowSet, check_window_fits, freeze_day, host_windows,
)

__all__ = [
    "Action", "AllOf", "DEFAULT_GRACE", "DEFAULT_HORIZON", "DEFAULT_TOLERANCE", "DueRuns", "Interval", "MAX_COUNT",
    "MAX_COUNTED", "MAX_PREVIEW", "MAX_RECURRING_DURATION", "Misfire", "MisfirePolicy", "Occurrence", "OneOffWindow",
    "OpenStretch", "OpenTimes", "RecurringWindow", "Schedule", "SchedulingError", "UTC", "Window", "WindowSet",
    "as_timedelta", "check_window_fits", "due_runs", "first_occurrence", "format_duration", "freeze_day", "get_zone",
    "host_windows", "local_time_kind", "local_to_utc", "next_occurrence", "next_occurrences", "occurrences_between",
    "preview", "previous_occurrence", "require_aware", "utc_to_local",
]
