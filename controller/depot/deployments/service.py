"""Deployments and their steps: editing (a ready deployment returns to draft), the actions
ready/start/cancel/archive, and the per-host report. Every state change goes through
depot.orchestration.service with its cause and actor."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, selectinload

from depot import modulespec
from depot.database.core import utcnow
from depot.deployments.models import Deployment, HostResult, MaintenanceWindow, Run, Step
from depot.deployments.schemas import (
    DeploymentCreate, DeploymentUpdate, HostReport, OccurrenceRead, ScheduleFields, SchedulePreview, StepCreate,
    StepFields, StepUpdate, WindowFields,
)
from depot.errors import Conflict, Invalid, NotFound, not_found
from depot.orchestration import lifecycle
from depot.orchestration.service import set_deployment_state
from depot.orchestration.states import DeploymentState, HostStatus
from depot.packages.models import Package
from depot.policies import schemas as policy_schemas
from depot.policies.models import Policy
from depot.scheduling import (
    MisfirePolicy, OneOffWindow, RecurringWindow, Schedule, SchedulingError, Window, WindowSet, next_occurrence,
    preview as preview_occurrences,
)
from depot.schemas import validate_merged
from depot.targets import service as targets
from depot.targets.models import Target

D = DeploymentState
EDITABLE = (D.DRAFT, D.READY)
STEP_FIELDS = tuple(StepFields.model_fields)
Loc = list[str | int]


# --- reading -------------------------------------------------------------------------------------

def get(session: Session, deployment_id: int, *, for_update: bool = False) -> Deployment:
    deployment = session.get(Deployment, deployment_id, with_for_update=for_update)
    if deployment is None:
        raise not_found("deployment", deployment_id)
    return deployment


def get_step(deployment: Deployment, step_id: int) -> Step:
    for step in deployment.steps:
        if step.id == step_id:
            return step
    raise NotFound(f"deployment {deployment.id} has no step {step_id}")


def list_statement(state: DeploymentState | None = None):
    statement = (select(Deployment).options(selectinload(Deployment.steps), selectinload(Deployment.maintenance_windows))
                 .order_by(Deployment.id))
    return statement.where(Deployment.state == state) if state else statement


# --- editing -------------------------------------------------------------------------------------

def _begin_edit(session: Session, deployment: Deployment, actor: str) -> None:
    """Only draft and ready deployments can be edited; an edit returns a ready one to draft."""
    if deployment.state not in EDITABLE:
        raise Conflict(f"deployment {deployment.id} is {deployment.state.value}: only draft and ready "
                       "deployments can be edited")
    if deployment.state is D.READY:
        set_deployment_state(session, deployment, D.DRAFT, cause="edited", actor=actor)
    deployment.updated_at = utcnow()


def _reference_errors(session: Session, data: StepFields, loc: Loc) -> list[tuple[Loc, str]]:
    """Referenced policy, package and targets exist; a policy step's options fit its category."""
    errors = []
    if data.policy_id is not None:
        policy = session.get(Policy, data.policy_id)
        if policy is None:
            errors.append((loc + ["policy_id"], f"policy {data.policy_id} does not exist"))
        else:
            problems = modulespec.option_errors(data.options, policy_schemas.allowed_options(policy.category))
            errors += [(loc + ["options"], p) for p in problems]
    if data.package_id is not None and session.get(Package, data.package_id) is None:
        errors.append((loc + ["package_id"], f"package {data.package_id} does not exist"))
    for index, target_id in enumerate(data.target_ids):
        if session.get(Target, target_id) is None:
            errors.append((loc + ["target_ids", index], f"target {target_id} does not exist"))
    return errors


def _check_steps(session: Session, steps: Sequence[StepFields], loc: Loc) -> None:
    errors = [e for index, step in enumerate(steps) for e in _reference_errors(session, step, loc + [index])]
    if errors:
        raise Invalid(errors)


def _default_name(session: Session, data: StepFields) -> str:
    if data.name:
        return data.name
    if data.policy_id is not None:
        return session.get(Policy, data.policy_id).name
    if data.package_id is not None:
        package = session.get(Package, data.package_id)
        return f"{package.name} {package.version}"
    return "script"


def _apply_step(session: Session, step: Step, data: StepFields) -> None:
    for field in STEP_FIELDS:
        setattr(step, field, getattr(data, field))
    step.name = _default_name(session, data)


