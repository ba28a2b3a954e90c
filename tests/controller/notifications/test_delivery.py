"""Sending: email to a real SMTP server, signed webhooks to a real HTTP receiver that verifies
them, retries with backoff on an injected clock, giving up after the last attempt, secrets kept
out of errors and logs, and concurrent passes on PostgreSQL sending each delivery once."""

import threading
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from depot.database.core import transaction, utcnow
from depot.deployments.models import Deployment
from depot.notifications import service
from depot.notifications.models import Delivery, Subscription

WEBHOOK_SECRET = "whsec-canary-5f1d3c9a"   # the receiver fixture's secret
SMTP_PASSWORD = "smtp-pw"                  # the SMTP server fixture's password


def subscribe(factory, keys, channel, address, events, secret=None, **fields):
    with transaction(factory) as session:
        subscription = Subscription(name=f"{channel}-{len(address)}-{events[0]}", channel=channel, address=address,
                                    events=events, secret=keys.encrypt(secret) if secret else None, **fields)
        session.add(subscription)
        session.flush()
        return subscription.id


def emit(factory, deployment_id, *events):
    with transaction(factory) as session:
        deployment = session.get(Deployment, deployment_id)
        return sum(service.emit(session, deployment, event) for event in events)


def deliveries(factory):
    with transaction(factory) as session:
        return session.scalars(select(Delivery).order_by(Delivery.id)).all()


@pytest.fixture
def quick(settings):
    """Settings with a short, known backoff and three attempts."""
    return settings.model_copy(update={"notification_backoff_seconds": 30.0, "notification_max_attempts": 3})


def test_an_email_about_a_failed_deployment(factory, keys, settings, smtp_server, make_deployment):
    deployment = make_deployment("Office rollout", {"pc1": "success", "pc2": "failed", "pc3": "failed",
                                                    "pc4": "unreachable"}, outcome="failed")
    subscribe(factory, keys, "email", "ops@example.com, lead@example.com", ["deployment.failed"])
    assert emit(factory, deployment, "deployment.completed", "deployment.failed") == 1
    smtp = settings.model_copy(update={"smtp_port": smtp_server.port, "smtp_from": "depot@depot.example"})

    assert service.deliver_due(factory, smtp, keys) == 1
    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "depot@depot.example"
    assert envelope.rcpt_tos == ["ops@example.com", "lead@example.com"]
    [message] = smtp_server.messages()
    assert message["Subject"] == f"[Depot] deployment {deployment} 'Office rollout' failed"
    assert message["X-Depot-Event"] == "deployment.failed"
    body = message.get_content()
    assert "Outcome:  failed" in body and "State:    completed" in body
    for line in ("  failed: 2", "  success: 1", "  unreachable: 1"):
        assert line in body
    [delivery] = deliveries(factory)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 1, None)
    assert f"Delivery {delivery.id}" in body
    assert service.deliver_due(factory, smtp, keys, now=utcnow() + timedelta(days=1)) == 0   # sent once


def test_smtp_login_and_a_refused_login(factory, keys, settings, smtp_server, make_deployment, caplog):
    caplog.set_level("DEBUG", logger="depot")
    deployment = make_deployment("Logged in", {"pc1": "success"}, outcome="success")
    subscribe(factory, keys, "email", "ops@example.com", ["deployment.completed"])
    emit(factory, deployment, "deployment.completed")
    wrong = settings.model_copy(update={"smtp_port": smtp_server.port, "smtp_username": "depot",
                                        "smtp_password": SecretStr(SMTP_PASSWORD + "-wrong")})
    now = utcnow()
    assert service.deliver_due(factory, wrong, keys, now=now) == 1
    [delivery] = deliveries(factory)
    assert delivery.status == "pending" and "SMTPAuthenticationError" in delivery.last_error
    assert SMTP_PASSWORD not in delivery.last_error and SMTP_PASSWORD not in caplog.text
    assert smtp_server.envelopes == []

    right = wrong.model_copy(update={"smtp_password": SecretStr(SMTP_PASSWORD)})
    later = now + timedelta(seconds=settings.notification_backoff_seconds)
    assert service.deliver_due(factory, right, keys, now=later) == 1
    assert deliveries(factory)[0].status == "delivered"
    assert smtp_server.messages()[0]["Subject"] == f"[Depot] deployment {deployment} 'Logged in' completed (success)"


