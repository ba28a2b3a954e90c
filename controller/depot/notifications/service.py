"""Notifications: subscriptions, the outbox of deliveries, and the sender.

The orchestration code queues deliveries with :func:`emit` and :func:`check_thresholds` inside the
transaction that changes the deployment, so a notification exists exactly when its change was
committed. :func:`deliver_due` sends them later, outside any transaction, at least once: a
delivery is retried with exponential backoff until ``notification_max_attempts``, and one whose
sender died mid-send is sent again after ``CLAIM_SECONDS``.

Email goes over SMTP (``smtp_*`` settings). A webhook is an HTTP POST of the JSON payload with

    Content-Type: application/json
    X-Depot-Event: deployment.failed
    X-Depot-Delivery: 42                   (the delivery id; the same on every retry)
    X-Depot-Timestamp: 1767225600          (unix seconds when this attempt was signed)
    X-Depot-Signature: sha256=<hex>

where ``<hex>`` is HMAC-SHA256, keyed with the subscription's secret (UTF-8), of the timestamp,
a dot and the exact body bytes. A receiver verifies it like this::

    import hashlib, hmac, time

    def verify(secret: str, headers, body: bytes, tolerance: int = 300) -> bool:
        timestamp = headers["X-Depot-Timestamp"]
        expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                                        hashlib.sha256).hexdigest()
        return (hmac.compare_digest(expected, headers.get("X-Depot-Signature", ""))
                and abs(time.time() - int(timestamp)) <= tolerance)   # rejects replays older than 5 minutes

and, since delivery is at least once, treats X-Depot-Delivery as an idempotency key. Any 2xx
answer means delivered; anything else, a timeout or a connection error is retried.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import urlsplit

import httpx
from sqlalchemy import and_, or_, select
from sqlalchemy import update as update_rows
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from depot.config import Settings
from depot.database.core import transaction, utcnow
from depot.deployments.models import Deployment, Step
from depot.errors import Conflict, Invalid, not_found
from depot.notifications.models import Delivery, Subscription
from depot.notifications.schemas import (
    SubscriptionCreate, SubscriptionFields, SubscriptionRead, SubscriptionUpdate,
)
from depot.orchestration.counts import finished_and_failed, status_counts
from depot.policies.models import Policy
from depot.schemas import validate_merged
from depot.security import Keys

log = logging.getLogger("depot.notifications")

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
THRESHOLD = "deployment.threshold"
CLAIM_SECONDS = 300     # longer than any one send (timeouts are 10 s): a claimed delivery is not due before
MAX_BACKOFF_SECONDS = 3600
WEBHOOK_TIMEOUT = 10.0
FIELDS = tuple(SubscriptionFields.model_fields)
EMAIL = re.compile(r"[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")


# --- subscriptions -------------------------------------------------------------------------------

def get(session: Session, subscription_id: int, *, for_update: bool = False) -> Subscription:
    subscription = session.get(Subscription, subscription_id, with_for_update=for_update)
    if subscription is None:
        raise not_found("subscription", subscription_id)
    return subscription


def list_statement(channel: str | None = None, deployment_id: int | None = None, policy_id: int | None = None):
    statement = select(Subscription).order_by(Subscription.id)
    if channel:
        statement = statement.where(Subscription.channel == channel)
    if deployment_id is not None:
        statement = statement.where(Subscription.deployment_id == deployment_id)
    if policy_id is not None:
        statement = statement.where(Subscription.policy_id == policy_id)
    return statement


def read(subscription: Subscription) -> SubscriptionRead:
    """The response body: everything but the secret, which shows only as has_secret."""
    return SubscriptionRead(
        id=subscription.id, name=subscription.name, channel=subscription.channel, address=subscription.address,
        events=subscription.events, deployment_id=subscription.deployment_id, policy_id=subscription.policy_id,
        threshold_percent=subscription.threshold_percent, min_sample=subscription.min_sample,
        enabled=subscription.enabled, has_secret=subscription.secret is not None,
        created_at=subscription.created_at, updated_at=subscription.updated_at)


def _check(session: Session, data: SubscriptionFields, has_secret: bool, subscription_id: int | None = None) -> str:
    """What the schema cannot check; returns the address in its stored form."""
    existing = session.scalar(select(Subscription.id).where(Subscription.name == data.name))
    if existing is not None and existing != subscription_id:
        raise Conflict(f"name: subscription {existing} is already named {data.name!r}")
    errors = []
    address = data.address.strip()
    if data.channel == "email":
        emails = [a.strip() for a in address.split(",")]
        bad = [a for a in emails if not EMAIL.fullmatch(a)]
        if bad:
            errors.append((["body", "address"], f"not an email address: {bad[0]!r}"))
        address = ", ".join(emails)
        if has_secret:
            errors.append((["body", "secret"], "only a webhook has a secret"))
    else:
        if not _is_http_url(address):
            errors.append((["body", "address"], "a webhook address must be an http:// or https:// URL with a host"))
        if not has_secret:
            errors.append((["body", "secret"], "a webhook needs a signing secret"))
    if THRESHOLD in data.events and data.threshold_percent is None:
        errors.append((["body", "threshold_percent"], f"required with the event {THRESHOLD} (1..100)"))
    if THRESHOLD not in data.events and data.threshold_percent is not None:
        errors.append((["body", "threshold_percent"], f"only goes with the event {THRESHOLD}"))
    if data.deployment_id is not None and data.policy_id is not None:
        errors.append((["body", "policy_id"], "a subscription is scoped to a deployment or to a policy, not both"))
    elif data.deployment_id is not None and session.get(Deployment, data.deployment_id) is None:
        errors.append((["body", "deployment_id"], f"deployment {data.deployment_id} does not exist"))
    elif data.policy_id is not None and session.get(Policy, data.policy_id) is None:
        errors.append((["body", "policy_id"], f"policy {data.policy_id} does not exist"))
    if errors:
        raise Invalid(errors)
    return address


def _is_http_url(address: str) -> bool:
    try:
        url = urlsplit(address)
        url.port   # raises ValueError when the port is not a number in range
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.hostname) and not any(c.isspace() for c in address)


def _apply(subscription: Subscription, data: SubscriptionFields, address: str) -> None:
    for field in FIELDS:
        setattr(subscription, field, getattr(data, field))
    subscription.address = address
    subscription.events = list(dict.fromkeys(data.events))


def create(session: Session, keys: Keys, data: SubscriptionCreate) -> Subscription:
    fields = SubscriptionFields.model_validate(data.model_dump(exclude={"secret"}))
    address = _check(session, fields, data.secret is not None)
    subscription = Subscription()
    _apply(subscription, fields, address)
    if data.secret is not None:
        subscription.secret = keys.encrypt(data.secret.get_secret_value())
    session.add(subscription)
    session.flush()
    return subscription


def update(session: Session, keys: Keys, subscription: Subscription, data: SubscriptionUpdate) -> Subscription:
    changes = data.model_dump(exclude_unset=True, exclude={"secret"})
    nulls = [f for f in ("name", "channel", "address", "events", "min_sample", "enabled")
             if f in changes and changes[f] is None]
    if nulls:
        raise Invalid([(["body", f], f"{f} cannot be null") for f in nulls])
    current = {f: getattr(subscription, f) for f in FIELDS}
    if THRESHOLD not in changes.get("events", current["events"]) and "threshold_percent" not in changes:
        current["threshold_percent"] = None     # dropping the event drops its threshold
    merged = validate_merged(SubscriptionFields, {**current, **changes})
    keeps_secret = merged.channel == "webhook" and subscription.secret is not None
    address = _check(session, merged, data.secret is not None or keeps_secret, subscription.id)
    _apply(subscription, merged, address)
    if data.secret is not None:
        subscription.secret = keys.encrypt(data.secret.get_secret_value())
    elif merged.channel == "email":
        subscription.secret = None
    session.flush()
    return subscription


def delete(session: Session, subscription: Subscription) -> None:
    session.delete(subscription)   # its deliveries go with it (ON DELETE CASCADE)
    session.flush()


# --- queueing (inside the caller's transaction) --------------------------------------------------

def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _value(value):
    return getattr(value, "value", value)


def _matching(session: Session, deployment: Deployment, event: str) -> list[Subscription]:
    """Enabled subscriptions to ``event`` of this deployment: its own, its steps' policies', global ones."""
    policies = select(Step.policy_id).where(Step.deployment_id == deployment.id, Step.policy_id.is_not(None))
    subscriptions = session.scalars(select(Subscription).where(
        Subscription.enabled.is_(True),
        or_(Subscription.deployment_id == deployment.id, Subscription.policy_id.in_(policies),
            and_(Subscription.deployment_id.is_(None), Subscription.policy_id.is_(None))),
    ).order_by(Subscription.id)).all()
    return [s for s in subscriptions if event in s.events]


def _queue(session: Session, subscription: Subscription, event: str, payload: dict,
           deployment_id: int | None = None, dedup_key: str | None = None) -> int | None:
    """Insert a pending delivery; None when one with this dedup_key exists (also when a concurrent
    transaction inserted it: the insert does nothing instead of failing the caller's transaction)."""
    now = utcnow()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    delivery_id = session.scalar(
        insert(Delivery).values(subscription_id=subscription.id, event=event, deployment_id=deployment_id,
                                dedup_key=dedup_key, payload=payload, status=PENDING, attempts=0,
                                next_attempt_at=now, created_at=now)
        .on_conflict_do_nothing(index_elements=["subscription_id", "dedup_key"]).returning(Delivery.id))
    if delivery_id is not None:
        session.execute(update_rows(Delivery).where(Delivery.id == delivery_id)
                        .values(payload={**payload, "delivery_id": delivery_id}))
    return delivery_id


def _payload(session: Session, deployment: Deployment, event: str, details: dict | None) -> dict:
    return {
        "event": event,
        "deployment": {"id": deployment.id, "name": deployment.name, "state": _value(deployment.state),
                       "outcome": _value(deployment.outcome), "started_at": _iso(deployment.started_at),
                       "finished_at": _iso(deployment.finished_at)},
        "counts": {status.value: n for status, n in status_counts(session, deployment.id).items()},
        "details": details or {},
        "sent_by": "depot",
    }


def emit(session: Session, deployment: Deployment, event: str, details: dict | None = None) -> int:
    """Queue ``event`` of ``deployment`` for every enabled subscription that matches; returns how
    many deliveries were queued. Call it in the transaction that changes the deployment."""
    session.flush()
    subscriptions = _matching(session, deployment, event)
    if not subscriptions:
        return 0
    payload = _payload(session, deployment, event, details)
    return sum(_queue(session, s, event, payload, deployment.id) is not None for s in subscriptions)


def check_thresholds(session: Session, deployment: Deployment) -> int:
    """Queue deployment.threshold for each matching subscription whose failure rate is reached
    (failed + unreachable + unknown over finished hosts, cancelled ones not counted) once at least
    min_sample hosts finished; at most once per (subscription, deployment). Returns how many queued."""
    session.flush()
    subscriptions = _matching(session, deployment, THRESHOLD)
    if not subscriptions:
        return 0
    finished, failing = finished_and_failed(status_counts(session, deployment.id))
    queued = 0
    for subscription in subscriptions:
        if finished < subscription.min_sample or failing * 100 < subscription.threshold_percent * finished:
            continue
        key = f"{THRESHOLD}:{deployment.id}"
        if session.scalar(select(Delivery.id).where(Delivery.subscription_id == subscription.id,
                                                    Delivery.dedup_key == key)) is not None:
            continue
        details = {"failure_rate_percent": round(failing * 100 / finished, 1),
                   "threshold_percent": subscription.threshold_percent, "failing": failing, "finished": finished}
        payload = _payload(session, deployment, THRESHOLD, details)
        queued += _queue(session, subscription, THRESHOLD, payload, deployment.id, key) is not None
    return queued


def queue_test(session: Session, subscription: Subscription) -> Delivery:
    """A "test" delivery to check the address (and the receiver's signature check)."""
    payload = {"event": "test", "deployment": None, "counts": {}, "sent_by": "depot",
               "details": {"subscription": subscription.name, "message": "a test notification from Depot"}}
    return session.get(Delivery, _queue(session, subscription, "test", payload))


def deliveries_statement(status: str | None = None, deployment_id: int | None = None,
                         subscription_id: int | None = None):
    statement = select(Delivery).order_by(Delivery.id)
    if status:
        statement = statement.where(Delivery.status == status)
    if deployment_id is not None:
        statement = statement.where(Delivery.deployment_id == deployment_id)
    if subscription_id is not None:
        statement = statement.where(Delivery.subscription_id == subscription_id)
    return statement


# --- sending -------------------------------------------------------------------------------------

@dataclass
class _Job:
    id: int
    attempts: int
    payload: dict
    channel: str
    address: str
    secret: bytes | None


def deliver_due(factory: sessionmaker[Session], settings: Settings, keys: Keys, now: dt.datetime | None = None,
                limit: int = 50) -> int:
    """Send up to ``limit`` pending deliveries due at ``now`` (default: the current time); returns
    how many were attempted. Claiming is a short transaction (FOR UPDATE SKIP LOCKED on PostgreSQL,
    so concurrent passes never take the same delivery), sending happens outside any transaction,
    and each outcome is recorded in a transaction of its own."""
    now = now or utcnow()
    jobs = _claim(factory, now, limit)
    for job in jobs:
        _record(factory, settings, job, _send(job, settings, keys), now)
    return len(jobs)


def _claim(factory: sessionmaker[Session], now: dt.datetime, limit: int) -> list[_Job]:
    with transaction(factory) as session:
        due = session.execute(
            select(Delivery.id, Delivery.attempts).where(Delivery.status == PENDING, Delivery.next_attempt_at <= now)
            .order_by(Delivery.next_attempt_at, Delivery.id).limit(limit).with_for_update(skip_locked=True)).all()
        claimed = []
        for delivery_id, attempts in due:
            # Compare-and-set on attempts: SQLite has no row locks, a second pass must not claim it again.
            result = session.execute(
                update_rows(Delivery).where(Delivery.id == delivery_id, Delivery.attempts == attempts,
                                       Delivery.status == PENDING)
                .values(attempts=attempts + 1, next_attempt_at=now + dt.timedelta(seconds=CLAIM_SECONDS))
                .execution_options(synchronize_session=False))
            if result.rowcount == 1:
                claimed.append(delivery_id)
        rows = session.execute(select(Delivery, Subscription).join(Subscription)
                               .where(Delivery.id.in_(claimed)).order_by(Delivery.id)).all()
        return [_Job(d.id, d.attempts, d.payload, s.channel, s.address, s.secret) for d, s in rows]


def _record(factory: sessionmaker[Session], settings: Settings, job: _Job, error: str | None,
            now: dt.datetime) -> None:
    with transaction(factory) as session:
        delivery = session.get(Delivery, job.id, with_for_update=True)
        if delivery is None:     # its subscription was deleted meanwhile
            return
        if error is None:
            delivery.status, delivery.delivered_at, delivery.last_error = DELIVERED, utcnow(), None
            return
        delivery.last_error = error
        if delivery.attempts >= settings.notification_max_attempts:
            delivery.status = FAILED
        else:
            delivery.next_attempt_at = now + dt.timedelta(seconds=backoff(settings, delivery.attempts))
    log.warning("notification delivery %d (%s to %s) failed, attempt %d of %d%s: %s", job.id, job.payload["event"],
                _target(job), job.attempts, settings.notification_max_attempts,
                "" if job.attempts < settings.notification_max_attempts else ", giving up", error)


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds until the next try after ``attempts`` failed ones."""
    return min(settings.notification_backoff_seconds * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)


def _safe_url(url: str) -> str:
    """The URL without credentials, query or fragment: those may carry tokens."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
    except ValueError:
        return "(invalid URL)"


def _target(job: _Job) -> str:
    return job.address if job.channel == "email" else _safe_url(job.address)


def _send(job: _Job, settings: Settings, keys: Keys) -> str | None:
    """Send one delivery; None when it was delivered, else what went wrong, free of secrets."""
    secrets = [settings.smtp_password.get_secret_value() if settings.smtp_password else ""]
    try:
        if job.channel == "email":
            _send_email(job, settings)
            return None
        secret = keys.decrypt(job.secret)
        secrets.append(secret)
        status = _send_webhook(job, secret)
        return None if 200 <= status < 300 else f"HTTP {status} from {_safe_url(job.address)}"
    except Exception as e:  # noqa: BLE001 - whatever failed, the delivery is retried
        message = f"{type(e).__name__}: {e}"
        if job.channel == "webhook":
            message = message.replace(job.address, _safe_url(job.address))
        for secret in filter(None, secrets):
            message = message.replace(secret, "***")
        return message[:1000]


def _send_webhook(job: _Job, secret: str) -> int:
    body = json.dumps(job.payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    response = httpx.post(job.address, content=body, timeout=WEBHOOK_TIMEOUT, follow_redirects=False, headers={
        "Content-Type": "application/json", "User-Agent": "Depot", "X-Depot-Event": job.payload["event"],
        "X-Depot-Delivery": str(job.id), "X-Depot-Timestamp": timestamp, "X-Depot-Signature": f"sha256={signature}"})
    return response.status_code


def _send_email(job: _Job, settings: Settings) -> None:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = job.address
    message["Subject"] = subject(job.payload)
    message["X-Depot-Event"] = job.payload["event"]
    message["X-Depot-Delivery"] = str(job.id)
    message.set_content(body_text(job.payload))
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            smtp.login(settings.smtp_username,
                       settings.smtp_password.get_secret_value() if settings.smtp_password else "")
        refused = smtp.send_message(message)
    if refused:   # the others have it: retrying would send it to them again
        log.warning("notification delivery %d: the SMTP server refused %s", job.id, ", ".join(refused))


VERBS = {"deployment.completed": "completed", "deployment.succeeded": "succeeded", "deployment.failed": "failed",
         "deployment.cancelled": "was cancelled", "deployment.paused": "was paused"}


def subject(payload: dict) -> str:
    """E.g. "[Depot] deployment 7 'Office rollout' failed"."""
    deployment, event = payload.get("deployment"), payload["event"]
    if deployment is None:
        return f"[Depot] test notification for subscription '{payload['details'].get('subscription')}'"
    verb = VERBS.get(event, event)
    if event == "deployment.completed" and deployment.get("outcome"):
        verb = f"completed ({deployment['outcome']})"
    if event == THRESHOLD:
        details = payload["details"]
        verb = (f"reached {details['failure_rate_percent']:g}% failed hosts "
                f"(threshold {details['threshold_percent']}%)")
    text = f"[Depot] deployment {deployment['id']} '{deployment['name']}' {verb}"
    return " ".join(text.split())    # a header holds no line breaks


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def body_text(payload: dict) -> str:
    deployment = payload.get("deployment")
    if deployment is None:
        lines = [f"This is a test notification from Depot for subscription '{payload['details'].get('subscription')}'."]
    else:
        lines = [_capitalized(subject(payload).removeprefix("[Depot] ")) + ".", "",
                 f"Event:    {payload['event']}",
                 f"State:    {deployment['state']}",
                 f"Outcome:  {deployment['outcome'] or '-'}",
                 f"Started:  {deployment['started_at'] or '-'}",
                 f"Finished: {deployment['finished_at'] or '-'}",
                 "", "Hosts by status:"]
        lines += [f"  {status}: {count}" for status, count in sorted(payload["counts"].items())] or ["  (none)"]
    if payload.get("details") and deployment is not None:
        lines += ["", "Details:"] + [f"  {key}: {value}" for key, value in sorted(payload["details"].items())]
    lines += ["", f"Delivery {payload.get('delivery_id')}, sent by Depot."]
    return "\n".join(lines) + "\n"
