"""Request and response bodies of deployments, their steps, the per-host report and runs."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from depot import modulespec
from depot.execution.wakeup import WakeOptions
from depot.scheduling.rules import MAX_PREVIEW
from depot.orchestration.states import DeploymentOutcome, DeploymentState, HostStatus
from depot.scheduling.schemas import LOCAL_TIME, WindowFields, WindowRead
from depot.schemas import InModel, ReadModel

ExitCode = Annotated[int, Field(ge=-2 ** 31, le=2 ** 31 - 1)]

# Module arguments that are columns of the step (script, execution_timeout), identify the package
# (its columns), or are secrets; the rest of the inline action's arguments go in `options`.
STEP_NOT_OPTIONS = {
    "package": {"name", "installer_type", "product_id", "version", "src", "checksum", "timeout", "run_as_password"},
    "script": {"name", "script", "script_path", "secrets", "timeout", "run_as_password"},
}


class StepFields(InModel):
    name: str | None = Field(default=None, max_length=200, description="Default: the policy's or package's name")
    policy_id: int | None = Field(default=None, description="A published policy; or give an inline `action`")
    action: Literal["package", "script"] | None = Field(default=None, validate_default=True, description=(
        "Inline action instead of a policy: package (package_id) or script (script)"))
    package_id: int | None = Field(default=None, validate_default=True)
    script: str | None = Field(default=None, validate_default=True)
    target_ids: list[int] = Field(default_factory=list, description="Targets whose hosts this step runs on")
    execution_timeout: int = Field(default=3600, ge=1, description="Seconds one host may spend on the step")
    valid_exit_codes: list[ExitCode] | None = Field(default=None, description=(
        "Exit codes that count as success (default: the package's exit-code classes)"))
    machine_contact_timeout: int = Field(default=0, ge=0, description=(
        "Seconds to keep trying to reach an offline host before it is unreachable; 0 = wait indefinitely"))
    fail_deployment_if_unsuccessful: bool = True
    only_run_further_steps_if_successful: bool = True
    retry_count: int = Field(default=0, ge=0, le=100, description=(
        "Times a host whose step failed is tried again by the controller (in-run retries of busy installers "
        "are the package's `retries` option)"))
    retry_interval: int = Field(default=600, ge=0, le=30 * 86400, description=(
        "Seconds before such a retry; with retry_after_reboot, how often the host's boot id is checked"))
    retry_after_reboot: bool = Field(default=False, description=(
        "Retry a failed host only once it has rebooted (its boot id changed)"))
    network_condition: Literal["any", "lan_only"] = Field(default="any", description=(
        "lan_only: run only while the host's address (the one it last checked in from, else its inventory "
        "address) is in DEPOT_LAN_NETWORKS; otherwise it is deferred"))
    wake_on_lan: WakeOptions | None = Field(default=None, description=(
        "Send a Wake-on-LAN packet to each host's MAC (inventory variable) before the first contact, then wait "
        "its boot time"))
    options: dict = Field(default_factory=dict, validate_default=True, description=(
        "Further arguments of the inline action (depot.software.package or depot.software.script), or "
        "overrides of the policy's options"))

    @field_validator("action")
    @classmethod
    def _policy_or_action(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "policy_id" not in info.data:
            return value
        if info.data["policy_id"] is not None and value is not None:
            raise ValueError("give either policy_id or an inline action, not both")
        if info.data["policy_id"] is None and value is None:
            raise ValueError("either policy_id or an inline action (package or script) is required")
        return value

    @field_validator("package_id")
    @classmethod
    def _package_for_package(cls, value: int | None, info: ValidationInfo) -> int | None:
        action = info.data.get("action")
        if action == "package" and value is None:
            raise ValueError("package_id is required for action package")
        if action != "package" and value is not None:
            raise ValueError("package_id goes only with action package")
        return value

    @field_validator("script")
    @classmethod
    def _script_for_script(cls, value: str | None, info: ValidationInfo) -> str | None:
        action = info.data.get("action")
        if action == "script" and not (value and value.strip()):
            raise ValueError("script is required for action script")
        if action != "script" and value is not None:
            raise ValueError("script goes only with action script")
        return value

    @field_validator("target_ids")
    @classmethod
    def _unique_targets(cls, value: list[int]) -> list[int]:
        return list(dict.fromkeys(value))

    @field_validator("options")
    @classmethod
    def _known_options(cls, value: dict, info: ValidationInfo) -> dict:
        action = info.data.get("action")
        if action is not None:   # a policy's step: checked against the policy's category by the service
            errors = modulespec.option_errors(value, modulespec.allowed_options(action, STEP_NOT_OPTIONS[action]))
            if errors:
                raise ValueError("; ".join(errors))
        return value


class StepCreate(StepFields):
    position: int | None = Field(default=None, ge=1, description="Insert at this position (from 1); default: last")


class StepUpdate(InModel):
    """Only the fields given change; the step is validated as a whole. `position` moves it."""

    name: str | None = None
    policy_id: int | None = None
    action: Literal["package", "script"] | None = None
    package_id: int | None = None
    script: str | None = None
    target_ids: list[int] | None = None
    execution_timeout: int | None = None
    valid_exit_codes: list[int] | None = None
    machine_contact_timeout: int | None = None
    fail_deployment_if_unsuccessful: bool | None = None
    only_run_further_steps_if_successful: bool | None = None
    retry_count: int | None = None
    retry_interval: int | None = None
    retry_after_reboot: bool | None = None
    network_condition: Literal["any", "lan_only"] | None = None
    wake_on_lan: WakeOptions | None = None
    options: dict | None = None
    position: int | None = Field(default=None, ge=1)


class StepRead(ReadModel):
    id: int
    position: int
    name: str
    policy_id: int | None
    action: str | None
    package_id: int | None
    script: str | None
    target_ids: list[int]
    execution_timeout: int
    valid_exit_codes: list[int] | None
    machine_contact_timeout: int
    fail_deployment_if_unsuccessful: bool
    only_run_further_steps_if_successful: bool
    retry_count: int
    retry_interval: int
    retry_after_reboot: bool
    network_condition: str
    wake_on_lan: dict | None
    options: dict


Misfire = Literal["run_late", "skip", "wait_for_window"]
Rerun = Literal["unsuccessful", "always"]


class ScheduleFields(InModel):
    """When a ready deployment starts by itself (DESIGN.md §3.4; rules in depot.scheduling.rules)."""

    rrule: str = Field(description=(
        "One RFC 5545 recurrence rule without DTSTART, e.g. FREQ=DAILY;BYHOUR=2;BYMINUTE=30 or, for once, "
        "FREQ=DAILY;COUNT=1"))
    timezone: str = Field(description="IANA time zone the rule is evaluated in, e.g. Europe/Berlin")
    start: dt.datetime = Field(description=(
        "DTSTART: the first moment the rule may fire, as a local wall time in `timezone` (an offset, if "
        "given, is converted to it)"))
    misfire: Misfire = Field(default="run_late", description=(
        "An occurrence missed (controller down, deployment not ready): run_late within grace_seconds, skip "
        "it, or wait_for_window (the next open maintenance window). Missed occurrences coalesce into one run"))
    grace_seconds: int = Field(default=3600, ge=0, description="How late run_late may still start the run")
    rerun: Rerun = Field(default="unsuccessful", description=(
        "Once the deployment completed, what its next occurrence runs again: unsuccessful (every step on the "
        "hosts where one was not successful, and hosts new in its targets) or always (every host)"))


class ScheduleRead(ReadModel):
    rrule: str = Field(description="Normalised")
    timezone: str
    start: dt.datetime = Field(description="Local wall time in `timezone` (no offset)", json_schema_extra=LOCAL_TIME)
    misfire: Misfire
    grace_seconds: int
    rerun: Rerun | None
    last_fired: dt.datetime | None = Field(description="Latest occurrence the scheduler fired or skipped")
    next_run_at: dt.datetime | None = Field(description="When it is next due, as of the last save or tick")


Ring = Annotated[str, Field(pattern=r"^([1-9][0-9]{0,6}|([1-9][0-9]?|100)%)$", description=(
    "A number of hosts (5) or a share of them (10%)"))]


class FailureBudget(InModel):
    """Pause the deployment when too many of the hosts finished so far failed."""

    max_failure_percent: int = Field(ge=0, le=100, description=(
        "Pause when more than this share of finished host results failed (failed, unreachable, unknown)"))
    min_sample: int = Field(default=5, ge=1, description="Finished host results needed before the budget applies")


class DeploymentCreate(InModel):
    name: str = Field(min_length=1, max_length=200)
    pipelined: bool = Field(default=False, description=(
        "Each host moves to its next step as soon as its own step finishes (default: step N+1 starts "
        "once step N has finished on all of its hosts)"))
    max_concurrent_hosts: int | None = Field(default=None, ge=1, description="Default: the workers' capacity")
    steps: list[StepFields] = Field(default_factory=list, description="In order")
    schedule: ScheduleFields | None = Field(default=None, description="Start by itself once ready; default: never")
    windows: list[WindowFields] = Field(default_factory=list, description=(
        "Maintenance windows: a scheduled start waits for one to be open (none: always open)"))
    exclusions: list[WindowFields] = Field(default_factory=list, description=(
        "Exclusion periods (freeze days): closed while one is active, whatever the windows say"))
    failure_budget: FailureBudget | None = Field(default=None, description="Default: none, never pauses itself")
    rings: list[Ring] = Field(default_factory=list, max_length=20, description=(
        "Roll out in rings: the first N hosts or N% of them, then the next, ..., then the rest; each ring starts "
        "once the earlier ones finished with the failure budget held"))


class DeploymentUpdate(InModel):
    """Only the fields given change; `steps` replaces every step. Editing a ready deployment
    returns it to draft."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    pipelined: bool | None = None
    max_concurrent_hosts: int | None = Field(default=None, ge=1)
    steps: list[StepFields] | None = None
    schedule: ScheduleFields | None = Field(default=None, description="null removes the schedule")
    windows: list[WindowFields] | None = Field(default=None, description="Replaces every window")
    exclusions: list[WindowFields] | None = Field(default=None, description="Replaces every exclusion")
    failure_budget: FailureBudget | None = Field(default=None, description="null removes it")
    rings: list[Ring] | None = Field(default=None, max_length=20)


