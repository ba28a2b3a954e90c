"""Maintenance windows: one-off and recurring windows, exclusions (freeze days) layered on top,
the deployment-AND-groups combination, fitting a step's timeout at the window edges, validation."""

from datetime import date, datetime, timedelta, timezone

import pytest

from depot.scheduling import (
    AllOf, Interval, OneOffWindow, OpenStretch, RecurringWindow, Schedule, SchedulingError, WindowSet,
    check_window_fits, freeze_day, host_windows,
)

UTC = timezone.utc
BERLIN = "Europe/Berlin"
H = timedelta(hours=1)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def saturday_night() -> RecurringWindow:
    """Saturdays 22:00 Berlin time, six hours (in winter 21:00Z to Sunday 03:00Z)."""
    return RecurringWindow(Schedule.weekly("SA", "22:00", BERLIN, date(2026, 1, 1)), timedelta(hours=6))


def daily_utc_window() -> WindowSet:
    """Every day 01:00-05:00 UTC."""
    return WindowSet([RecurringWindow(Schedule.daily("01:00", "UTC", date(2026, 1, 1)), 4 * H)])


# ------------------------------------------------------------------------------------------
# A freeze day inside a recurring weekly window


def test_a_freeze_day_cuts_into_a_recurring_weekly_window():
    assert date(2026, 12, 26).weekday() == 5  # a Saturday
    windows = WindowSet([saturday_night()], exclusions=[freeze_day(date(2026, 12, 26), BERLIN)])

    # The Saturday before is untouched: 22:00 CET to 04:00 CET.
    assert windows.is_open(utc(2026, 12, 19, 21))
    assert windows.open_interval_at(utc(2026, 12, 19, 22)) == OpenStretch(utc(2026, 12, 19, 21), utc(2026, 12, 20, 3))

    # On the freeze day the window opens only at local midnight, when the freeze ends.
    assert not windows.is_open(utc(2026, 12, 26, 21))  # Saturday 22:00 CET
    assert not windows.is_open(utc(2026, 12, 26, 22, 59, 59))
    assert windows.is_open(utc(2026, 12, 26, 23))  # Sunday 00:00 CET
    assert windows.open_interval_at(utc(2026, 12, 27, 0)) == OpenStretch(utc(2026, 12, 26, 23), utc(2026, 12, 27, 3))
    assert windows.open_interval_at(utc(2026, 12, 26, 21, 30)) is None
    assert windows.next_open(utc(2026, 12, 26, 12)) == utc(2026, 12, 26, 23)

    # What is left of it is 4 hours: a 4-hour step fits, a 5-hour one waits for the next Saturday.
    assert windows.fits(utc(2026, 12, 26, 23), 4 * H)
    assert not windows.fits(utc(2026, 12, 26, 21), H)
    assert windows.next_fit(utc(2026, 12, 26, 12), 4 * H) == utc(2026, 12, 26, 23)
    assert windows.next_fit(utc(2026, 12, 26, 12), 5 * H) == utc(2027, 1, 2, 21)
    assert windows.open_intervals(utc(2026, 12, 19), utc(2027, 1, 4)) == [
        Interval(utc(2026, 12, 19, 21), utc(2026, 12, 20, 3)),
        Interval(utc(2026, 12, 26, 23), utc(2026, 12, 27, 3)),
        Interval(utc(2027, 1, 2, 21), utc(2027, 1, 3, 3)),
    ]


def test_a_recurring_exclusion_every_christmas():
    christmas = RecurringWindow(Schedule("FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24;BYHOUR=0;BYMINUTE=0", BERLIN,
                                         datetime(2026, 1, 1)), timedelta(days=3))
    windows = WindowSet([saturday_night()], [christmas])
    # 2026: the same cut as the freeze day above (24-26 December local).
    assert windows.open_interval_at(utc(2026, 12, 27, 0)) == OpenStretch(utc(2026, 12, 26, 23), utc(2026, 12, 27, 3))
    # 2027: Saturday 25 December is entirely frozen; the next opening is Saturday 1 January 2028.
    assert date(2027, 12, 25).weekday() == 5
    assert not windows.is_open(utc(2027, 12, 25, 22))
    assert windows.next_open(utc(2027, 12, 24)) == utc(2028, 1, 1, 21)


