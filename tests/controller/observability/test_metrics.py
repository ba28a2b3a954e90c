"""GET /metrics: Depot's figures read from the database at each scrape (so every controller process
answers the same), counts only, behind DEPOT_METRICS_TOKEN when it is set."""

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from depot.api import create_app
from depot.database.core import make_engine, make_sessionmaker, transaction, utcnow
from depot.deployments.models import Deployment, HostResult, Run, Step
from depot.observability.metrics import RUN_DURATION_BUCKETS, metrics_registry
from depot.orchestration.states import DeploymentOutcome, DeploymentState, HostStatus

D, H = DeploymentState, HostStatus
SECRET_NAMES = ("nightly-rollout-of-acme", "hidden-host-17", "run-worker-canary")


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(client) -> dict:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


@pytest.fixture
def anonymous(app):
    """A client without any token: Prometheus has none."""
    with TestClient(app) as c:
        yield c


def _deployment(session, state, *, outcome=None, next_run_at=None, name=SECRET_NAMES[0]) -> Deployment:
    d = Deployment(name=name, state=state, outcome=outcome)
    if next_run_at is not None:
        d.schedule_rrule, d.schedule_timezone, d.schedule_next_run_at = "FREQ=DAILY", "UTC", next_run_at
    session.add(d)
    session.flush()
    return d


@pytest.fixture
def populated(app):
    """Deployments in several states (some with overdue schedules), host results in every kind of
    waiting and finished, runs finished and running."""
    now = utcnow()
    with transaction(app.state.sessionmaker) as session:
        active = _deployment(session, D.ACTIVE)
        paused = _deployment(session, D.PAUSED)
        _deployment(session, D.DRAFT)
        _deployment(session, D.DRAFT, next_run_at=now - dt.timedelta(days=2))          # drafts never run
        _deployment(session, D.READY, next_run_at=now + dt.timedelta(hours=1))         # not due yet
        _deployment(session, D.READY, next_run_at=now - dt.timedelta(seconds=120))     # due, 2 min late
        _deployment(session, D.COMPLETED, outcome=DeploymentOutcome.SUCCESS,            # next run 5 min late
                    next_run_at=now - dt.timedelta(seconds=300))
        _deployment(session, D.COMPLETED, outcome=DeploymentOutcome.CANCELLED,          # cancelled: not rerun
                    next_run_at=now - dt.timedelta(days=1))
        steps = {}
        for d in (active, paused):
            steps[d.id] = Step(deployment_id=d.id, position=1, name="s")
            session.add(steps[d.id])
        session.flush()

        def result(d, n, status, next_attempt_at=None):
            session.add(HostResult(deployment_id=d.id, step_id=steps[d.id].id, position=1, host=f"{SECRET_NAMES[1]}-{n}",
                                   status=status, next_attempt_at=next_attempt_at))

        result(active, 1, H.READY)
        result(active, 2, H.READY)
        result(active, 3, H.READY, now - dt.timedelta(seconds=10))   # a retry that is due
        result(active, 4, H.READY, now + dt.timedelta(hours=1))      # a retry that is not
        result(active, 5, H.ACTIVE)
        result(active, 6, H.SUCCESS)
        result(active, 7, H.SUCCESS)
        result(active, 8, H.FAILED)
        result(paused, 1, H.READY)                                  # paused: nobody claims it

        def run(status, seconds, events, d=active):
            session.add(Run(deployment_id=d.id, step_id=steps[d.id].id, worker=SECRET_NAMES[2], status=status,
                            events=events, started_at=now - dt.timedelta(seconds=seconds or 30),
                            finished_at=None if seconds is None else now))

        run("successful", 59.5, 10)
        run("successful", 9.5, 3)
        run("failed", 4000, 5)
        run("running", None, 7)
    return app