class DeploymentRead(ReadModel):
    id: int
    name: str
    state: DeploymentState
    outcome: DeploymentOutcome | None
    pipelined: bool
    max_concurrent_hosts: int | None
    cancel_requested: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    steps: list[StepRead]
    schedule: ScheduleRead | None
    windows: list[WindowRead]
    exclusions: list[WindowRead]
    failure_budget: FailureBudget | None
    rings: list[str]
    pause_reason: str | None


class StartResult(ReadModel):
    deployment: DeploymentRead
    host_results: int = Field(description="(step, host) items created")


class HostReport(ReadModel):
    """One host's progress through one step."""

    id: int
    step_id: int
    position: int
    step_name: str
    host: str
    status: HostStatus
    reason: str | None
    queued_behind: int | None
    rc: int | None
    outcome: str | None
    attempts: list
    contact_attempts: int
    retries_done: int
    ring: int
    run_id: int | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    log_tail: str | None


class ExportRow(HostReport):
    """A row of the report's JSON export (the CSV export has the same columns, attempts counted)."""

    deployment_id: int


class ReportPage(ReadModel):
    items: list[HostReport]
    total: int
    page: int
    page_size: int
    counts: dict[str, int] = Field(description="Host results of the whole deployment by status")


class RunRead(ReadModel):
    id: int
    deployment_id: int
    step_id: int
    worker: str
    status: str
    hosts: list
    events: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    heartbeat_at: dt.datetime


