"""Deployments (CCM): ordered steps over target groups, and one result row per (step, host),
which is also the unit of work a worker claims."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from depot.database.core import Base, utcnow
from depot.orchestration.states import DeploymentOutcome, DeploymentState, HostStatus


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
    schedule_last_fired: Mapped[dt.datetime | None]
    schedule_next_run_at: Mapped[dt.datetime | None] = mapped_column(index=True)

    steps: Mapped[list["Step"]] = relationship(back_populates="deployment", order_by="Step.position",
                                               cascade="all, delete-orphan")
    maintenance_windows: Mapped[list["MaintenanceWindow"]] = relationship(
        back_populates="deployment", order_by="MaintenanceWindow.id", cascade="all, delete-orphan")

    @property
    def schedule(self) -> dict | None:
        """The schedule as the API shows it, or None."""
        if self.schedule_rrule is None:
            return None
        return {"rrule": self.schedule_rrule, "timezone": self.schedule_timezone, "start": self.schedule_start,
                "misfire": self.schedule_misfire, "grace_seconds": self.schedule_grace_seconds,
                "last_fired": self.schedule_last_fired, "next_run_at": self.schedule_next_run_at}

    @property
    def windows(self) -> list["MaintenanceWindow"]:
        return [w for w in self.maintenance_windows if not w.is_exclusion]

    @property
    def exclusions(self) -> list["MaintenanceWindow"]:
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

    deployment: Mapped[Deployment] = relationship(back_populates="steps")


class HostResult(Base):
    """One host's progress through one step; a worker claims these rows to run them."""

    __tablename__ = "host_results"
    __table_args__ = (
        UniqueConstraint("step_id", "host"),
        Index("ix_host_results_claim", "status", "next_attempt_at"),
        Index("ix_host_results_deployment_status", "deployment_id", "status"),
        Index("ix_host_results_host_status", "host", "status"),
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
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
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
    artifact_dir: Mapped[str | None] = mapped_column(Text)
    events: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MaintenanceWindow(Base):
    """A maintenance window of a deployment, or an exclusion (freeze period) when ``is_exclusion``:
    ``one_off`` from ``start_at`` to ``end_at`` (UTC), or ``recurring``: opens at every occurrence
    of the RRULE ``rrule`` in ``timezone`` from the local wall time ``local_start``, for
    ``duration_seconds`` (depot.scheduling.windows)."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))      # one_off | recurring
    is_exclusion: Mapped[bool] = mapped_column(default=False)
    start_at: Mapped[dt.datetime | None]
    end_at: Mapped[dt.datetime | None]
    rrule: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str | None] = mapped_column(String(64))
    local_start: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=False))
    duration_seconds: Mapped[int | None]

    deployment: Mapped[Deployment] = relationship(back_populates="maintenance_windows")

    @property
    def start(self) -> dt.datetime | None:
        """One-off: the UTC start; recurring: the local wall time of the first opening."""
        return self.start_at if self.kind == "one_off" else self.local_start

    @property
    def end(self) -> dt.datetime | None:
        return self.end_at