# ------------------------------------------------------------------------------------------
# Edges: half-open intervals, fitting a timeout


def test_window_edges_are_half_open():
    windows = daily_utc_window()
    assert windows.is_open(utc(2026, 3, 3, 1))
    assert windows.is_open(utc(2026, 3, 3, 4, 59, 59))
    assert not windows.is_open(utc(2026, 3, 3, 5))
    assert not windows.is_open(utc(2026, 3, 3, 0, 59, 59))
    assert windows.open_interval_at(utc(2026, 3, 3, 2)) == OpenStretch(utc(2026, 3, 3, 1), utc(2026, 3, 3, 5))
    assert windows.open_interval_at(utc(2026, 3, 3, 5)) is None
    assert windows.next_open(utc(2026, 3, 3, 2)) == utc(2026, 3, 3, 2)  # already open
    assert windows.next_open(utc(2026, 3, 3, 5)) == utc(2026, 3, 4, 1)


def test_fits_at_the_window_edges():
    windows = daily_utc_window()
    assert windows.fits(utc(2026, 3, 3, 1), 4 * H)  # the whole window
    assert not windows.fits(utc(2026, 3, 3, 1), 4 * H + timedelta(seconds=1))
    assert windows.fits(utc(2026, 3, 3, 3), 2 * H)  # ends exactly when the window closes
    assert not windows.fits(utc(2026, 3, 3, 3, 0, 1), 2 * H)
    assert not windows.fits(utc(2026, 3, 3, 0, 59), H)  # starts a minute before it opens
    assert windows.fits(utc(2026, 3, 3, 1), 3600)  # seconds are accepted too


def test_next_fit_at_the_window_edges_and_the_horizon():
    windows = daily_utc_window()
    assert windows.next_fit(utc(2026, 3, 3, 2), 2 * H) == utc(2026, 3, 3, 2)
    assert windows.next_fit(utc(2026, 3, 3, 3), 2 * H) == utc(2026, 3, 3, 3)
    assert windows.next_fit(utc(2026, 3, 3, 3, 0, 1), 2 * H) == utc(2026, 3, 4, 1)
    assert windows.next_fit(utc(2026, 3, 3, 0), 2 * H) == utc(2026, 3, 3, 1)
    assert windows.next_fit(utc(2026, 3, 3, 0), 5 * H) is None  # never fits: None past the horizon
    assert windows.next_fit(utc(2026, 3, 3, 6), H, horizon=timedelta(hours=12)) is None
    assert windows.next_fit(utc(2026, 3, 3, 6), H, horizon=timedelta(hours=19)) == utc(2026, 3, 4, 1)
    assert windows.next_open(utc(2026, 3, 3, 6), horizon=timedelta(hours=12)) is None


def test_adjacent_windows_form_one_stretch():
    windows = WindowSet([OneOffWindow(utc(2026, 5, 1, 1), utc(2026, 5, 1, 3)),
                         OneOffWindow(utc(2026, 5, 1, 3), utc(2026, 5, 1, 5))])
    assert windows.fits(utc(2026, 5, 1, 1), 4 * H)
    assert windows.open_interval_at(utc(2026, 5, 1, 2)) == OpenStretch(utc(2026, 5, 1, 1), utc(2026, 5, 1, 5))
    assert windows.next_open(utc(2026, 5, 1, 5)) is None  # one-off windows: nothing later


def test_a_recurring_window_lasts_elapsed_time_across_dst():
    windows = WindowSet([RecurringWindow(Schedule.daily("01:00", BERLIN, date(2026, 1, 1)), 4 * H)])
    # On 29 March 2026 it opens at 01:00 CET (00:00Z) and closes four real hours later: 06:00 CEST.
    stretch = windows.open_interval_at(utc(2026, 3, 29, 1))
    assert stretch == OpenStretch(utc(2026, 3, 29, 0), utc(2026, 3, 29, 4))
    assert stretch.end.astimezone(Schedule.daily("01:00", BERLIN, date(2026, 1, 1)).zone).hour == 6


