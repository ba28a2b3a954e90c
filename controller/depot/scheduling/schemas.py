"""Request and response bodies of maintenance windows and exclusions (of deployments and targets)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from depot.schemas import InModel, ReadModel

#: A local wall time has no UTC offset, so it is not an RFC 3339 "date-time": its own format.
LOCAL_TIME = {"format": "local-date-time"}


class WindowFields(InModel):
    """A maintenance window or exclusion period: one_off (start and end, with a UTC offset) or
    recurring (rrule + timezone + start as a local wall time, open for duration_seconds at each occurrence)."""

    kind: Literal["one_off", "recurring"]
    start: dt.datetime = Field(description="one_off: the opening (with offset); recurring: DTSTART, local wall time")
    end: dt.datetime | None = Field(default=None, description="one_off only: the closing (with offset)")
    rrule: str | None = Field(default=None, description="recurring only")
    timezone: str | None = Field(default=None, description="recurring only: IANA zone")
    duration_seconds: int | None = Field(default=None, description="recurring only: how long each opening lasts")


class WindowRead(ReadModel):
    id: int
    kind: Literal["one_off", "recurring"]
    start: dt.datetime = Field(description="one_off: UTC (with offset); recurring: local wall time (no offset)",
                               json_schema_extra=LOCAL_TIME)
    end: dt.datetime | None
    rrule: str | None
    timezone: str | None
    duration_seconds: int | None
