"""Recording the audit trail. Every change through the API is recorded in the transaction that
makes it (so a change that is rolled back leaves no record, and none commits without one), with
the objects it created; workers record each use of a credential."""

from __future__ import annotations

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from depot.audit.models import AuditEvent
from depot.database.core import utcnow


def record(session: Session, actor: str, action: str, object_type: str | None = None, object_id=None,
           **detail) -> None:
    session.add(AuditEvent(at=utcnow(), actor=actor, action=action, object_type=object_type,
                           object_id=None if object_id is None else str(object_id), detail=detail))


class Created:
    """Collects what a session inserts (table name and primary key) while it is watched."""

    def __init__(self, session: Session):
        self.session, self.objects = session, []
        event.listen(session, "pending_to_persistent", self._persisted)

    def _persisted(self, _session, instance) -> None:
        if not isinstance(instance, AuditEvent):
            identity = inspect(instance).identity
            self.objects.append((instance.__tablename__, identity[0] if identity else None))

    def stop(self) -> list[tuple[str, object]]:
        event.remove(self.session, "pending_to_persistent", self._persisted)
        return self.objects


def statement(actor: str | None = None, action: str | None = None, object_type: str | None = None,
              object_id: str | None = None):
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    for column, value in ((AuditEvent.actor, actor), (AuditEvent.action, action),
                          (AuditEvent.object_type, object_type), (AuditEvent.object_id, object_id)):
        if value is not None:
            query = query.where(column == value)
    return query
