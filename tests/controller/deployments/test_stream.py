"""The live stream of a deployment (GET /deployments/{id}/stream, server-sent events), on SQLite and
PostgreSQL: host changes and counts as they are committed, the deployment's own state, the end once
it has finished, reconnecting with Last-Event-ID, transitions committed out of id order, the
stream's lifetime, auth, and no database connection held between polls.

The test plays the worker: it moves host results through depot.orchestration (the one place that
changes states and records transitions) in transactions of its own while the stream is open."""

import json
import queue
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from depot.database.core import transaction
from depot.deployments import stream
from depot.deployments.models import Deployment, HostResult
from depot.orchestration import lifecycle
from depot.orchestration.models import Transition
from depot.orchestration.service import set_host_status
from depot.orchestration.states import HostStatus
from tests.controller.auth import bearer

H = HostStatus
WAIT = 20   # seconds an expected event may take at most (a hung stream fails, it does not hang)


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr(stream, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(stream, "IDLE_POLL_SECONDS", 0.1)


@pytest.fixture
def deployment(client, inventory):
    """Started, one step on web1 and web2 (both ready)."""
    web = client.post("/api/v1/targets", json={"name": "web", "kind": "group", "group": "web",
                                               "inventory": str(inventory)}).json()["id"]
    d = client.post("/api/v1/deployments", json={"name": "live", "steps": [
        {"action": "script", "script": "install", "target_ids": [web], "name": "install"}]}).json()
    assert client.post(f"/api/v1/deployments/{d['id']}/ready").status_code == 200
    assert client.post(f"/api/v1/deployments/{d['id']}/start").json()["host_results"] == 2
    return d["id"]


class Events:
    """A stream read in a thread of its own: ``next()`` waits (bounded) for the next event."""

    def __init__(self, client, path, headers=None):
        self.queue = queue.Queue()
        self.status = None
        self.opened = threading.Event()
        self.headers = headers or {}
        self.context = client.stream("GET", path, headers=self.headers)
        self.response = None
        self.thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self):
        self.response = self.context.__enter__()
        self.status = self.response.status_code
        if self.status == 200:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.context.__exit__(*exc)

    def _read(self):
        event = {"event": "message", "data": [], "id": None}
        try:
            for line in self.response.iter_lines():
                if line == "":
                    if event["data"]:
                        self.queue.put({"event": event["event"], "id": event["id"],
                                        "data": json.loads("\n".join(event["data"]))})
                    event = {"event": "message", "data": [], "id": None}
                elif line.startswith(":"):
                    self.queue.put({"event": "comment", "id": None, "data": line})
                else:
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "data":
                        event["data"].append(value)
                    elif field in ("event", "id"):
                        event[field] = value
        except Exception as e:  # noqa: BLE001 - closing the response ends the read
            self.queue.put({"event": "error", "id": None, "data": repr(e)})
        self.queue.put({"event": "closed", "id": None, "data": None})

    def next(self, skip_comments=True):
        while True:
            try:
                event = self.queue.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no event within {WAIT}s") from None
            if not (skip_comments and event["event"] == "comment"):
                return event

    def until(self, predicate, what):
        """Events up to and including the first one that satisfies ``predicate``."""
        seen = []
        while True:
            event = self.next()
            seen.append(event)
            if predicate(event):
                return seen
            assert event["event"] not in ("closed", "end"), f"stream ended before {what}: {seen}"


def move(app, deployment_id, host, *targets, **fields):
    with transaction(app.state.sessionmaker) as session:
        row = session.scalar(select(HostResult).where(HostResult.deployment_id == deployment_id,
                                                      HostResult.host == host))
        for target in targets:
            set_host_status(session, [row], target, cause="test", actor="worker:test", **fields)


def hosts_of(events):
    return [(c["host"], c["from"], c["status"]) for e in events if e["event"] == "update" for c in e["data"]["hosts"]]


