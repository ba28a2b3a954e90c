"""Hosts as they speak for themselves: check-ins."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from depot.database.core import Base


class Host(Base):
    """What the controller has heard from a host itself: its check-ins (``POST /hosts/{name}/checkin``)
    and the address it checked in from, which the "LAN only" network condition looks at."""

    __tablename__ = "hosts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    last_checkin_at: Mapped[dt.datetime | None]
    last_address: Mapped[str | None] = mapped_column(String(64))
    checkins: Mapped[int] = mapped_column(default=0)
