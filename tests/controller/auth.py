"""API tokens for tests: a user of a role and the Authorization header of a token of theirs."""

import datetime as dt

from depot.database.core import transaction, utcnow
from depot.users import service as users
from depot.users.schemas import UserCreate


def bearer(app, role: str = "admin", name: str | None = None) -> dict[str, str]:
    """Create a user with ``role`` (named after it unless ``name``) and return its token's header."""
    with transaction(app.state.sessionmaker) as session:
        user = users.create(session, UserCreate(name=name or role, role=role))
        _, token = users.issue_token(session, user, "test", dt.timedelta(days=1), utcnow())
    return {"Authorization": f"Bearer {token}"}