def test_figures_from_the_database(populated, anonymous):
    m = scrape(anonymous)
    assert m[("depot_database_up", ())] == 1
    assert {state: m[("depot_deployments", (("state", state.value),))] for state in D} == {
        D.DRAFT: 2, D.READY: 2, D.ACTIVE: 1, D.PAUSED: 1, D.COMPLETED: 2, D.ARCHIVED: 0}
    assert {status: m[("depot_host_results", (("status", status.value),))] for status in H} == {
        **{status: 0 for status in H}, H.READY: 5, H.ACTIVE: 1, H.SUCCESS: 2, H.FAILED: 1}
    assert m[("depot_queue_depth", ())] == 3
    assert 300 <= m[("depot_scheduler_lag_seconds", ())] < 3600
    assert m[("depot_events_recorded_total", ())] == 25
    assert m[("depot_runs_in_progress", ())] == 1

    def bucket(status, le):
        return m[("depot_run_duration_seconds_bucket", (("le", le), ("status", status)))]

    assert m[("depot_run_duration_seconds_count", (("status", "successful"),))] == 2
    assert m[("depot_run_duration_seconds_sum", (("status", "successful"),))] == pytest.approx(69, abs=0.01)
    assert [bucket("successful", le) for le in ("5.0", "15.0", "30.0", "60.0", "120.0", "+Inf")] == [0, 1, 1, 2, 2, 2]
    assert [bucket("failed", le) for le in ("3600.0", "7200.0", "+Inf")] == [0, 1, 1]
    assert len([k for k in m if k[0] == "depot_run_duration_seconds_bucket"]) == 2 * (len(RUN_DURATION_BUCKETS) + 1)
    assert not any(labels and dict(labels).get("status") == "running" for name, labels in m if name.startswith("depot_run_"))


def test_only_counts_no_names(populated, anonymous):
    text = anonymous.get("/metrics").text
    for name in SECRET_NAMES:
        assert name not in text
    labels = {k for family in text_string_to_metric_families(text) if family.name.startswith("depot_")
              for s in family.samples for k in s.labels}
    assert labels <= {"state", "status", "le"}


def test_nothing_due_is_no_lag_and_an_empty_queue(anonymous):
    m = scrape(anonymous)
    assert (m[("depot_scheduler_lag_seconds", ())], m[("depot_queue_depth", ())]) == (0, 0)
    assert m[("depot_events_recorded_total", ())] == 0


def test_every_process_sees_what_another_one_did(settings, client):
    """Two controller processes (two apps, two engines) on one database: what is done through one is
    counted by a scrape of the other, as nothing is counted in a process's memory."""
    other = create_app(settings)
    with TestClient(other) as second:
        before = scrape(second)[("depot_deployments", (("state", "draft"),))]
        assert client.post("/api/v1/deployments", json={"name": "d", "steps": []}).status_code == 201
        assert scrape(second)[("depot_deployments", (("state", "draft"),))] == before + 1


def test_metrics_token_is_required_when_set(settings):
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr("m3trics-t0ken")}))
    with TestClient(app) as c:
        assert c.get("/metrics").status_code == 401
        r = c.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert "m3trics-t0ken" not in r.text
        assert c.get("/metrics", headers={"Authorization": "Basic m3trics-t0ken"}).status_code == 401
        r = c.get("/metrics", headers={"Authorization": "Bearer m3trics-t0ken"})
        assert r.status_code == 200 and "depot_queue_depth" in r.text


def test_metrics_is_outside_the_api_and_its_openapi_document(app, anonymous):
    assert "/metrics" not in app.openapi()["paths"] and "/api/v1/metrics" not in app.openapi()["paths"]
    assert anonymous.get("/api/v1/metrics").status_code in (401, 404)


def test_an_unreadable_database_is_reported_not_an_error(tmp_path):
    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"this is not an SQLite file" * 100)
    engine = make_engine(f"sqlite:///{broken}")
    try:
        m = samples(generate_latest(metrics_registry(make_sessionmaker(engine))).decode())
    finally:
        engine.dispose()
    assert m[("depot_database_up", ())] == 0
    assert not any(name.startswith("depot_") and name != "depot_database_up" for name, _ in m)
    assert any(name.startswith("process_") for name, _ in m)
