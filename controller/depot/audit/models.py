"""The audit trail: who did what, when (state changes have their own record, Transition)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from depot.database.core import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)   # user:<name> | worker:<name> | host:<name>
    action: Mapped[str] = mapped_column(String(100))              # create_deployment, credential.use, ...
    object_type: Mapped[str | None] = mapped_column(String(50))
    object_id: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict] = mapped_column(default=dict)            # never a secret: ids and names only
