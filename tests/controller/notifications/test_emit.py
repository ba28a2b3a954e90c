"""Queueing: which subscriptions an event reaches (deployment, policy and global scope), the
payload, and the failure-rate threshold (after min_sample, once)."""

from sqlalchemy import select

from depot.database.core import transaction
from depot.deployments.models import Deployment
from depot.notifications import service
from depot.notifications.models import Delivery, Subscription


def subscribe(factory, name, events=("deployment.failed",), **fields):
    with transaction(factory) as session:
        subscription = Subscription(name=name, channel="email", address=f"{name}@example.com", events=list(events),
                                    **fields)
        session.add(subscription)
        session.flush()
        return subscription.id


def emit(factory, deployment_id, event, details=None):
    with transaction(factory) as session:
        return service.emit(session, session.get(Deployment, deployment_id), event, details)


def check(factory, deployment_id):
    with transaction(factory) as session:
        return service.check_thresholds(session, session.get(Deployment, deployment_id))


def queued(factory):
    """{(subscription name, deployment id, event)} of every delivery."""
    with transaction(factory) as session:
        rows = session.execute(select(Subscription.name, Delivery.deployment_id, Delivery.event)
                               .join(Subscription, Subscription.id == Delivery.subscription_id)).all()
        return sorted(tuple(r) for r in rows)


def test_each_scope_gets_exactly_its_deliveries(factory, make_deployment, make_policy):
    agent, office = make_policy("agent"), make_policy("office")
    with_agent = make_deployment("with agent", {"h1": "failed"}, policy_id=agent, outcome="failed")
    with_office = make_deployment("with office", {"h1": "failed"}, policy_id=office, outcome="failed")
    inline = make_deployment("inline", {"h1": "failed"}, outcome="failed")
    subscribe(factory, "everything")
    subscribe(factory, "just-agent-deployment", deployment_id=with_agent)
    subscribe(factory, "agent-policy", policy_id=agent)
    subscribe(factory, "inline-deployment", deployment_id=inline)
    subscribe(factory, "switched-off", enabled=False)
    subscribe(factory, "only-successes", events=["deployment.succeeded"])

    assert emit(factory, with_agent, "deployment.failed") == 3
    assert emit(factory, with_office, "deployment.failed") == 1
    assert emit(factory, inline, "deployment.failed") == 2
    assert emit(factory, inline, "deployment.paused") == 0
    assert queued(factory) == sorted([
        ("everything", with_agent, "deployment.failed"), ("just-agent-deployment", with_agent, "deployment.failed"),
        ("agent-policy", with_agent, "deployment.failed"),
        ("everything", with_office, "deployment.failed"),
        ("everything", inline, "deployment.failed"), ("inline-deployment", inline, "deployment.failed"),
    ])


def test_the_payload(factory, make_deployment):
    deployment = make_deployment("Office rollout", {"a": "success", "b": "failed", "c": "failed", "d": "ready"},
                                 outcome="failed")
    subscribe(factory, "ops", events=["deployment.completed"])
    assert emit(factory, deployment, "deployment.completed", {"reason": "every host is done"}) == 1
    with transaction(factory) as session:
        delivery = session.scalars(select(Delivery)).one()
        stored = session.get(Deployment, deployment)
        assert (delivery.status, delivery.attempts, delivery.event) == ("pending", 0, "deployment.completed")
        assert delivery.payload == {
            "event": "deployment.completed",
            "deployment": {"id": deployment, "name": "Office rollout", "state": "completed", "outcome": "failed",
                           "started_at": stored.started_at.isoformat(), "finished_at": stored.finished_at.isoformat()},
            "counts": {"success": 1, "failed": 2, "ready": 1},
            "details": {"reason": "every host is done"},
            "sent_by": "depot",
            "delivery_id": delivery.id,
        }


def test_the_threshold_fires_once_and_only_after_min_sample(factory, make_deployment, set_statuses):
    hosts = [f"h{i:02}" for i in range(12)]
    deployment = make_deployment("wide", dict.fromkeys(hosts, "ready"))
    subscribe(factory, "at-40", events=["deployment.threshold"], threshold_percent=40, min_sample=5)
    subscribe(factory, "at-60", events=["deployment.threshold"], threshold_percent=60, min_sample=5)
    subscribe(factory, "other", events=["deployment.threshold"], threshold_percent=1,
              deployment_id=make_deployment("other"))
    assert check(factory, deployment) == 0

    set_statuses(deployment, {"h00": "failed", "h01": "unreachable"})      # 2 of 2 finished failed: too few
    assert check(factory, deployment) == 0
    set_statuses(deployment, {"h02": "success", "h03": "success", "h04": "active"})   # 2 of 4
    assert check(factory, deployment) == 0
    set_statuses(deployment, {"h04": "success_reboot_pending"})           # 2 of 5 = 40 %
    assert check(factory, deployment) == 1
    assert check(factory, deployment) == 0                                # once
    set_statuses(deployment, {"h05": "cancelled", "h06": "cancelled", "h07": "inconclusive"})  # not finished
    assert check(factory, deployment) == 0
    set_statuses(deployment, {"h08": "unknown", "h09": "failed", "h10": "failed"})   # 5 of 8 = 62.5 %
    assert check(factory, deployment) == 1
    set_statuses(deployment, {"h11": "failed"})
    assert check(factory, deployment) == 0
    assert queued(factory) == [("at-40", deployment, "deployment.threshold"),
                               ("at-60", deployment, "deployment.threshold")]
    with transaction(factory) as session:
        details = [d.payload["details"] for d in session.scalars(select(Delivery).order_by(Delivery.id))]
    assert details == [{"failure_rate_percent": 40.0, "threshold_percent": 40, "failing": 2, "finished": 5},
                       {"failure_rate_percent": 62.5, "threshold_percent": 60, "failing": 5, "finished": 8}]


def test_a_duplicate_threshold_insert_does_nothing(factory, make_deployment):
    """What keeps two concurrent settle passes from failing on the unique constraint."""
    deployment = make_deployment()
    subscription_id = subscribe(factory, "t", events=["deployment.threshold"], threshold_percent=10)
    with transaction(factory) as session:
        subscription = session.get(Subscription, subscription_id)
        key = f"deployment.threshold:{deployment}"
        assert service._queue(session, subscription, "deployment.threshold", {}, deployment, key) is not None
        assert service._queue(session, subscription, "deployment.threshold", {}, deployment, key) is None
        assert service._queue(session, subscription, "deployment.failed", {}, deployment) is not None
        assert service._queue(session, subscription, "deployment.failed", {}, deployment) is not None
    assert len(queued(factory)) == 3


def test_deleting_a_deployment_removes_its_subscriptions_and_keeps_other_deliveries(factory, make_deployment):
    deployment = make_deployment(outcome="failed")
    subscribe(factory, "everything")
    subscribe(factory, "this-one", deployment_id=deployment)
    assert emit(factory, deployment, "deployment.failed") == 2
    with transaction(factory) as session:
        session.delete(session.get(Deployment, deployment))
    with transaction(factory) as session:
        assert session.scalars(select(Subscription.name)).all() == ["everything"]
        [delivery] = session.scalars(select(Delivery)).all()
        assert delivery.deployment_id is None and delivery.payload["deployment"]["id"] == deployment
