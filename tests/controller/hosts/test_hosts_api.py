"""Hosts through the API: per-host check-in tokens, check-ins that make a host's pending work due
at once (and refuse anyone without that host's token), and a host's pending steps with when its
maintenance windows next open."""

import datetime as dt

import pytest
from sqlalchemy import select

from depot.database.core import transaction
from depot.deployments.models import HostResult
from depot.orchestration.states import HostStatus

UTC = dt.timezone.utc
OPENS = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(days=30)


@pytest.fixture
def started(client, inventory):
    """An active deployment over web1 and web2 whose target has a window opening in 30 days."""
    window = {"kind": "one_off", "start": OPENS.isoformat(), "end": (OPENS + dt.timedelta(days=1)).isoformat()}
    web = client.post("/api/v1/targets", json={"name": "web", "kind": "group", "group": "web",
                                               "inventory": str(inventory), "windows": [window]}).json()
    assert dt.datetime.fromisoformat(web["windows"][0]["end"]) == OPENS + dt.timedelta(days=1)
    d = client.post("/api/v1/deployments", json={"name": "d", "steps": [
        {"action": "script", "script": "true", "target_ids": [web["id"]], "execution_timeout": 600}]}).json()
    client.post(f"/api/v1/deployments/{d['id']}/ready")
    assert client.post(f"/api/v1/deployments/{d['id']}/start").status_code == 200
    return d["id"]


def token(client, host):
    r = client.get(f"/api/v1/hosts/{host}/checkin-token")
    assert r.status_code == 200
    return r.json()["token"]


def test_a_checkin_makes_the_hosts_waiting_work_due_now(client, app, started):
    later = OPENS + dt.timedelta(days=400)
    with transaction(app.state.sessionmaker) as s:
        row = s.scalar(select(HostResult).where(HostResult.host == "web1"))
        row.next_attempt_at, row.reason = later, "offline; next contact attempt later"
    r = client.post("/api/v1/hosts/web1/checkin", headers={"Authorization": f"Bearer {token(client, 'web1')}"})
    assert r.status_code == 200, r.text
    assert (r.json()["pending"], r.json()["started_now"], r.json()["address"]) == (1, 1, "testclient")
    with app.state.sessionmaker() as s:
        row = s.scalar(select(HostResult).where(HostResult.host == "web1"))
        assert row.next_attempt_at < later and "checked in" in row.reason
    host = client.get("/api/v1/hosts/web1").json()
    assert (host["checkins"], host["last_address"]) == (1, "testclient")
    [pending] = host["pending"]
    assert (pending["deployment_id"], pending["window_open_now"]) == (started, False)
    assert dt.datetime.fromisoformat(pending["next_window_at"]) == OPENS


def test_a_checkin_wakes_a_deferred_host(client, app, started):
    with transaction(app.state.sessionmaker) as s:
        row = s.scalar(select(HostResult).where(HostResult.host == "web2"))
        row.status = HostStatus.DEFERRED
    r = client.post("/api/v1/hosts/web2/checkin", headers={"Authorization": f"Bearer {token(client, 'web2')}"})
    assert r.json()["started_now"] == 1
    with app.state.sessionmaker() as s:
        assert s.scalar(select(HostResult.status).where(HostResult.host == "web2")) is HostStatus.READY


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer garbage", "Basic x", "Bearer 99999999999.00", "other-host"])
def test_a_checkin_without_the_hosts_own_valid_token_is_refused_and_changes_nothing(client, started, table_counts,
                                                                                    header):
    if header == "other-host":
        header = f"Bearer {token(client, 'web2')}"
    before = table_counts()
    r = client.post("/api/v1/hosts/web1/checkin", headers={"Authorization": header} if header else {})
    assert r.status_code == 401 and "web1" in r.json()["detail"]
    assert table_counts() == before


def test_an_expired_token_is_refused(client, app, started):
    from depot.hosts.service import checkin_token

    expired, _ = checkin_token(app.state.keys, "web1", dt.datetime(2020, 1, 1, tzinfo=UTC), dt.timedelta(days=1))
    r = client.post("/api/v1/hosts/web1/checkin", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_a_host_name_that_is_not_a_name_is_refused(client):
    assert client.get("/api/v1/hosts/a%20b").status_code == 422