def test_a_signed_webhook_is_verified_by_the_receiver(factory, keys, settings, receiver, make_deployment):
    deployment = make_deployment("Office rollout", {"pc1": "success"}, outcome="success")
    subscribe(factory, keys, "webhook", receiver.url, ["deployment.succeeded"], secret=WEBHOOK_SECRET)
    emit(factory, deployment, "deployment.succeeded")

    assert service.deliver_due(factory, settings, keys) == 1
    [(path, headers, body, ok)] = receiver.requests
    [delivery] = deliveries(factory)
    assert ok and delivery.status == "delivered"
    assert path == "/hooks/depot?token=query-canary"
    assert headers["X-Depot-Event"] == "deployment.succeeded" and headers["X-Depot-Delivery"] == str(delivery.id)
    assert headers["Content-Type"] == "application/json"
    assert receiver.accepted() == [delivery.payload]
    assert delivery.payload["deployment"]["outcome"] == "success"

    # The receiver's check is real: a tampered body, a wrong or missing signature, a stale timestamp fail.
    sent = {k: v for k, v in headers.items() if k.lower().startswith("x-depot") or k.lower() == "content-type"}
    for tampered_body, change in [(body.replace(b"success", b"failure"), {}),
                                  (body, {"X-Depot-Signature": "sha256=" + "0" * 64}),
                                  (body, {"X-Depot-Signature": ""}),
                                  (body, {"X-Depot-Timestamp": str(int(headers["X-Depot-Timestamp"]) - 301)})]:
        r = httpx.post(receiver.url, content=tampered_body, headers={**sent, **change})
        assert r.status_code == 401, change
    assert [ok for *_, ok in receiver.requests] == [True, False, False, False, False]


def test_a_receiver_with_another_secret_rejects_it(factory, keys, settings, receiver, make_deployment):
    deployment = make_deployment(outcome="failed")
    subscribe(factory, keys, "webhook", receiver.url, ["deployment.failed"], secret="not-the-receivers-secret")
    emit(factory, deployment, "deployment.failed")
    assert service.deliver_due(factory, settings, keys) == 1
    [delivery] = deliveries(factory)
    assert [ok for *_, ok in receiver.requests] == [False]
    assert delivery.status == "pending" and delivery.last_error.startswith("HTTP 401")


def test_retries_back_off_until_the_receiver_answers(factory, keys, quick, receiver, make_deployment):
    receiver.answers = [500, 500]
    deployment = make_deployment(outcome="failed")
    subscribe(factory, keys, "webhook", receiver.url, ["deployment.failed"], secret=WEBHOOK_SECRET)
    emit(factory, deployment, "deployment.failed")
    t0 = utcnow()

    assert service.deliver_due(factory, quick, keys, now=t0) == 1
    [d] = deliveries(factory)
    assert (d.status, d.attempts, d.next_attempt_at) == ("pending", 1, t0 + timedelta(seconds=30))
    assert d.last_error == f"HTTP 500 from {receiver.url.split('?')[0]}"      # no query string: it may hold a token
    assert service.deliver_due(factory, quick, keys, now=t0 + timedelta(seconds=29)) == 0

    assert service.deliver_due(factory, quick, keys, now=t0 + timedelta(seconds=30)) == 1
    [d] = deliveries(factory)
    assert (d.status, d.attempts, d.next_attempt_at) == ("pending", 2, t0 + timedelta(seconds=30 + 60))
    assert service.deliver_due(factory, quick, keys, now=t0 + timedelta(seconds=89)) == 0

    assert service.deliver_due(factory, quick, keys, now=t0 + timedelta(seconds=90)) == 1
    [d] = deliveries(factory)
    assert (d.status, d.attempts, d.last_error) == ("delivered", 3, None) and d.delivered_at is not None
    assert {h["X-Depot-Delivery"] for _p, h, _b, _ok in receiver.requests} == {str(d.id)}
    assert [ok for *_, ok in receiver.requests] == [True, True, True]
    assert len(receiver.accepted()) == 3


