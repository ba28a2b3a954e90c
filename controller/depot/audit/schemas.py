"""Response bodies of the audit trail."""

from __future__ import annotations

import datetime as dt

from depot.schemas import ReadModel


class AuditEventRead(ReadModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    object_type: str | None
    object_id: str | None
    detail: dict
