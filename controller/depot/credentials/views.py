"""/api/v1/credentials: the secret is write-only."""

from __future__ import annotations

from fastapi import APIRouter, status

from depot.credentials import service
from depot.credentials.schemas import CredentialCreate, CredentialKind, CredentialRead, CredentialUpdate
from depot.dependencies import CurrentKeys, DbSession, Paging
from depot.schemas import Page, paginate

router = APIRouter(prefix="/credentials", tags=["credentials"])


@router.get("", response_model=Page[CredentialRead])
def list_credentials(session: DbSession, paging: Paging, kind: CredentialKind | None = None):
    return paginate(session, service.list_statement(kind), paging.page, paging.page_size, service.read)


@router.post("", response_model=CredentialRead, status_code=status.HTTP_201_CREATED)
def create_credential(session: DbSession, keys: CurrentKeys, body: CredentialCreate):
    return service.read(service.create(session, keys, body))


@router.get("/{credential_id}", response_model=CredentialRead)
def get_credential(session: DbSession, credential_id: int):
    return service.read(service.get(session, credential_id))


@router.patch("/{credential_id}", response_model=CredentialRead)
def update_credential(session: DbSession, keys: CurrentKeys, credential_id: int, body: CredentialUpdate):
    return service.read(service.update(session, keys, service.get(session, credential_id, for_update=True), body))


@router.delete("/{credential_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_credential(session: DbSession, credential_id: int):
    service.delete(session, service.get(session, credential_id, for_update=True))
