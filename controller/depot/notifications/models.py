"""Subscriptions to deployment events, and the outbox of deliveries they cause."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from depot.database.core import Base, utcnow


class Subscription(Base):
    """Who hears about which events of which deployments: one deployment (deployment_id), every
    deployment with a step using a policy (policy_id), or every deployment (neither)."""

    __tablename__ = "notification_subscriptions"
    __table_args__ = (CheckConstraint("deployment_id IS NULL OR policy_id IS NULL", name="one_scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(20))           # email | webhook
    address: Mapped[str] = mapped_column(Text)                 # comma-separated emails, or the webhook URL
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # webhook signing secret, encrypted (Fernet)
    events: Mapped[list] = mapped_column(default=list)
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"), index=True)
    threshold_percent: Mapped[int | None]
    min_sample: Mapped[int] = mapped_column(default=5)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Delivery(Base):
    """One message to send (the outbox): queued in the transaction that caused it, sent later by
    depot.notifications.service.deliver_due."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        # A threshold fires once per (subscription, deployment): its dedup_key is set, other events' is NULL.
        UniqueConstraint("subscription_id", "dedup_key"),
        Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("notification_subscriptions.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(50))
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id", ondelete="SET NULL"), index=True)
    dedup_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")   # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)   # never holds a secret
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None]
