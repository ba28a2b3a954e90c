"""The orchestration queues notifications in the transaction that changes a deployment: its
completion (completed + the outcome's event), a pause by the failure budget, and the failure-rate
threshold while it runs."""

import pytest
from sqlalchemy import select

from depot.database.core import transaction
from depot.deployments.models import Deployment, HostResult, Step
from depot.notifications.models import Delivery, Subscription
from depot.orchestration import lifecycle
from depot.orchestration.states import DeploymentState, HostStatus

H = HostStatus
EVENTS = ["deployment.completed", "deployment.succeeded", "deployment.failed", "deployment.cancelled",
          "deployment.paused", "deployment.threshold"]


@pytest.fixture
def factory(sessions):
    with transaction(sessions) as s:
        s.add(Subscription(name="ops", channel="email", address="ops@example.test", events=EVENTS,
                           threshold_percent=30, min_sample=2))
    return sessions


def deployment(factory, statuses, budget=None):
    with transaction(factory) as s:
        d = Deployment(name="d", state=DeploymentState.ACTIVE, failure_budget_percent=budget,
                       failure_budget_min_sample=2)
        d.steps = [Step(position=1, name="s1", action="script", script="true")]
        s.add(d)
        s.flush()
        for index, status in enumerate(statuses):
            s.add(HostResult(deployment_id=d.id, step_id=d.steps[0].id, position=1, host=f"h{index}", status=status))
        return d.id


def events(factory, deployment_id):
    with factory() as s:
        return sorted(s.scalars(select(Delivery.event).where(Delivery.deployment_id == deployment_id)))


def settle(factory):
    with transaction(factory) as s:
        lifecycle.settle(s, "worker:w")


def test_completion_queues_completed_and_its_outcome(factory):
    d = deployment(factory, [H.SUCCESS, H.SUCCESS])
    settle(factory)
    assert events(factory, d) == ["deployment.completed", "deployment.succeeded"]
    settle(factory)                       # completed once, notified once
    assert len(events(factory, d)) == 2


def test_a_budget_pause_and_the_threshold_are_notified_once(factory):
    d = deployment(factory, [H.FAILED, H.SUCCESS, H.READY], budget=40)
    settle(factory)
    settle(factory)
    with factory() as s:
        assert s.get(Deployment, d).state is DeploymentState.PAUSED
        [paused] = s.scalars(select(Delivery).where(Delivery.event == "deployment.paused")).all()
        assert "failure budget exceeded" in paused.payload["details"]["reason"]
    assert events(factory, d) == ["deployment.paused", "deployment.threshold"]