def test_host_changes_counts_and_the_end(app, client, deployment):
    with Events(client, f"/api/v1/deployments/{deployment}/stream") as events:
        assert events.status == 200
        assert events.response.headers["content-type"].startswith("text/event-stream")
        hello = events.next()
        assert hello["event"] == "hello" and hello["id"] is not None
        assert hello["data"]["deployment"]["state"] == "active" and hello["data"]["resumed"] is False
        assert hello["data"]["counts"] == {"ready": 2}
        assert hello["data"]["step_counts"] == {"1": {"ready": 2}}

        move(app, deployment, "web1", H.ACTIVE)
        seen = events.until(lambda e: e["event"] == "update", "web1 active")
        update = seen[-1]["data"]
        assert hosts_of(seen) == [("web1", "ready", "active")]
        assert update["counts"] == {"ready": 1, "active": 1}
        change = update["hosts"][0]
        assert change["position"] == 1 and change["cause"] == "test" and change["actor"] == "worker:test"
        assert int(seen[-1]["id"]) == change["t"] > int(hello["id"])

        move(app, deployment, "web1", H.SUCCESS, rc=0, outcome="success")
        move(app, deployment, "web2", H.ACTIVE, H.FAILED, rc=1603, outcome="failure", reason="installer failed")
        seen = events.until(lambda e: e["event"] == "update" and e["data"]["counts"] == {"success": 1, "failed": 1},
                            "both finished")
        assert hosts_of(seen) == [("web1", "active", "success"), ("web2", "ready", "active"), ("web2", "active", "failed")]
        web2 = [c for e in seen for c in e["data"]["hosts"] if c["status"] == "failed"][0]
        assert (web2["rc"], web2["outcome"], web2["reason"]) == (1603, "failure", "installer failed")

        with transaction(app.state.sessionmaker) as session:
            assert lifecycle.complete_if_done(session, session.get(Deployment, deployment), "worker:test")
        seen = events.until(lambda e: e["event"] == "end", "the end")
        assert seen[-1]["data"]["reason"] == "finished"
        assert seen[-1]["data"]["deployment"]["state"] == "completed"
        assert seen[-1]["data"]["deployment"]["outcome"] == "failed"
        changes = [c for e in seen if e["event"] == "update" for c in e["data"]["deployment_changes"]]
        assert [(c["from"], c["status"]) for c in changes] == [("active", "completed")]
        assert events.next()["event"] == "closed"


def test_a_reconnect_with_last_event_id_gets_what_it_missed(app, client, deployment):
    with Events(client, f"/api/v1/deployments/{deployment}/stream") as events:
        cursor = events.next()["id"]
    move(app, deployment, "web1", H.ACTIVE)
    move(app, deployment, "web2", H.ACTIVE)
    # Afresh: only what happens from now on.
    with Events(client, f"/api/v1/deployments/{deployment}/stream") as events:
        hello = events.next()
        assert hello["data"]["counts"] == {"active": 2} and hello["data"]["resumed"] is False
        move(app, deployment, "web1", H.SUCCESS)
        assert hosts_of(events.until(lambda e: e["event"] == "update", "web1")) == [("web1", "active", "success")]
    # Resumed from the first cursor: everything since, in order.
    with Events(client, f"/api/v1/deployments/{deployment}/stream", headers={"Last-Event-ID": cursor}) as events:
        hello = events.next()
        assert hello["data"]["resumed"] is True and hello["id"] == cursor
        seen = events.until(lambda e: e["event"] == "update", "the missed changes")
        assert hosts_of(seen) == [("web1", "ready", "active"), ("web2", "ready", "active"), ("web1", "active", "success")]
    # A Last-Event-ID that is not one of ours starts afresh.
    with Events(client, f"/api/v1/deployments/{deployment}/stream", headers={"Last-Event-ID": "x"}) as events:
        assert events.next()["data"]["resumed"] is False
        move(app, deployment, "web2", H.SUCCESS)
        assert hosts_of(events.until(lambda e: e["event"] == "update", "web2")) == [("web2", "active", "success")]


