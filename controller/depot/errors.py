"""Errors the services raise; the API turns each into its status code (see depot.api).

Every message names the thing or the field at fault. ``Invalid`` carries FastAPI-style field
paths (``loc``) so the client sees service-level validation exactly like request validation."""

from __future__ import annotations

from typing import Sequence


class DepotError(Exception):
    status_code = 400


class Unauthorized(DepotError):
    status_code = 401


class Forbidden(DepotError):
    status_code = 403


class NotFound(DepotError):
    status_code = 404


class Conflict(DepotError):
    """The request is valid but the current state forbids it (in use, wrong state, duplicate)."""

    status_code = 409


class Invalid(DepotError):
    """One or more fields are invalid: ``errors`` is a list of (loc, message)."""

    status_code = 422

    def __init__(self, errors: Sequence[tuple[Sequence[str | int], str]]):
        self.errors = [(tuple(loc), msg) for loc, msg in errors]
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in self.errors))

    def detail(self) -> list[dict]:
        return [{"loc": list(loc), "msg": msg, "type": "value_error"} for loc, msg in self.errors]


def invalid(loc: Sequence[str | int], msg: str) -> Invalid:
    return Invalid([(loc, msg)])


def not_found(kind: str, ident: object) -> NotFound:
    return NotFound(f"{kind} {ident} does not exist")
