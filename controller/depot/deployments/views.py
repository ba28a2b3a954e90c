"""/api/v1/deployments (with steps, actions, report, runs) and /api/v1/runs."""

from __future__ import annotations

import csv
import io
import json
import datetime as dt
import os
from typing import Annotated, Iterator

from fastapi import APIRouter, Header, Query, status
from fastapi.responses import Response, StreamingResponse

from depot.database.core import transaction
from depot.dependencies import Actor, CurrentUser, DbSession, Paging, Sessions
from depot.deployments import service, stream
from depot.deployments.schemas import (
    DeploymentCreate, DeploymentRead, DeploymentUpdate, ExportRow, GridPage, HostReport, ReportFormat, ReportPage, RunRead, SchedulePreview,
    SchedulePreviewRequest, StartResult, StepCreate, StepRead, StepUpdate,
)
from depot.errors import NotFound
from depot.orchestration.states import DeploymentState, HostStatus
from depot.scheduling import service as windows_service
from depot.scheduling.rules import MAX_PREVIEW
from depot.schemas import Page, paginate

router = APIRouter(prefix="/deployments", tags=["deployments"])
runs_router = APIRouter(prefix="/runs", tags=["runs"])
schedules_router = APIRouter(prefix="/schedules", tags=["schedules"])

EXPORT_BATCH = 500
CSV_COLUMNS = ["deployment_id", *HostReport.model_fields]
LOG_CHUNK = 64 * 1024


def _read(deployment) -> DeploymentRead:
    return DeploymentRead.model_validate(deployment)


# --- deployments ---------------------------------------------------------------------------------

@router.get("", response_model=Page[DeploymentRead])
def list_deployments(session: DbSession, paging: Paging, state: DeploymentState | None = None):
    return paginate(session, service.list_statement(state), paging.page, paging.page_size, _read)


@router.post("", response_model=DeploymentRead, status_code=status.HTTP_201_CREATED)
def create_deployment(session: DbSession, user: CurrentUser, body: DeploymentCreate):
    service.require_privilege(session, user, body.steps)
    return _read(service.create(session, body))


@router.get("/{deployment_id}", response_model=DeploymentRead)
def get_deployment(session: DbSession, deployment_id: int):
    return _read(service.get(session, deployment_id))


@router.patch("/{deployment_id}", response_model=DeploymentRead,
              summary="Edit a draft or ready deployment (a ready one returns to draft); `steps` replaces them all")
def update_deployment(session: DbSession, user: CurrentUser, actor: Actor, deployment_id: int, body: DeploymentUpdate):
    deployment = service.get(session, deployment_id, for_update=True)
    service.require_privilege(session, user, [*(body.steps or []), *deployment.steps])
    return _read(service.update(session, deployment, body, actor))


