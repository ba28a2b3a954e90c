"""Schedules: RRULE + IANA zone in local wall time, the DST gap and fold rules, previews,
normalisation and validation. Every time is injected; nothing sleeps.

DST dates used (2026):
  Europe/Berlin       gap 29 Mar 02:00->03:00 (+1h)   fold 25 Oct 03:00->02:00
  America/New_York    gap  8 Mar 02:00->03:00 (+1h)   fold  1 Nov 02:00->01:00
  Australia/Lord_Howe gap  4 Oct 02:00->02:30 (+30m)  fold  5 Apr 02:00->01:30
"""

import time as wallclock
from datetime import date, datetime, time, timedelta, timezone
from itertools import islice

import pytest

from depot.scheduling import (
    Schedule, SchedulingError, first_occurrence, local_time_kind, local_to_utc, next_occurrence,
    next_occurrences, occurrences_between, preview, previous_occurrence,
)
from depot.scheduling.rules import get_zone

UTC = timezone.utc


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def local(schedule_or_zone, dt):
    zone = get_zone(schedule_or_zone if isinstance(schedule_or_zone, str) else schedule_or_zone.timezone)
    return dt.astimezone(zone).replace(tzinfo=None)


# ------------------------------------------------------------------------------------------
# The gap and fold rules


GAPS = [
    # zone, day of the gap, a wall time inside the gap, expected UTC, expected local wall time after the shift
    ("Europe/Berlin", date(2026, 3, 29), time(2, 30), utc(2026, 3, 29, 1, 30), datetime(2026, 3, 29, 3, 30)),
    ("America/New_York", date(2026, 3, 8), time(2, 30), utc(2026, 3, 8, 7, 30), datetime(2026, 3, 8, 3, 30)),
    ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 15), utc(2026, 10, 3, 15, 45), datetime(2026, 10, 4, 2, 45)),
]

FOLDS = [
    # zone, day of the fold, a repeated wall time, expected UTC (the first instance), the second instance
    ("Europe/Berlin", date(2026, 10, 25), time(2, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)),
    ("America/New_York", date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)),
    ("Australia/Lord_Howe", date(2026, 4, 5), time(1, 45), utc(2026, 4, 4, 14, 45), utc(2026, 4, 4, 15, 15)),
]


@pytest.mark.parametrize("zone, day, wall, expected_utc, expected_local", GAPS)
def test_a_time_in_the_spring_gap_is_shifted_forward_by_the_gap(zone, day, wall, expected_utc, expected_local):
    naive = datetime.combine(day, wall)
    assert local_time_kind(naive, get_zone(zone)) == "gap"
    assert local_to_utc(naive, get_zone(zone)) == expected_utc

    schedule = Schedule.daily(wall, zone, date(2026, 1, 1))
    runs = next_occurrences(schedule, datetime.combine(day - timedelta(days=1), time(12), UTC), 3)
    # The day of the gap is not skipped: it runs once, shifted forward by the size of the gap...
    assert runs[0] == expected_utc
    assert local(zone, runs[0]) == expected_local
    # ...and the day after is back at the asked wall time.
    assert local(zone, runs[1]) == datetime.combine(day + timedelta(days=1), wall)
    assert [local(zone, r).date() for r in runs] == [day, day + timedelta(days=1), day + timedelta(days=2)]

    [shown] = preview(schedule, datetime.combine(day - timedelta(days=1), time(12), UTC), 1)
    assert shown.adjustment == "gap"
    assert shown.wall_time == naive
    assert shown.local.replace(tzinfo=None) == expected_local


