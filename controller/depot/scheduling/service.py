"""Maintenance windows between the API, the database and the arithmetic of depot.scheduling:
requests parsed with every fault named, windows stored on a deployment or a target, and the
windows that apply to one host of a deployment."""

from __future__ import annotations

from typing import Iterable, Protocol, Sequence

from depot.errors import Invalid
from depot.scheduling.models import MaintenanceWindow
from depot.scheduling.rules import Schedule, SchedulingError
from depot.scheduling.schemas import WindowFields
from depot.scheduling.windows import AllOf, OneOffWindow, RecurringWindow, Window, WindowSet, host_windows

Loc = list[str | int]

# The names the API gives the inputs that depot.scheduling reports by its own names.
FIELD_NAMES = {"grace": "grace_seconds", "duration": "duration_seconds"}


class HasWindows(Protocol):
    """A deployment or a target."""

    maintenance_windows: list[MaintenanceWindow]


def field_loc(loc: Loc, error: SchedulingError) -> Loc:
    return loc + [FIELD_NAMES.get(error.field, error.field)]


def _parse_window(data: WindowFields, loc: Loc) -> Window:
    given = {f for f in ("end", "rrule", "timezone", "duration_seconds") if getattr(data, f) is not None}
    if data.kind == "one_off":
        required, allowed = {"end"}, {"end"}
    else:
        required = allowed = {"rrule", "timezone", "duration_seconds"}
    errors = [(loc + [f], f"required for a {data.kind} window") for f in sorted(required - given)]
    errors += [(loc + [f], f"goes only with a {'recurring' if f != 'end' else 'one_off'} window")
               for f in sorted(given - allowed)]
    if errors:
        raise Invalid(errors)
    try:
        if data.kind == "one_off":
            return OneOffWindow(data.start, data.end)
        return RecurringWindow(Schedule(data.rrule, data.timezone, data.start), data.duration_seconds)
    except SchedulingError as e:
        raise Invalid([(field_loc(loc, e), e.message)]) from None


def parse_windows(windows: Sequence[WindowFields], exclusions: Sequence[WindowFields], loc: Loc) -> WindowSet:
    """The window set of a request; :class:`Invalid` naming every field at fault."""
    errors: list[tuple[Loc, str]] = []
    parsed: dict[str, list[Window]] = {"windows": [], "exclusions": []}
    for name, items in (("windows", windows), ("exclusions", exclusions)):
        for index, item in enumerate(items):
            try:
                parsed[name].append(_parse_window(item, loc + [name, index]))
            except Invalid as e:
                errors += e.errors
    if errors:
        raise Invalid(errors)
    return WindowSet(parsed["windows"], parsed["exclusions"])


def _window_row(window: Window, is_exclusion: bool) -> MaintenanceWindow:
    if isinstance(window, OneOffWindow):
        return MaintenanceWindow(kind="one_off", is_exclusion=is_exclusion, start_at=window.start, end_at=window.end)
    return MaintenanceWindow(kind="recurring", is_exclusion=is_exclusion, rrule=window.schedule.rrule,
                             timezone=window.schedule.timezone, local_start=window.schedule.start,
                             duration_seconds=int(window.duration.total_seconds()))


def _window_of(row: MaintenanceWindow) -> Window:
    if row.kind == "one_off":
        return OneOffWindow(row.start_at, row.end_at)
    return RecurringWindow(Schedule(row.rrule, row.timezone, row.local_start), row.duration_seconds)


def windows_of(owner: HasWindows) -> WindowSet:
    """The stored windows and exclusions (no windows: always open, except during exclusions)."""
    rows = owner.maintenance_windows
    return WindowSet([_window_of(w) for w in rows if not w.is_exclusion],
                     [_window_of(w) for w in rows if w.is_exclusion])


def replace_windows(owner: HasWindows, windows: WindowSet, which: Sequence[str]) -> None:
    """Replace the stored windows and/or exclusions (``which``) by those of ``windows``."""
    keep = [w for w in owner.maintenance_windows if ("exclusions" if w.is_exclusion else "windows") not in which]
    new = ([_window_row(w, False) for w in windows.windows] if "windows" in which else []) + \
          ([_window_row(w, True) for w in windows.exclusions] if "exclusions" in which else [])
    owner.maintenance_windows = keep + new


def windows_for_host(deployment: HasWindows, targets: Iterable[HasWindows]) -> AllOf:
    """When a host may be worked on: its deployment's windows AND those of the targets it came from."""
    return host_windows(windows_of(deployment), [windows_of(t) for t in targets])