@pytest.mark.parametrize("zone, day, hours", [
    (BERLIN, date(2026, 3, 29), 23), (BERLIN, date(2026, 10, 25), 25), ("America/New_York", date(2026, 11, 1), 25),
    ("Australia/Lord_Howe", date(2026, 10, 4), 23.5), ("Australia/Lord_Howe", date(2026, 4, 5), 24.5),
    ("UTC", date(2026, 3, 29), 24),
])
def test_a_freeze_day_is_a_whole_local_day(zone, day, hours):
    assert freeze_day(day, zone).length == timedelta(hours=hours)
    assert freeze_day(day, zone, days=2).length > timedelta(hours=hours)


def test_no_windows_means_always_open_except_exclusions():
    anything = WindowSet()
    assert anything.unrestricted
    assert anything.is_open(utc(2026, 1, 1))
    assert anything.open_interval_at(utc(2026, 1, 1)) == OpenStretch(None, None)
    assert anything.next_fit(utc(2026, 1, 1), timedelta(days=3)) == utc(2026, 1, 1)

    frozen = WindowSet(exclusions=[OneOffWindow(utc(2026, 6, 10), utc(2026, 6, 12))])
    assert not frozen.unrestricted
    assert frozen.open_interval_at(utc(2026, 6, 1)) == OpenStretch(None, utc(2026, 6, 10))
    assert frozen.open_interval_at(utc(2026, 6, 20)) == OpenStretch(utc(2026, 6, 12), None)
    assert frozen.next_open(utc(2026, 6, 11)) == utc(2026, 6, 12)
    assert frozen.next_fit(utc(2026, 6, 9), 2 * 24 * H) == utc(2026, 6, 12)


# ------------------------------------------------------------------------------------------
# Combining the deployment's and the groups' windows


def test_a_host_runs_only_where_the_deployment_and_its_groups_are_both_open():
    deployment = WindowSet([OneOffWindow(utc(2026, 5, 2, 20), utc(2026, 5, 3, 2))])
    group = WindowSet([OneOffWindow(utc(2026, 5, 2, 23), utc(2026, 5, 3, 5))])
    host = host_windows(deployment, [group])
    assert not host.is_open(utc(2026, 5, 2, 22))  # deployment open, group closed
    assert host.is_open(utc(2026, 5, 2, 23))
    assert not host.is_open(utc(2026, 5, 3, 3))  # group open, deployment closed
    assert host.open_interval_at(utc(2026, 5, 3, 0)) == OpenStretch(utc(2026, 5, 2, 23), utc(2026, 5, 3, 2))
    assert host.fits(utc(2026, 5, 2, 23), 3 * H)
    assert not host.fits(utc(2026, 5, 2, 23), 3 * H + timedelta(seconds=1))
    assert host.next_open(utc(2026, 5, 2, 12)) == utc(2026, 5, 2, 23)
    assert AllOf([deployment, group]).open_intervals(utc(2026, 5, 2), utc(2026, 5, 4)) == [
        Interval(utc(2026, 5, 2, 23), utc(2026, 5, 3, 2))]


def test_the_windows_of_several_groups_are_united_and_their_exclusions_all_apply():
    monday = OneOffWindow(utc(2026, 5, 4, 1), utc(2026, 5, 4, 3))
    tuesday = OneOffWindow(utc(2026, 5, 5, 1), utc(2026, 5, 5, 3))
    group_a = WindowSet([monday])
    group_b = WindowSet([tuesday])
    no_windows = WindowSet()
    both = host_windows(None, [group_a, group_b])
    assert both.is_open(utc(2026, 5, 4, 2)) and both.is_open(utc(2026, 5, 5, 2))
    # A group without windows adds no opening.
    only_a = host_windows(None, [group_a, no_windows])
    assert only_a.is_open(utc(2026, 5, 4, 2)) and not only_a.is_open(utc(2026, 5, 5, 2))
    # A freeze on any group freezes the host, even in another group's window.
    frozen_b = WindowSet([tuesday], exclusions=[freeze_day(date(2026, 5, 4), "UTC")])
    assert not host_windows(None, [group_a, frozen_b]).is_open(utc(2026, 5, 4, 2))
    # The deployment's exclusions apply too.
    deployment = WindowSet(exclusions=[tuesday])
    assert not host_windows(deployment, [group_a, group_b]).is_open(utc(2026, 5, 5, 2))
    # Nothing anywhere: always open.
    assert host_windows().is_open(utc(2026, 5, 5, 2))
    assert host_windows(None, [no_windows]).open_interval_at(utc(2026, 1, 1)) == OpenStretch(None, None)