@pytest.mark.parametrize("zone, day, wall, first, second", FOLDS)
def test_a_repeated_time_in_the_autumn_fold_runs_once_at_its_first_instance(zone, day, wall, first, second):
    naive = datetime.combine(day, wall)
    assert local_time_kind(naive, get_zone(zone)) == "fold"
    assert local_to_utc(naive, get_zone(zone)) == first

    schedule = Schedule.daily(wall, zone, date(2026, 1, 1))
    runs = next_occurrences(schedule, datetime.combine(day - timedelta(days=1), time(12), UTC), 3)
    assert runs[0] == first
    assert second not in runs
    on_the_day = [r for r in runs if local(zone, r).date() == day]
    assert on_the_day == [first]
    assert local(zone, runs[1]) == datetime.combine(day + timedelta(days=1), wall)
    assert preview(schedule, first - timedelta(seconds=1), 1)[0].adjustment == "fold"


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
def test_daily_runs_stay_at_the_same_local_time_across_a_whole_year(zone):
    schedule = Schedule.daily("03:15", zone, date(2026, 1, 1))
    runs = next_occurrences(schedule, utc(2026, 1, 1), 365)
    assert len(runs) == 365
    # 03:15 exists every day in these zones (the gaps and folds are around 01:30-03:00).
    assert {local(zone, r).time() for r in runs} == {time(3, 15)}
    assert len({local(zone, r).date() for r in runs}) == 365
    # The UTC time moves with DST.
    assert len({r.time() for r in runs}) == 2


def test_sub_hourly_schedule_through_the_gap_keeps_running_without_duplicates():
    schedule = Schedule.every("Europe/Berlin", datetime(2026, 3, 1), minutes=30)
    runs = next_occurrences(schedule, utc(2026, 3, 28, 23, 45), 5)
    # Local 01:00 and 01:30 CET, then 02:00 and 02:30 (not existing) land on 03:00 and 03:30 CEST,
    # which the rule also produces: each instant runs once, and real time keeps a 30-minute rhythm.
    assert runs == [utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0),
                    utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 2, 0)]
    assert [local(schedule, r).strftime("%H:%M") for r in runs] == ["01:00", "01:30", "03:00", "03:30", "04:00"]


def test_sub_hourly_schedule_does_not_repeat_the_folded_hour():
    schedule = Schedule.every("Europe/Berlin", datetime(2026, 10, 1), minutes=15)
    runs = next_occurrences(schedule, utc(2026, 10, 25, 0, 30), 4)
    # 02:45 CEST (00:45Z) is followed by 03:00 CET (02:00Z): the second pass of 02:00-03:00 is not run.
    assert runs == [utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 2, 0), utc(2026, 10, 25, 2, 15),
                    utc(2026, 10, 25, 2, 30)]


def test_lord_howe_half_hour_shift_for_an_every_hour_schedule():
    schedule = Schedule.every("Australia/Lord_Howe", datetime(2026, 10, 3), hours=1)
    runs = next_occurrences(schedule, utc(2026, 10, 3, 14, 0), 4)
    # 01:00 (+10:30), 02:00 is in the 30-minute gap -> 02:30 (+11), then 03:00, 04:00.
    assert [local(schedule, r).strftime("%H:%M") for r in runs] == ["01:00", "02:30", "03:00", "04:00"]
    assert [r - runs[0] for r in runs] == [timedelta(0), timedelta(hours=1), timedelta(hours=1, minutes=30),
                                           timedelta(hours=2, minutes=30)]


def test_a_day_the_zone_itself_skips_is_merged_into_the_next_one():
    # Samoa moved across the date line: 30 December 2011 does not exist in Pacific/Apia (-10 -> +14).
    schedule = Schedule.daily("02:30", "Pacific/Apia", date(2011, 12, 1))
    runs = next_occurrences(schedule, utc(2011, 12, 28), 4)
    # 30 Dec 02:30 is shifted forward by the 24-hour gap onto 31 Dec 02:30, which runs once.
    assert [local(schedule, r).date() for r in runs] == [date(2011, 12, 28), date(2011, 12, 29), date(2011, 12, 31),
                                                         date(2012, 1, 1)]
    assert runs[2] - runs[1] == timedelta(hours=24)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham",
                                  "Antarctica/Troll"])
@pytest.mark.parametrize("rule", ["FREQ=MINUTELY;INTERVAL=25", "FREQ=HOURLY;INTERVAL=5;BYMINUTE=15",
                                  "FREQ=DAILY;BYHOUR=0,1,2,3;BYMINUTE=0,30", "FREQ=MONTHLY;BYDAY=-1SU,1SU;BYHOUR=2"])
