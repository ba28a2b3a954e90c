"""The per-host conditions of a claim pass (DESIGN.md §3.4), on SQLite and PostgreSQL, with an
injected clock: maintenance windows of the deployment and of the targets (Deferred with the time
of the next window that fits), LAN only, rings with the failure budget between them,
Wake-on-LAN before the first contact, and the options a batch runs with."""

import datetime as dt
import ipaddress

import pytest
from sqlalchemy import select

from depot.database.core import transaction
from depot.deployments.models import Deployment, HostResult, Step
from depot.execution.claims import claim
from depot.hosts.models import Host
from depot.orchestration import lifecycle
from depot.orchestration.states import DeploymentState, HostStatus
from depot.scheduling.models import MaintenanceWindow
from depot.targets.models import Target

H = HostStatus
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LAN = [ipaddress.ip_network("10.213.0.0/16")]


@pytest.fixture
def db(sessions):
    return sessions, sessions.kw["bind"].dialect.name == "postgresql"


def add(factory, hosts, *, timeout=3600, windows=(), target_windows=(), rings=None, budget=None, **step):
    """An active one-step deployment over ``hosts`` (name -> address); returns its id."""
    with transaction(factory) as s:
        target = Target(name=f"t{id(hosts)}", kind="host", inventory="/dev/null", hosts=list(hosts))
        target.maintenance_windows = [MaintenanceWindow(kind="one_off", start_at=a, end_at=b) for a, b in target_windows]
        s.add(target)
        d = Deployment(name="d", state=DeploymentState.ACTIVE, failure_budget_percent=budget,
                       failure_budget_min_sample=2)
        d.maintenance_windows = [MaintenanceWindow(kind="one_off", start_at=a, end_at=b) for a, b in windows]
        d.steps = [Step(position=1, name="s1", action="script", script="true", execution_timeout=timeout, **step)]
        s.add(d)
        s.flush()
        for index, (host, address) in enumerate(hosts.items()):
            s.add(HostResult(deployment_id=d.id, step_id=d.steps[0].id, position=1, host=host, address=address,
                             targets=[target.id], ring=(rings or {}).get(host, 0), mac=f"52:54:00:00:00:{index:02x}"))
        return d.id


def take(db, now=NOW, lan=LAN):
    factory, postgres = db
    with transaction(factory) as s:
        claimed = claim(s, "w", 100, now, 60, postgres, lan)
        return ({r.host: b.options for b in claimed.batches for r in b.rows},
                [(w.host, w.mac) for w in claimed.wakes])


def rows(factory, deployment_id):
    with factory() as s:
        return {r.host: (r.status, r.reason, r.next_attempt_at)
                for r in s.scalars(select(HostResult).where(HostResult.deployment_id == deployment_id))}


def finish(factory, deployment_id, statuses):
    with transaction(factory) as s:
        for row in s.scalars(select(HostResult).where(HostResult.deployment_id == deployment_id,
                                                      HostResult.host.in_(list(statuses)))):
            row.status, row.finished_at = statuses[row.host], NOW


def test_a_host_outside_its_window_is_deferred_until_the_next_window_that_fits_the_timeout(db):
    factory, _ = db
    too_short = (NOW + dt.timedelta(hours=1), NOW + dt.timedelta(hours=1, minutes=30))   # 30 min < 1 h
    fits = (NOW + dt.timedelta(hours=3), NOW + dt.timedelta(hours=5))
    d = add(factory, {"h1": "10.213.1.1"}, windows=[too_short, fits])
    assert take(db) == ({}, [])
    status, reason, until = rows(factory, d)["h1"]
    assert status is H.DEFERRED and until == fits[0]
    assert "outside its maintenance windows" in reason and "2026-11-23 15:00 UTC" in reason
    # Deferred until then: woken by the worker's wake_due, claimed inside the window, and told when
    # the window closes, so that it does not reboot past it.
    with transaction(factory) as s:
        lifecycle.wake_due(s, fits[0], "test")
    taken, _ = take(db, now=fits[0])
    assert taken == {"h1": {"reboot_not_after": fits[1].isoformat()}}


def test_the_targets_windows_apply_as_well_as_the_deployments(db):
    factory, _ = db
    open_now = (NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=4))
    later = (NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=1, hours=2))
    d = add(factory, {"h1": "10.213.1.1"}, windows=[open_now], target_windows=[later])
    assert take(db) == ({}, [])
    assert rows(factory, d)["h1"][2] == later[0]


def test_with_no_windows_anywhere_a_host_runs_at_once_with_no_reboot_limit(db):
    factory, _ = db
    add(factory, {"h1": "10.213.1.1"})
    assert take(db) == ({"h1": {}}, [])


