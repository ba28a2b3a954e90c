"""Request and response bodies of users and tokens."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from depot.schemas import InModel, ReadModel

Role = Literal["viewer", "operator", "privileged", "admin"]


class UserCreate(InModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role = Field(description=(
        "viewer: read; operator: packages, policies, targets, deployments of packages; privileged: also script "
        "steps and inline command lines; admin: also users, tokens, credentials, check-in tokens, the audit trail"))


class UserUpdate(InModel):
    role: Role | None = None
    active: bool | None = Field(default=None, description="An inactive user's tokens stop working")


class UserRead(ReadModel):
    id: int
    name: str
    role: Role
    active: bool
    created_at: dt.datetime


class TokenCreate(InModel):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int = Field(default=90, ge=1, le=365, description="Default 90 days")


class TokenRead(ReadModel):
    id: int
    user_id: int
    name: str
    prefix: str = Field(description="The token's first characters, to recognise it")
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class NewToken(TokenRead):
    token: str = Field(description="Shown this once; only its hash is stored")


class CurrentToken(ReadModel):
    """Who the request's token belongs to (what a client shows as "signed in as")."""

    user: UserRead
    token: TokenRead
