"""Which rows a worker may claim, on SQLite and PostgreSQL; and on PostgreSQL, two workers
claiming at the same moment never take the same row."""

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from depot.database.core import transaction, utcnow
from depot.deployments.models import Deployment, HostResult, Step
from depot.execution.claims import claim
from depot.orchestration.states import DeploymentState, HostStatus

H = HostStatus
NOW = utcnow()


@pytest.fixture
def db(sessions):
    return sessions, sessions.kw["bind"].dialect.name == "postgresql"


def add_deployment(factory, hosts, steps=2, pipelined=False, limit=None):
    with transaction(factory) as s:
        d = Deployment(name="d", state=DeploymentState.ACTIVE, pipelined=pipelined, max_concurrent_hosts=limit)
        d.steps = [Step(position=p, name=f"s{p}", action="script", script="true") for p in range(1, steps + 1)]
        s.add(d)
        s.flush()
        for step in d.steps:
            for host in hosts:
                s.add(HostResult(deployment_id=d.id, step_id=step.id, position=step.position, host=host))
        return d.id


def take(db, capacity=100, worker="w1"):
    factory, postgres = db
    with transaction(factory) as s:
        batches = claim(s, worker, capacity, NOW, 60, postgres).batches
        return sorted((r.deployment_id, r.position, r.host) for b in batches for r in b.rows)


def set_status(factory, deployment_id, position, host, status):
    with transaction(factory) as s:
        row = s.scalar(select(HostResult).where(HostResult.deployment_id == deployment_id,
                                                HostResult.position == position, HostResult.host == host))
        row.status = status
        row.started_at = NOW


def test_step_two_waits_until_step_one_is_done_on_every_host(db):
    factory, _ = db
    d = add_deployment(factory, ["h1", "h2"])
    assert take(db) == [(d, 1, "h1"), (d, 1, "h2")]
    assert take(db) == []                        # step 1 still active
    set_status(factory, d, 1, "h1", H.SUCCESS)
    assert take(db) == []                        # h2 has not finished step 1
    set_status(factory, d, 1, "h2", H.FAILED)
    assert take(db) == [(d, 2, "h1"), (d, 2, "h2")]


def test_pipelined_hosts_move_on_alone(db):
    factory, _ = db
    d = add_deployment(factory, ["h1", "h2"], pipelined=True)
    assert take(db) == [(d, 1, "h1"), (d, 1, "h2")]
    set_status(factory, d, 1, "h1", H.SUCCESS)
    assert take(db) == [(d, 2, "h1")]


def test_a_host_acted_on_by_one_deployment_is_queued_behind_it(db):
    factory, _ = db
    first = add_deployment(factory, ["h1"])
    assert take(db) == [(first, 1, "h1")]
    second = add_deployment(factory, ["h1", "h2"], steps=1)
    assert take(db) == [(second, 1, "h2")]
    with factory() as s:
        waiting = s.scalar(select(HostResult).where(HostResult.deployment_id == second, HostResult.host == "h1"))
        assert (waiting.status, waiting.queued_behind, waiting.reason) == (H.READY, first, f"queued behind deployment {first}")
    set_status(factory, first, 1, "h1", H.SUCCESS)
    assert take(db) == [(first, 2, "h1")]        # the first deployment keeps the host for its step 2
    set_status(factory, first, 2, "h1", H.SUCCESS)
    assert take(db) == [(second, 1, "h1")]


def test_concurrency_limits(db):
    factory, _ = db
    d = add_deployment(factory, [f"h{i}" for i in range(6)], steps=1, limit=2)
    assert len(take(db)) == 2
    assert take(db) == []                        # the deployment's limit
    other = add_deployment(factory, [f"x{i}" for i in range(6)], steps=1)
    assert len(take(db, capacity=3)) == 3        # the worker's capacity
    assert all(row[0] == other for row in take(db, capacity=10))


def test_a_claim_in_progress_keeps_another_worker_off_its_hosts_in_other_deployments(db):
    """Worker A has claimed h000 for deployment 1 but not committed yet; worker B, looking at
    deployment 2 (rows A did not lock), must not take h000 too: B waits for A's pass."""
    factory, postgres = db
    if not postgres:
        pytest.skip("SQLite has one writer at a time; concurrent claims are a PostgreSQL matter")
    first = add_deployment(factory, [f"h{i:03d}" for i in range(100)], steps=1)   # exactly A's candidate window
    second = add_deployment(factory, ["h000"], steps=1)
    a_claimed, b_done, result = threading.Event(), threading.Event(), {}

    def worker_a():
        with transaction(factory) as s:
            result["a"] = [(r.deployment_id, r.host) for b in claim(s, "A", 1, NOW, 60, True).batches for r in b.rows]
            a_claimed.set()
            b_done.wait(2)          # hold the pass open: B runs meanwhile (or waits for us)

    def worker_b():
        a_claimed.wait(10)
        result["b"] = [(d, h) for d, _, h in take(db, capacity=200, worker="B")]
        b_done.set()

    threads = [threading.Thread(target=worker_a), threading.Thread(target=worker_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert result["a"] == [(first, "h000")]
    assert (second, "h000") not in result["b"]
    with factory() as s:
        waiting = s.scalar(select(HostResult).where(HostResult.deployment_id == second))
        assert (waiting.status, waiting.queued_behind) == (H.READY, first)


def test_not_due_cancelled_and_inactive_deployments_are_not_claimed(db):
    factory, _ = db
    d = add_deployment(factory, ["h1", "h2"], steps=1)
    with transaction(factory) as s:
        row = s.scalar(select(HostResult).where(HostResult.host == "h1"))
        row.next_attempt_at = NOW + dt.timedelta(seconds=30)
    assert take(db) == [(d, 1, "h2")]
    cancelled = add_deployment(factory, ["h3"], steps=1)
    draft = add_deployment(factory, ["h4"], steps=1)
    with transaction(factory) as s:
        s.get(Deployment, cancelled).cancel_requested = True
        s.get(Deployment, draft).state = DeploymentState.DRAFT
    assert take(db) == []


def test_two_workers_at_once_never_take_the_same_row(db):
    factory, postgres = db
    if not postgres:
        pytest.skip("SQLite has one writer at a time; concurrent claims are a PostgreSQL matter")
    hosts = [f"h{i:03d}" for i in range(200)]
    add_deployment(factory, hosts, steps=1)
    taken = {}
    barrier = threading.Barrier(2)

    def worker(name):
        barrier.wait()
        rows = []
        while True:
            got = take(db, capacity=7, worker=name)
            if not got:
                break
            rows += got
        taken[name] = rows

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("w1", "w2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    all_rows = taken["w1"] + taken["w2"]
    assert len(all_rows) == len(set(all_rows)) == 200
    assert taken["w1"] and taken["w2"]           # both got work
