"""The record of every state change: what changed, from what to what, why, and who or what did it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from depot.database.core import Base, utcnow


class Transition(Base):
    __tablename__ = "transitions"
    __table_args__ = (Index("ix_transitions_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))       # deployment | host_result
    entity_id: Mapped[int]
    from_state: Mapped[str] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30))
    cause: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))       # user:<name> | worker:<name> | scheduler | api
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
