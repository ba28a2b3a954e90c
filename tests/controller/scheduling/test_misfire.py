"""Misfires after a simulated controller outage: run late within the grace, skip, wait for the
next window; missed occurrences coalesce into one run. The clock is injected as ``now``."""

import time as wallclock
from datetime import date, datetime, timedelta, timezone

import pytest

from depot.scheduling import (
    Action, Misfire, MisfirePolicy, OneOffWindow, RecurringWindow, Schedule, SchedulingError, WindowSet, due_runs,
)

UTC = timezone.utc
H = timedelta(hours=1)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


# Daily at 02:00 Berlin time: 01:00Z every day in January 2026 (10 Jan is a Saturday, 14 Jan a Wednesday).
NIGHTLY = Schedule.daily("02:00", "Europe/Berlin", date(2026, 1, 1))
# Wednesdays 20:00-24:00 Berlin time: 19:00Z-23:00Z.
WEDNESDAY_EVENING = WindowSet([RecurringWindow(Schedule.weekly("WE", "20:00", "Europe/Berlin", date(2026, 1, 1)),
                                               4 * H)])
FIRED = utc(2026, 1, 9, 1)  # the last run before the outage


@pytest.mark.parametrize("policy", [MisfirePolicy.run_late(H), MisfirePolicy.skip(), MisfirePolicy.wait_for_window()])
def test_an_occurrence_reached_within_the_tolerance_fires_under_every_policy(policy):
    now = utc(2026, 1, 10, 1, 0, 20)  # the tick came 20 s after the occurrence
    due = due_runs(NIGHTLY, FIRED, now, policy)
    assert due.action is Action.FIRE
    assert due.runs == [now]
    assert due.occurrence == utc(2026, 1, 10, 1)
    assert due.coalesced == 1
    assert due.last_fired == utc(2026, 1, 10, 1)
    assert due.next_occurrence == utc(2026, 1, 11, 1)
    # Storing last_fired makes the next tick a no-op.
    again = due_runs(NIGHTLY, due.last_fired, now + timedelta(seconds=10), policy)
    assert again.action is Action.NONE and again.runs == []


def test_nothing_is_due_before_the_next_occurrence():
    due = due_runs(NIGHTLY, FIRED, utc(2026, 1, 10, 0, 59), MisfirePolicy.run_late())
    assert due.action is Action.NONE
    assert due.runs == []
    assert due.occurrence is None
    assert due.last_fired == FIRED
    assert due.next_occurrence == utc(2026, 1, 10, 1)


# ------------------------------------------------------------------------------------------
# The controller was down for 26 hours: from 9 Jan 23:30Z to 11 Jan 01:30Z. It missed the runs of
# 10 Jan 01:00Z and 11 Jan 01:00Z (the latter by 30 minutes).

BACK = utc(2026, 1, 11, 1, 30)
assert BACK - utc(2026, 1, 9, 23, 30) == timedelta(hours=26)


def test_after_the_outage_run_late_within_the_grace_fires_once():
    due = due_runs(NIGHTLY, FIRED, BACK, MisfirePolicy.run_late(H))
    assert due.action is Action.FIRE
    assert due.runs == [BACK]  # ONE run for both missed occurrences
    assert due.coalesced == 2 and not due.coalesced_more
    assert due.occurrence == utc(2026, 1, 11, 1)  # it stands for the latest one
    assert due.late_by == timedelta(minutes=30)
    assert due.last_fired == utc(2026, 1, 11, 1)
    assert "2 occurrences" in due.reason and "late" in due.reason


def test_after_the_outage_past_the_grace_it_skips_and_waits_for_the_next_occurrence():
    due = due_runs(NIGHTLY, FIRED, BACK, MisfirePolicy.run_late(timedelta(minutes=10)))
    assert due.action is Action.SKIP
    assert due.runs == []
    assert due.last_fired == utc(2026, 1, 11, 1)  # both are dropped for good
    assert due.next_occurrence == utc(2026, 1, 12, 1)
    assert "beyond the grace" in due.reason