@router.delete("/{deployment_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_deployment(session: DbSession, user: CurrentUser, deployment_id: int):
    deployment = service.get(session, deployment_id, for_update=True)
    service.require_privilege(session, user, deployment.steps)
    service.delete(session, deployment)


# --- steps ---------------------------------------------------------------------------------------

@router.get("/{deployment_id}/steps", response_model=list[StepRead])
def list_steps(session: DbSession, deployment_id: int):
    return [StepRead.model_validate(s) for s in service.get(session, deployment_id).steps]


@router.post("/{deployment_id}/steps", response_model=StepRead, status_code=status.HTTP_201_CREATED)
def add_step(session: DbSession, user: CurrentUser, actor: Actor, deployment_id: int, body: StepCreate):
    deployment = service.get(session, deployment_id, for_update=True)
    service.require_privilege(session, user, [body, *deployment.steps])
    return StepRead.model_validate(service.add_step(session, deployment, body, actor))


@router.get("/{deployment_id}/steps/{step_id}", response_model=StepRead)
def get_step(session: DbSession, deployment_id: int, step_id: int):
    return StepRead.model_validate(service.get_step(service.get(session, deployment_id), step_id))


@router.patch("/{deployment_id}/steps/{step_id}", response_model=StepRead)
def update_step(session: DbSession, user: CurrentUser, actor: Actor, deployment_id: int, step_id: int,
                body: StepUpdate):
    deployment = service.get(session, deployment_id, for_update=True)
    step = service.get_step(deployment, step_id)
    service.require_privilege(session, user, [body, *deployment.steps])
    return StepRead.model_validate(service.update_step(session, deployment, step, body, actor))


@router.delete("/{deployment_id}/steps/{step_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_step(session: DbSession, user: CurrentUser, actor: Actor, deployment_id: int, step_id: int):
    deployment = service.get(session, deployment_id, for_update=True)
    service.require_privilege(session, user, deployment.steps)
    service.delete_step(session, deployment, service.get_step(deployment, step_id), actor)


# --- actions -------------------------------------------------------------------------------------

@router.post("/{deployment_id}/ready", response_model=DeploymentRead,
             summary="Draft → ready (checks steps, published policies, targets with hosts)")
def ready_deployment(session: DbSession, user: CurrentUser, actor: Actor, deployment_id: int):
    deployment = service.get(session, deployment_id, for_update=True)
    service.require_privilege(session, user, deployment.steps)
    return _read(service.ready(session, deployment, actor))


@router.post("/{deployment_id}/start", response_model=StartResult,
             summary="Ready → active: one host result per (step, host)")
def start_deployment(session: DbSession, user: CurrentUser, actor: Actor, deployment_id: int):
    deployment = service.get(session, deployment_id, for_update=True)
    service.require_privilege(session, user, deployment.steps)
    created = service.start(session, deployment, actor)
    return StartResult(deployment=_read(deployment), host_results=created)


@router.post("/{deployment_id}/cancel", response_model=DeploymentRead,
             summary="Waiting hosts are cancelled now; running ones finish their current step")
def cancel_deployment(session: DbSession, actor: Actor, deployment_id: int):
    return _read(service.cancel(session, service.get(session, deployment_id, for_update=True), actor))


@router.post("/{deployment_id}/pause", response_model=DeploymentRead,
             summary="Active → paused: no host starts a step; running ones finish theirs")
def pause_deployment(session: DbSession, actor: Actor, deployment_id: int):
    return _read(service.pause(session, service.get(session, deployment_id, for_update=True), actor))


@router.post("/{deployment_id}/resume", response_model=DeploymentRead, summary=(
    "Paused → active (the failures so far are acknowledged: the failure budget pauses it again only on new ones)"))
def resume_deployment(session: DbSession, user: CurrentUser, actor: Actor, deployment_id: int):
    deployment = service.get(session, deployment_id, for_update=True)
    service.require_privilege(session, user, deployment.steps)
    return _read(service.resume(session, deployment, actor))


@router.post("/{deployment_id}/archive", response_model=DeploymentRead)
def archive_deployment(session: DbSession, actor: Actor, deployment_id: int):
    return _read(service.archive(session, service.get(session, deployment_id, for_update=True), actor))


# --- schedule ------------------------------------------------------------------------------------

@router.get("/{deployment_id}/schedule/preview", response_model=SchedulePreview, summary=(
    "The next occurrences of the deployment's schedule (UTC and local, DST adjustment) and whether its "
    "maintenance windows are open then"))
def preview_deployment_schedule(session: DbSession, deployment_id: int,
                                count: Annotated[int, Query(ge=1, le=MAX_PREVIEW)] = 10,
                                after: Annotated[dt.datetime | None, Query(description=(
                                    "Occurrences after this instant (with offset); default: now"))] = None):
    return service.deployment_preview(service.get(session, deployment_id), count, after)


@schedules_router.post("/preview", response_model=SchedulePreview,
                       summary="Preview an unsaved schedule (and windows): its next occurrences")
def preview_schedule(body: SchedulePreviewRequest):
    schedule, _ = service.parse_schedule(body.schedule, ["body", "schedule"])
    windows = windows_service.parse_windows(body.windows, body.exclusions, ["body"])
    return service.preview(schedule, windows, body.count, body.after)


# --- report --------------------------------------------------------------------------------------

def _export(sessions, deployment_id: int, statement, fmt: str) -> Iterator[str]:
    """The whole report, streamed in batches from a session of its own (the request's is gone by then)."""
    with transaction(sessions) as session:
        results = session.execute(statement.execution_options(yield_per=EXPORT_BATCH))
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, CSV_COLUMNS)
            writer.writeheader()
            for count, (result, step_name) in enumerate(results, start=1):
                row = service.report_row(result, step_name).model_dump(mode="json")
                row.update(deployment_id=deployment_id, attempts=len(row["attempts"]))
                writer.writerow(row)
                if count % EXPORT_BATCH == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue()
        else:
            yield "["
            for count, (result, step_name) in enumerate(results):
                row = service.report_row(result, step_name).model_dump(mode="json")
                yield ("," if count else "") + json.dumps({"deployment_id": deployment_id, **row})
            yield "]\n"


@router.get("/{deployment_id}/report", response_model=ReportPage | list[ExportRow],
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}, summary=(
    "Per step per host status, filterable and paginated; ?format=csv|json exports every matching row"))
