"""Schemas shared by every domain: the read-model base and the paginated list."""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from depot.errors import Invalid

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class InModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


def validate_merged(model: type[M], data: dict) -> M:
    """Validate a PATCH merged with the stored fields as a whole; problems are the body's fields."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise Invalid([(["body", *err["loc"]], err["msg"]) for err in e.errors()]) from None


def paginate(session: Session, statement: Select, page: int, page_size: int, convert: Callable[[Any], BaseModel]) -> Page:
    """One page of ``statement``'s rows (already ordered), each turned into a schema by ``convert``."""
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    rows = session.scalars(statement.limit(page_size).offset((page - 1) * page_size)).all()
    return Page(items=[convert(r) for r in rows], total=total, page=page, page_size=page_size)
