"""Maintenance windows and exclusions as stored, for deployments and for targets."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from depot.database.core import Base


class MaintenanceWindow(Base):
    """A maintenance window of a deployment or of a target (group), or an exclusion (freeze period)
    when ``is_exclusion``:
    ``one_off`` from ``start_at`` to ``end_at`` (UTC), or ``recurring``: opens at every occurrence
    of the RRULE ``rrule`` in ``timezone`` from the local wall time ``local_start``, for
    ``duration_seconds`` (depot.scheduling.windows)."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))      # one_off | recurring
    is_exclusion: Mapped[bool] = mapped_column(default=False)
    start_at: Mapped[dt.datetime | None]
    end_at: Mapped[dt.datetime | None]
    rrule: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str | None] = mapped_column(String(64))
    local_start: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=False))
    duration_seconds: Mapped[int | None]

    @property
    def start(self) -> dt.datetime | None:
        """One-off: the UTC start; recurring: the local wall time of the first opening."""
        return self.start_at if self.kind == "one_off" else self.local_start

    @property
    def end(self) -> dt.datetime | None:
        return self.end_at