def test_after_the_outage_skip_drops_the_missed_runs():
    due = due_runs(NIGHTLY, FIRED, BACK, MisfirePolicy.skip())
    assert due.action is Action.SKIP
    assert due.runs == []
    assert due.coalesced == 2
    assert due.last_fired == utc(2026, 1, 11, 1)
    assert due.next_occurrence == utc(2026, 1, 12, 1)


def test_after_the_outage_wait_for_window_defers_to_the_next_window_and_coalesces():
    policy = MisfirePolicy.wait_for_window()
    due = due_runs(NIGHTLY, FIRED, BACK, policy, windows=WEDNESDAY_EVENING)
    assert due.action is Action.DEFER
    assert due.runs == []
    assert due.run_at == utc(2026, 1, 14, 19)
    assert due.last_fired == FIRED  # nothing to store: the next tick re-evaluates
    # Ticks in between keep deferring; occurrences that arrive meanwhile join the same run.
    later = due_runs(NIGHTLY, FIRED, utc(2026, 1, 12, 10), policy, windows=WEDNESDAY_EVENING)
    assert (later.action, later.run_at, later.coalesced) == (Action.DEFER, utc(2026, 1, 14, 19), 3)
    # When the window opens: one run for the five occurrences of 10-14 January.
    opened = utc(2026, 1, 14, 19, 0, 5)
    fire = due_runs(NIGHTLY, FIRED, opened, policy, windows=WEDNESDAY_EVENING)
    assert fire.action is Action.FIRE
    assert fire.runs == [opened]
    assert fire.coalesced == 5
    assert fire.occurrence == utc(2026, 1, 14, 1)
    assert fire.last_fired == utc(2026, 1, 14, 1)
    assert due_runs(NIGHTLY, fire.last_fired, opened + H, policy, windows=WEDNESDAY_EVENING).action is Action.NONE


def test_wait_for_window_also_holds_an_on_time_occurrence_and_needs_a_window_that_fits():
    on_time = due_runs(NIGHTLY, FIRED, utc(2026, 1, 10, 1, 0, 5), MisfirePolicy.wait_for_window(),
                       windows=WEDNESDAY_EVENING)
    assert (on_time.action, on_time.run_at) == (Action.DEFER, utc(2026, 1, 14, 19))
    too_long = due_runs(NIGHTLY, FIRED, BACK, MisfirePolicy.wait_for_window(), windows=WEDNESDAY_EVENING,
                        duration=5 * H)
    assert too_long.action is Action.DEFER
    assert too_long.run_at is None
    assert "none opens" in too_long.reason
    # Without windows, "the next window" is now.
    assert due_runs(NIGHTLY, FIRED, BACK, MisfirePolicy.wait_for_window()).runs == [BACK]


def test_a_controller_down_for_a_day_does_not_fire_yesterdays_occurrence_outside_a_window():
    now = utc(2026, 1, 11, 0, 30)  # back after a day: the 10 Jan 01:00Z run is 23.5 hours old
    assert due_runs(NIGHTLY, FIRED, now, MisfirePolicy.run_late(H)).action is Action.SKIP
    assert due_runs(NIGHTLY, FIRED, now, MisfirePolicy.skip()).action is Action.SKIP
    # Even with a grace of two days, run_late only starts a late run inside a window...
    generous = MisfirePolicy.run_late(timedelta(days=2))
    closed = due_runs(NIGHTLY, FIRED, now, generous, windows=WEDNESDAY_EVENING)
    assert closed.action is Action.SKIP  # the next window (Wednesday) is past the grace
    assert "no window opens within the grace" in closed.reason
    # ...deferring to a window that opens within the grace...
    tonight = WindowSet([OneOffWindow(utc(2026, 1, 11, 20), utc(2026, 1, 11, 22))])
    deferred = due_runs(NIGHTLY, FIRED, now, generous, windows=tonight)
    assert (deferred.action, deferred.run_at, deferred.last_fired) == (Action.DEFER, utc(2026, 1, 11, 20), FIRED)
    # ...or running at once if a window is open.
    open_now = WindowSet([OneOffWindow(utc(2026, 1, 11), utc(2026, 1, 11, 2))])
    assert due_runs(NIGHTLY, FIRED, now, generous, windows=open_now).runs == [now]


