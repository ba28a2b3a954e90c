"""/api/v1/hosts: check-in tokens, check-ins, and what is pending on a host."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request

from depot.audit import service as audit
from depot.database.core import utcnow
from depot.dependencies import CurrentKeys, CurrentSettings, DbSession, bearer_token, role
from depot.hosts import service
from depot.hosts.schemas import CheckinResult, CheckinToken, HostRead
from depot.users.service import ADMIN, VIEWER

router = APIRouter(prefix="/hosts", tags=["hosts"])

HostName = Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.:-]+$")]


@router.get("/{name}", response_model=HostRead, dependencies=[role(VIEWER)], summary=(
    "The host's check-ins and its pending steps, with when its maintenance windows next open"))
def get_host(session: DbSession, name: HostName):
    return service.overview(session, name, utcnow())


@router.get("/{name}/checkin-token", response_model=CheckinToken, dependencies=[role(ADMIN)], summary=(
    "A token with which the host may check in (put it in its logon script or agent)"))
def get_checkin_token(keys: CurrentKeys, settings: CurrentSettings, name: HostName):
    token, expires = service.checkin_token(keys, name, utcnow(), dt.timedelta(days=settings.checkin_token_ttl_days))
    return CheckinToken(host=name, token=token, expires_at=expires)


@router.post("/{name}/checkin", response_model=CheckinResult, summary=(
    "The host is here: its pending work starts at once (Authorization: Bearer <its check-in token>)"))
def checkin(session: DbSession, keys: CurrentKeys, request: Request, name: HostName,
            authorization: Annotated[str | None, Header()] = None):
    now = utcnow()
    service.verify_token(keys, name, bearer_token(authorization), now)
    address = request.client.host if request.client else None
    pending, due = service.checkin(session, name, address, now, actor=f"host:{name}")
    audit.record(session, f"host:{name}", "checkin", "hosts", name, address=address, made_due=due)
    return CheckinResult(host=name, address=address, pending=pending, started_now=due)