def _renumber(session: Session, deployment: Deployment, ordered: list[Step]) -> None:
    """Give ``ordered`` the positions 1..n. Positions are unique per deployment, so go through
    negative ones first to never collide on the way."""
    for index, step in enumerate(ordered):
        step.position = -(index + 1)
    session.flush()
    for index, step in enumerate(ordered):
        step.position = index + 1
    session.flush()
    session.refresh(deployment, ["steps"])


def _replace_steps(session: Session, deployment: Deployment, steps: Sequence[StepFields]) -> None:
    deployment.steps.clear()
    session.flush()          # the old steps go first: positions are unique per deployment
    for position, data in enumerate(steps, start=1):
        step = Step(position=position)
        _apply_step(session, step, data)
        deployment.steps.append(step)
    session.flush()


# --- schedule and maintenance windows (DESIGN.md §3.4; the arithmetic is depot.scheduling) ----------

# The names the API gives the inputs that depot.scheduling reports by its own names.
_FIELD_NAMES = {"grace": "grace_seconds", "duration": "duration_seconds"}


def _loc(loc: Loc, error: SchedulingError) -> Loc:
    return loc + [_FIELD_NAMES.get(error.field, error.field)]


def parse_schedule(data: ScheduleFields, loc: Loc) -> tuple[Schedule, MisfirePolicy]:
    """The schedule and misfire rule of a request; :class:`Invalid` naming the field under ``loc``."""
    try:
        return (Schedule(data.rrule, data.timezone, data.start),
                MisfirePolicy(data.misfire, data.grace_seconds if data.misfire == "run_late" else 0))
    except SchedulingError as e:
        raise Invalid([(_loc(loc, e), e.message)]) from None


def _parse_window(data: WindowFields, loc: Loc) -> Window:
    given = {f for f in ("end", "rrule", "timezone", "duration_seconds") if getattr(data, f) is not None}
    if data.kind == "one_off":
        required, allowed = {"end"}, {"end"}
    else:
        required = allowed = {"rrule", "timezone", "duration_seconds"}
    errors = [(loc + [f], f"required for a {data.kind} window") for f in sorted(required - given)]
    errors += [(loc + [f], f"goes only with a {'recurring' if f != 'end' else 'one_off'} window")
               for f in sorted(given - allowed)]
    if errors:
        raise Invalid(errors)
    try:
        if data.kind == "one_off":
            return OneOffWindow(data.start, data.end)
        return RecurringWindow(Schedule(data.rrule, data.timezone, data.start), data.duration_seconds)
    except SchedulingError as e:
        raise Invalid([(_loc(loc, e), e.message)]) from None


def parse_windows(windows: Sequence[WindowFields], exclusions: Sequence[WindowFields], loc: Loc) -> WindowSet:
    """The window set of a request; :class:`Invalid` naming every field at fault."""
    errors: list[tuple[Loc, str]] = []
    parsed: dict[str, list[Window]] = {"windows": [], "exclusions": []}
    for name, items in (("windows", windows), ("exclusions", exclusions)):
        for index, item in enumerate(items):
            try:
                parsed[name].append(_parse_window(item, loc + [name, index]))
            except Invalid as e:
                errors += e.errors
    if errors:
        raise Invalid(errors)
    return WindowSet(parsed["windows"], parsed["exclusions"])


def _window_row(window: Window, is_exclusion: bool) -> MaintenanceWindow:
    if isinstance(window, OneOffWindow):
        return MaintenanceWindow(kind="one_off", is_exclusion=is_exclusion, start_at=window.start, end_at=window.end)
    return MaintenanceWindow(kind="recurring", is_exclusion=is_exclusion, rrule=window.schedule.rrule,
                             timezone=window.schedule.timezone, local_start=window.schedule.start,
                             duration_seconds=int(window.duration.total_seconds()))


def _window_of(row: MaintenanceWindow) -> Window:
    if row.kind == "one_off":
        return OneOffWindow(row.start_at, row.end_at)
    return RecurringWindow(Schedule(row.rrule, row.timezone, row.local_start), row.duration_seconds)


def schedule_of(deployment: Deployment) -> tuple[Schedule, MisfirePolicy] | None:
    """The stored schedule and misfire rule, or None."""
    if deployment.schedule_rrule is None:
        return None
    return (Schedule(deployment.schedule_rrule, deployment.schedule_timezone, deployment.schedule_start),
            MisfirePolicy(deployment.schedule_misfire, deployment.schedule_grace_seconds or 0))


