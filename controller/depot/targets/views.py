"""/api/v1/targets: inventory hosts and groups, static and dynamic."""

from __future__ import annotations

from fastapi import APIRouter, status

from depot.dependencies import DbSession, Paging
from depot.errors import invalid
from depot.schemas import Page, paginate
from depot.targets import service
from depot.targets.schemas import ResolvedHosts, TargetCreate, TargetKind, TargetRead, TargetSpec, TargetUpdate

router = APIRouter(prefix="/targets", tags=["targets"])


def _resolve(target, loc) -> ResolvedHosts:
    try:
        hosts = service.resolve(target)
    except service.InventoryError as e:
        raise invalid(loc, str(e)) from None
    return ResolvedHosts(hosts=hosts, count=len(hosts))


@router.get("", response_model=Page[TargetRead])
def list_targets(session: DbSession, paging: Paging, kind: TargetKind | None = None):
    return paginate(session, service.list_statement(kind), paging.page, paging.page_size, TargetRead.model_validate)


@router.post("", response_model=TargetRead, status_code=status.HTTP_201_CREATED)
def create_target(session: DbSession, body: TargetCreate):
    return TargetRead.model_validate(service.create(session, body))


@router.post("/resolve", response_model=ResolvedHosts, summary="Preview the hosts a target would select")
def preview_target(body: TargetSpec):
    return _resolve(body, ["body", "inventory"])


@router.get("/{target_id}", response_model=TargetRead)
def get_target(session: DbSession, target_id: int):
    return TargetRead.model_validate(service.get(session, target_id))


@router.get("/{target_id}/hosts", response_model=ResolvedHosts, summary="The hosts the target selects now")
def get_target_hosts(session: DbSession, target_id: int):
    return _resolve(service.get(session, target_id), ["inventory"])


@router.patch("/{target_id}", response_model=TargetRead)
def update_target(session: DbSession, target_id: int, body: TargetUpdate):
    return TargetRead.model_validate(service.update(session, service.get(session, target_id, for_update=True), body))


@router.delete("/{target_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_target(session: DbSession, target_id: int):
    service.delete(session, service.get(session, target_id, for_update=True))
