"""Request and response bodies of hosts: check-ins and what is pending on a host."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from depot.orchestration.states import HostStatus
from depot.schemas import ReadModel


class CheckinToken(ReadModel):
    host: str
    token: str = Field(description="Send as `Authorization: Bearer <token>` to POST /api/v1/hosts/{name}/checkin")
    expires_at: dt.datetime


class CheckinResult(ReadModel):
    host: str
    address: str | None = Field(description="The address the check-in came from")
    pending: int = Field(description="Steps waiting for this host in started deployments")
    started_now: int = Field(description="Of those, the ones made due at once by this check-in")


class PendingStep(ReadModel):
    deployment_id: int
    deployment_state: str
    step_id: int
    position: int
    status: HostStatus
    reason: str | None
    next_attempt_at: dt.datetime | None
    window_open_now: bool = Field(description="Whether its maintenance windows fit the step's timeout now")
    next_window_at: dt.datetime | None = Field(description=(
        "When the next window open for the whole step timeout starts (now if open; null: none within a year)"))


class HostRead(ReadModel):
    name: str
    last_checkin_at: dt.datetime | None
    last_address: str | None
    checkins: int
    pending: list[PendingStep]
