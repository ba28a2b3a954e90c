"""Policies (Zecurit): what to do on a host, reusable across deployments; only published ones deploy."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from depot.database.core import Base, utcnow


class Policy(Base):
    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    state: Mapped[str] = mapped_column(String(20), default="draft")   # draft | published
    category: Mapped[str] = mapped_column(String(20))                 # software | script
    operation: Mapped[str] = mapped_column(String(20), default="install")  # install | uninstall
    package_id: Mapped[int | None] = mapped_column(ForeignKey("packages.id", ondelete="RESTRICT"))
    script: Mapped[str | None] = mapped_column(Text)
    run_as: Mapped[str] = mapped_column(String(20), default="system")  # system | logged_in_user | user
    run_as_credential_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id", ondelete="RESTRICT"))
    network_condition: Mapped[str] = mapped_column(String(20), default="any")  # any | lan_only
    retries: Mapped[int] = mapped_column(default=0)
    retry_interval: Mapped[int] = mapped_column(default=60)
    retry_after_reboot: Mapped[bool] = mapped_column(default=False)
    # Further options of depot.software.package/script (exit_codes, reboot, timeout, arguments, ...).
    options: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
