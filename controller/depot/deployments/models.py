"""Deployments (CCM): ordered steps over target groups, and one result row per (step, host),
which is also the unit of work a worker claims."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from depot.database.core import Base, utcnow
from depot.orchestration.states import DeploymentOutcome, DeploymentState, HostStatus
from depot.scheduling.models import MaintenanceWindow


def _enum(cls):
    return Enum(cls, native_enum=False, length=30, values_callable=lambda e: [m.value for m in e],
                validate_strings=True)


class Deployment(Base):
    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[DeploymentState] = mapped_column(_enum(DeploymentState), default=DeploymentState.DRAFT, index=True)
    outcome: Mapped[DeploymentOutcome | None] = mapped_column(_enum(DeploymentOutcome))
    # Each host moves on as soon as its own step finishes (pipelined), instead of the CCM default
    # where step N+1 starts once step N has finished on all of its targets.
    pipelined: Mapped[bool] = mapped_column(default=False)
    max_concurrent_hosts: Mapped[int | None]    # per-deployment concurrency limit; None = the workers' capacity
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # Failure budget: the deployment pauses itself when the share of finished host results that
    # failed exceeds failure_budget_percent, once min_sample have finished. Resuming acknowledges the
    # failures so far (budget_acknowledged): it pauses again only on new failures.
    failure_budget_percent: Mapped[int | None]
    failure_budget_min_sample: Mapped[int] = mapped_column(default=5)
    budget_acknowledged: Mapped[int] = mapped_column(default=0)
    pause_reason: Mapped[str | None] = mapped_column(Text)
    # Rings: sizes of the first batches of hosts ("5" hosts or "10%"); the rest is the last ring.
    # A ring starts once every earlier ring has finished (and the budget held).
    rings: Mapped[list] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    # Optional schedule (DESIGN.md §3.4, depot.scheduling): RRULE + IANA zone + DTSTART as a naive
    # local wall time (Schedule.to_dict()), the misfire rule and its grace. last_fired is the
    # latest occurrence the scheduler tick handled (fired or skipped; the save time when the
    # schedule was set, so earlier occurrences never count); next_run_at is, as of the last save or
    # tick, when it is next due (the next occurrence, or the window a deferred run waits for).
    schedule_rrule: Mapped[str | None] = mapped_column(Text)
    schedule_timezone: Mapped[str | None] = mapped_column(String(64))
    schedule_start: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=False))
    schedule_misfire: Mapped[str | None] = mapped_column(String(20))
    schedule_grace_seconds: Mapped[int | None]
    # What the next occurrence of a recurring schedule runs again once the deployment completed:
    # "unsuccessful" (hosts where some step was not successful, and new hosts) or "always".
    schedule_rerun: Mapped[str | None] = mapped_column(String(20))
    schedule_last_fired: Mapped[dt.datetime | None]
    schedule_next_run_at: Mapped[dt.datetime | None] = mapped_column(index=True)

    steps: Mapped[list["Step"]] = relationship(back_populates="deployment", order_by="Step.position",
                                               cascade="all, delete-orphan")
    maintenance_windows: Mapped[list[MaintenanceWindow]] = relationship(
        order_by="MaintenanceWindow.id", cascade="all, delete-orphan")

    @property
    def schedule(self) -> dict | None:
        """The schedule as the API shows it, or None."""
        if self.schedule_rrule is None:
            return None
        return {"rrule": self.schedule_rrule, "timezone": self.schedule_timezone, "start": self.schedule_start,
                "misfire": self.schedule_misfire, "grace_seconds": self.schedule_grace_seconds,
                "rerun": self.schedule_rerun,
                "last_fired": self.schedule_last_fired, "next_run_at": self.schedule_next_run_at}

    @property
    def failure_budget(self) -> dict | None:
        if self.failure_budget_percent is None:
            return None
        return {"max_failure_percent": self.failure_budget_percent, "min_sample": self.failure_budget_min_sample}

    @property
    def windows(self) -> list[MaintenanceWindow]:
        return [w for w in self.maintenance_windows if not w.is_exclusion]

    @property
    def exclusions(self) -> list[MaintenanceWindow]:
        return [w for w in self.maintenance_windows if w.is_exclusion]


class Step(Base):
    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("deployment_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
    # Either a published policy, or an inline action: "package" (package_id) or "script" (script).
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("policies.id", ondelete="RESTRICT"))
    action: Mapped[str | None] = mapped_column(String(20))
    package_id: Mapped[int | None] = mapped_column(ForeignKey("packages.id", ondelete="RESTRICT"))
    script: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict] = mapped_column(default=dict)     # further module options of the inline action
    target_ids: Mapped[list] = mapped_column(default=list)
    execution_timeout: Mapped[int] = mapped_column(default=3600)
    valid_exit_codes: Mapped[list | None] = mapped_column(default=None)
    machine_contact_timeout: Mapped[int] = mapped_column(default=0)   # seconds; 0 = wait indefinitely
    fail_deployment_if_unsuccessful: Mapped[bool] = mapped_column(default=True)
    only_run_further_steps_if_successful: Mapped[bool] = mapped_column(default=True)
    # Controller-level retry of a failed host: after retry_interval seconds, up to retry_count times;
    # with retry_after_reboot, only once the host's boot id has changed (polled every retry_interval).
    retry_count: Mapped[int] = mapped_column(default=0)
    retry_interval: Mapped[int] = mapped_column(default=600)
    retry_after_reboot: Mapped[bool] = mapped_column(default=False)
    network_condition: Mapped[str] = mapped_column(String(20), default="any")   # any | lan_only
    wake_on_lan: Mapped[dict | None] = mapped_column(default=None)   # depot.execution.wakeup.WakeOptions

    deployment: Mapped[Deployment] = relationship(back_populates="steps")


class HostResult(Base):
    """One host's progress through one step; a worker claims these rows to run them."""

    __tablename__ = "host_results"
    __table_args__ = (
        UniqueConstraint("step_id", "host"),
        Index("ix_host_results_claim", "status", "next_attempt_at"),
        Index("ix_host_results_deployment_status", "deployment_id", "status"),
        Index("ix_host_results_host_status", "host", "status"),
        # The report's order and filters: a page is found in the index alone, whatever its offset.
        Index("ix_host_results_report", "deployment_id", "position", "host", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id", ondelete="CASCADE"))
    position: Mapped[int]                      # the step's position, copied for ordering without a join
    host: Mapped[str] = mapped_column(String(255))
    status: Mapped[HostStatus] = mapped_column(_enum(HostStatus), default=HostStatus.READY)
    reason: Mapped[str | None] = mapped_column(Text)         # why it is in this status ("queued behind deployment 7")
    queued_behind: Mapped[int | None]                          # deployment id this host waits for
    rc: Mapped[int | None]
    outcome: Mapped[str | None] = mapped_column(String(30))  # the action plugin's outcome
    attempts: Mapped[list] = mapped_column(default=list)
    contact_attempts: Mapped[int] = mapped_column(default=0)
    first_contact_at: Mapped[dt.datetime | None]
    next_attempt_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    log_tail: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    # Set at start from the targets and the inventory: the targets the host came from (their
    # maintenance windows apply), its rollout ring, its inventory address and MAC.
    targets: Mapped[list] = mapped_column(default=list)
    ring: Mapped[int] = mapped_column(default=0)
    address: Mapped[str | None] = mapped_column(String(255))
    mac: Mapped[str | None] = mapped_column(String(17))
    retries_done: Mapped[int] = mapped_column(default=0)
    boot_id: Mapped[str | None] = mapped_column(String(100))        # as last reported by the host
    wait_boot_id: Mapped[str | None] = mapped_column(String(100))   # retry once the boot id is no longer this
    woken_at: Mapped[dt.datetime | None]                            # Wake-on-LAN packet sent
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[dt.datetime | None]


class Run(Base):
    """One ansible-runner invocation over a batch of (host, step) items."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id", ondelete="CASCADE"))
    worker: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="starting")   # ansible-runner's status
    hosts: Mapped[list] = mapped_column(default=list)
    # Hosts it runs at once (ansible forks); the rest of its hosts wait inside it for a fork.
    forks: Mapped[int | None]
    options: Mapped[dict] = mapped_column(default=dict)   # step options of this batch (reboot_not_after, ...)
    artifact_dir: Mapped[str | None] = mapped_column(Text)
    events: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
