"""Deployments and their steps: editing (a ready deployment returns to draft), the actions
ready/start/cancel/archive, and the per-host report. Every state change goes through
depot.orchestration.service with its cause and actor."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, selectinload

from depot import modulespec
from depot.database.core import utcnow
from depot.deployments.models import Deployment, HostResult, Run, Step
from depot.deployments.schemas import (
    DeploymentCreate, DeploymentUpdate, FailureBudget, GridCell, GridPage, GridRow, GridStep, HostReport, OccurrenceRead,
    ScheduleFields, SchedulePreview, StepCreate, StepFields, StepUpdate,
)
from depot.execution.wakeup import WakeOptions, parse_mac
from depot.errors import Conflict, Invalid, NotFound, not_found
from depot.orchestration import counts, lifecycle, signals
from depot.orchestration.service import set_deployment_state, set_host_status
from depot.orchestration.states import SUCCESSFUL_HOST_STATUSES, DeploymentOutcome, DeploymentState, HostStatus
from depot.packages.models import Package
from depot.policies import schemas as policy_schemas
from depot.policies.models import Policy
from depot.scheduling import service as windows_service
from depot.scheduling import (
    MisfirePolicy, Schedule, SchedulingError, WindowSet, check_window_fits, next_occurrence,
    preview as preview_occurrences,
)
from depot.schemas import validate_merged
from depot.targets import service as targets
from depot.targets.models import Target
from depot.users import service as users

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
    for name in STEP_FIELDS:
        setattr(step, name, getattr(data, name))
    step.wake_on_lan = data.wake_on_lan.model_dump(mode="json") if data.wake_on_lan else None
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


def privileged_parts(session: Session, steps: Sequence[StepFields | Step]) -> list[str]:
    """What in these steps needs the privileged role (depot.users.service): script steps, command
    lines in their options, and policies that are scripts or carry command lines."""
    parts = users.privileged_parts(steps)
    for index, step in enumerate(steps, start=1):
        policy = session.get(Policy, step.policy_id) if step.policy_id else None
        if policy is not None and (policy.category == "script" or users.command_lines(policy.options)):
            parts.append(f"step {index} uses policy {policy.id}, a script or command line")
    return parts


def require_privilege(session: Session, user, steps: Sequence[StepFields | Step]) -> None:
    parts = privileged_parts(session, steps)
    if parts:
        users.require(user, users.PRIVILEGED, f"a deployment whose {'; '.join(parts)}")


# --- schedule and maintenance windows (DESIGN.md §3.4; the arithmetic is depot.scheduling) ----------

def parse_schedule(data: ScheduleFields, loc: Loc) -> tuple[Schedule, MisfirePolicy]:
    """The schedule and misfire rule of a request; :class:`Invalid` naming the field under ``loc``."""
    try:
        schedule = Schedule(data.rrule, data.timezone, data.start)
        policy = MisfirePolicy(data.misfire, data.grace_seconds if data.misfire == "run_late" else 0)
    except SchedulingError as e:
        raise Invalid([(windows_service.field_loc(loc, e), e.message)]) from None
    if next_occurrence(schedule, utcnow()) is None:
        raise Invalid([(loc + ["start"], "the schedule has no occurrence after now: it would never start the "
                        "deployment (start it now instead, or give a later start)")])
    return schedule, policy


def schedule_of(deployment: Deployment) -> tuple[Schedule, MisfirePolicy] | None:
    """The stored schedule and misfire rule, or None."""
    if deployment.schedule_rrule is None:
        return None
    return (Schedule(deployment.schedule_rrule, deployment.schedule_timezone, deployment.schedule_start),
            MisfirePolicy(deployment.schedule_misfire, deployment.schedule_grace_seconds or 0))


def _set_schedule(deployment: Deployment, data: ScheduleFields | None) -> None:
    """Store a validated schedule. Occurrences before it was saved never count (last_fired = now)."""
    if data is None:
        for column in ("rrule", "timezone", "start", "misfire", "grace_seconds", "rerun", "last_fired", "next_run_at"):
            setattr(deployment, f"schedule_{column}", None)
        return
    schedule, policy = parse_schedule(data, ["body", "schedule"])
    now = utcnow()
    deployment.schedule_rrule, deployment.schedule_timezone = schedule.rrule, schedule.timezone
    deployment.schedule_start = schedule.start
    deployment.schedule_misfire = policy.rule.value
    deployment.schedule_grace_seconds = int(policy.grace.total_seconds())
    deployment.schedule_rerun = data.rerun
    deployment.schedule_last_fired = now
    deployment.schedule_next_run_at = next_occurrence(schedule, now)


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
    return preview(stored[0], windows_service.windows_of(deployment), count, after)


def _set_budget(deployment: Deployment, budget: FailureBudget | None) -> None:
    deployment.failure_budget_percent = budget.max_failure_percent if budget else None
    deployment.failure_budget_min_sample = budget.min_sample if budget else 5


def _check_window_lengths(windows: WindowSet, steps: Sequence[StepFields | Step], loc: Loc) -> None:
    """Every window must be long enough for the longest step to start in it."""
    if not steps:
        return
    step = max(steps, key=lambda s: s.execution_timeout)
    errors = []
    for index, window in enumerate(windows.windows):
        try:
            check_window_fits(window, step.execution_timeout)
        except SchedulingError as e:
            errors.append((windows_service.field_loc(loc + ["windows", index], e),
                           f"{e.message} (step {step.name or steps.index(step) + 1!s})"))
    if errors:
        raise Invalid(errors)


def create(session: Session, data: DeploymentCreate) -> Deployment:
    _check_steps(session, data.steps, ["body", "steps"])
    if data.schedule is not None:
        parse_schedule(data.schedule, ["body", "schedule"])
    windows = windows_service.parse_windows(data.windows, data.exclusions, ["body"])
    _check_window_lengths(windows, data.steps, ["body"])
    deployment = Deployment(name=data.name, pipelined=data.pipelined, max_concurrent_hosts=data.max_concurrent_hosts,
                            rings=list(data.rings), state=D.DRAFT)
    _set_budget(deployment, data.failure_budget)
    _set_schedule(deployment, data.schedule)
    windows_service.replace_windows(deployment, windows, ("windows", "exclusions"))
    session.add(deployment)
    session.flush()
    _replace_steps(session, deployment, data.steps)
    return deployment


def update(session: Session, deployment: Deployment, data: DeploymentUpdate, actor: str) -> Deployment:
    _begin_edit(session, deployment, actor)
    scheduling = ("schedule", "windows", "exclusions")
    changes = data.model_dump(exclude_unset=True, exclude={"steps", "failure_budget", *scheduling})
    nulls = [field for field in ("name", "pipelined", "windows", "exclusions", "rings")
             if field in data.model_fields_set and getattr(data, field) is None]
    if nulls:
        raise Invalid([(["body", field], f"{field} cannot be null") for field in nulls])
    if data.steps is not None:
        _check_steps(session, data.steps, ["body", "steps"])
    if data.schedule is not None:
        parse_schedule(data.schedule, ["body", "schedule"])
    windows = windows_service.parse_windows(data.windows or [], data.exclusions or [], ["body"])
    if data.windows is not None:
        _check_window_lengths(windows, data.steps if data.steps is not None else deployment.steps, ["body"])
    for field, value in changes.items():
        setattr(deployment, field, value)
    if "failure_budget" in data.model_fields_set:
        _set_budget(deployment, data.failure_budget)
    if "schedule" in data.model_fields_set:
        _set_schedule(deployment, data.schedule)
    which = [field for field in ("windows", "exclusions") if field in data.model_fields_set]
    if which:
        windows_service.replace_windows(deployment, windows, which)
        if deployment.schedule_rrule is not None and "schedule" not in data.model_fields_set:
            # A deferred run waits for a window that may have moved: the next tick works it out again.
            deployment.schedule_next_run_at = None
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

# The hosts of one step, in order, each with the targets it came from.
StepHosts = dict[str, list[Target]]


def readiness(session: Session, deployment: Deployment, cache: dict[str, dict] | None = None
              ) -> tuple[list[tuple[Loc, str]], dict[int, StepHosts]]:
    """What keeps the deployment from running (each problem naming its step and field), and the
    hosts of each step (by step id). ``cache`` holds the inventories read (each source is read once)."""
    errors: list[tuple[Loc, str]] = []
    hosts: dict[int, StepHosts] = {}
    cache = {} if cache is None else cache
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
        found: StepHosts = {}
        connections: dict[int, int | None] = {}   # target id -> its connection credential
        broken = False
        for target_index, target_id in enumerate(step.target_ids):
            target = session.get(Target, target_id)
            try:
                if target is None:
                    raise targets.InventoryError("does not exist")
                connections[target.id] = target.credential_id
                for host in targets.resolve(target, cache):
                    found.setdefault(host, []).append(target)
            except targets.InventoryError as e:
                broken = True
                errors.append((loc + ["target_ids", target_index], f"{label}: target {target_id}: {e}"))
                continue
            try:
                check_window_fits(windows_service.windows_of(target), step.execution_timeout)
            except SchedulingError as e:
                errors.append((loc + ["target_ids", target_index], f"{label}: target {target.id} "
                               f"({target.name}): {e.message}"))
        if not found and not broken:
            errors.append((loc + ["target_ids"], f"{label}: its targets resolve to no hosts"))
        if len(set(connections.values())) > 1:   # one run connects as one identity
            which = ", ".join(f"target {t}: {f'credential {c}' if c else 'no credential'}" for t, c in connections.items())
            errors.append((loc + ["target_ids"], f"{label}: its targets connect with different credentials ({which}); "
                           "give them the same credential or split the step"))
        try:
            check_window_fits(windows_service.windows_of(deployment), step.execution_timeout)
        except SchedulingError as e:
            errors.append((loc + ["execution_timeout"], f"{label}: {e.message}"))
        hosts[step.id] = found
    if not errors:
        errors += _mac_errors(deployment, hosts, cache)
    return errors, hosts


def _mac_errors(deployment: Deployment, hosts: dict[int, StepHosts], cache: dict) -> list[tuple[Loc, str]]:
    """A Wake-on-LAN step's hosts must not carry a MAC variable that is not a MAC."""
    errors = []
    for index, step in enumerate(deployment.steps):
        if not step.wake_on_lan:
            continue
        var = WakeOptions.model_validate(step.wake_on_lan).mac_var
        for host, via in hosts[step.id].items():
            value = targets.host_vars(via[0], host, cache).get(var)
            if value is None:
                continue
            try:
                parse_mac(str(value))
            except ValueError as e:
                errors.append((["steps", index, "wake_on_lan"], f"step {step.position}: host {host}: {var}: {e}"))
    return errors