def test_after_the_last_attempt_the_delivery_failed(factory, keys, quick, receiver, make_deployment, caplog):
    caplog.set_level("DEBUG", logger="depot")   # (httpx's own request log is silenced by the depot command)
    receiver.answers = [503] * 10
    deployment = make_deployment(outcome="failed")
    subscribe(factory, keys, "webhook", receiver.url, ["deployment.failed"], secret=WEBHOOK_SECRET)
    closed = receiver.url.replace(receiver.url.split("/")[2], "127.0.0.1:1")      # nothing listens on port 1
    subscribe(factory, keys, "webhook", closed + "&more=1", ["deployment.failed"], secret=WEBHOOK_SECRET)
    emit(factory, deployment, "deployment.failed")
    now = utcnow()
    for attempt in range(1, 4):
        assert service.deliver_due(factory, quick, keys, now=now) == 2
        now += timedelta(seconds=service.backoff(quick, attempt))
    assert service.deliver_due(factory, quick, keys, now=now + timedelta(days=365)) == 0
    refused, connect_error = deliveries(factory)
    assert (refused.status, refused.attempts) == ("failed", 3) and refused.last_error.startswith("HTTP 503")
    assert (connect_error.status, connect_error.attempts) == ("failed", 3)
    assert connect_error.last_error.startswith("ConnectError")
    assert len(receiver.requests) == 3
    for text in (refused.last_error, connect_error.last_error, caplog.text):
        assert WEBHOOK_SECRET not in text and "query-canary" not in text
    assert "giving up" in caplog.text


def test_backoff_doubles_up_to_an_hour(quick):
    assert [service.backoff(quick, n) for n in (1, 2, 3, 4, 8, 20)] == [30, 60, 120, 240, 3600, 3600]


def test_concurrent_passes_send_each_delivery_once(database_url, factory, keys, settings, receiver, make_deployment):
    if not database_url.startswith("postgresql"):
        pytest.skip("several delivery processes run on PostgreSQL only")
    deployment = make_deployment(outcome="failed")
    for n in range(20):
        with transaction(factory) as session:
            session.add(Subscription(name=f"hook-{n}", channel="webhook", address=receiver.url,
                                     events=["deployment.failed"], secret=keys.encrypt(WEBHOOK_SECRET)))
    assert emit(factory, deployment, "deployment.failed") == 20
    start, attempted, errors = threading.Barrier(2), [], []

    def drain():
        try:
            start.wait()
            while n := service.deliver_due(factory, settings, keys, limit=3):
                attempted.append(n)
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(attempted) == 20
    ids = sorted(int(h["X-Depot-Delivery"]) for _p, h, _b, _ok in receiver.requests)
    assert ids == sorted(d.id for d in deliveries(factory))
    assert {d.status for d in deliveries(factory)} == {"delivered"}


def test_the_delivery_loop_goes_on_after_a_failed_pass(monkeypatch, factory, keys, settings):
    from depot import cli

    stop, calls = threading.Event(), []

    def deliver_due(sessions, settings_, keys_):
        calls.append(sessions)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        stop.set()
        return 0

    monkeypatch.setattr(service, "deliver_due", deliver_due)
    cli._delivery_loop(factory, settings.model_copy(update={"notification_interval": 0.001}), keys, stop)
    assert calls == [factory, factory]
