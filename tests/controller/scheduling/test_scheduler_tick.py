"""The scheduler tick with an injected clock, on SQLite and PostgreSQL: a due schedule starts its
ready deployment once, a draft never starts, and after a simulated outage the misfire rule decides
(missed occurrences coalesce into one run)."""

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from depot.database.core import transaction
from depot.deployments.models import Deployment, HostResult
from depot.orchestration.models import Transition
from depot.scheduling.tick import tick

UTC = timezone.utc
DAILY_9 = {"rrule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "timezone": "UTC", "start": "2030-03-01T00:00:00"}
FIRST = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def target(client, inventory):
    return client.post("/api/v1/targets", json={"name": "web", "kind": "group", "group": "web",
                                                "inventory": str(inventory)}).json()["id"]


@pytest.fixture
def scheduled(client, target):
    """Create a deployment with a schedule (and windows), made ready unless ready=False."""
    def make(schedule=DAILY_9, ready=True, **fields):
        r = client.post("/api/v1/deployments", json={
            "name": "scheduled", "schedule": schedule, **fields,
            "steps": [{"action": "script", "script": "true", "target_ids": [target]}]})
        assert r.status_code == 201, r.text
        if ready:
            assert client.post(f"/api/v1/deployments/{r.json()['id']}/ready").status_code == 200
        return r.json()["id"]
    return make


def run_tick(app, now):
    with transaction(app.state.sessionmaker) as session:
        return tick(session, now)


def stored(app, deployment_id):
    with transaction(app.state.sessionmaker) as session:
        d = session.get(Deployment, deployment_id)
        hosts = session.scalars(select(HostResult.host).where(HostResult.deployment_id == deployment_id)).all()
        return d.state.value, d.schedule_last_fired, d.schedule_next_run_at, sorted(hosts)


def test_a_due_schedule_starts_the_deployment_once(app, scheduled):
    deployment = scheduled()
    assert run_tick(app, FIRST - timedelta(minutes=1)) == []
    assert stored(app, deployment)[0] == "ready"

    assert run_tick(app, FIRST + timedelta(seconds=20)) == [deployment]
    state, last_fired, next_run_at, hosts = stored(app, deployment)
    assert (state, last_fired, next_run_at, hosts) == ("active", FIRST, FIRST + timedelta(days=1), ["web1", "web2"])
    with transaction(app.state.sessionmaker) as session:
        started = session.scalars(select(Transition).where(Transition.entity == "deployment",
                                                           Transition.entity_id == deployment,
                                                           Transition.to_state == "active")).all()
        assert [(t.cause, t.actor) for t in started] == [("started", "scheduler")]

    assert run_tick(app, FIRST + timedelta(seconds=20)) == []      # the same tick again: nothing more
    assert run_tick(app, FIRST + timedelta(days=1)) == []          # an active deployment is not restarted
    assert len(stored(app, deployment)[3]) == 2


def test_a_draft_is_never_started(app, scheduled):
    deployment = scheduled(ready=False)
    for now in (FIRST, FIRST + timedelta(seconds=5), FIRST + timedelta(days=3)):
        assert run_tick(app, now) == []
    assert stored(app, deployment)[0] == "draft" and stored(app, deployment)[3] == []


OUTAGE_END = FIRST + timedelta(days=1, hours=3)   # down from before the first occurrence to 3 h after the second


@pytest.mark.parametrize("misfire, started", [
    ({"misfire": "skip"}, False),
    ({"misfire": "run_late", "grace_seconds": 3600}, False),     # 3 h late, beyond the grace: skipped
    ({"misfire": "run_late", "grace_seconds": 4 * 3600}, True),  # within the grace: one run for both occurrences
])
def test_misfire_after_an_outage_follows_the_rule(app, scheduled, misfire, started):
    deployment = scheduled({**DAILY_9, **misfire})
    assert run_tick(app, OUTAGE_END) == ([deployment] if started else [])
    state, last_fired, next_run_at, hosts = stored(app, deployment)
    # Both missed occurrences are handled at once: fired as one run, or dropped.
    assert (state, last_fired, next_run_at) == ("active" if started else "ready", FIRST + timedelta(days=1),
                                                FIRST + timedelta(days=2))
    assert len(hosts) == (2 if started else 0)
    assert run_tick(app, OUTAGE_END + timedelta(minutes=1)) == []
    if not started:   # the next occurrence fires on time
        assert run_tick(app, FIRST + timedelta(days=2, seconds=30)) == [deployment]


def test_wait_for_window_defers_the_missed_run_to_the_next_window(app, scheduled):
    window = {"kind": "one_off", "start": "2030-03-02T14:00:00Z", "end": "2030-03-02T16:00:00Z"}
    deployment = scheduled({**DAILY_9, "misfire": "wait_for_window"}, windows=[window])
    assert run_tick(app, OUTAGE_END) == []
    state, last_fired, next_run_at, _ = stored(app, deployment)
    assert (state, next_run_at) == ("ready", datetime(2030, 3, 2, 14, 0, tzinfo=UTC))
    assert last_fired < FIRST                                      # nothing handled yet: the run is deferred
    assert run_tick(app, datetime(2030, 3, 2, 14, 0, 5, tzinfo=UTC)) == [deployment]
    assert stored(app, deployment)[:2] == ("active", FIRST + timedelta(days=1))


def test_run_late_does_not_fire_outside_the_windows(app, scheduled):
    """Down for a day: yesterday's occurrence does not fire outside a window, even within the grace."""
    deployment = scheduled({**DAILY_9, "misfire": "run_late", "grace_seconds": 2 * 86400},
                           exclusions=[{"kind": "one_off", "start": "2030-03-01T00:00:00Z",
                                        "end": "2030-03-02T12:00:00Z"}])
    assert run_tick(app, OUTAGE_END - timedelta(hours=2)) == []    # 10:00 on day 2, inside the freeze
    assert stored(app, deployment)[2] == datetime(2030, 3, 2, 12, 0, tzinfo=UTC)
    assert run_tick(app, datetime(2030, 3, 2, 12, 0, tzinfo=UTC)) == [deployment]


def test_concurrent_ticks_start_a_deployment_once(app, scheduled, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time; the advisory lock is a PostgreSQL matter")
    deployment = scheduled()
    now = FIRST + timedelta(seconds=10)
    results = []
    with transaction(app.state.sessionmaker) as first:
        results.append(tick(first, now))
        second = threading.Thread(target=lambda: results.append(run_tick(app, now)))
        second.start()
        second.join(timeout=1)
        assert second.is_alive()          # waits for the first tick's lock
    second.join(timeout=30)
    assert results == [[deployment], []]
    assert len(stored(app, deployment)[3]) == 2


def finish(app, deployment_id, statuses):
    """Complete the deployment with these host statuses, as the worker would."""
    from depot.orchestration import lifecycle
    from depot.orchestration.service import set_host_status
    from depot.orchestration.states import HostStatus

    with transaction(app.state.sessionmaker) as session:
        for row in session.scalars(select(HostResult).where(HostResult.deployment_id == deployment_id)):
            set_host_status(session, [row], HostStatus.ACTIVE, cause="claimed", actor="test")
            set_host_status(session, [row], HostStatus(statuses[row.host]), cause="result", actor="test", rc=0)
        lifecycle.settle(session, "test")


@pytest.mark.parametrize("rerun, again", [("unsuccessful", ["web2"]), ("always", ["web1", "web2"])])
def test_the_next_occurrence_of_a_recurring_schedule_runs_a_completed_deployment_again(app, scheduled, rerun, again):
    deployment = scheduled({**DAILY_9, "rerun": rerun})
    assert run_tick(app, FIRST) == [deployment]
    finish(app, deployment, {"web1": "success", "web2": "failed"})
    assert stored(app, deployment)[0] == "completed"
    assert run_tick(app, FIRST + timedelta(hours=5)) == []                   # not due again yet
    assert run_tick(app, FIRST + timedelta(days=1)) == [deployment]
    with transaction(app.state.sessionmaker) as session:
        d = session.get(Deployment, deployment)
        assert (d.state.value, d.outcome, d.finished_at) == ("active", None, None)
        rows = {r.host: r for r in session.scalars(select(HostResult).where(HostResult.deployment_id == deployment))}
        assert sorted(h for h, r in rows.items() if r.status.value == "ready") == again
        assert all(r.rc is None and r.reason == "rerun by its schedule" for h, r in rows.items() if h in again)
        causes = session.scalars(select(Transition.cause).where(Transition.entity == "deployment",
                                                                Transition.entity_id == deployment)).all()
        assert causes[-1] == "rerun by schedule"


def test_a_completed_deployment_with_nothing_to_run_again_stays_completed(app, scheduled):
    deployment = scheduled()
    run_tick(app, FIRST)
    finish(app, deployment, {"web1": "success", "web2": "success"})
    assert run_tick(app, FIRST + timedelta(days=1)) == []
    state, last_fired, _, _ = stored(app, deployment)
    assert (state, last_fired) == ("completed", FIRST + timedelta(days=1))   # the occurrence is handled


def test_a_cancelled_deployment_is_not_run_again(app, client, scheduled):
    deployment = scheduled()
    run_tick(app, FIRST)
    client.post(f"/api/v1/deployments/{deployment}/cancel")
    assert run_tick(app, FIRST + timedelta(days=1)) == []
    assert stored(app, deployment)[0] == "completed"


def test_a_tick_evaluates_only_what_may_be_due(app, client, scheduled, monkeypatch):
    """A tick costs what is due: deployments whose next run is still ahead are not evaluated; a
    change of windows makes the next tick work a deployment out again."""
    from depot.scheduling import tick as tick_module

    evaluated = []
    real = tick_module.due_runs
    monkeypatch.setattr(tick_module, "due_runs", lambda schedule, *a, **kw: evaluated.append(schedule) or real(
        schedule, *a, **kw))
    later = scheduled(schedule=dict(DAILY_9, rrule="FREQ=DAILY;BYHOUR=18;BYMINUTE=0"))
    due = scheduled()
    run_tick(app, FIRST - timedelta(minutes=1))
    assert evaluated == []                                # neither is due before 09:00
    assert run_tick(app, FIRST + timedelta(seconds=20)) == [due]
    assert len(evaluated) == 1                            # the 18:00 one was not looked at
    r = client.patch(f"/api/v1/deployments/{later}", json={"windows": [
        {"kind": "one_off", "start": "2030-03-01T17:00:00Z", "end": "2030-03-01T21:00:00Z"}]})
    assert r.status_code == 200, r.text
    assert stored(app, later)[2] is None                  # to be worked out again
    assert stored(app, later)[0] == "draft"               # an edit sends it back to draft
    assert client.post(f"/api/v1/deployments/{later}/ready").status_code == 200
    run_tick(app, FIRST + timedelta(minutes=1))
    assert len(evaluated) == 2 and stored(app, later)[2] == FIRST.replace(hour=18)