def ready(session: Session, deployment: Deployment, actor: str) -> Deployment:
    """Draft → ready, once it can run: steps, published policies, targets with hosts."""
    if deployment.state is not D.DRAFT:
        raise Conflict(f"deployment {deployment.id} is {deployment.state.value}: only a draft can be made ready")
    errors, _ = readiness(session, deployment)
    if errors:
        raise Invalid(errors)
    set_deployment_state(session, deployment, D.READY, cause="ready", actor=actor)
    return deployment


def ring_sizes(rings: Sequence[str], total: int) -> list[int]:
    """How many hosts each ring takes ("5" hosts, "10%" of them rounded up, at least 1); the
    rest go in a last ring."""
    sizes = []
    left = total
    for ring in rings:
        size = -(-total * int(ring[:-1]) // 100) if ring.endswith("%") else int(ring)
        size = min(max(size, 1), left)
        if size:
            sizes.append(size)
        left -= size
    if left:
        sizes.append(left)
    return sizes


def _rings(deployment: Deployment, hosts: dict[int, StepHosts]) -> dict[str, int]:
    """Each host's ring: hosts in order of first appearance over the steps."""
    order = list(dict.fromkeys(h for step in deployment.steps for h in hosts[step.id]))
    ring_of: dict[str, int] = {}
    index = 0
    for ring, size in enumerate(ring_sizes(deployment.rings or [], len(order))):
        for host in order[index:index + size]:
            ring_of[host] = ring
        index += size
    return ring_of


def _new_rows(deployment: Deployment, hosts: dict[int, StepHosts], cache: dict, ring_of: dict[str, int],
              skip: set[tuple[int, str]] = frozenset(), default_ring: int = 0) -> list[dict]:
    """Ready host results for every (step, host) not in ``skip``, each with the targets it came
    from, its ring (``default_ring`` for a host ``ring_of`` does not know), and its inventory
    address and MAC."""
    rows = []
    for step in deployment.steps:
        mac_var = WakeOptions.model_validate(step.wake_on_lan).mac_var if step.wake_on_lan else None
        for host, via in hosts[step.id].items():
            if (step.id, host) in skip:
                continue
            variables = targets.host_vars(via[0], host, cache)
            mac = variables.get(mac_var) if mac_var else None
            rows.append(dict(deployment_id=deployment.id, step_id=step.id, position=step.position, host=host,
                             status=HostStatus.READY, targets=[t.id for t in via], ring=ring_of.get(host, default_ring),
                             address=str(variables.get("ansible_host") or host)[:255],
                             mac=parse_mac(str(mac)) if mac is not None else None))
    return rows


def start(session: Session, deployment: Deployment, actor: str) -> int:
    """Ready → active: one host result per (step, host), status ready, all in this transaction.
    Returns how many were created."""
    if deployment.state is not D.READY:
        hint = "; a draft never runs: make it ready first" if deployment.state is D.DRAFT else ""
        raise Conflict(f"deployment {deployment.id} is {deployment.state.value}: only a ready deployment "
                       f"starts{hint}")
    cache: dict[str, dict] = {}
    errors, hosts = readiness(session, deployment, cache)
    if errors:
        raise Invalid(errors)
    rows = _new_rows(deployment, hosts, cache, _rings(deployment, hosts))
    session.execute(insert(HostResult), rows)
    signals.host_results_changed(session, [deployment.id])
    deployment.cancel_requested = False
    set_deployment_state(session, deployment, D.ACTIVE, cause="started", actor=actor)
    session.flush()
    return len(rows)


# What a rerun resets on a host result: the previous run's outcome stays in the transitions.
_RERUN_RESET = dict(rc=None, outcome=None, attempts=[], contact_attempts=0, retries_done=0, first_contact_at=None,
                    next_attempt_at=None, started_at=None, finished_at=None, log_tail=None, run_id=None,
                    queued_behind=None, wait_boot_id=None, woken_at=None)


def rerun(session: Session, deployment: Deployment, actor: str) -> int:
    """Completed → active again, for the next occurrence of its recurring schedule (as MECM's
    rerun behaviour): with ``schedule_rerun`` "unsuccessful" every step again on the hosts where some
    step was not successful, with "always" on every host; hosts new in its targets since are added
    (detection keeps steps that are done from running twice). Returns how many host results will
    run; with none, the deployment stays completed."""
    if deployment.state is not D.COMPLETED or deployment.outcome is DeploymentOutcome.CANCELLED:
        raise Conflict(f"deployment {deployment.id} is {deployment.state.value}"
                       f"{' (cancelled)' if deployment.outcome is DeploymentOutcome.CANCELLED else ''}: only a "
                       "completed, not cancelled deployment runs again")
    cache: dict[str, dict] = {}
    errors, hosts = readiness(session, deployment, cache)
    if errors:
        raise Invalid(errors)
    rows = session.scalars(select(HostResult).where(HostResult.deployment_id == deployment.id)
                           .order_by(HostResult.id)).all()
    targeted = {(step_id, host) for step_id, step_hosts in hosts.items() for host in step_hosts}
    if deployment.schedule_rerun == "always":
        again = [r for r in rows if (r.step_id, r.host) in targeted]
    else:
        unsuccessful = {r.host for r in rows if r.status not in SUCCESSFUL_HOST_STATUSES}
        again = [r for r in rows if r.host in unsuccessful and (r.step_id, r.host) in targeted]
    ring_of = {r.host: r.ring for r in rows}
    new = _new_rows(deployment, hosts, cache, ring_of, skip={(r.step_id, r.host) for r in rows},
                    default_ring=max(ring_of.values(), default=0))   # hosts new since: with the last ring
    if not again and not new:
        return 0
    set_host_status(session, again, HostStatus.READY, cause="rerun by schedule", actor=actor,
                    reason="rerun by its schedule", **_RERUN_RESET)
    if new:
        session.execute(insert(HostResult), new)
        signals.host_results_changed(session, [deployment.id])
    deployment.cancel_requested = False
    deployment.pause_reason, deployment.budget_acknowledged = None, 0
    set_deployment_state(session, deployment, D.ACTIVE, cause="rerun by schedule", actor=actor)
    session.flush()
    return len(again) + len(new)


def cancel(session: Session, deployment: Deployment, actor: str) -> Deployment:
    """Hosts not yet running become cancelled now; running ones finish their current step (the
    worker completes the deployment when none is left). With none running, it completes now."""
    if deployment.state not in (D.ACTIVE, D.PAUSED):
        raise Conflict(f"deployment {deployment.id} is {deployment.state.value}: only an active or paused "
                       "deployment can be cancelled")
    deployment.cancel_requested = True
    # The same rules the worker applies: waiting hosts are cancelled, and with none running the
    # deployment completes now.
    lifecycle.cascade(session, deployment, actor, reason=f"deployment cancelled by {actor}")
    session.flush()
    lifecycle.complete_if_done(session, deployment, actor)
    session.flush()
    return deployment


def pause(session: Session, deployment: Deployment, actor: str) -> Deployment:
    """Active → paused: no host starts a step until it is resumed; running ones finish theirs."""
    if deployment.state is not D.ACTIVE:
        raise Conflict(f"deployment {deployment.id} is {deployment.state.value}: only an active deployment "
                       "can be paused")
    lifecycle.pause(session, deployment, f"paused by {actor}", actor)
    session.flush()
    return deployment


def resume(session: Session, deployment: Deployment, actor: str) -> Deployment:
    """Paused → active. The failures so far are acknowledged: the failure budget pauses it again
    only on new ones."""
    if deployment.state is not D.PAUSED:
        raise Conflict(f"deployment {deployment.id} is {deployment.state.value}: only a paused deployment "
                       "can be resumed")
    lifecycle.resume(session, deployment, actor)
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


def report_page(session: Session, deployment_id: int, filters: tuple, statement, page: int,
                page_size: int) -> tuple[list[HostReport], int]:
    """A page of ``statement`` (:func:`report_statement` of ``deployment_id`` with ``filters``): its
    ids are found first, from the index alone (ix_host_results_report), then only those rows are
    read - an offset deep into 20,000 rows then costs index entries, not rows (and no sort). The
    number of matching rows is cached as the counts are."""
    ids = select(HostResult.id).where(statement.whereclause).order_by(HostResult.position, HostResult.host)
    total = _cached(session, deployment_id, ("total", filters),
                    lambda: session.scalar(select(func.count()).select_from(ids.order_by(None).subquery())))
    page_ids = session.scalars(ids.limit(page_size).offset((page - 1) * page_size)).all()
    if not page_ids:
        return [], total
    # Columns, not ORM objects: nothing of the page is changed, so no identity map or states.
    columns = [getattr(HostResult, f) for f in HostReport.model_fields if f != "step_name"]
    rows = session.execute(select(*columns, Step.name.label("step_name")).join(Step, Step.id == HostResult.step_id)
                           .where(HostResult.id.in_(page_ids)).order_by(HostResult.position, HostResult.host))
    return [HostReport.model_validate(dict(row._mapping)) for row in rows], total


#: How long what reports derive from a deployment's host results (counts) is kept; changes
#: committed by this process replace it at once, those of other processes (workers) within this.
CACHE_SECONDS = 1.0
_CACHE_ENTRIES = 10_000
_cache: dict[tuple, tuple[int, float, object]] = {}


def _cached(session: Session, deployment_id: int, what, compute):
    """``compute()``, or its value of less than CACHE_SECONDS ago if no change to the deployment's
    host results was committed here since: at 200 report requests a second over a 10,000-host
    deployment, counting every time was a third of each request's time."""
    key = (str(session.get_bind().url), deployment_id, what)
    version, now = signals.host_results_versions.get(deployment_id), time.monotonic()
    cached = _cache.get(key)
    if cached is not None and cached[0] == version and now - cached[1] < CACHE_SECONDS:
        return cached[2]
    value = compute()
    if len(_cache) >= _CACHE_ENTRIES:
        _cache.clear()
    _cache[key] = (version, now, value)
    return value


def status_counts(session: Session, deployment_id: int) -> dict[str, int]:
    """Host results of the deployment by status (cached, see :func:`_cached`)."""
    return _cached(session, deployment_id, "counts", lambda: {
        status.value: n for status, n in counts.status_counts(session, deployment_id).items()})


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


# --- grid (hosts × steps) ------------------------------------------------------------------------

def step_status_counts(session: Session, deployment_id: int) -> dict[int, dict[str, int]]:
    """Host results by step position, then by status."""
    found: dict[int, dict[str, int]] = {}
    for position, status, n in session.execute(
            select(HostResult.position, HostResult.status, func.count())
            .where(HostResult.deployment_id == deployment_id).group_by(HostResult.position, HostResult.status)):
        found.setdefault(position, {})[status.value] = n
    return found


def grid_page(session: Session, deployment: Deployment, status: Sequence[HostStatus] | None, host: str | None,
              page: int, page_size: int) -> GridPage:
    """A page of the deployment's hosts, by name, each with its status in every step. ``status``:
    hosts with at least one step in one of these; ``host``: hosts whose name contains it."""
    by_step = step_status_counts(session, deployment.id)
    steps = [GridStep(position=s.position, step_id=s.id, name=s.name, counts=by_step.get(s.position, {}))
             for s in deployment.steps]
    column = {s.position: index for index, s in enumerate(deployment.steps)}
    hosts = select(HostResult.host).where(HostResult.deployment_id == deployment.id).group_by(HostResult.host)
    if status:
        hosts = hosts.where(HostResult.status.in_(list(status)))
    if host:
        hosts = hosts.where(HostResult.host.icontains(host, autoescape=True))
    total = session.scalar(select(func.count()).select_from(hosts.subquery()))
    names = session.scalars(hosts.order_by(HostResult.host).limit(page_size).offset((page - 1) * page_size)).all()
    rows = {name: GridRow(host=name, cells=[None] * len(steps)) for name in names}
    if names:
        for r in session.execute(select(HostResult.id, HostResult.host, HostResult.position, HostResult.status,
                                        HostResult.rc, HostResult.outcome, HostResult.reason, HostResult.attempts,
                                        HostResult.run_id)
                                 .where(HostResult.deployment_id == deployment.id, HostResult.host.in_(names))):
            if r.position in column:
                rows[r.host].cells[column[r.position]] = GridCell(
                    id=r.id, status=r.status, rc=r.rc, outcome=r.outcome, reason=r.reason,
                    attempts=len(r.attempts or []), run_id=r.run_id)
    totals: dict[str, int] = {}
    for of_step in by_step.values():
        for name, n in of_step.items():
            totals[name] = totals.get(name, 0) + n
    return GridPage(steps=steps, items=list(rows.values()), total=total, page=page, page_size=page_size,
                    counts=totals)
