"""/api/v1/targets: inventory hosts and groups, static and dynamic."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, status
from sqlalchemy import select

from depot.dependencies import CurrentSettings, CurrentUser, DbSession, Paging
from depot.errors import invalid
from depot.schemas import Page, paginate
from depot.targets import service
from depot.targets.models import Target
from depot.users import service as users
from depot.targets.schemas import ResolvedHosts, TargetCreate, TargetKind, TargetRead, TargetSpec, TargetUpdate

router = APIRouter(prefix="/targets", tags=["targets"])


def _resolve(target, loc) -> ResolvedHosts:
    try:
        hosts = service.resolve(target)
    except service.InventoryError as e:
        raise invalid(loc, str(e)) from None
    return ResolvedHosts(hosts=hosts, count=len(hosts))


def _check_inventory(session, user, settings, inventory: str | None, loc) -> None:
    """An inventory source is a file or directory the controller reads (and, for an executable
    one, runs), and the host names it yields are shown: whoever names a source reads the
    controller's files through it. So only an admin names a new one; others use the sources that
    existing targets already use. Nobody names the controller's data directory (its secret key,
    database and content store are not inventories)."""
    if inventory is None:
        return
    path = Path(inventory).expanduser().resolve()
    data_dir = Path(settings.data_dir).expanduser().resolve()
    if path == data_dir or data_dir in path.parents:
        raise invalid(loc, "the inventory source is inside the controller's data directory, which holds no inventory")
    if users.at_least(user, users.ADMIN):
        return
    if session.scalar(select(Target.id).where(Target.inventory == str(path)).limit(1)) is None:
        users.require(user, users.ADMIN, "naming an inventory source no target uses yet (the controller reads it)")


@router.get("", response_model=Page[TargetRead])
def list_targets(session: DbSession, paging: Paging, kind: TargetKind | None = None):
    return paginate(session, service.list_statement(kind), paging.page, paging.page_size, TargetRead.model_validate)


@router.post("", response_model=TargetRead, status_code=status.HTTP_201_CREATED)
def create_target(session: DbSession, user: CurrentUser, settings: CurrentSettings, body: TargetCreate):
    _check_inventory(session, user, settings, body.inventory, ["body", "inventory"])
    return TargetRead.model_validate(service.create(session, body))


@router.post("/resolve", response_model=ResolvedHosts, summary="Preview the hosts a target would select")
def preview_target(session: DbSession, user: CurrentUser, settings: CurrentSettings, body: TargetSpec):
    _check_inventory(session, user, settings, body.inventory, ["body", "inventory"])
    return _resolve(body, ["body", "inventory"])


@router.get("/{target_id}", response_model=TargetRead)
def get_target(session: DbSession, target_id: int):
    return TargetRead.model_validate(service.get(session, target_id))


@router.get("/{target_id}/hosts", response_model=ResolvedHosts, summary="The hosts the target selects now")
def get_target_hosts(session: DbSession, target_id: int):
    return _resolve(service.get(session, target_id), ["inventory"])


@router.patch("/{target_id}", response_model=TargetRead)
def update_target(session: DbSession, user: CurrentUser, settings: CurrentSettings, target_id: int,
                  body: TargetUpdate):
    target = service.get(session, target_id, for_update=True)
    if body.inventory is not None and Path(body.inventory).expanduser().resolve() != Path(target.inventory):
        _check_inventory(session, user, settings, body.inventory, ["body", "inventory"])
    return TargetRead.model_validate(service.update(session, target, body))


@router.delete("/{target_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_target(session: DbSession, target_id: int):
    service.delete(session, service.get(session, target_id, for_update=True))
