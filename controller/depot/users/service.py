"""Users, roles and API tokens (DESIGN.md §3.6).

**Roles** are ordered: viewer < operator < privileged < admin; each may do what the ones below
it may. viewer reads; operator manages packages, targets, policies, notifications and deployments
of packages; privileged also script steps and inline command lines (CCM's "advanced deployment"
permission); admin also users, tokens, credentials and host check-in tokens.

**Tokens** are 32 random bytes (``dpt_`` + urlsafe base64), shown once; the database keeps their
SHA-256, so a stolen database yields no usable token. Each expires (90 days by default, a year at
most) and can be revoked; an inactive user's tokens stop working.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from typing import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from depot.errors import Conflict, Forbidden, Unauthorized, not_found
from depot.users.models import ApiToken, User
from depot.users.schemas import UserCreate, UserUpdate

ROLES = ("viewer", "operator", "privileged", "admin")
VIEWER, OPERATOR, PRIVILEGED, ADMIN = ROLES
TOKEN_PREFIX = "dpt_"

# Options of depot.software.package/script that are command lines run on the host.
COMMAND_OPTIONS = frozenset({"install_command", "uninstall_command", "arguments", "reboot_command",
                             "boot_time_command", "test_command"})


def at_least(user: User, role: str) -> bool:
    return ROLES.index(user.role) >= ROLES.index(role)


def require(user: User, role: str, what: str) -> None:
    if not at_least(user, role):
        raise Forbidden(f"{what} needs the {role} role; {user.name} is {user.role}")


def command_lines(options: dict | None) -> list[str]:
    """The options that are command lines (or script detection rules), by name."""
    options = options or {}
    found = sorted(COMMAND_OPTIONS & set(options))
    rules = (options.get("detection") or {}).get("rules") if isinstance(options.get("detection"), dict) else None
    if any(isinstance(r, dict) and r.get("type") == "script" for r in rules or []):
        found.append("detection script")
    return found


def privileged_parts(steps: Iterable) -> list[str]:
    """What in these steps (request bodies or stored steps) needs the privileged role: script
    steps, and command lines in a step's options."""
    parts = []
    for index, step in enumerate(steps, start=1):
        if getattr(step, "action", None) == "script":
            parts.append(f"step {index} is a script")
        lines = command_lines(getattr(step, "options", None))
        if lines:
            parts.append(f"step {index} sets {', '.join(lines)}")
    return parts


# --- users ---------------------------------------------------------------------------------------

def get(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise not_found("user", user_id)
    return user


def create(session: Session, data: UserCreate) -> User:
    if session.scalar(select(User.id).where(User.name == data.name)) is not None:
        raise Conflict(f"name: a user named {data.name!r} exists")
    user = User(name=data.name, role=data.role, active=True)
    session.add(user)
    session.flush()
    return user


def update(session: Session, user: User, data: UserUpdate, acting: User) -> User:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if user.id == acting.id and (changes.get("role", ADMIN) != ADMIN or changes.get("active") is False):
        raise Conflict("an admin cannot demote or deactivate themselves (another admin can)")
    for name, value in changes.items():
        setattr(user, name, value)
    session.flush()
    return user


def admins(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User).where(User.role == ADMIN, User.active.is_(True)))


# --- tokens --------------------------------------------------------------------------------------

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, user: User, name: str, expires_in: dt.timedelta, now: dt.datetime
                ) -> tuple[ApiToken, str]:
    """A new token for ``user``: the row, and the token itself (never stored)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=_hash(token), prefix=token[:10], created_at=now,
                   expires_at=now + expires_in)
    session.add(row)
    session.flush()
    return row, token


def get_token(session: Session, token_id: int, acting: User) -> ApiToken:
    """A token by id: a user's own, or any for an admin (others' are 404, not 403: no probing)."""
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != acting.id and not at_least(acting, ADMIN)):
        raise not_found("token", token_id)
    return row


def revoke(session: Session, row: ApiToken, now: dt.datetime) -> ApiToken:
    row.revoked_at = row.revoked_at or now
    session.flush()
    return row


def token_row(session: Session, token: str | None) -> ApiToken | None:
    """The stored token a bearer token is (by its hash), or None."""
    if not token:
        return None
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))


def authenticate(session: Session, token: str | None, now: dt.datetime) -> User:
    """The user a bearer token belongs to, or :class:`Unauthorized` saying why not."""
    if not token or not token.startswith(TOKEN_PREFIX):
        raise Unauthorized("a bearer token is required (Authorization: Bearer dpt_...)")
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
    if row is None:
        raise Unauthorized("unknown token")
    if row.revoked_at is not None:
        raise Unauthorized("the token was revoked")
    if row.expires_at <= now:
        raise Unauthorized("the token has expired")
    if not row.user.active:
        raise Unauthorized("the token's user is inactive")
    if _record_use(row, now):
        row.last_used_at = now
    return row.user


#: A token's last use is written at most this often (by each process).
USE_RECORD_INTERVAL = dt.timedelta(minutes=1)
_recorded: dict[int, dt.datetime] = {}
_recorded_lock = threading.Lock()


def _record_use(row: ApiToken, now: dt.datetime) -> bool:
    """Whether this request writes the token's last use: one request per token and interval in
    this process. (Every request that saw a stale value writing it would make reads writers: on
    SQLite they would queue for its one write lock, each holding it until its response.)"""
    if row.last_used_at is not None and now - row.last_used_at <= USE_RECORD_INTERVAL:
        return False
    with _recorded_lock:
        last = _recorded.get(row.id)
        if last is not None and now - last <= USE_RECORD_INTERVAL:
            return False
        _recorded[row.id] = now
    return True


def bootstrap_admin(session: Session, name: str, expires_in: dt.timedelta, now: dt.datetime) -> str:
    """The first admin and a token for it (``depot admin create``); refused once an admin exists."""
    if admins(session):
        raise Conflict("an admin exists already: create further users through the API")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = create(session, UserCreate(name=name, role=ADMIN))
    else:
        user.role, user.active = ADMIN, True
    return issue_token(session, user, "bootstrap", expires_in, now)[1]
