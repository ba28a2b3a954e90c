"""Scheduling on the lab (DESIGN.md §3.4), through the real API and a real worker: a scheduled
deployment started by the scheduler tick inside its maintenance window while a host whose window
opens tomorrow waits for it; an offline host retried until it is back; a check-in that makes an
offline host's pending work due at once; Wake-on-LAN before the first contact; and a failure
budget that pauses a ring rollout before its next ring.

The API is the FastAPI app in-process (TestClient); a Worker on the same SQLite database is ticked
in a loop until the condition a test waits for holds. Package content is served from the lab
bridge (``lab.serve``); every effect is checked on the lab hosts themselves (marker files)."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from depot.api import create_app
from depot.config import Settings
from depot.database.core import transaction, utcnow
from depot.database.migrate import upgrade
from depot.deployments.models import HostResult
from depot.execution.worker import Worker
from tests.controller.auth import bearer
from depot.orchestration.models import Transition
from depot.scheduling.tick import tick
from tests.lab import HOST_INSTALLERS, Lab

pytestmark = pytest.mark.lab
UTC = dt.timezone.utc


def ok(response):
    assert response.status_code < 300, (response.status_code, response.text)
    return response.json()


def when(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value).astimezone(UTC)


def one_off(start: dt.datetime, end: dt.datetime) -> dict:
    return dict(kind="one_off", start=start.isoformat(), end=end.isoformat())


@dataclass
class Depot:
    """The API, a worker on its database, the lab, and a marker path of this test's own."""

    api: TestClient
    worker: Worker
    lab: Lab
    inventory: Path
    www: Path
    marker: str

    @property
    def factory(self):
        return self.api.app.state.sessionmaker

    def target(self, name: str, hosts: list[str], windows=()) -> int:
        return ok(self.api.post("/api/v1/targets", json=dict(
            name=name, kind="host", inventory=str(self.inventory), hosts=hosts, windows=list(windows))))["id"]

    def package(self, failing=()) -> int:
        """A script installer served from the lab bridge: `fail` on the ``failing`` hosts, else `ok`."""
        cases = f"  {'|'.join(failing)}) exec {HOST_INSTALLERS}/fail \"$1\" ;;\n" if failing else ""
        installer = (f"#!/bin/sh\ncase $(hostname) in\n{cases}  *) exec {HOST_INSTALLERS}/ok \"$1\" ;;\nesac\n").encode()
        name = f"setup-{uuid.uuid4().hex[:8]}"
        (self.www / name).write_bytes(installer)
        return ok(self.api.post("/api/v1/packages", json=dict(
            name="agent", version=name, platform="linux", installer_type="script",
            content_url=f"{self.lab.serve(self.www)}/{name}", content_sha256=hashlib.sha256(installer).hexdigest(),
            options=dict(install_command=["{installer}", self.marker],
                         detection=dict(rules=[dict(type="file", path=self.marker)])))))["id"]

    def deployment(self, targets: list[int], *, package: int | None = None, step=None, **fields) -> int:
        """A ready one-step deployment installing ``package`` (default: one that succeeds everywhere)."""
        created = ok(self.api.post("/api/v1/deployments", json=dict(name=f"d-{uuid.uuid4().hex[:6]}", **fields, steps=[
            dict(name="agent", action="package", package_id=package or self.package(), target_ids=targets,
                 execution_timeout=600, **(step or {}))])))
        ok(self.api.post(f"/api/v1/deployments/{created['id']}/ready"))
        return created["id"]

    def get(self, deployment_id: int) -> dict:
        return ok(self.api.get(f"/api/v1/deployments/{deployment_id}"))

    def rows(self, deployment_id: int) -> dict[str, dict]:
        """The report of a one-step deployment, by host."""
        report = ok(self.api.get(f"/api/v1/deployments/{deployment_id}/report", params=dict(page_size=100)))
        return {r["host"]: r for r in report["items"]}

    def row(self, deployment_id: int, host: str) -> HostResult:
        with self.factory() as s:
            return s.scalar(select(HostResult).where(HostResult.deployment_id == deployment_id, HostResult.host == host))

    def until(self, check, what: str, limit: float = 300):
        """Tick the worker until ``check()`` returns something true; return that."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.worker.tick()
            if result := check():
                return result
            time.sleep(0.5)
        raise AssertionError(f"not reached in {limit}s: {what}")

    def completed(self, deployment_id: int) -> dict:
        return self.until(lambda: (d := self.get(deployment_id))["state"] == "completed" and d,
                          f"deployment {deployment_id} completed")

    def installed(self, host: str) -> bool:
        return self.lab.host_path(host, self.marker).exists()


@pytest.fixture
def depot(tmp_path, lab, lab_inventory):
    settings = Settings(data_dir=tmp_path / "data", worker_name="w1", worker_forks=8, event_batch_seconds=0.2,
                        lease_seconds=120, lan_networks=[str(lab.subnet)])
    upgrade(settings.database_url)
    www = tmp_path / "www"
    www.mkdir()
    app = create_app(settings)
    with TestClient(app, headers=bearer(app)) as api:
        worker = Worker(api.app.state.sessionmaker, settings, api.app.state.keys)
        try:
            yield Depot(api, worker, lab, lab_inventory, www, f"/opt/depot-sched/{uuid.uuid4().hex[:10]}/agent")
        finally:
            worker.stop()
            worker.drain(60)
            lab.heal()


def test_a_scheduled_deployment_runs_in_its_window_and_a_host_outside_waits_for_the_next(depot):
    now = utcnow()
    open_now = depot.target("open now", ["h1", "h2", "h3"], [one_off(now - dt.timedelta(minutes=1),
                                                                       now + dt.timedelta(hours=2))])
    tomorrow = (now + dt.timedelta(days=1)).replace(second=0, microsecond=0)
    later = depot.target("tomorrow", ["h4"], [one_off(tomorrow, tomorrow + dt.timedelta(hours=2))])
    # Once, at a Berlin wall time two minutes from now (occurrences before the schedule was saved
    # never count); the tick is given the time just after it.
    berlin = (now + dt.timedelta(minutes=2)).astimezone(ZoneInfo("Europe/Berlin")).replace(microsecond=0)
    d = depot.deployment([open_now, later], schedule=dict(
        rrule="FREQ=DAILY;COUNT=1", timezone="Europe/Berlin", start=berlin.replace(tzinfo=None).isoformat(),
        misfire="run_late"))

    def scheduler_tick(at):
        with transaction(depot.factory) as session:
            return tick(session, at)

    assert scheduler_tick(now) == [] and depot.get(d)["state"] == "ready"
    assert scheduler_tick(berlin.astimezone(UTC) + dt.timedelta(seconds=5)) == [d]
    deployment = depot.get(d)
    assert deployment["state"] == "active" and when(deployment["schedule"]["last_fired"]) == berlin.astimezone(UTC)
    with depot.factory() as s:
        assert s.scalars(select(Transition.actor).where(Transition.entity == "deployment", Transition.entity_id == d,
                                                        Transition.to_state == "active")).all() == ["scheduler"]

    rows = depot.until(lambda: (r := depot.rows(d)) and all(r[h]["status"] == "success" for h in ("h1", "h2", "h3"))
                       and r["h4"]["status"] == "deferred" and r, "h1-h3 installed, h4 deferred")
    assert all(depot.installed(h) for h in ("h1", "h2", "h3")) and not depot.installed("h4")
    h4 = rows["h4"]
    assert "outside its maintenance windows" in h4["reason"] and f"starts at {tomorrow:%Y-%m-%d %H:%M} UTC" in h4["reason"]
    assert when(h4["next_attempt_at"]) == tomorrow and h4["started_at"] is None
    [pending] = ok(depot.api.get("/api/v1/hosts/h4"))["pending"]
    assert (pending["deployment_id"], pending["status"], pending["window_open_now"]) == (d, "deferred", False)
    assert when(pending["next_window_at"]) == tomorrow and when(pending["next_attempt_at"]) == tomorrow
    assert ok(depot.api.get("/api/v1/hosts/h1"))["pending"] == []

    cancelled = ok(depot.api.post(f"/api/v1/deployments/{d}/cancel"))
    assert (cancelled["state"], cancelled["outcome"]) == ("completed", "cancelled")
    assert {h: r["status"] for h, r in depot.rows(d).items()} == dict(h1="success", h2="success", h3="success",
                                                                      h4="cancelled")


def test_a_host_offline_at_the_start_succeeds_once_back_within_its_contact_timeout(depot, lab):
    d = depot.deployment([depot.target("lab", ["h1", "h2", "h3"])], step=dict(machine_contact_timeout=120))
    lab.offline("h3")
    ok(depot.api.post(f"/api/v1/deployments/{d}/start"))
    rows = depot.until(lambda: (r := depot.rows(d)) and r["h1"]["status"] == r["h2"]["status"] == "success"
                       and r["h3"]["contact_attempts"] >= 1 and r, "h1, h2 installed and h3 tried once")
    h3 = rows["h3"]
    assert h3["status"] == "ready" and "next contact attempt" in h3["reason"] and h3["next_attempt_at"]
    assert depot.installed("h1") and depot.installed("h2") and not depot.installed("h3")

    lab.online("h3")   # back before the contact timeout: the next contact attempt (30 s later) reaches it
    assert depot.completed(d)["outcome"] == "success"
    h3 = depot.rows(d)["h3"]
    assert h3["status"] == "success" and h3["contact_attempts"] >= 1 and depot.installed("h3")


def test_a_checkin_makes_an_offline_hosts_pending_work_due_at_once(depot, lab):
    d = depot.deployment([depot.target("lab", ["h5"])], step=dict(machine_contact_timeout=0))
    lab.offline("h5")
    ok(depot.api.post(f"/api/v1/deployments/{d}/start"))
    h5 = depot.until(lambda: (r := depot.rows(d)["h5"])["contact_attempts"] >= 1 and r, "h5 tried once")
    retry_at = when(h5["next_attempt_at"])
    assert h5["status"] == "ready" and f"next contact attempt at {retry_at:%H:%M:%S} UTC" in h5["reason"]
    assert retry_at > utcnow()   # waiting indefinitely, a contact attempt every 30 s

    url = "/api/v1/hosts/h5/checkin"
    other = ok(depot.api.get("/api/v1/hosts/h6/checkin-token"))["token"]
    for headers in ({}, {"Authorization": f"Bearer {other}"}, {"Authorization": "Bearer 4102444800.garbage"},
                    {"Authorization": "Bearer"}):
        assert depot.api.post(url, headers=headers).status_code == 401, headers
    host = ok(depot.api.get("/api/v1/hosts/h5"))
    assert (host["checkins"], host["last_checkin_at"]) == (0, None)
    assert when(depot.rows(d)["h5"]["next_attempt_at"]) == retry_at

    lab.online("h5")
    token = ok(depot.api.get("/api/v1/hosts/h5/checkin-token"))["token"]
    result = ok(depot.api.post(url, headers={"Authorization": f"Bearer {token}"}))
    assert (result["host"], result["pending"], result["started_now"]) == ("h5", 1, 1)
    assert depot.worker.tick() == 1          # claimed by the very next tick, not at the contact retry
    assert depot.completed(d)["outcome"] == "success"
    h5 = depot.rows(d)["h5"]
    assert h5["status"] == "success" and depot.installed("h5")
    assert when(h5["started_at"]) < retry_at
    host = ok(depot.api.get("/api/v1/hosts/h5"))
    assert host["checkins"] == 1 and host["pending"] == []


def test_wake_on_lan_reaches_the_offline_host_before_its_first_contact(depot, lab, lab_inventory):
    mac = yaml.safe_load(lab_inventory.read_text())["all"]["children"]["lab"]["hosts"]["h6"]["depot_mac"]
    port = 9009
    d = depot.deployment([depot.target("lab", ["h6"])], step=dict(
        machine_contact_timeout=0, wake_on_lan=dict(broadcast=lab.broadcast, port=port, boot_seconds=2)))
    lab.offline("h6")
    with lab.wol_listener("h6", port) as wol:
        ok(depot.api.post(f"/api/v1/deployments/{d}/start"))
        depot.worker.tick()
        packets = wol.wait(3, timeout=10)
    assert packets and set(packets) == {b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) * 16}
    row = depot.row(d, "h6")
    assert row.woken_at is not None and row.started_at is None
    assert row.next_attempt_at == row.woken_at + dt.timedelta(seconds=2)
    assert f"Wake-on-LAN sent to {mac}" in depot.rows(d)["h6"]["reason"]

    lab.online("h6")   # it booted
    assert depot.completed(d)["outcome"] == "success"
    row = depot.row(d, "h6")
    assert row.status.value == "success" and row.started_at >= row.woken_at + dt.timedelta(seconds=2)
    assert depot.installed("h6")


def test_a_blown_failure_budget_pauses_before_the_next_ring_then_resume_or_cancel(depot):
    package = depot.package(failing=("h1", "h2", "h5", "h6"))
    budget = dict(rings=["2"], failure_budget=dict(max_failure_percent=25, min_sample=2))
    resumed = depot.deployment([depot.target("a", ["h1", "h2", "h3", "h4"])], package=package, **budget)
    cancelled = depot.deployment([depot.target("b", ["h5", "h6", "h7", "h8"])], package=package, **budget)
    for d in (resumed, cancelled):
        ok(depot.api.post(f"/api/v1/deployments/{d}/start"))
    depot.until(lambda: all(depot.get(d)["state"] == "paused" for d in (resumed, cancelled)), "both paused")
    for _ in range(3):
        depot.worker.tick()
    for d, ring_one, ring_two in ((resumed, ("h1", "h2"), ("h3", "h4")), (cancelled, ("h5", "h6"), ("h7", "h8"))):
        deployment, rows = depot.get(d), depot.rows(d)
        assert deployment["state"] == "paused"
        assert "failure budget exceeded: 2 of 2 finished host results failed" in deployment["pause_reason"]
        assert all((rows[h]["status"], rows[h]["rc"], rows[h]["ring"]) == ("failed", 1603, 0) for h in ring_one)
        assert all((rows[h]["status"], rows[h]["ring"], rows[h]["started_at"]) == ("ready", 1, None) for h in ring_two), (
            {h: (rows[h]["status"], rows[h]["ring"], rows[h]["started_at"], rows[h]["reason"]) for h in ring_two})
        assert not any(depot.installed(h) for h in ring_one + ring_two)

    assert ok(depot.api.post(f"/api/v1/deployments/{resumed}/resume"))["state"] == "active"
    stopped = ok(depot.api.post(f"/api/v1/deployments/{cancelled}/cancel"))
    assert (stopped["state"], stopped["outcome"]) == ("completed", "cancelled")
    assert depot.completed(resumed)["outcome"] == "failed"
    rows = depot.rows(resumed)
    assert rows["h3"]["status"] == rows["h4"]["status"] == "success" and depot.installed("h3") and depot.installed("h4")
    rows = depot.rows(cancelled)
    assert rows["h7"]["status"] == rows["h8"]["status"] == "cancelled"
    assert not depot.installed("h7") and not depot.installed("h8")