def windows_of(deployment: Deployment) -> WindowSet:
    """The stored windows and exclusions (no windows: always open, except during exclusions)."""
    return WindowSet([_window_of(w) for w in deployment.windows], [_window_of(w) for w in deployment.exclusions])


def _set_schedule(deployment: Deployment, data: ScheduleFields | None) -> None:
    """Store a validated schedule. Occurrences before it was saved never count (last_fired = now)."""
    if data is None:
        for column in ("rrule", "timezone", "start", "misfire", "grace_seconds", "last_fired", "next_run_at"):
            setattr(deployment, f"schedule_{column}", None)
        return
    schedule, policy = parse_schedule(data, ["body", "schedule"])
    now = utcnow()
    deployment.schedule_rrule, deployment.schedule_timezone = schedule.rrule, schedule.timezone
    deployment.schedule_start = schedule.start
    deployment.schedule_misfire = policy.rule.value
    deployment.schedule_grace_seconds = int(policy.grace.total_seconds())
    deployment.schedule_last_fired = now
    deployment.schedule_next_run_at = next_occurrence(schedule, now)


def _replace_windows(deployment: Deployment, windows: WindowSet, which: Sequence[str]) -> None:
    """Replace the stored windows and/or exclusions (``which``) by those of ``windows``."""
    keep = [w for w in deployment.maintenance_windows
            if ("exclusions" if w.is_exclusion else "windows") not in which]
    new = ([_window_row(w, False) for w in windows.windows] if "windows" in which else []) + \
          ([_window_row(w, True) for w in windows.exclusions] if "exclusions" in which else [])
    deployment.maintenance_windows = keep + new


def preview(schedule: Schedule, windows: WindowSet, count: int, after=None) -> SchedulePreview:
    """The next ``count`` occurrences after ``after`` (default now), with their local time, DST
    adjustment, and whether the windows are open then."""
    try:
        occurrences = preview_occurrences(schedule, after or utcnow(), count)
    except SchedulingError as e:
        raise Invalid([(["query", e.field], e.message)]) from None
    return SchedulePreview(rrule=schedule.rrule, timezone=schedule.timezone, occurrences=[
        OccurrenceRead(at=o.at, local=o.local, wall_time=o.wall_time, adjustment=o.adjustment,
                       in_window=windows.is_open(o.at)) for o in occurrences])


def deployment_preview(deployment: Deployment, count: int, after=None) -> SchedulePreview:
    stored = schedule_of(deployment)
    if stored is None:
        raise NotFound(f"deployment {deployment.id} has no schedule")
    return preview(stored[0], windows_of(deployment), count, after)


def create(session: Session, data: DeploymentCreate) -> Deployment:
    _check_steps(session, data.steps, ["body", "steps"])
    if data.schedule is not None:
        parse_schedule(data.schedule, ["body", "schedule"])
    windows = parse_windows(data.windows, data.exclusions, ["body"])
    deployment = Deployment(name=data.name, pipelined=data.pipelined, max_concurrent_hosts=data.max_concurrent_hosts,
                            state=D.DRAFT)
    _set_schedule(deployment, data.schedule)
    _replace_windows(deployment, windows, ("windows", "exclusions"))
    session.add(deployment)
    session.flush()
    _replace_steps(session, deployment, data.steps)
    return deployment


def update(session: Session, deployment: Deployment, data: DeploymentUpdate, actor: str) -> Deployment:
    _begin_edit(session, deployment, actor)
    scheduling = ("schedule", "windows", "exclusions")
    changes = data.model_dump(exclude_unset=True, exclude={"steps", *scheduling})
    nulls = [field for field in ("name", "pipelined", "windows", "exclusions")
             if field in data.model_fields_set and getattr(data, field) is None]
    if nulls:
        raise Invalid([(["body", field], f"{field} cannot be null") for field in nulls])
    if data.steps is not None:
        _check_steps(session, data.steps, ["body", "steps"])
    if data.schedule is not None:
        parse_schedule(data.schedule, ["body", "schedule"])
    windows = parse_windows(data.windows or [], data.exclusions or [], ["body"])
    for field, value in changes.items():
        setattr(deployment, field, value)
    if "schedule" in data.model_fields_set:
        _set_schedule(deployment, data.schedule)
    which = [field for field in ("windows", "exclusions") if field in data.model_fields_set]
    if which:
        _replace_windows(deployment, windows, which)
    if data.steps is not None:
        _replace_steps(session, deployment, data.steps)
    session.flush()
    return deployment


