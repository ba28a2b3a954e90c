"""The software repository: packages with content stored on disk by sha256."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from depot.database.core import Base, utcnow


class Package(Base):
    __tablename__ = "packages"
    __table_args__ = (UniqueConstraint("name", "version", "platform"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(20))            # windows | linux
    installer_type: Mapped[str] = mapped_column(String(20))      # msi msix exe msp choco winget deb rpm script archive
    product_id: Mapped[str | None] = mapped_column(String(300))
    # Arguments of depot.software.package other than content (install_command, detection, exit_codes, ...).
    options: Mapped[dict] = mapped_column(default=dict)
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    content_filename: Mapped[str | None] = mapped_column(String(255))
    content_size: Mapped[int | None]
    content_url: Mapped[str | None] = mapped_column(String(2000))  # an external source instead of uploaded content
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
