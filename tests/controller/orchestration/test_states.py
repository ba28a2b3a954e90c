"""Every allowed and every rejected transition, through the one service that applies them."""

import itertools

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from depot.database import models
from depot.deployments.models import Deployment, HostResult, Step
from depot.orchestration.models import Transition
from depot.orchestration.service import InvalidTransition, set_deployment_state, set_host_status
from depot.orchestration.states import (
    DEPLOYMENT_TRANSITIONS, HOST_TRANSITIONS, DeploymentOutcome, DeploymentState, HostStatus,
)


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    models.Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s


def make_deployment(session, state):
    d = Deployment(name="d", state=state)
    session.add(d)
    session.flush()
    return d


def make_host(session, status):
    d = make_deployment(session, DeploymentState.ACTIVE)
    step = Step(deployment_id=d.id, position=1, name="s", action="script", script="true")
    session.add(step)
    session.flush()
    row = HostResult(deployment_id=d.id, step_id=step.id, position=1, host="h1", status=status)
    session.add(row)
    session.flush()
    return row


DEPLOYMENT_PAIRS = list(itertools.product(DeploymentState, DeploymentState))
HOST_PAIRS = list(itertools.product(HostStatus, HostStatus))


@pytest.mark.parametrize("current, target", DEPLOYMENT_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in DEPLOYMENT_PAIRS])
def test_deployment_transition(session, current, target):
    d = make_deployment(session, current)
    outcome = DeploymentOutcome.SUCCESS if target is DeploymentState.COMPLETED else None
    if target in DEPLOYMENT_TRANSITIONS[current]:
        set_deployment_state(session, d, target, cause="test", actor="user:alice", outcome=outcome)
        assert d.state is target
        t = session.scalars(select(Transition).where(Transition.entity_id == d.id)).one()
        assert (t.from_state, t.to_state, t.cause, t.actor) == (current.value, target.value, "test", "user:alice")
    else:
        with pytest.raises(InvalidTransition, match=f"cannot go from {current.value} to {target.value}"):
            set_deployment_state(session, d, target, cause="test", actor="user:alice", outcome=outcome)
        assert d.state is current
        assert session.scalars(select(Transition)).all() == []


def test_documented_deployment_rules():
    D = DeploymentState
    assert D.ACTIVE not in DEPLOYMENT_TRANSITIONS[D.DRAFT]          # draft never runs
    assert D.DRAFT in DEPLOYMENT_TRANSITIONS[D.READY]               # an edit of a ready deployment returns it to draft
    assert DEPLOYMENT_TRANSITIONS[D.ARCHIVED] == frozenset()


def test_completed_needs_an_outcome_and_only_completed_has_one(session):
    d = make_deployment(session, DeploymentState.ACTIVE)
    with pytest.raises(InvalidTransition, match="outcome"):
        set_deployment_state(session, d, DeploymentState.COMPLETED, cause="t", actor="a")
    r = make_deployment(session, DeploymentState.READY)
    with pytest.raises(InvalidTransition, match="outcome"):
        set_deployment_state(session, r, DeploymentState.ACTIVE, cause="t", actor="a", outcome=DeploymentOutcome.FAILED)
    set_deployment_state(session, d, DeploymentState.COMPLETED, cause="t", actor="a", outcome=DeploymentOutcome.CANCELLED)
    assert (d.outcome, d.finished_at is not None) == (DeploymentOutcome.CANCELLED, True)


@pytest.mark.parametrize("current, target", HOST_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in HOST_PAIRS])
def test_host_transition(session, current, target):
    row = make_host(session, current)
    if target in HOST_TRANSITIONS[current]:
        set_host_status(session, [row], target, cause="event", actor="worker:w1", reason="because")
        assert (row.status, row.reason) == (target, "because")
        assert session.scalars(select(Transition)).one().to_state == target.value
    else:
        with pytest.raises(InvalidTransition, match=f"cannot go from {current.value} to {target.value}"):
            set_host_status(session, [row], target, cause="event", actor="worker:w1")
        assert row.status is current


def test_a_batch_with_one_invalid_row_changes_nothing(session):
    ok = make_host(session, HostStatus.READY)
    done = make_host(session, HostStatus.SUCCESS)
    with pytest.raises(InvalidTransition):
        set_host_status(session, [ok, done], HostStatus.ACTIVE, cause="claim", actor="worker:w1")
    assert (ok.status, done.status) == (HostStatus.READY, HostStatus.SUCCESS)
    assert session.scalars(select(Transition)).all() == []


def test_terminal_statuses_release_the_lease(session):
    row = make_host(session, HostStatus.ACTIVE)
    row.claimed_by = "w1"
    set_host_status(session, [row], HostStatus.SUCCESS, cause="ok", actor="worker:w1")
    assert (row.claimed_by, row.lease_expires_at, row.finished_at is not None) == (None, None, True)