def test_a_transition_committed_after_a_newer_one_is_still_sent(app, client, deployment):
    """Two workers on PostgreSQL can commit transition ids out of order: the stream looks back."""
    with transaction(app.state.sessionmaker) as session:
        rows = {r.host: r for r in session.scalars(select(HostResult).where(HostResult.deployment_id == deployment))}
        newest = session.scalar(select(Transition.id).order_by(Transition.id.desc()).limit(1))

    def transition(ident, host):
        with transaction(app.state.sessionmaker) as session:
            session.add(Transition(id=ident, entity="host_result", entity_id=rows[host].id, from_state="ready",
                                   to_state="active", cause="late commit", actor="worker:test"))

    with Events(client, f"/api/v1/deployments/{deployment}/stream") as events:
        events.next()
        transition(newest + 1000, "web1")       # committed first, with the higher id
        seen = events.until(lambda e: e["event"] == "update", "the higher id")
        assert [c["t"] for c in seen[-1]["data"]["hosts"]] == [newest + 1000]
        transition(newest + 999, "web2")        # committed later, with the lower id
        seen = events.until(lambda e: e["event"] == "update", "the lower id")
        assert [(c["t"], c["host"]) for c in seen[-1]["data"]["hosts"]] == [(newest + 999, "web2")]
        assert int(seen[-1]["id"]) == newest + 1000     # the cursor never goes back


def test_the_stream_ends_after_its_lifetime_with_a_cursor(app, client, deployment, monkeypatch):
    monkeypatch.setattr(stream, "LIFETIME_SECONDS", 0.3)
    with Events(client, f"/api/v1/deployments/{deployment}/stream") as events:
        hello = events.next()
        seen = events.until(lambda e: e["event"] == "reconnect", "reconnect")
        assert seen[-1]["id"] == hello["id"]
        assert events.next()["event"] == "closed"


def test_a_finished_deployment_says_hello_and_ends(app, client, deployment):
    assert client.post(f"/api/v1/deployments/{deployment}/cancel").json()["state"] == "completed"
    with Events(client, f"/api/v1/deployments/{deployment}/stream") as events:
        hello = events.next()
        assert hello["data"]["deployment"]["outcome"] == "cancelled" and hello["data"]["counts"] == {"cancelled": 2}
        assert events.next()["event"] == "end"
        assert events.next()["event"] == "closed"


def test_auth_and_missing_deployments(app, deployment):
    with TestClient(app) as anonymous:
        r = anonymous.get(f"/api/v1/deployments/{deployment}/stream")
        assert r.status_code == 401 and "bearer token" in r.json()["detail"]
        r = anonymous.get(f"/api/v1/deployments/{deployment}/stream", params={"token": "dpt_x"})
        assert r.status_code == 401    # a token in the URL is not a way in
    with TestClient(app, headers=bearer(app, "viewer")) as viewer:
        assert viewer.get("/api/v1/deployments/999999/stream").status_code == 404
        with Events(viewer, f"/api/v1/deployments/{deployment}/stream") as events:
            assert events.status == 200 and events.next()["event"] == "hello"


def test_no_database_connection_is_held_between_polls(app, client, deployment, monkeypatch):
    checked_out = []
    real = stream.transaction

    def watched(factory):
        checked_out.append(app.state.engine.pool.checkedout())
        return real(factory)

    monkeypatch.setattr(stream, "transaction", watched)
    with Events(client, f"/api/v1/deployments/{deployment}/stream") as events:
        events.next()
        move(app, deployment, "web1", H.ACTIVE)
        events.until(lambda e: e["event"] == "update", "web1")
        polls, deadline = len(checked_out), time.monotonic() + WAIT
        while len(checked_out) < polls + 5:     # a few idle polls
            assert time.monotonic() < deadline, "the stream stopped polling"
            time.sleep(0.05)
    assert len(checked_out) >= 7
    assert set(checked_out) == {0}, checked_out
