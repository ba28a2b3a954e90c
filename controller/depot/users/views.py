"""/api/v1/users (admin) and /api/v1/tokens (each user's own; an admin's reach all)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, status
from sqlalchemy import select

from depot.database.core import utcnow
from depot.dependencies import CurrentUser, DbSession, Paging, bearer_token, role
from depot.schemas import Page, paginate
from depot.users import service
from depot.users.models import ApiToken, User
from depot.users.schemas import CurrentToken, NewToken, TokenCreate, TokenRead, UserCreate, UserRead, UserUpdate

users_router = APIRouter(prefix="/users", tags=["users"], dependencies=[role(service.ADMIN)])
tokens_router = APIRouter(prefix="/tokens", tags=["users"])


@users_router.get("", response_model=Page[UserRead])
def list_users(session: DbSession, paging: Paging):
    return paginate(session, select(User).order_by(User.id), paging.page, paging.page_size, UserRead.model_validate)


@users_router.post("", response_model=UserRead, status_code=status.HTTP_201_CREATED)
def create_user(session: DbSession, body: UserCreate):
    return UserRead.model_validate(service.create(session, body))


@users_router.get("/{user_id}", response_model=UserRead)
def get_user(session: DbSession, user_id: int):
    return UserRead.model_validate(service.get(session, user_id))


@users_router.patch("/{user_id}", response_model=UserRead)
def update_user(session: DbSession, user: CurrentUser, user_id: int, body: UserUpdate):
    return UserRead.model_validate(service.update(session, service.get(session, user_id), body, user))


@users_router.post("/{user_id}/tokens", response_model=NewToken, status_code=status.HTTP_201_CREATED,
                   summary="A token for this user, shown once")
def create_user_token(session: DbSession, user_id: int, body: TokenCreate):
    return _issue(session, service.get(session, user_id), body)


def _issue(session, user: User, body: TokenCreate) -> NewToken:
    row, token = service.issue_token(session, user, body.name, dt.timedelta(days=body.expires_in_days), utcnow())
    return NewToken.model_validate({**TokenRead.model_validate(row).model_dump(), "token": token})


@tokens_router.get("", response_model=Page[TokenRead], summary="Your tokens (an admin: everyone's)")
def list_tokens(session: DbSession, user: CurrentUser, paging: Paging):
    statement = select(ApiToken).order_by(ApiToken.id)
    if not service.at_least(user, service.ADMIN):
        statement = statement.where(ApiToken.user_id == user.id)
    return paginate(session, statement, paging.page, paging.page_size, TokenRead.model_validate)


@tokens_router.get("/current", response_model=CurrentToken, summary="The token of this request and its user")
def current_token(request: Request, session: DbSession, user: CurrentUser):
    row = service.token_row(session, bearer_token(request.headers.get("authorization")))
    return CurrentToken(user=UserRead.model_validate(user), token=TokenRead.model_validate(row))


@tokens_router.post("", response_model=NewToken, status_code=status.HTTP_201_CREATED,
                    summary="A new token for yourself, shown once")
def create_token(session: DbSession, user: CurrentUser, body: TokenCreate):
    return _issue(session, user, body)


@tokens_router.post("/{token_id}/revoke", response_model=TokenRead)
def revoke_token(session: DbSession, user: CurrentUser, token_id: int):
    return TokenRead.model_validate(service.revoke(session, service.get_token(session, token_id, user), utcnow()))