def test_lazy_evaluation_matches_a_brute_force_enumeration(zone, rule):
    schedule = Schedule(rule, zone, datetime(2026, 1, 1, 0, 7))
    zone_info = schedule.zone
    for start in (utc(2026, 3, 1), utc(2026, 9, 20), utc(2026, 10, 20)):  # around the DST changes
        end = start + timedelta(days=21)
        walls = schedule._rule.between(local(zone, start) - timedelta(days=2), local(zone, end) + timedelta(days=2))
        expected = sorted({t for t in (local_to_utc(w, zone_info) for w in walls) if start <= t < end})
        assert occurrences_between(schedule, start, end) == expected
        previous = previous_occurrence(schedule, end - timedelta(microseconds=1))
        if expected:
            assert previous == expected[-1]
        else:  # e.g. 1 March 02:00 in Chatham (+13:45) is still 28 February in UTC
            assert previous < start


# ------------------------------------------------------------------------------------------
# Previews of the constructors


def test_once_in_a_zone():
    schedule = Schedule.once(datetime(2026, 7, 4, 9, 0), "America/New_York")
    assert schedule.is_once
    assert next_occurrences(schedule, utc(2026, 1, 1), 5) == [utc(2026, 7, 4, 13, 0)]
    assert next_occurrences(schedule, utc(2026, 7, 4, 13, 0), 5) == []  # strictly after
    assert next_occurrence(schedule, utc(2026, 8, 1)) is None
    # An aware date-time is converted into the zone.
    assert Schedule.once(utc(2026, 7, 4, 13, 0), "America/New_York") == schedule
    # Once in the gap: shifted forward like any wall time.
    gap = Schedule.once(datetime(2026, 3, 29, 2, 30), "Europe/Berlin")
    assert next_occurrences(gap, utc(2026, 1, 1), 1) == [utc(2026, 3, 29, 1, 30)]


def test_every_n_minutes_hours_days_count_from_the_start():
    minutes = Schedule.every("UTC", datetime(2026, 1, 1, 0, 5), minutes=20)
    assert next_occurrences(minutes, utc(2026, 1, 1, 10, 0), 3) == [
        utc(2026, 1, 1, 10, 5), utc(2026, 1, 1, 10, 25), utc(2026, 1, 1, 10, 45)]
    hours = Schedule.every("America/New_York", datetime(2026, 1, 1, 1, 0), hours=6)
    assert [local(hours, r).hour for r in next_occurrences(hours, utc(2026, 1, 2), 4)] == [1, 7, 13, 19]
    days = Schedule.every("Europe/Berlin", datetime(2026, 1, 1, 4, 0), days=3)
    runs = next_occurrences(days, utc(2026, 1, 1), 3)
    assert [local(days, r) for r in runs] == [datetime(2026, 1, 1, 4), datetime(2026, 1, 4, 4), datetime(2026, 1, 7, 4)]


def test_daily_on_weekdays_only():
    schedule = Schedule.daily("06:00", "Europe/Berlin", date(2026, 1, 1), weekdays=["MO", "tuesday", 2, "THU", "FR"])
    runs = next_occurrences(schedule, utc(2026, 1, 1), 10)
    assert {local(schedule, r).weekday() for r in runs} == {0, 1, 2, 3, 4}
    assert local(schedule, runs[0]) == datetime(2026, 1, 1, 6)  # a Thursday
    assert local(schedule, runs[2]) == datetime(2026, 1, 5, 6)  # Friday, then Monday


def test_weekly_by_weekday():
    schedule = Schedule.weekly(["MO", "TH"], time(22, 0), "America/New_York", date(2026, 3, 1))
    assert schedule.rrule == "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=22;BYMINUTE=0;BYSECOND=0;WKST=MO"
    runs = next_occurrences(schedule, utc(2026, 3, 1), 4)
    assert [local(schedule, r) for r in runs] == [datetime(2026, 3, 2, 22), datetime(2026, 3, 5, 22),
                                                 datetime(2026, 3, 9, 22), datetime(2026, 3, 12, 22)]
    # EST then EDT: the UTC hour changes, the local one does not.
    assert [r.hour for r in runs] == [3, 3, 2, 2]
    biweekly = Schedule.weekly("SA", "01:00", "UTC", date(2026, 1, 1), interval=2)
    assert next_occurrences(biweekly, utc(2026, 1, 1), 3) == [utc(2026, 1, 3, 1), utc(2026, 1, 17, 1),
                                                               utc(2026, 1, 31, 1)]


