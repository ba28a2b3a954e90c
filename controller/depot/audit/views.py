"""/api/v1/audit: the audit trail, for admins."""

from __future__ import annotations

from fastapi import APIRouter

from depot.audit import service
from depot.audit.schemas import AuditEventRead
from depot.dependencies import DbSession, Paging, role
from depot.schemas import Page, paginate
from depot.users.service import ADMIN

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[role(ADMIN)])


@router.get("", response_model=Page[AuditEventRead], summary="Who did what, newest first")
def list_audit(session: DbSession, paging: Paging, actor: str | None = None, action: str | None = None,
               object_type: str | None = None, object_id: str | None = None):
    return paginate(session, service.statement(actor, action, object_type, object_id), paging.page,
                    paging.page_size, AuditEventRead.model_validate)