def get_report(session: DbSession, sessions: Sessions, paging: Paging, deployment_id: int,
               status_: Annotated[list[HostStatus] | None, Query(alias="status")] = None,
               step: Annotated[int | None, Query(ge=1, description="Step position")] = None,
               host: str | None = None, format: ReportFormat | None = None):
    service.get(session, deployment_id)
    statement = service.report_statement(deployment_id, status_, step, host)
    if format is not None:
        media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
        filename = f"deployment-{deployment_id}-report.{format}"
        return StreamingResponse(_export(sessions, deployment_id, statement, format), media_type=media,
                                 headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    items, total = service.report_page(session, deployment_id, (tuple(status_ or ()), step, host), statement,
                                       paging.page, paging.page_size)
    page = ReportPage(items=items, total=total, page=paging.page, page_size=paging.page_size,
                      counts=service.status_counts(session, deployment_id))
    # Built and validated just now: serialised as it is, not validated again against the union.
    return Response(page.model_dump_json(), media_type="application/json")


@router.get("/{deployment_id}/grid", response_model=GridPage, summary=(
    "Hosts × steps: a page of the deployment's hosts by name, each with its status in every step"))
def get_grid(session: DbSession, paging: Paging, deployment_id: int,
             status_: Annotated[list[HostStatus] | None, Query(alias="status", description=(
                 "Hosts with at least one step in one of these"))] = None,
             host: Annotated[str | None, Query(max_length=255, description="Hosts whose name contains this")] = None):
    deployment = service.get(session, deployment_id)
    return service.grid_page(session, deployment, status_, host, paging.page, paging.page_size)


# Not in the OpenAPI document: an endless text/event-stream (described in depot.deployments.stream).
@router.get("/{deployment_id}/stream", include_in_schema=False, response_class=StreamingResponse)
def stream_deployment(session: DbSession, sessions: Sessions, deployment_id: int,
                      last_event_id: Annotated[str | None, Header(max_length=40)] = None):
    """Live changes of host statuses and counts as server-sent events (the request's own session
    has closed before the stream starts; each poll opens its own)."""
    service.get(session, deployment_id)
    return stream.response(sessions, deployment_id, last_event_id)


# --- runs ----------------------------------------------------------------------------------------

@router.get("/{deployment_id}/runs", response_model=Page[RunRead])
def list_runs(session: DbSession, paging: Paging, deployment_id: int):
    service.get(session, deployment_id)
    return paginate(session, service.runs_statement(deployment_id), paging.page, paging.page_size,
                    RunRead.model_validate)


@runs_router.get("/{run_id}", response_model=RunRead)
def get_run(session: DbSession, run_id: int):
    return RunRead.model_validate(service.get_run(session, run_id))


def _read_bounded(path, size: int) -> Iterator[bytes]:
    """``size`` bytes of a file that may still be growing (a run in progress), so the body matches
    the Content-Length sent."""
    with open(path, "rb") as f:
        while size > 0:
            block = f.read(min(LOG_CHUNK, size))
            if not block:
                break
            size -= len(block)
            yield block


@runs_router.get("/{run_id}/log", response_class=StreamingResponse,
                 responses={200: {"content": {"text/plain": {}}}}, summary="The run's stdout (text)")
def get_run_log(session: DbSession, run_id: int):
    run = service.get_run(session, run_id)
    path = service.run_log_path(run)
    if path is None:
        raise NotFound(f"run {run_id} has no log (yet)")
    size = os.stat(path).st_size
    return StreamingResponse(_read_bounded(path, size), media_type="text/plain; charset=utf-8",
                             headers={"Content-Length": str(size)})