def test_monthly_by_day_last_day_and_missing_days():
    fifteenth = Schedule.monthly(15, "03:00", "Europe/Berlin", date(2026, 1, 1))
    assert [local(fifteenth, r).date() for r in next_occurrences(fifteenth, utc(2026, 1, 1), 3)] == [
        date(2026, 1, 15), date(2026, 2, 15), date(2026, 3, 15)]
    last = Schedule.monthly(-1, "23:00", "UTC", date(2026, 1, 1))
    assert [r.date() for r in next_occurrences(last, utc(2026, 1, 1), 4)] == [
        date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]
    # RFC 5545: a month without the 31st is skipped.
    thirty_first = Schedule.monthly(31, "23:00", "UTC", date(2026, 1, 1))
    assert [r.date() for r in next_occurrences(thirty_first, utc(2026, 1, 1), 3)] == [
        date(2026, 1, 31), date(2026, 3, 31), date(2026, 5, 31)]


def test_monthly_second_tuesday_and_last_friday():
    patch_tuesday = Schedule.monthly_weekday(2, "TU", "20:00", "America/New_York", date(2026, 1, 1))
    assert "BYDAY=+2TU" in patch_tuesday.rrule
    assert [local(patch_tuesday, r).date() for r in next_occurrences(patch_tuesday, utc(2026, 1, 1), 4)] == [
        date(2026, 1, 13), date(2026, 2, 10), date(2026, 3, 10), date(2026, 4, 14)]
    raw = Schedule("FREQ=MONTHLY;BYDAY=+2TU;BYHOUR=20;BYMINUTE=0", "America/New_York", datetime(2026, 1, 1))
    assert next_occurrences(raw, utc(2026, 1, 1), 4) == next_occurrences(patch_tuesday, utc(2026, 1, 1), 4)
    last_friday = Schedule.monthly_weekday(-1, "friday", "18:00", "Australia/Lord_Howe", date(2026, 1, 1))
    assert [local(last_friday, r).date() for r in next_occurrences(last_friday, utc(2026, 1, 1), 3)] == [
        date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27)]


def test_every_x_hours_between_start_and_end_of_the_day():
    schedule = Schedule.hours_within_day(2, "08:00", "18:00", "Europe/Berlin", date(2026, 3, 28))
    assert schedule.rrule == "FREQ=DAILY;BYHOUR=8,10,12,14,16,18;BYMINUTE=0;BYSECOND=0;WKST=MO"
    runs = next_occurrences(schedule, utc(2026, 3, 28), 12)
    assert [local(schedule, r).strftime("%d %H:%M") for r in runs] == [
        "28 08:00", "28 10:00", "28 12:00", "28 14:00", "28 16:00", "28 18:00",
        "29 08:00", "29 10:00", "29 12:00", "29 14:00", "29 16:00", "29 18:00"]  # across the DST change
    half = Schedule.hours_within_day(3, "08:30", "18:00", "UTC", date(2026, 1, 1))
    assert [r.strftime("%H:%M") for r in next_occurrences(half, utc(2026, 1, 1), 4)] == [
        "08:30", "11:30", "14:30", "17:30"]
    night = Schedule.hours_within_day(2, "22:00", "06:00", "UTC", date(2026, 1, 1), weekdays=["SA"])
    assert [r.strftime("%a %H:%M") for r in next_occurrences(night, utc(2026, 1, 1), 5)] == [
        "Sat 00:00", "Sat 02:00", "Sat 04:00", "Sat 06:00", "Sat 22:00"]