def delete(session: Session, deployment: Deployment) -> None:
    """Draft, ready and archived deployments can be deleted; an active one must finish first, and a
    completed one be archived."""
    if deployment.state not in (D.DRAFT, D.READY, D.ARCHIVED):
        raise Conflict(f"deployment {deployment.id} is {deployment.state.value}: only draft, ready and archived "
                       "deployments can be deleted")
    session.delete(deployment)
    session.flush()


def add_step(session: Session, deployment: Deployment, data: StepCreate, actor: str) -> Step:
    _begin_edit(session, deployment, actor)
    _check_steps(session, [data], ["body"])
    step = Step(position=len(deployment.steps) + 1)
    _apply_step(session, step, data)
    ordered = list(deployment.steps)
    ordered.insert(min(data.position or len(ordered) + 1, len(ordered) + 1) - 1, step)
    deployment.steps.append(step)
    _renumber(session, deployment, ordered)
    return step


def update_step(session: Session, deployment: Deployment, step: Step, data: StepUpdate, actor: str) -> Step:
    _begin_edit(session, deployment, actor)
    changes = data.model_dump(exclude_unset=True, exclude={"position"})
    current = {field: getattr(step, field) for field in STEP_FIELDS}
    if "policy_id" in changes or "action" in changes:    # what the step does is replaced as a whole
        current.update(policy_id=None, action=None, package_id=None, script=None)
    merged = validate_merged(StepFields, {**current, **changes})
    _check_steps(session, [merged], ["body"])
    _apply_step(session, step, merged)
    if data.position is not None and data.position != step.position:
        ordered = [s for s in deployment.steps if s is not step]
        ordered.insert(min(data.position, len(ordered) + 1) - 1, step)
        _renumber(session, deployment, ordered)
    session.flush()
    return step


def delete_step(session: Session, deployment: Deployment, step: Step, actor: str) -> None:
    _begin_edit(session, deployment, actor)
    deployment.steps.remove(step)
    session.flush()
    _renumber(session, deployment, list(deployment.steps))


# --- actions -------------------------------------------------------------------------------------

def step_hosts(session: Session, step: Step, cache: dict | None = None) -> list[str]:
    """The hosts a step runs on now: its targets' hosts, in order, each once."""
    hosts: dict[str, None] = {}
    for target_id in step.target_ids:
        target = session.get(Target, target_id)
        if target is None:
            raise targets.InventoryError(f"target {target_id} does not exist")
        hosts.update(dict.fromkeys(targets.resolve(target, cache)))
    return list(hosts)


def readiness(session: Session, deployment: Deployment) -> tuple[list[tuple[Loc, str]], dict[int, list[str]]]:
    """What keeps the deployment from running (each problem naming its step and field), and the
    hosts of each step (by step id)."""
    errors: list[tuple[Loc, str]] = []
    hosts: dict[int, list[str]] = {}
    cache: dict[str, dict] = {}
    if not deployment.steps:
        errors.append((["steps"], "a deployment needs at least one step"))
    for index, step in enumerate(deployment.steps):
        loc, label = ["steps", index], f"step {step.position} ({step.name})"
        if step.policy_id is not None:
            policy = session.get(Policy, step.policy_id)
            if policy.state != "published":
                errors.append((loc + ["policy_id"], f"{label}: policy {policy.id} ({policy.name!r}) is a "
                               f"{policy.state}; only published policies deploy"))
        if not step.target_ids:
            errors.append((loc + ["target_ids"], f"{label}: has no targets"))
            continue
        found: dict[str, None] = {}
        connections: dict[int, int | None] = {}   # target id -> its connection credential
        broken = False
        for target_index, target_id in enumerate(step.target_ids):
            target = session.get(Target, target_id)
            try:
                if target is None:
                    raise targets.InventoryError("does not exist")
                connections[target.id] = target.credential_id
                found.update(dict.fromkeys(targets.resolve(target, cache)))
            except targets.InventoryError as e:
                broken = True
                errors.append((loc + ["target_ids", target_index], f"{label}: target {target_id}: {e}"))
        if not found and not broken:
            errors.append((loc + ["target_ids"], f"{label}: its targets resolve to no hosts"))
        if len(set(connections.values())) > 1:   # one run connects as one identity
            which = ", ".join(f"target {t}: {f'credential {c}' if c else 'no credential'}" for t, c in connections.items())
            errors.append((loc + ["target_ids"], f"{label}: its targets connect with different credentials ({which}); "
                           "give them the same credential or split the step"))
        hosts[step.id] = list(found)
    return errors, hosts