ReportFormat = Literal["csv", "json"]


class SchedulePreviewRequest(InModel):
    """An unsaved schedule (and windows) to preview."""

    schedule: ScheduleFields
    windows: list[WindowFields] = Field(default_factory=list)
    exclusions: list[WindowFields] = Field(default_factory=list)
    count: int = Field(default=10, ge=1, le=MAX_PREVIEW)
    after: dt.datetime | None = Field(default=None, description="Occurrences after this instant (with offset); default: now")


class OccurrenceRead(BaseModel):
    at: dt.datetime = Field(description="UTC")
    local: dt.datetime = Field(description="When it runs by the clocks of the schedule's zone (with offset)")
    wall_time: dt.datetime = Field(description="The local wall time the rule asked for (no offset)",
                                   json_schema_extra=LOCAL_TIME)
    adjustment: Literal["gap", "fold"] | None = Field(description=(
        "gap: the wall time does not exist (clocks spring forward), shifted forward by the gap; fold: it exists "
        "twice (clocks go back), run at the first"))
    in_window: bool = Field(description="Whether the maintenance windows (minus exclusions) are open then")


class SchedulePreview(BaseModel):
    rrule: str = Field(description="Normalised")
    timezone: str
    occurrences: list[OccurrenceRead]


class GridStep(BaseModel):
    position: int
    step_id: int
    name: str
    counts: dict[str, int] = Field(description="This step's host results by status")


class GridCell(BaseModel):
    """One host's status in one step (the report row has every field)."""

    id: int = Field(description="The host result's id (as in the report and the live stream)")
    status: HostStatus
    rc: int | None
    outcome: str | None
    reason: str | None
    attempts: int = Field(description="Attempts made (the report lists them)")
    run_id: int | None


class GridRow(BaseModel):
    host: str
    cells: list[GridCell | None] = Field(description="One per step, in the order of `steps`; null: the host is "
                                                     "not a target of that step")


class GridPage(BaseModel):
    """Hosts (rows) × steps (columns) of a deployment, a page of hosts at a time."""

    steps: list[GridStep]
    items: list[GridRow]
    total: int = Field(description="Hosts matching the filters")
    page: int
    page_size: int
    counts: dict[str, int] = Field(description="Host results of the whole deployment by status")