def test_misfires_around_dst_in_lord_howe():
    schedule = Schedule.daily("02:15", "Australia/Lord_Howe", date(2026, 9, 1))
    # 4 Oct 2026, 02:15 does not exist: it runs at 02:45 (+11) = 15:45Z on 3 Oct.
    due = due_runs(schedule, utc(2026, 10, 2, 15, 45), utc(2026, 10, 3, 15, 45, 30), MisfirePolicy.skip())
    assert (due.action, due.occurrence) == (Action.FIRE, utc(2026, 10, 3, 15, 45))


# ------------------------------------------------------------------------------------------
# Bounded work, first runs, validation


def test_a_year_of_missed_minutes_is_coalesced_without_enumerating_them():
    every_minute = Schedule.every("Europe/Berlin", datetime(2024, 1, 1), minutes=1)
    started = wallclock.perf_counter()
    due = due_runs(every_minute, utc(2025, 1, 1), utc(2026, 1, 1, 0, 0, 30), MisfirePolicy.run_late(H))
    assert wallclock.perf_counter() - started < 1.0  # ~525,000 missed minutes
    assert due.action is Action.FIRE
    assert due.runs == [utc(2026, 1, 1, 0, 0, 30)]
    assert due.occurrence == utc(2026, 1, 1)
    assert due.coalesced == 1000 and due.coalesced_more
    assert "1000+ occurrences" in due.reason


def test_a_schedule_that_never_fired():
    once = Schedule.once(datetime(2026, 6, 1, 12), "UTC")
    now = utc(2026, 6, 1, 12, 0, 10)
    due = due_runs(once, None, now, MisfirePolicy.skip())
    assert (due.action, due.runs, due.next_occurrence) == (Action.FIRE, [now], None)
    done = due_runs(once, due.last_fired, now + H, MisfirePolicy.skip())
    assert done.action is Action.NONE
    assert "ended" in done.reason
    # A daily schedule created long after its start: the latest occurrence is simply missed.
    old = due_runs(NIGHTLY, None, utc(2026, 5, 1, 12), MisfirePolicy.run_late(H))
    assert (old.action, old.occurrence) == (Action.SKIP, utc(2026, 5, 1, 0))
    assert old.coalesced == 121


def test_policies_and_bad_input():
    assert MisfirePolicy("skip").rule is Misfire.SKIP
    assert MisfirePolicy("run_late", 600).grace == timedelta(minutes=10)
    assert MisfirePolicy.run_late(0).grace == timedelta(0)
    for make, field in [
        (lambda: MisfirePolicy("sometimes"), "misfire"),
        (lambda: MisfirePolicy.run_late(-1), "grace"),
        (lambda: MisfirePolicy.run_late("an hour"), "grace"),
        (lambda: due_runs(NIGHTLY, FIRED, datetime(2026, 1, 10), MisfirePolicy.skip()), "now"),
        (lambda: due_runs(NIGHTLY, datetime(2026, 1, 9), BACK, MisfirePolicy.skip()), "last_fired"),
        (lambda: due_runs(NIGHTLY, FIRED, BACK, "skip"), "misfire"),
        (lambda: due_runs(NIGHTLY, FIRED, BACK, MisfirePolicy.skip(), tolerance=-1), "tolerance"),
        (lambda: due_runs(NIGHTLY, FIRED, BACK, MisfirePolicy.skip(), duration=0), "duration"),
    ]:
        with pytest.raises(SchedulingError) as caught:
            make()
        assert caught.value.field == field, str(caught.value)
