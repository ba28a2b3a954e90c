"""What every view depends on: one transaction per request, the actor, settings, keys, paging."""

from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session, sessionmaker

from depot.config import Settings
from depot.database.core import transaction
from depot.security import Keys


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the view returns, rolled back when it raises,
    so a rejected request writes nothing. (scope="function": it ends before the response is sent,
    so a failed commit is never reported as a success.)"""
    with transaction(request.app.state.sessionmaker) as session:
        yield session


def get_actor() -> str:
    """Who is making this request, recorded on every state change it causes. The seam for
    authentication (issue #5): until then every request acts as "api"."""
    return "api"


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_keys(request: Request) -> Keys:
    return request.app.state.keys


def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    return request.app.state.sessionmaker


class Pagination:
    def __init__(self, page: Annotated[int, Query(ge=1, description="Page number, from 1.")] = 1,
                 page_size: Annotated[int, Query(ge=1, le=500, description="Items per page (≤ 500).")] = 50):
        self.page = page
        self.page_size = page_size


DbSession = Annotated[Session, Depends(get_session, scope="function")]
Actor = Annotated[str, Depends(get_actor)]
CurrentSettings = Annotated[Settings, Depends(get_settings)]
CurrentKeys = Annotated[Keys, Depends(get_keys)]
Sessions = Annotated[sessionmaker, Depends(get_sessionmaker)]
Paging = Annotated[Pagination, Depends()]