def test_occurrences_between_and_previous_occurrence():
    schedule = Schedule.daily("02:30", "Europe/Berlin", date(2026, 1, 1))
    week = occurrences_between(schedule, utc(2026, 3, 26), utc(2026, 4, 2))
    assert len(week) == 7
    assert utc(2026, 3, 29, 1, 30) in week  # the gap day
    assert occurrences_between(schedule, utc(2026, 3, 26), utc(2026, 4, 2), limit=2) == week[:2]
    assert previous_occurrence(schedule, utc(2026, 3, 29, 1, 30)) == utc(2026, 3, 29, 1, 30)  # inclusive
    assert previous_occurrence(schedule, utc(2026, 3, 29, 1, 29)) == utc(2026, 3, 28, 1, 30)
    assert previous_occurrence(schedule, utc(2026, 3, 29, 1, 29), after=utc(2026, 3, 28, 1, 30)) is None
    assert previous_occurrence(schedule, utc(2025, 6, 1)) is None  # before the start
    assert first_occurrence(schedule) == utc(2026, 1, 1, 1, 30)
    yearly = Schedule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYHOUR=12;BYMINUTE=0", "UTC", datetime(2026, 1, 1))
    assert previous_occurrence(yearly, utc(2031, 1, 1)) == utc(2028, 2, 29, 12)
    assert next_occurrences(yearly, utc(2026, 1, 1), 2) == [utc(2028, 2, 29, 12), utc(2032, 2, 29, 12)]


def test_the_start_is_the_first_possible_run():
    schedule = Schedule.daily("02:30", "UTC", datetime(2026, 5, 10, 3, 0))
    assert next_occurrences(schedule, utc(2026, 1, 1), 1) == [utc(2026, 5, 11, 2, 30)]


# ------------------------------------------------------------------------------------------
# Normalisation and storage


def test_the_rule_is_normalised_and_round_trips():
    schedule = Schedule("rrule:freq=weekly;byday=tu", "Europe/Berlin", datetime(2026, 1, 6, 4, 15, 0, 123456))
    assert schedule.rrule == "FREQ=WEEKLY;BYDAY=TU;BYHOUR=4;BYMINUTE=15;BYSECOND=0;WKST=MO"
    assert schedule.start == datetime(2026, 1, 6, 4, 15)
    assert schedule.frequency == "WEEKLY"
    data = schedule.to_dict()
    assert data == {"rrule": schedule.rrule, "timezone": "Europe/Berlin", "start": "2026-01-06T04:15:00"}
    assert Schedule.from_dict(data) == schedule
    assert Schedule(**{**data, "start": schedule.start}) == schedule
    # An aware start is converted to the zone's wall time.
    assert Schedule("FREQ=DAILY", "Europe/Berlin", utc(2026, 1, 6, 3, 15)).start == datetime(2026, 1, 6, 4, 15)


def test_until_is_stored_in_utc_and_a_date_includes_the_whole_local_day():
    schedule = Schedule("FREQ=DAILY;BYHOUR=23;BYMINUTE=30;UNTIL=20260110", "America/New_York", datetime(2026, 1, 1))
    assert "UNTIL=20260111T045959Z" in schedule.rrule  # 10 Jan 23:59:59 EST
    runs = next_occurrences(schedule, utc(2026, 1, 1), 100)
    assert len(runs) == 10
    assert local(schedule, runs[-1]) == datetime(2026, 1, 10, 23, 30)
    utc_until = Schedule("FREQ=DAILY;UNTIL=20260105T000000Z", "UTC", datetime(2026, 1, 1))
    assert len(next_occurrences(utc_until, utc(2025, 12, 1), 100)) == 5  # 1st..5th at 00:00, inclusive
    counted = Schedule("FREQ=HOURLY;COUNT=3", "UTC", datetime(2026, 1, 1))
    assert next_occurrences(counted, utc(2025, 1, 1), 10) == [utc(2026, 1, 1, h) for h in range(3)]
    assert next_occurrences(counted, utc(2026, 1, 1, 1), 10) == [utc(2026, 1, 1, 2)]


# ------------------------------------------------------------------------------------------
# Bounded work