def test_lan_only_defers_a_host_whose_address_is_off_the_lan_and_a_checkin_address_counts(db):
    factory, _ = db
    d = add(factory, {"in": "10.213.1.1", "out": "192.0.2.7"}, network_condition="lan_only")
    taken, _ = take(db)
    assert list(taken) == ["in"]
    status, reason, until = rows(factory, d)["out"]
    assert status is H.DEFERRED and "not on the LAN" in reason and "192.0.2.7" in reason
    assert until == NOW + dt.timedelta(minutes=5)
    with transaction(factory) as s:   # it checked in from the LAN since
        s.add(Host(name="out", last_address="10.213.9.9", checkins=1))
        lifecycle.wake_due(s, until, "test")
    assert list(take(db, now=until)[0]) == ["out"]


def test_rings_go_one_after_another_and_a_blown_budget_pauses_before_the_next_ring(db):
    factory, _ = db
    hosts = {f"h{i}": f"10.213.1.{i}" for i in range(1, 6)}
    d = add(factory, hosts, rings={"h1": 0, "h2": 0, "h3": 1, "h4": 1, "h5": 1}, budget=40)
    assert sorted(take(db)[0]) == ["h1", "h2"]
    finish(factory, d, {"h1": H.SUCCESS})
    assert take(db)[0] == {}                      # ring 0 is not finished
    finish(factory, d, {"h2": H.FAILED})          # 1 of 2 failed: 50% > 40%
    assert take(db)[0] == {}
    with factory() as s:
        deployment = s.get(Deployment, d)
        assert deployment.state is DeploymentState.PAUSED
        assert "1 of 2 finished host results failed (50% > 40%)" in deployment.pause_reason
    with transaction(factory) as s:               # the operator resumes: that failure is acknowledged
        lifecycle.resume(s, s.get(Deployment, d), "operator")
    assert sorted(take(db)[0]) == ["h3", "h4", "h5"]


def test_within_budget_the_next_ring_starts(db):
    factory, _ = db
    d = add(factory, {"h1": "10.213.1.1", "h2": "10.213.1.2", "h3": "10.213.1.3"},
            rings={"h1": 0, "h2": 0, "h3": 1}, budget=50)
    take(db)
    finish(factory, d, {"h1": H.SUCCESS, "h2": H.FAILED})   # 50% is not more than 50%
    assert list(take(db)[0]) == ["h3"]


def test_wake_on_lan_is_sent_before_the_first_contact_then_the_boot_time_is_waited(db):
    factory, _ = db
    d = add(factory, {"h1": "10.213.1.1"}, wake_on_lan={"boot_seconds": 90})
    assert take(db) == ({}, [("h1", "52:54:00:00:00:00")])
    status, reason, until = rows(factory, d)["h1"]
    assert status is H.READY and until == NOW + dt.timedelta(seconds=90) and "Wake-on-LAN sent" in reason
    assert take(db, now=NOW + dt.timedelta(seconds=30)) == ({}, [])      # still booting, not woken twice
    assert take(db, now=until) == ({"h1": {}}, [])


def test_a_retry_after_reboot_runs_only_unless_the_boot_id_is_the_old_one(db):
    factory, _ = db
    d = add(factory, {"h1": "10.213.1.1"})
    with transaction(factory) as s:
        s.scalar(select(HostResult).where(HostResult.deployment_id == d)).wait_boot_id = "boot-1"
    assert take(db)[0] == {"h1": {"unless_boot_id": "boot-1"}}


def test_a_policys_lan_only_condition_applies_to_its_steps(db):
    factory, _ = db
    from depot.policies.models import Policy

    with transaction(factory) as s:
        policy = Policy(name="lan", state="published", category="script", script="true", network_condition="lan_only")
        s.add(policy)
        s.flush()
        policy_id = policy.id
    d = add(factory, {"out": "192.0.2.7"}, policy_id=policy_id)
    assert take(db) == ({}, [])
    assert "not on the LAN" in rows(factory, d)["out"][1]


def forks_and_hosts(db, capacity, per_fork, now=NOW):
    factory, postgres = db
    with transaction(factory) as s:
        return [(b.forks, sorted(r.host for r in b.rows)) for b in
                claim(s, "w", capacity, now, 60, postgres, LAN, hosts_per_fork=per_fork).batches]


def test_a_run_takes_hosts_per_fork_beyond_its_forks_when_their_windows_do_not_close(db):
    factory, _ = db
    add(factory, {f"h{i}": f"10.213.1.{i}" for i in range(1, 10)})
    # 2 free forks, 3 hosts per fork: one batch running 2 at a time, 6 hosts in it.
    assert forks_and_hosts(db, 2, 3) == [(2, [f"h{i}" for i in range(1, 7)])]
    assert forks_and_hosts(db, 0, 3) == []           # no free fork: nothing, queued or not
    assert forks_and_hosts(db, 5, 1) == [(3, ["h7", "h8", "h9"])]   # forks only as many as hosts


def test_hosts_whose_window_closes_wait_for_a_fork_of_their_own(db):
    factory, _ = db
    closes = (NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=3))
    add(factory, {f"h{i}": f"10.213.1.{i}" for i in range(1, 6)}, timeout=600, windows=[closes])
    # Queued in a run, a host could start after its window: each needs a free fork.
    assert forks_and_hosts(db, 2, 3) == [(2, ["h1", "h2"])]
