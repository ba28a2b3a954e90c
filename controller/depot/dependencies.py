"""What every view depends on: one transaction per request, the authenticated user and the actor,
role checks, settings, keys, paging."""

from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session, sessionmaker

from depot.audit import service as audit
from depot.config import Settings
from depot.database.core import transaction, utcnow
from depot.security import Keys
from depot.users import service as users
from depot.users.models import User


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the view returns, rolled back when it raises,
    so a rejected request writes nothing. (scope="function": it ends before the response is sent,
    so a failed commit is never reported as a success.)"""
    with transaction(request.app.state.sessionmaker) as session:
        yield session


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def current_user(request: Request, session: Annotated[Session, Depends(get_session, scope="function")]) -> User:
    """The user of the request's bearer token; 401 without a valid one."""
    return users.authenticate(session, bearer_token(request.headers.get("authorization")), utcnow())


CurrentUser = Annotated[User, Depends(current_user)]


def get_actor(user: CurrentUser) -> str:
    """Who is making this request, recorded on every state change it causes."""
    return f"user:{user.name}"


def allow(read: str, write: str):
    """A router's dependency: reads (GET, HEAD) need the role ``read``, everything else ``write``."""
    def check(request: Request, user: CurrentUser) -> None:
        role = read if request.method in ("GET", "HEAD") else write
        users.require(user, role, f"{request.method} {request.url.path}")
    return Depends(check)


def audited(request: Request, session: Annotated[Session, Depends(get_session, scope="function")],
            user: CurrentUser) -> Iterator[None]:
    """A router's dependency: every change it makes is recorded in the audit trail, in the same
    transaction, with the objects it created (depot.audit)."""
    route = request.scope.get("route")
    name = getattr(route, "name", request.url.path)
    if request.method in ("GET", "HEAD") or name.startswith("preview"):   # reads and previews change nothing
        yield
        return
    created = audit.Created(session)
    try:
        yield
    finally:
        objects = created.stop()
    segments = request.url.path.removeprefix("/api/v1/").split("/")
    object_id = next(iter(request.path_params.values()), None)
    if object_id is None and objects:
        object_id = objects[0][1]
    audit.record(session, f"user:{user.name}", name, segments[0], object_id,
                 created=[f"{table}:{ident}" for table, ident in objects][:50])


def role(name: str):
    """A route's dependency: the user must have at least this role."""
    def check(request: Request, user: CurrentUser) -> None:
        users.require(user, name, f"{request.method} {request.url.path}")
    return Depends(check)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_keys(request: Request) -> Keys:
    return request.app.state.keys


def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    return request.app.state.sessionmaker


class Pagination:
    def __init__(self, page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")] = 1,
                 page_size: Annotated[int, Query(ge=1, le=500, description="Items per page (≤ 500).")] = 50):
        self.page = page
        self.page_size = page_size


DbSession = Annotated[Session, Depends(get_session, scope="function")]
Actor = Annotated[str, Depends(get_actor)]
CurrentSettings = Annotated[Settings, Depends(get_settings)]
CurrentKeys = Annotated[Keys, Depends(get_keys)]
Sessions = Annotated[sessionmaker, Depends(get_sessionmaker)]
Paging = Annotated[Pagination, Depends()]