# ------------------------------------------------------------------------------------------
# Validation


def test_check_window_fits():
    one_hour = OneOffWindow(utc(2026, 5, 1, 1), utc(2026, 5, 1, 2))
    four_hours = RecurringWindow(Schedule.daily("01:00", "UTC", date(2026, 1, 1)), 4 * H)
    check_window_fits(one_hour, H)  # exactly as long: fits
    check_window_fits(four_hours, 4 * 3600)
    check_window_fits(WindowSet(), timedelta(days=30))  # no windows, no restriction
    check_window_fits(WindowSet([one_hour, four_hours]), 3 * H)  # one of them is long enough
    for window, timeout, field in [(one_hour, 2 * H, "end"), (four_hours, 5 * H, "duration"),
                                   (WindowSet([one_hour, four_hours]), 5 * H, "windows")]:
        with pytest.raises(SchedulingError) as caught:
            check_window_fits(window, timeout)
        assert caught.value.field == field
        assert "shorter than the step timeout" in caught.value.message
    with pytest.raises(SchedulingError) as caught:
        check_window_fits(one_hour, 2 * H, field="maintenance_windows")
    assert caught.value.field == "maintenance_windows"
    with pytest.raises(SchedulingError) as caught:
        check_window_fits(one_hour, 0)
    assert caught.value.field == "timeout"


@pytest.mark.parametrize("make, field", [
    (lambda: OneOffWindow(utc(2026, 5, 1, 2), utc(2026, 5, 1, 1)), "end"),
    (lambda: OneOffWindow(utc(2026, 5, 1, 2), utc(2026, 5, 1, 2)), "end"),
    (lambda: OneOffWindow(datetime(2026, 5, 1, 1), utc(2026, 5, 1, 2)), "start"),
    (lambda: OneOffWindow(utc(2026, 5, 1, 1), "later"), "end"),
    (lambda: RecurringWindow(Schedule.daily("01:00", "UTC", date(2026, 1, 1)), 0), "duration"),
    (lambda: RecurringWindow(Schedule.daily("01:00", "UTC", date(2026, 1, 1)), -H), "duration"),
    (lambda: RecurringWindow(Schedule.daily("01:00", "UTC", date(2026, 1, 1)), timedelta(days=40)), "duration"),
    (lambda: RecurringWindow("FREQ=DAILY", H), "schedule"),
    (lambda: RecurringWindow(Schedule("FREQ=DAILY;BYHOUR=25", "UTC", datetime(2026, 1, 1)), H), "rrule"),
    (lambda: WindowSet(["Saturday night"]), "windows"),
    (lambda: WindowSet(exclusions=[42]), "exclusions"),
    (lambda: freeze_day(datetime(2026, 12, 24), BERLIN), "day"),
    (lambda: freeze_day(date(2026, 12, 24), BERLIN, days=0), "days"),
    (lambda: freeze_day(date(2026, 12, 24), "Europe/Atlantis"), "timezone"),
    (lambda: daily_utc_window().fits(utc(2026, 1, 1), 0), "duration"),
    (lambda: daily_utc_window().is_open(datetime(2026, 1, 1)), "at"),
    (lambda: daily_utc_window().next_fit(utc(2026, 1, 1), H, horizon=timedelta(0)), "horizon"),
])
def test_bad_windows_name_the_field(make, field):
    with pytest.raises(SchedulingError) as caught:
        make()
    assert caught.value.field == field, str(caught.value)
