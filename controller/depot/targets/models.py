"""Targets: hosts and groups resolved from any Ansible inventory source."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from depot.database.core import Base, utcnow
from depot.scheduling.models import MaintenanceWindow


class Target(Base):
    __tablename__ = "targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # host: `hosts` lists host names; group: `group` of the inventory;
    # dynamic: hosts of `group` (default all) whose host vars match every `filters` entry.
    kind: Mapped[str] = mapped_column(String(20))
    inventory: Mapped[str] = mapped_column(Text)          # an inventory source: file path or inventory plugin config path
    group: Mapped[str | None] = mapped_column(String(200))
    hosts: Mapped[list] = mapped_column(default=list)
    filters: Mapped[list] = mapped_column(default=list)   # [{var, op, value}]
    # How runs connect to the target's hosts (ssh_key, ssh_password, winrm, psrp); none: the inventory's own vars.
    credential_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # The target's maintenance windows and exclusions (depot.scheduling.models.MaintenanceWindow):
    # a host may be worked on when its deployment's windows AND its targets' windows are open.
    maintenance_windows: Mapped[list[MaintenanceWindow]] = relationship(
        order_by="MaintenanceWindow.id", cascade="all, delete-orphan")

    @property
    def windows(self) -> list:
        return [w for w in self.maintenance_windows if not w.is_exclusion]

    @property
    def exclusions(self) -> list:
        return [w for w in self.maintenance_windows if w.is_exclusion]