def test_a_minutely_schedule_after_years_is_not_enumerated_from_its_start():
    schedule = Schedule.every("Europe/Berlin", datetime(2024, 1, 1), minutes=1)
    now = utc(2026, 6, 1, 12, 0, 30)
    # The rule is re-anchored next to the time asked about.
    anchored = schedule._anchored(local(schedule, now) - timedelta(hours=3))
    assert local(schedule, now) - anchored._dtstart <= timedelta(hours=3, minutes=1)
    started = wallclock.perf_counter()
    assert next_occurrences(schedule, now, 3) == [utc(2026, 6, 1, 12, minute) for minute in (1, 2, 3)]
    assert previous_occurrence(schedule, now, after=utc(2025, 1, 1)) == utc(2026, 6, 1, 12, 0)
    assert len(occurrences_between(schedule, utc(2025, 1, 1), now, limit=1001)) == 1001
    # ~1.3 million minutes since the start: enumerating them would take seconds.
    assert wallclock.perf_counter() - started < 1.0


@pytest.mark.parametrize("rule", ["FREQ=MONTHLY;INTERVAL=5;BYMONTHDAY=31", "FREQ=WEEKLY;INTERVAL=3;BYDAY=MO,FR",
                                  "FREQ=HOURLY;INTERVAL=7;BYMINUTE=10", "FREQ=YEARLY;INTERVAL=3;BYMONTH=6"])
def test_re_anchoring_gives_the_same_occurrences_as_enumerating_from_the_start(rule):
    schedule = Schedule(rule, "Europe/Berlin", datetime(2020, 1, 1, 5, 0))
    after = utc(2031, 7, 15)
    walls = islice(schedule._rule.xafter(local(schedule, after) - timedelta(days=1)), 8)
    expected = sorted(t for t in (local_to_utc(w, schedule.zone) for w in walls) if t > after)[:6]
    assert next_occurrences(schedule, after, len(expected)) == expected


# ------------------------------------------------------------------------------------------
# Bad input names the field


BAD = [
    (dict(rrule="FREQ=DAILY;FOO=1"), "rrule", "unknown part"),
    (dict(rrule="not a rule"), "rrule", ""),
    (dict(rrule=""), "rrule", "required"),
    (dict(rrule="BYHOUR=2"), "rrule", "FREQ is required"),
    (dict(rrule="FREQ=FORTNIGHTLY"), "rrule", "FREQ=FORTNIGHTLY"),
    (dict(rrule="FREQ=SECONDLY"), "rrule", "once a minute"),
    (dict(rrule="FREQ=MINUTELY;BYSECOND=0,30"), "rrule", "once a minute"),
    (dict(rrule="FREQ=DAILY;COUNT=0"), "rrule", "COUNT=0"),
    (dict(rrule="FREQ=DAILY;COUNT=99999999"), "rrule", "COUNT"),
    (dict(rrule="FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z"), "rrule", "COUNT and UNTIL"),
    (dict(rrule="FREQ=DAILY;UNTIL=20200101T000000Z"), "rrule", "before the start"),
    (dict(rrule="FREQ=DAILY;UNTIL=20261301"), "rrule", "UNTIL"),
    (dict(rrule="FREQ=DAILY;UNTIL=tomorrow"), "rrule", "UNTIL"),
    (dict(rrule="FREQ=DAILY;BYHOUR=9;UNTIL=20260101T070000Z"), "rrule", "no occurrence between the start"),
    (dict(rrule="DTSTART:20260101T000000\nRRULE:FREQ=DAILY"), "rrule", "DTSTART"),
    (dict(rrule="FREQ=DAILY;DTSTART=20260101T000000"), "rrule", "DTSTART"),
    (dict(rrule="RRULE:FREQ=DAILY\nEXDATE:20260102T000000"), "rrule", "EXDATE"),
    (dict(rrule="FREQ=DAILY;INTERVAL=0"), "rrule", "INTERVAL"),
    (dict(rrule="FREQ=DAILY;BYHOUR=24"), "rrule", "BYHOUR=24"),
    (dict(rrule="FREQ=DAILY;BYHOUR=2;BYHOUR=3"), "rrule", "twice"),
    (dict(rrule="FREQ=WEEKLY;BYDAY=+2TU"), "rrule", "numbered weekday"),
    (dict(rrule="FREQ=MONTHLY;BYDAY=XX"), "rrule", "not a weekday"),
    (dict(rrule="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"), "rrule", "never occurs"),
    (dict(rrule="FREQ=YEARLY;BYMONTH=2;BYDAY=MO;BYMONTHDAY=30"), "rrule", "never occurs"),
    (dict(rrule="FREQ=YEARLY;BYYEARDAY=60;BYMONTH=1"), "rrule", "never occurs"),
    (dict(rrule="FREQ=DAILY;BYWEEKNO=5"), "rrule", "BYWEEKNO"),
    (dict(timezone="Mars/Olympus_Mons"), "timezone", "unknown time zone"),
    (dict(timezone=""), "timezone", "required"),
    (dict(timezone="../../etc/passwd"), "timezone", "unknown time zone"),
    (dict(start="yesterday"), "start", "date-time"),
    (dict(start=datetime(1800, 1, 1)), "start", "between the years"),
]


