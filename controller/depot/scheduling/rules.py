"""Schedules: an RFC 5545 RRULE evaluated in the local wall time of an IANA time zone.

A :class:`Schedule` is three values, all the database has to store:

``rrule``
    One RFC 5545 recurrence rule (``FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=2;BYMINUTE=30``), without
    ``DTSTART``. It is normalised on construction: the defaults RFC 5545 takes from DTSTART
    (the time of day, the weekday of a weekly rule, the day of a monthly rule...) are written out,
    ``WKST=MO`` is explicit and ``UNTIL`` is stored in UTC (``...Z``), so two equal schedules have
    equal text and the text alone says when it runs.
``timezone``
    An IANA zone name (``Europe/Berlin``). ``UTC`` is a zone like any other.
``start``
    DTSTART as a *naive local wall time* in that zone: the first moment the rule may fire, and the
    anchor of its interval (``every 90 minutes`` counts from it). An aware datetime is accepted and
    converted to the zone's wall time.

**Local wall time.** The rule is expanded in local wall time, so "daily at 02:30 in Europe/Berlin"
fires at 02:30 Berlin time in winter and in summer. Each local occurrence is then converted to UTC
with two rules for the days the clocks change (:func:`local_to_utc`):

* **Spring gap - shift forward by the gap.** A local time that does not exist because the clocks
  jump forward is moved forward by the length of the jump: in Europe/Berlin on the last Sunday of
  March 02:30 becomes 03:30 (CEST); on Lord Howe Island, whose clocks jump 30 minutes
  (02:00 -> 02:30), 02:15 becomes 02:45. The day is never skipped. If the shifted time equals
  another occurrence of the same rule (e.g. "every 30 minutes": 02:30 -> 03:30), it runs once.
* **Autumn fold - run once, at the first occurrence.** A local time that happens twice because the
  clocks go back is run only the first time (``fold=0``, the earlier UTC instant, still on summer
  time). Consequently a rule that fires several times an hour does not fire during the second pass
  of the repeated hour: "every 15 minutes" in Berlin on the last Sunday of October fires at 02:45
  CEST and next at 03:00 CET, 75 real minutes later.

**Bounds.** Occurrences are whole seconds; ``FREQ=SECONDLY`` and more than one ``BYSECOND`` value
are refused (a schedule fires at most once a minute). ``COUNT`` is at most :data:`MAX_COUNT`.
A rule that has no occurrence at all within a 400-year Gregorian cycle (``BYMONTH=2;BYMONTHDAY=30``)
is refused. Computing occurrences never enumerates from ``start``: the rule is re-anchored at a
whole number of intervals close to the time asked about, so "every minute since last year" costs
the same as "every minute since an hour ago".

Bad input raises :class:`SchedulingError` (a ``ValueError``) whose ``field`` is the input at fault
(``rrule``, ``timezone``, ``start``, ``count``...).
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone as _dt_timezone
from typing import Iterator, Literal, NamedTuple, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule as _rr

UTC = _dt_timezone.utc

#: The largest COUNT accepted in a rule (a rule with COUNT cannot be re-anchored, so it is
#: enumerated from its start).
MAX_COUNT = 10_000
#: The most occurrences one preview may ask for.
MAX_PREVIEW = 1_000
#: Accepted range for ``start`` (and UNTIL).
MIN_YEAR, MAX_YEAR = 1970, 2999

_FREQS = {"YEARLY": _rr.YEARLY, "MONTHLY": _rr.MONTHLY, "WEEKLY": _rr.WEEKLY, "DAILY": _rr.DAILY,
          "HOURLY": _rr.HOURLY, "MINUTELY": _rr.MINUTELY}
_FREQ_NAMES = {v: k for k, v in _FREQS.items()}
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_NAMES = {name: i for i, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday",
                                                  "saturday", "sunday"))}
# Canonical order of the parts in a normalised rule.
_PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY",
          "BYHOUR", "BYMINUTE", "BYSECOND", "BYSETPOS", "WKST")
_INT_LISTS = {  # part -> (min, max, zero allowed, negative allowed)
    "BYMONTH": (1, 12, False, False),
    "BYWEEKNO": (1, 53, False, True),
    "BYYEARDAY": (1, 366, False, True),
    "BYMONTHDAY": (1, 31, False, True),
    "BYHOUR": (0, 23, True, False),
    "BYMINUTE": (0, 59, True, False),
    "BYSECOND": (0, 59, True, False),
    "BYSETPOS": (1, 366, False, True),
}
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_BYDAY_RE = re.compile(r"^([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL_RE = re.compile(r"^(\d{8})(?:T(\d{6})(Z?))?$")


class SchedulingError(ValueError):
    """Invalid schedule, window or misfire input. ``field`` names the input at fault (``rrule``,
    ``timezone``, ``start``, ``end``, ``duration``, ``timeout``...), ``message`` says what is wrong;
    ``str(error)`` is ``"<field>: <message>"``."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