def ready(session: Session, deployment: Deployment, actor: str) -> Deployment:
    """Draft → ready, once it can run: steps, published policies, targets with hosts."""
    if deployment.state is not D.DRAFT:
        raise Conflict(f"deployment {deployment.id} is {deployment.state.value}: only a draft can be made ready")
    errors, _ = readiness(session, deployment)
    if errors:
        raise Invalid(errors)
    set_deployment_state(session, deployment, D.READY, cause="ready", actor=actor)
    return deployment


def start(session: Session, deployment: Deployment, actor: str) -> int:
    """Ready → active: one host result per (step, host), status ready, all in this transaction.
    Returns how many were created."""
    if deployment.state is not D.READY:
        hint = "; a draft never runs: make it ready first" if deployment.state is D.DRAFT else ""
        raise Conflict(f"deployment {deployment.id} is {deployment.state.value}: only a ready deployment "
                       f"starts{hint}")
    errors, hosts = readiness(session, deployment)
    if errors:
        raise Invalid(errors)
    rows = [dict(deployment_id=deployment.id, step_id=step.id, position=step.position, host=host,
                 status=HostStatus.READY)
            for step in deployment.steps for host in hosts[step.id]]
    session.execute(insert(HostResult), rows)
    deployment.cancel_requested = False
    set_deployment_state(session, deployment, D.ACTIVE, cause="started", actor=actor)
    session.flush()
    return len(rows)


def cancel(session: Session, deployment: Deployment, actor: str) -> Deployment:
    """Hosts not yet running become cancelled now; running ones finish their current step (the
    worker completes the deployment when none is left). With none running, it completes now."""
    if deployment.state is not D.ACTIVE:
        raise Conflict(f"deployment {deployment.id} is {deployment.state.value}: only an active deployment "
                       "can be cancelled")
    deployment.cancel_requested = True
    # The same rules the worker applies: waiting hosts are cancelled, and with none running the
    # deployment completes now.
    lifecycle.cascade(session, deployment, actor, reason=f"deployment cancelled by {actor}")
    session.flush()
    lifecycle.complete_if_done(session, deployment, actor)
    session.flush()
    return deployment


def archive(session: Session, deployment: Deployment, actor: str) -> Deployment:
    set_deployment_state(session, deployment, D.ARCHIVED, cause="archived", actor=actor)
    session.flush()
    return deployment


# --- report and runs -----------------------------------------------------------------------------

def report_statement(deployment_id: int, status: Sequence[HostStatus] | None = None, step: int | None = None,
                     host: str | None = None):
    """Host results with their step's name, by step position then host; ``step`` is a position."""
    statement = (select(HostResult, Step.name).join(Step, Step.id == HostResult.step_id)
                 .where(HostResult.deployment_id == deployment_id)
                 .order_by(HostResult.position, HostResult.host))
    if status:
        statement = statement.where(HostResult.status.in_(list(status)))
    if step is not None:
        statement = statement.where(HostResult.position == step)
    if host:
        statement = statement.where(HostResult.host == host)
    return statement


def report_row(result: HostResult, step_name: str) -> HostReport:
    return HostReport.model_validate({**{f: getattr(result, f) for f in HostReport.model_fields if f != "step_name"},
                                      "step_name": step_name})


def report_page(session: Session, statement, page: int, page_size: int) -> tuple[list[HostReport], int]:
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    rows = session.execute(statement.limit(page_size).offset((page - 1) * page_size)).all()
    return [report_row(result, name) for result, name in rows], total


def status_counts(session: Session, deployment_id: int) -> dict[str, int]:
    rows = session.execute(select(HostResult.status, func.count()).where(HostResult.deployment_id == deployment_id)
                           .group_by(HostResult.status)).all()
    return {status.value: count for status, count in rows}


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise not_found("run", run_id)
    return run


def runs_statement(deployment_id: int):
    return select(Run).where(Run.deployment_id == deployment_id).order_by(Run.id)


def run_log_path(run: Run) -> Path | None:
    """The run's stdout in its ansible-runner artifact dir (``<artifact_dir>/stdout``, or
    ``<artifact_dir>/<ident>/stdout`` when the base artifacts dir was recorded)."""
    if not run.artifact_dir:
        return None
    base = Path(run.artifact_dir)
    for candidate in [base / "stdout", *sorted(base.glob("*/stdout"))]:
        if candidate.is_file():
            return candidate
    return None