@pytest.mark.parametrize("change, field, fragment", BAD)
def test_bad_schedules_name_the_field(change, field, fragment):
    args = dict(rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30", timezone="Europe/Berlin", start=datetime(2026, 1, 1))
    with pytest.raises(SchedulingError) as caught:
        Schedule(**{**args, **change})
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert fragment in caught.value.message


@pytest.mark.parametrize("make, field", [
    (lambda: Schedule.every("UTC", datetime(2026, 1, 1)), "every"),
    (lambda: Schedule.every("UTC", datetime(2026, 1, 1), minutes=5, hours=1), "every"),
    (lambda: Schedule.every("UTC", datetime(2026, 1, 1), minutes=0), "minutes"),
    (lambda: Schedule.every("Nowhere/Land", datetime(2026, 1, 1), hours=1), "timezone"),
    (lambda: Schedule.daily("noon", "UTC", date(2026, 1, 1)), "at"),
    (lambda: Schedule.daily("25:00", "UTC", date(2026, 1, 1)), "at"),
    (lambda: Schedule.daily("02:00", "UTC", "2026-01-01"), "start"),
    (lambda: Schedule.daily("02:00", "UTC", date(2026, 1, 1), interval=0), "interval"),
    (lambda: Schedule.weekly([], "02:00", "UTC", date(2026, 1, 1)), "weekdays"),
    (lambda: Schedule.weekly(["funday"], "02:00", "UTC", date(2026, 1, 1)), "weekdays"),
    (lambda: Schedule.monthly(32, "02:00", "UTC", date(2026, 1, 1)), "day"),
    (lambda: Schedule.monthly_weekday(6, "TU", "02:00", "UTC", date(2026, 1, 1)), "nth"),
    (lambda: Schedule.monthly_weekday(2, "XX", "02:00", "UTC", date(2026, 1, 1)), "weekday"),
    (lambda: Schedule.hours_within_day(0, "08:00", "18:00", "UTC", date(2026, 1, 1)), "every"),
    (lambda: Schedule.hours_within_day(2, "8 o'clock", "18:00", "UTC", date(2026, 1, 1)), "day_start"),
    (lambda: Schedule.hours_within_day(2, "08:00", "08:00", "UTC", date(2026, 1, 1)), "day_end"),
    (lambda: Schedule.once("2026-01-01", "UTC"), "at"),
    (lambda: next_occurrences(Schedule.once(datetime(2026, 1, 1), "UTC"), datetime(2026, 1, 1), 1), "after"),
    (lambda: next_occurrences(Schedule.once(datetime(2026, 1, 1), "UTC"), utc(2026, 1, 1), 0), "count"),
    (lambda: next_occurrences(Schedule.once(datetime(2026, 1, 1), "UTC"), utc(2026, 1, 1), 100_000), "count"),
])
def test_bad_constructor_arguments_name_the_field(make, field):
    with pytest.raises(SchedulingError) as caught:
        make()
    assert caught.value.field == field, str(caught.value)
