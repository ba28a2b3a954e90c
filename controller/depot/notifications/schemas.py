"""Request and response bodies of notifications. A webhook's signing secret is write-only: it is
encrypted on arrival and no response carries it (only `has_secret`)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, SecretStr

from depot.schemas import InModel, ReadModel

Channel = Literal["email", "webhook"]
Event = Literal["deployment.completed", "deployment.succeeded", "deployment.failed", "deployment.cancelled",
                "deployment.paused", "deployment.threshold"]
DeliveryStatus = Literal["pending", "delivered", "failed"]


class SubscriptionFields(InModel):
    name: str = Field(min_length=1, max_length=200)
    channel: Channel = Field(description="email (SMTP) or webhook (HTTP POST of a signed JSON body)")
    address: str = Field(min_length=1, max_length=4000, description=(
        "email: one or more comma-separated addresses; webhook: the http(s) URL"))
    events: list[Event] = Field(min_length=1, description=(
        "deployment.completed (any outcome), .succeeded, .failed, .cancelled, .paused (the failure budget "
        "paused it), .threshold (the failure rate reached threshold_percent)"))
    deployment_id: int | None = Field(default=None, description="Only this deployment")
    policy_id: int | None = Field(default=None, description="Only deployments with a step using this policy")
    threshold_percent: int | None = Field(default=None, ge=1, le=100, description=(
        "deployment.threshold: failed, unreachable and unknown hosts, in percent of the finished ones"))
    min_sample: int = Field(default=5, ge=1, description="deployment.threshold: hosts finished before it can fire")
    enabled: bool = True


class SubscriptionCreate(SubscriptionFields):
    secret: SecretStr | None = Field(default=None, min_length=1, max_length=1024, description=(
        "webhook: the HMAC-SHA256 signing secret shared with the receiver; write-only, stored encrypted"))


class SubscriptionUpdate(InModel):
    """Only the fields given change; the result is validated as a whole. A new `secret` replaces the
    stored one; without it the stored secret stays (an email subscription has none)."""

    name: str | None = None
    channel: Channel | None = None
    address: str | None = None
    events: list[Event] | None = None
    deployment_id: int | None = None
    policy_id: int | None = None
    threshold_percent: int | None = None
    min_sample: int | None = None
    enabled: bool | None = None
    secret: SecretStr | None = Field(default=None, min_length=1, max_length=1024)


class SubscriptionRead(ReadModel):
    id: int
    name: str
    channel: str
    address: str
    events: list[str]
    deployment_id: int | None
    policy_id: int | None
    threshold_percent: int | None
    min_sample: int
    enabled: bool
    has_secret: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class DeliveryRead(ReadModel):
    id: int
    subscription_id: int
    event: str
    deployment_id: int | None
    payload: dict
    status: DeliveryStatus
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
