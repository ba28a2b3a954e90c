"""Credentials: secret material encrypted at rest, never returned by the API."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from depot.database.core import Base, utcnow


class Credential(Base):
    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # ssh_key | ssh_password | winrm | psrp | run_as | share
    kind: Mapped[str] = mapped_column(String(20))
    username: Mapped[str | None] = mapped_column(String(200))
    # Non-secret options: transport (ntlm, kerberos, credssp), certificate validation, port, domain.
    options: Mapped[dict] = mapped_column(default=dict)
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)   # encrypted (Fernet) password or private key
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
