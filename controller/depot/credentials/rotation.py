"""Key rotation for every secret the controller keeps at rest: credential secrets and webhook
signing secrets. Re-encrypting happens in one transaction, so a failure leaves every secret as it
was (still readable with the keys of before)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

import depot.database.models  # noqa: F401 - every table, so foreign keys resolve
from depot.credentials.models import Credential
from depot.notifications.models import Subscription
from depot.security import InvalidToken, Keys

ENCRYPTED = {"credentials": Credential, "subscriptions": Subscription}


def _rows(session: Session, model, *, lock: bool = False):
    statement = select(model).where(model.secret.is_not(None)).order_by(model.id)
    return session.scalars(statement.with_for_update() if lock else statement).all()


def reencrypt(session: Session, keys: Keys) -> dict[str, int]:
    """Encrypt every stored secret again with the primary key; how many, per table. Raises
    InvalidToken, naming the row, when a secret opens with none of the keys."""
    counts = {}
    for table, model in ENCRYPTED.items():
        rows = _rows(session, model, lock=True)
        for row in rows:
            try:
                row.secret = keys.rotate(row.secret)
            except InvalidToken:
                raise InvalidToken(f"{table} {row.id} ({row.name!r}) opens with none of the keys") from None
        counts[table] = len(rows)
    session.flush()
    return counts


def needing_old_keys(session: Session, keys: Keys) -> list[str]:
    """The stored secrets that the primary key alone cannot open: what retiring the others would lose."""
    primary = keys.primary_only()
    missing = []
    for table, model in ENCRYPTED.items():
        for row in _rows(session, model):
            try:
                primary.decrypt(row.secret)
            except InvalidToken:
                missing.append(f"{table} {row.id} ({row.name!r})")
    return missing