# --------------------------------------------------------------------------------------------
# Time zones and the gap/fold rule


def get_zone(name: str, field: str = "timezone") -> ZoneInfo:
    """The IANA zone ``name``; :class:`SchedulingError` naming ``field`` if there is none."""
    if not isinstance(name, str) or not name.strip():
        raise SchedulingError(field, "an IANA time zone name is required, e.g. 'Europe/Berlin'")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise SchedulingError(field, f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin'") \
            from None


LocalTimeKind = Literal["normal", "gap", "fold"]


def local_time_kind(local: datetime, zone: ZoneInfo) -> LocalTimeKind:
    """Whether the naive wall time ``local`` exists once (``normal``), does not exist (``gap``: the
    clocks jump over it) or exists twice (``fold``: the clocks go back over it) in ``zone``."""
    first = local.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local:
        return "gap"
    if first.utcoffset() != local.replace(tzinfo=zone, fold=1).utcoffset():
        return "fold"
    return "normal"


def local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of the naive wall time ``local`` in ``zone``, by the schedule rules:

    * in a spring gap the time is shifted forward by the length of the gap (it is read with the
      UTC offset in force before the jump: Europe/Berlin 02:30 -> 01:30Z = 03:30 CEST);
    * in an autumn fold the first of the two instants is taken (``fold=0``, the summer-time one).
    """
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def utc_to_local(at: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall time in ``zone`` at the aware instant ``at``."""
    return at.astimezone(zone).replace(tzinfo=None)


def _offset(zone: ZoneInfo, at: datetime) -> timedelta:
    return at.astimezone(zone).utcoffset() or timedelta(0)


def _margin(zone: ZoneInfo, at: datetime) -> timedelta:
    """How far local wall time and UTC order can disagree near ``at``: a gap moves an occurrence
    forward by the size of the jump, so near ``at`` an earlier wall time may map to a later UTC
    instant by at most the offset changes within two days (plus three hours of slack)."""
    day2 = timedelta(days=2)
    try:
        before, now, after = _offset(zone, at - day2), _offset(zone, at), _offset(zone, at + day2)
    except OverflowError:
        return timedelta(hours=27)
    return timedelta(hours=3) + abs(now - before) + abs(after - now)


def require_aware(value: datetime, field: str) -> datetime:
    """``value`` as an aware UTC datetime; :class:`SchedulingError` naming ``field`` if it is not an
    aware datetime (a naive time is ambiguous: say which zone)."""
    if not isinstance(value, datetime):
        raise SchedulingError(field, f"expected a date-time, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise SchedulingError(field, "must include a time zone or UTC offset")
    return value.astimezone(UTC)


def as_timedelta(value: timedelta | int | float, field: str, *, positive: bool = True) -> timedelta:
    """``value`` (a timedelta or a number of seconds) as a timedelta; :class:`SchedulingError`
    naming ``field`` if it is not one, or (``positive``) is zero or negative, or is negative."""
    if isinstance(value, bool) or not isinstance(value, (timedelta, int, float)):
        raise SchedulingError(field, "expected a duration (seconds)")
    delta = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if positive and delta <= timedelta(0):
        raise SchedulingError(field, "must be longer than zero")
    if delta < timedelta(0):
        raise SchedulingError(field, "must not be negative")
    return delta


def format_duration(delta: timedelta) -> str:
    """A duration as ``1d 2h 30m`` (for messages)."""
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return " ".join(parts) or "0s"


# --------------------------------------------------------------------------------------------
# RRULE parsing and normalisation


def _err(message: str) -> SchedulingError:
    return SchedulingError("rrule", message)


def _parse_int(part: str, text: str, lo: int, hi: int, zero: bool = True, negative: bool = False) -> int:
    """An integer rule value: ``lo..hi``, or ``-hi..-lo`` too when ``negative``; 0 only when ``zero``."""
    if not re.fullmatch(r"[+-]?\d+", text):
        raise _err(f"{part}={text} is not a whole number")
    value = int(text)
    if value == 0:
        ok = zero
    else:
        ok = lo <= abs(value) <= hi and (value > 0 or negative)
    if not ok:
        rng = f"{lo}..{hi}" + (f" or -{hi}..-{max(lo, 1)}" if negative else "")
        raise _err(f"{part}={text} is out of range ({rng})")
    return value


def _parse_parts(text: str) -> dict[str, str]:
    """Split one RRULE into its parts, refusing anything but a single RRULE line."""
    if not isinstance(text, str) or not text.strip():
        raise _err("a recurrence rule is required, e.g. 'FREQ=DAILY;BYHOUR=2;BYMINUTE=30'")
    lines = [line.strip() for line in text.strip().upper().splitlines() if line.strip()]
    for line in lines:
        if line.startswith("DTSTART") or ";DTSTART=" in f";{line}":
            raise _err("must not contain DTSTART: the schedule's start field sets it")
        for prop in ("RDATE", "EXDATE", "EXRULE"):
            if line.startswith(prop):
                raise _err(f"{prop} is not supported: give a single RRULE")
    if len(lines) != 1:
        raise _err("give exactly one RRULE line")
    line = lines[0]
    if line.startswith("RRULE:"):
        line = line[len("RRULE:"):]
    elif ":" in line:
        raise _err(f"unsupported property {line.split(':', 1)[0]!r}: give a single RRULE")
    parts: dict[str, str] = {}
    for item in line.split(";"):
        if not item:
            continue
        if "=" not in item:
            raise _err(f"malformed part {item!r}: expected NAME=VALUE")
        name, value = (s.strip() for s in item.split("=", 1))
        if name in parts:
            raise _err(f"{name} is given twice")
        if name not in _PARTS:
            if name == "BYEASTER" or name.startswith("X-"):
                raise _err(f"{name} is not supported")
            raise _err(f"unknown part {name!r} (allowed: {', '.join(_PARTS)})")
        if not value:
            raise _err(f"{name} has no value")
        parts[name] = value
    if "FREQ" not in parts:
        raise _err("FREQ is required (MINUTELY, HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY)")
    return parts


def _parse_until(value: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """UNTIL as (local naive wall time, UTC). ``...Z`` is UTC (as RFC 5545 requires with a time
    zone); a floating date-time is local wall time; a date alone includes that whole local day."""
    m = _UNTIL_RE.match(value)
    if not m:
        raise _err(f"UNTIL={value} is not a date (YYYYMMDD) or date-time (YYYYMMDDTHHMMSSZ)")
    day, clock, z = m.groups()
    try:
        d = datetime.strptime(day, "%Y%m%d")
        if clock:
            d = d.replace(hour=int(clock[:2]), minute=int(clock[2:4]), second=int(clock[4:]))
    except ValueError:
        raise _err(f"UNTIL={value} is not a valid date") from None
    if not MIN_YEAR <= d.year <= MAX_YEAR:
        raise _err(f"UNTIL={value} is outside {MIN_YEAR}..{MAX_YEAR}")
    if clock is None:
        d = d.replace(hour=23, minute=59, second=59)
    if z:
        utc = d.replace(tzinfo=UTC)
        return utc_to_local(utc, zone), utc
    return d, local_to_utc(d, zone)


def _weekday_index(value: object, field: str) -> int:
    """A weekday given as 0-6 (Monday = 0), 'MO'.. 'SU' or 'monday'.. 'sunday'."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    if isinstance(value, _rr.weekday):
        return value.weekday
    if isinstance(value, str):
        v = value.strip().lower()
        if v.upper() in _DAYS:
            return _DAYS.index(v.upper())
        for name, i in _DAY_NAMES.items():
            if len(v) >= 3 and name.startswith(v):
                return i
    raise SchedulingError(field, f"{value!r} is not a weekday (0-6, 'MO'..'SU' or 'monday'..'sunday')")


class _Parsed(NamedTuple):
    text: str  # canonical RRULE text (UNTIL in UTC)
    kwargs: dict  # keyword arguments of dateutil's rrule, without dtstart (UNTIL in local wall time)
    freq: int
    interval: int
    count: int | None
    until_utc: datetime | None


def _normalise(text: str, zone: ZoneInfo, start: datetime) -> _Parsed:
    parts = _parse_parts(text)
    freq_name = parts["FREQ"]
    if freq_name == "SECONDLY":
        raise _err("FREQ=SECONDLY is not supported: a schedule fires at most once a minute")
    if freq_name not in _FREQS:
        raise _err(f"FREQ={freq_name} is not one of {', '.join(_FREQS)}")
    freq = _FREQS[freq_name]
    out: dict[str, str] = {"FREQ": freq_name}
    kw: dict = {"freq": freq}

    interval = _parse_int("INTERVAL", parts["INTERVAL"], 1, 1_000_000, zero=False) if "INTERVAL" in parts else 1
    kw["interval"] = interval
    if interval != 1:
        out["INTERVAL"] = str(interval)

    count = None
    until_utc = None
    if "COUNT" in parts and "UNTIL" in parts:
        raise _err("COUNT and UNTIL cannot both be given (RFC 5545)")
    if "COUNT" in parts:
        count = _parse_int("COUNT", parts["COUNT"], 1, MAX_COUNT, zero=False)
        kw["count"] = out["COUNT"] = count
    if "UNTIL" in parts:
        until_local, until_utc = _parse_until(parts["UNTIL"], zone)
        if until_local < start:
            raise _err(f"UNTIL={parts['UNTIL']} is before the start ({start.isoformat()} local time)")
        kw["until"] = until_local
        out["UNTIL"] = until_utc.strftime("%Y%m%dT%H%M%SZ")

    lists: dict[str, list[int]] = {}
    for name, (lo, hi, zero, negative) in _INT_LISTS.items():
        if name in parts:
            values = [_parse_int(name, v.strip(), lo, hi, zero, negative) for v in parts[name].split(",")]
            lists[name] = sorted(set(values), key=lambda v: (v < 0, v))
    if "BYSECOND" in lists and len(lists["BYSECOND"]) > 1:
        raise _err("BYSECOND may select only one second: a schedule fires at most once a minute")
    if "BYWEEKNO" in lists and freq != _rr.YEARLY:
        raise _err("BYWEEKNO is only allowed with FREQ=YEARLY")
    if "BYYEARDAY" in lists and freq in (_rr.DAILY, _rr.WEEKLY, _rr.MONTHLY):
        raise _err(f"BYYEARDAY is not allowed with FREQ={freq_name}")
    if "BYMONTHDAY" in lists and freq == _rr.WEEKLY:
        raise _err("BYMONTHDAY is not allowed with FREQ=WEEKLY")

    byday: list[tuple[int | None, int]] = []
    if "BYDAY" in parts:
        for token in parts["BYDAY"].split(","):
            m = _BYDAY_RE.match(token.strip())
            if not m:
                raise _err(f"BYDAY={parts['BYDAY']}: {token!r} is not a weekday such as MO, +2TU or -1FR")
            sign, n, day = m.groups()
            nth = None
            if n is not None:
                nth = int(n) * (-1 if sign == "-" else 1)
                if not 1 <= abs(nth) <= 53:
                    raise _err(f"BYDAY={parts['BYDAY']}: {token} must count from 1 to 53 (or -1 to -53)")
                if freq not in (_rr.MONTHLY, _rr.YEARLY):
                    raise _err(f"BYDAY={parts['BYDAY']}: a numbered weekday ({token}) needs FREQ=MONTHLY or YEARLY")
                if freq == _rr.YEARLY and "BYWEEKNO" in lists:
                    raise _err(f"BYDAY={parts['BYDAY']}: a numbered weekday cannot be used with BYWEEKNO")
            elif sign:
                raise _err(f"BYDAY={parts['BYDAY']}: {token!r} has a sign but no number")
            entry = (nth, _DAYS.index(day))
            if entry not in byday:
                byday.append(entry)
    if "BYMONTH" in lists and "BYMONTHDAY" in lists:
        longest = max(_MONTH_DAYS[m - 1] for m in lists["BYMONTH"])
        if all(abs(d) > longest for d in lists["BYMONTHDAY"]):
            raise _err(f"BYMONTHDAY={parts['BYMONTHDAY']} never occurs in BYMONTH={parts['BYMONTH']}")
    if "BYSETPOS" in lists and not (set(lists) - {"BYSETPOS"} or byday):
        raise _err("BYSETPOS needs another BY... part to select from")

    # Write out the defaults RFC 5545 (and dateutil) take from DTSTART, so that the rule no longer
    # depends on DTSTART except as its anchor (needed to re-anchor it, and clearer to read).
    if freq <= _rr.DAILY:
        lists.setdefault("BYHOUR", [start.hour])
    if freq <= _rr.HOURLY:
        lists.setdefault("BYMINUTE", [start.minute])
    lists.setdefault("BYSECOND", [start.second])
    if not (byday or {"BYWEEKNO", "BYYEARDAY", "BYMONTHDAY"} & set(lists)):
        if freq == _rr.WEEKLY:
            byday = [(None, start.weekday())]
        elif freq == _rr.MONTHLY:
            lists["BYMONTHDAY"] = [start.day]
        elif freq == _rr.YEARLY:
            lists.setdefault("BYMONTH", [start.month])
            lists["BYMONTHDAY"] = [start.day]
    wkst = _DAYS.index(parts["WKST"]) if "WKST" in parts else 0
    if "WKST" in parts and parts["WKST"] not in _DAYS:
        raise _err(f"WKST={parts['WKST']} is not a weekday (MO..SU)")

    for name in _PARTS:
        if name in lists:
            out[name] = ",".join(map(str, lists[name]))
            kw[name.lower()] = list(lists[name])
        elif name == "BYDAY" and byday:
            out["BYDAY"] = ",".join(f"{'' if n is None else f'{n:+d}'}{_DAYS[d]}" for n, d in byday)
            kw["byweekday"] = [_rr.weekdays[d](n) if n is not None else _rr.weekdays[d] for n, d in byday]
    out["WKST"] = _DAYS[wkst]
    kw["wkst"] = wkst
    canonical = ";".join(f"{name}={out[name]}" for name in _PARTS if name in out)
    return _Parsed(canonical, kw, freq, interval, count, until_utc)


def _normalise_start(value: datetime | date, zone: ZoneInfo, field: str = "start") -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = utc_to_local(value, zone)
        else:
            value = value.replace(tzinfo=None)
    elif isinstance(value, date):
        value = datetime.combine(value, time())
    else:
        raise SchedulingError(field, f"expected a date-time, got {type(value).__name__}")
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise SchedulingError(field, f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
    return value.replace(microsecond=0, fold=0)


# --------------------------------------------------------------------------------------------
# Schedule


class Occurrence(NamedTuple):
    """One occurrence, for previews: ``at`` (UTC), ``local`` (aware, in the schedule's zone: when it
    really runs by the clocks of the zone), ``wall_time`` (naive: the wall time the rule asked for)
    and ``adjustment`` (``None``; ``"gap"``: shifted forward out of a spring gap; ``"fold"``: a
    repeated wall time, run at its first instance)."""

    at: datetime
    local: datetime
    wall_time: datetime
    adjustment: Literal["gap", "fold"] | None


@dataclass(frozen=True)
class Schedule:
    """An RRULE in the local wall time of an IANA zone (see the module docstring for the rules).

    Build one with ``Schedule(rrule, timezone, start)`` or a constructor: :meth:`once`,
    :meth:`every`, :meth:`daily`, :meth:`weekly`, :meth:`monthly`, :meth:`monthly_weekday`,
    :meth:`hours_within_day`. The fields after construction are the normalised ones to store;
    ``Schedule(**schedule.to_dict())`` gives the same schedule back.
    """

    rrule: str
    timezone: str
    start: datetime
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _parsed: _Parsed = field(init=False, repr=False, compare=False)
    _rule: _rr.rrule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        zone = get_zone(self.timezone)
        start = _normalise_start(self.start, zone)
        parsed = _normalise(self.rrule, zone, start)
        try:
            rule = _rr.rrule(dtstart=start, **parsed.kwargs)
        except ValueError as e:
            raise _err(f"has no occurrences: {e}") from None
        object.__setattr__(self, "timezone", zone.key)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "rrule", parsed.text)
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_parsed", parsed)
        object.__setattr__(self, "_rule", rule)
        self._check_has_occurrences()

    # -- storage

    def to_dict(self) -> dict:
        """``{"rrule", "timezone", "start"}`` with ``start`` as an ISO local wall time."""
        return {"rrule": self.rrule, "timezone": self.timezone, "start": self.start.isoformat()}

    @classmethod
    def from_dict(cls, data: dict) -> "Schedule":
        start = data.get("start")
        if isinstance(start, str):
            try:
                start = datetime.fromisoformat(start)
            except ValueError:
                raise SchedulingError("start", f"{start!r} is not an ISO date-time") from None
        return cls(data.get("rrule"), data.get("timezone"), start)

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    @property
    def frequency(self) -> str:
        """FREQ of the rule: MINUTELY, HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY."""
        return _FREQ_NAMES[self._parsed.freq]

    @property
    def is_once(self) -> bool:
        """True for a rule with a single occurrence (``COUNT=1``, as :meth:`once` makes)."""
        return self._parsed.count == 1

    # -- constructors

    @classmethod
    def once(cls, at: datetime, timezone: str) -> "Schedule":
        """Once, at the date-time ``at``: a naive ``at`` is wall time in ``timezone`` (shifted forward
        if it falls in a spring gap), an aware one is converted to it."""
        zone = get_zone(timezone)
        start = _normalise_start(at, zone, "at")
        return cls(f"FREQ=DAILY;COUNT=1;BYHOUR={start.hour};BYMINUTE={start.minute};BYSECOND={start.second}",
                   timezone, start)

    @classmethod
    def every(cls, timezone: str, start: datetime, *, minutes: int | None = None, hours: int | None = None,
              days: int | None = None) -> "Schedule":
        """Every N minutes, hours or days (exactly one of them), counted in wall time from ``start``,
        which is the first run."""
        given = {k: v for k, v in (("minutes", minutes), ("hours", hours), ("days", days)) if v is not None}
        if len(given) != 1:
            raise SchedulingError("every", "give exactly one of minutes, hours or days")
        (unit, n), = given.items()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SchedulingError(unit, "must be a whole number of at least 1")
        freq = {"minutes": "MINUTELY", "hours": "HOURLY", "days": "DAILY"}[unit]
        return cls(f"FREQ={freq};INTERVAL={n}", timezone, start)

    @classmethod
    def daily(cls, at: time | str, timezone: str, start: date | datetime, *,
              weekdays: Sequence[int | str] | None = None, interval: int = 1) -> "Schedule":
        """Every day (or every ``interval`` days) at the wall time ``at``, from the day ``start``;
        ``weekdays`` restricts it to those days (e.g. Monday to Friday)."""
        return cls(_with_time(f"FREQ=DAILY{_interval(interval)}{_byday(weekdays, required=False)}", at),
                   timezone, _start_day(start))

    @classmethod
    def weekly(cls, weekdays: Sequence[int | str], at: time | str, timezone: str, start: date | datetime, *,
               interval: int = 1) -> "Schedule":
        """Every week (or every ``interval`` weeks, weeks starting on Monday) on ``weekdays`` at ``at``."""
        return cls(_with_time(f"FREQ=WEEKLY{_interval(interval)}{_byday(weekdays, required=True)}", at),
                   timezone, _start_day(start))

    @classmethod
    def monthly(cls, day: int, at: time | str, timezone: str, start: date | datetime, *,
                interval: int = 1) -> "Schedule":
        """Every month on day ``day`` (1..31; -1 is the last day, -2 the one before...) at ``at``.
        As RFC 5545 says, a month without that day (the 31st in April) is skipped: use -1 for
        "the last day of every month"."""
        if isinstance(day, bool) or not isinstance(day, int) or not (1 <= abs(day) <= 31):
            raise SchedulingError("day", "must be 1..31 or -31..-1 (-1 is the last day of the month)")
        return cls(_with_time(f"FREQ=MONTHLY{_interval(interval)};BYMONTHDAY={day}", at), timezone,
                   _start_day(start))

    @classmethod
    def monthly_weekday(cls, nth: int, weekday: int | str, at: time | str, timezone: str,
                        start: date | datetime, *, interval: int = 1) -> "Schedule":
        """Every month on the ``nth`` ``weekday`` at ``at``: ``nth=2, weekday="TU"`` is the second
        Tuesday (``BYDAY=+2TU``, Microsoft's Patch Tuesday); ``nth=-1`` is the last one. A month
        without a fifth such weekday is skipped."""
        if isinstance(nth, bool) or not isinstance(nth, int) or not (1 <= abs(nth) <= 5):
            raise SchedulingError("nth", "must be 1..5 or -1..-5 (-1 is the last one of the month)")
        day = _DAYS[_weekday_index(weekday, "weekday")]
        return cls(_with_time(f"FREQ=MONTHLY{_interval(interval)};BYDAY={nth:+d}{day}", at), timezone,
                   _start_day(start))

    @classmethod
    def hours_within_day(cls, every: int, day_start: time | str, day_end: time | str, timezone: str,
                         start: date | datetime, *, weekdays: Sequence[int | str] | None = None) -> "Schedule":
        """Every ``every`` hours from ``day_start`` to ``day_end`` (inclusive when it lands on it),
        each day: ``every=2, day_start=08:00, day_end=18:00`` fires at 08:00, 10:00 ... 18:00.
        A ``day_end`` before ``day_start`` runs across midnight (22:00 to 06:00). ``weekdays``
        restricts the days (the weekday of each run's own date)."""
        if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= 23:
            raise SchedulingError("every", "must be a whole number of hours from 1 to 23")
        first = _as_time(day_start, "day_start")
        last = _as_time(day_end, "day_end")
        if first == last:
            raise SchedulingError("day_end", "must differ from day_start")
        span = (datetime.combine(date.min, last) - datetime.combine(date.min, first)) % timedelta(days=1)
        hours = sorted({(first.hour + every * k) % 24 for k in range(span // timedelta(hours=every) + 1)})
        rule = (f"FREQ=DAILY{_byday(weekdays, required=False)};BYHOUR={','.join(map(str, hours))};"
                f"BYMINUTE={first.minute};BYSECOND={first.second}")
        return cls(rule, timezone, _start_day(start))

    # -- evaluation

    def _anchored(self, local_from: datetime, rule: _rr.rrule | None = None) -> _rr.rrule:
        """A rule with the same occurrences at and after ``local_from`` as this one, anchored at a
        whole number of intervals before ``local_from`` (so iterating it costs nothing for the time
        in between). Rules with COUNT are returned unchanged: COUNT counts from the start."""
        rule = self._rule if rule is None else rule
        start, p = self.start, self._parsed
        if p.count is not None and rule is self._rule or local_from <= start:
            return rule
        unit = {_rr.MINUTELY: timedelta(minutes=1), _rr.HOURLY: timedelta(hours=1), _rr.DAILY: timedelta(days=1),
                _rr.WEEKLY: timedelta(weeks=1)}.get(p.freq)
        if unit is not None:
            k = (local_from - start) // (unit * p.interval)
            anchor = start + k * p.interval * unit
        elif p.freq == _rr.MONTHLY:
            k = ((local_from.year - start.year) * 12 + local_from.month - start.month) // p.interval
            months = start.year * 12 + start.month - 1 + k * p.interval
            anchor = datetime(months // 12, months % 12 + 1, 1)
        else:
            k = (local_from.year - start.year) // p.interval
            anchor = datetime(start.year + k * p.interval, 1, 1)
        if k <= 0:
            return rule
        kwargs = dict(p.kwargs) if rule is self._rule else {**p.kwargs, "count": None, "until": None}
        return _rr.rrule(dtstart=anchor, **kwargs)

    def _check_has_occurrences(self) -> None:
        # Structurally possible? Anchor a copy without COUNT/UNTIL 400 years before the end of
        # dateutil's calendar: a rule with no occurrence runs out there instead of iterating ~8000
        # years (dateutil's iterator only stops at year 9999 when nothing matches).
        free = _rr.rrule(dtstart=self.start, **{**self._parsed.kwargs, "count": None, "until": None})
        try:
            probe = next(iter(self._anchored(datetime(9599, 1, 1), free)), None)
        except ValueError as e:
            raise _err(f"has no occurrences: {e}") from None
        if probe is None:
            raise _err(f"{self.rrule} never occurs (no date in a 400-year calendar cycle matches it)")
        if next(iter(self._rule), None) is None:
            raise _err(f"{self.rrule} has no occurrence between the start ({self.start.isoformat()}) and UNTIL")

    def _wall_times(self, local_from: datetime) -> Iterator[datetime]:
        """Naive local occurrences at or after ``local_from``, in wall-time order."""
        return self._anchored(local_from).xafter(local_from, inc=True)

    def iter_utc(self, start: datetime) -> Iterator[datetime]:
        """Occurrences at or after the aware ``start``, as aware UTC datetimes, in order and without
        duplicates, lazily (until the rule ends; infinite otherwise)."""
        return (at for at, _ in self.iter_occurrences(start))

    def iter_occurrences(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Like :meth:`iter_utc`, yielding ``(utc, wall_time)``: the wall time is the naive local
        time the rule produced (before the gap shift). When two wall times land on the same
        instant (a time shifted out of a gap onto a real one), the instant is yielded once, with
        the real wall time."""
        start = require_aware(start, "start")
        zone = self._zone
        # Entries: (utc, wall time, the wall time after which no later wall time can precede it).
        heap: list[tuple[datetime, datetime, datetime]] = []
        try:
            local_from = utc_to_local(start, zone) - _margin(zone, start)
        except OverflowError:
            return
        for wall in self._wall_times(max(local_from, datetime(MIN_YEAR - 1, 1, 2))):
            at = local_to_utc(wall, zone)
            if at >= start:
                # Wall-time order and UTC order disagree by at most the margin (a gap moves a wall
                # time forward by its length), so once the wall times are past this one's local time
                # plus the margin, it is final.
                heapq.heappush(heap, (at, wall, utc_to_local(at, zone) + _margin(zone, at)))
            while heap and wall > heap[0][2]:
                yield _pop_instant(heap)
        while heap:
            yield _pop_instant(heap)

    def describe(self, at: datetime, wall_time: datetime | None = None) -> Occurrence:
        """The :class:`Occurrence` record of the UTC occurrence ``at`` produced by ``wall_time``
        (default: the local time at ``at``)."""
        local = at.astimezone(self._zone)
        wall = local.replace(tzinfo=None) if wall_time is None else wall_time
        kind = local_time_kind(wall, self._zone)
        return Occurrence(at, local, wall, None if kind == "normal" else kind)


def _pop_instant(heap: list[tuple[datetime, datetime, datetime]]) -> tuple[datetime, datetime]:
    """Pop the earliest instant and every duplicate of it; keep the latest wall time (the one not
    shifted out of a gap)."""
    at, wall, _ = heapq.heappop(heap)
    while heap and heap[0][0] == at:
        wall = max(wall, heapq.heappop(heap)[1])
    return at, wall


def _interval(n: int) -> str:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SchedulingError("interval", "must be a whole number of at least 1")
    return "" if n == 1 else f";INTERVAL={n}"


def _byday(weekdays: Sequence[int | str] | None, *, required: bool) -> str:
    if weekdays is None and not required:
        return ""
    if isinstance(weekdays, (str, int)):
        weekdays = [weekdays]
    if not weekdays:
        raise SchedulingError("weekdays", "name at least one weekday")
    days = sorted({_weekday_index(d, "weekdays") for d in weekdays})
    return ";BYDAY=" + ",".join(_DAYS[d] for d in days)


def _as_time(value: time | str, field: str) -> time:
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise SchedulingError(field, "must be a wall time without a zone: the schedule's timezone applies")
        return value.replace(microsecond=0)
    if isinstance(value, str):
        try:
            return time.fromisoformat(value.strip()).replace(microsecond=0, tzinfo=None)
        except ValueError:
            pass
    raise SchedulingError(field, f"{value!r} is not a time of day such as '02:30'")


def _with_time(rule: str, at: time | str) -> str:
    t = _as_time(at, "at")
    return f"{rule};BYHOUR={t.hour};BYMINUTE={t.minute};BYSECOND={t.second}"


def _start_day(start: date | datetime) -> date | datetime:
    """Constructors taking a time of day accept a date as ``start`` (from that day on)."""
    if isinstance(start, (date, datetime)):
        return start
    raise SchedulingError("start", f"expected a date or date-time, got {type(start).__name__}")


# --------------------------------------------------------------------------------------------
# Queries


def _next(schedule: Schedule, after: datetime, count: int) -> list[tuple[datetime, datetime]]:
    after = require_aware(after, "after")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PREVIEW:
        raise SchedulingError("count", f"must be a whole number from 1 to {MAX_PREVIEW}")
    out: list[tuple[datetime, datetime]] = []
    for at, wall in schedule.iter_occurrences(after):
        if at > after:
            out.append((at, wall))
            if len(out) == count:
                break
    return out


def next_occurrences(schedule: Schedule, after: datetime, count: int = 10) -> list[datetime]:
    """The next ``count`` occurrences strictly after the aware ``after``, as aware UTC datetimes
    (fewer if the rule ends). This is the preview: ``count`` is 1..:data:`MAX_PREVIEW`."""
    return [at for at, _ in _next(schedule, after, count)]


def preview(schedule: Schedule, after: datetime, count: int = 10) -> list[Occurrence]:
    """:func:`next_occurrences` with the local time and the DST adjustment of each (for the preview
    endpoint): ``adjustment="gap"`` marks a run shifted forward out of a spring gap."""
    return [schedule.describe(at, wall) for at, wall in _next(schedule, after, count)]


def next_occurrence(schedule: Schedule, after: datetime) -> datetime | None:
    """The first occurrence strictly after ``after``, or ``None`` if the rule has ended."""
    found = next_occurrences(schedule, after, 1)
    return found[0] if found else None


def occurrences_between(schedule: Schedule, start: datetime, end: datetime, *,
                        limit: int | None = None) -> list[datetime]:
    """Occurrences in the half-open range ``[start, end)``, in order, at most ``limit`` of them (the
    first ones). The work is proportional to the number returned, not to the time since the start
    of the schedule."""
    start, end = require_aware(start, "start"), require_aware(end, "end")
    out: list[datetime] = []
    if end <= start or limit is not None and limit <= 0:
        return out
    for at in schedule.iter_utc(start):
        if at >= end:
            break
        out.append(at)
        if limit is not None and len(out) >= limit:
            break
    return out


def previous_occurrence(schedule: Schedule, at: datetime, *, after: datetime | None = None) -> datetime | None:
    """The latest occurrence at or before ``at`` (and strictly after ``after``, if given), or
    ``None``. Looks back in growing steps (an hour, then four times more each time) down to
    ``after`` or to the start of the schedule, so a dense rule costs an hour of occurrences."""
    at = require_aware(at, "at")
    floor = require_aware(after, "after") if after is not None else None
    first = local_to_utc(schedule.start, schedule.zone) - timedelta(days=2)
    bottom = max(floor, first) if floor is not None else first
    span = timedelta(hours=1)
    end = at + timedelta(microseconds=1)
    while True:
        lo = max(at - span, bottom)
        found = occurrences_between(schedule, lo, end)
        found = [t for t in found if floor is None or t > floor]
        if found:
            return found[-1]
        if lo <= bottom:
            return None
        end = lo
        span *= 4


def first_occurrence(schedule: Schedule) -> datetime | None:
    """The schedule's first occurrence (its start, or the first time the rule matches after it)."""
    return next(schedule.iter_utc(local_to_utc(schedule.start, schedule.zone) - timedelta(days=2)), None)


__all__ = [
    "MAX_COUNT", "MAX_PREVIEW", "Occurrence", "Schedule", "SchedulingError", "UTC", "as_timedelta",
    "first_occurrence", "format_duration", "get_zone", "local_time_kind", "local_to_utc", "next_occurrence",
    "next_occurrences", "occurrences_between", "preview", "previous_occurrence", "require_aware", "utc_to_local",
]
