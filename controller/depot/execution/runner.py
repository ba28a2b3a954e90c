"""Running one batch: a private data dir per run, ansible-runner in-process, and the events
turned into host results as they stream, written in batches bounded by size and time."""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import ansible_runner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from depot.audit import service as audit
from depot.config import Settings
from depot.database.core import first_line, is_disconnect, retry_while_unreachable, transaction, utcnow
from depot.deployments.models import HostResult, Run, Step
from depot.execution import varsfile
from depot.orchestration import lifecycle
from depot.execution.events import StepResult, step_result, step_started, stdout_lines
from depot.execution.plan import PlanError, plan_step
from depot.orchestration.service import set_host_status
from depot.orchestration.states import HostStatus
from depot.security import Keys
from depot.targets.models import Target

H = HostStatus
log = logging.getLogger(__name__)
# The ansible-playbook installed beside this Python (the controller's own environment) comes
# first on the run's PATH, not whichever one the caller's PATH finds.
BIN_DIR = str(Path(sys.executable).parent)
LOG_TAIL_LINES = 60
# How long the end of a run (its last results, its status) waits for an unreachable database
# before giving up (the hosts then stay Active until the lease expires: Inconclusive, re-verified).
FINAL_WRITE_WAIT = 300
CONTACT_RETRY_SECONDS = 30


class EventSink:
    """Collects step results and log lines from events; writes them in one transaction per
    ``batch_size`` results or ``batch_seconds``, whichever comes first.

    The database may be unreachable for a while (a restart, a failover): a write that fails so
    keeps its results pending and is retried at a later event (backing off up to
    ``RETRY_SECONDS_MAX``), so nothing the hosts reported is dropped and the run goes on. The
    results are idempotent to re-apply: only hosts still Active take one."""

    RETRY_SECONDS_MAX = 5.0

    def __init__(self, factory: sessionmaker[Session], run_id: int, deployment_id: int, actor: str,
                 batch_size: int, batch_seconds: float, clock=time.monotonic, sleep=time.sleep):
        self.factory = factory
        self.run_id = run_id
        self.deployment_id = deployment_id
        self.actor = actor
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.clock = clock
        self.sleep = sleep
        self.pending: list[StepResult] = []
        self.started: set[str] = set()    # hosts whose step task began
        self.logs: dict[str, collections.deque] = collections.defaultdict(lambda: collections.deque(maxlen=LOG_TAIL_LINES))
        self.events = 0
        self.last_flush = clock()
        self.retry_at: float | None = None   # while writes fail: not before then
        self.failures = 0                    # consecutive failed writes

    def handle(self, event: dict) -> bool:
        self.events += 1
        host, lines = stdout_lines(event)
        if host and lines:
            self.logs[host].extend(lines)
        result = step_result(event)
        if result is not None and result.host:
            self.pending.append(result)
        else:
            host, began = step_started(event)
            if began:
                self.started.add(host)
            elif host is not None:
                self.started.discard(host)   # skipped: the run was stopped before its step began
        self.poll()
        return True  # keep the event in the artifacts as well

    def poll(self) -> None:
        """Write the pending results if they are due: at each event, and between events (the run's
        loop calls it at least every few seconds), so a result that no further event follows, or
        one kept pending through a database outage, is not left waiting for the next event."""
        now = self.clock()
        due = len(self.pending) >= self.batch_size or (self.pending and now - self.last_flush >= self.batch_seconds)
        if due and (self.retry_at is None or now >= self.retry_at):
            self.flush()

    def flush(self, wait: float = 0.0) -> bool:
        """Write the pending results; returns whether they are written. While the database is
        unreachable they stay pending for a later flush; with ``wait`` (the run's end), retried
        for up to ``wait`` seconds, then the error is raised."""
        deadline = self.clock() + wait
        while True:
            try:
                self._write()
            except Exception as e:  # noqa: BLE001 - only unreachable-database errors are retried
                if not is_disconnect(e):
                    raise
                self.failures += 1
                delay = min(self.RETRY_SECONDS_MAX, self.batch_seconds * 2 ** self.failures)
                self.retry_at = self.clock() + delay
                log.warning("run %s: writing %d result(s) failed (the database is unreachable), retrying in %.1f s: %s",
                            self.run_id, len(self.pending), delay, first_line(e))
                if self.clock() + delay > deadline:
                    if wait:
                        raise
                    return False
                self.sleep(delay)
                continue
            if self.failures:
                log.info("run %s: results written again after %d failed attempt(s)", self.run_id, self.failures)
            self.failures, self.retry_at = 0, None
            return True

    def _write(self) -> None:
        self.last_flush = self.clock()
        if not self.pending:
            return
        results = list(self.pending)
        with transaction(self.factory) as session:
            apply_results(session, self.run_id, results, {h: "\n".join(lines) for h, lines in self.logs.items()},
                          self.actor)
            lifecycle.settle(session, self.actor, [self.deployment_id])
            run = session.get(Run, self.run_id)
            run.events = self.events
        # Committed: only now are they no longer pending (events handled meanwhile run on this
        # thread, so nothing was appended in between).
        del self.pending[:len(results)]


def _retry(session: Session, row: HostResult, step: Step, result: StepResult, now: dt.datetime, actor: str,
           fields: dict) -> bool:
    """A failed host with retries left is deferred for the step's controller-level retry: after its
    interval, or once its boot id changes (checked every interval). Returns whether it was."""
    if result.status is not H.FAILED or row.retries_done >= step.retry_count:
        return False
    retry_at = now + dt.timedelta(seconds=step.retry_interval)
    done = row.retries_done + 1
    why = f"failed ({result.outcome}, rc {result.rc}); retry {done} of {step.retry_count}"
    boot_id = result.boot_id or row.boot_id
    if step.retry_after_reboot and boot_id:
        reason, wait = f"{why} once the host has rebooted (boot id {boot_id[:12]}…)", boot_id
    else:
        reason, wait = f"{why} at {retry_at:%Y-%m-%d %H:%M:%S} UTC", None
    set_host_status(session, [row], H.DEFERRED, cause="failed; controller retry", actor=actor,
                    **dict(fields, reason=reason, next_attempt_at=retry_at, retries_done=done, wait_boot_id=wait))
    return True


def apply_results(session: Session, run_id: int, results: list[StepResult], logs: dict[str, str], actor: str,
                  now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    rows = {r.host: r for r in session.scalars(select(HostResult).where(
        HostResult.run_id == run_id, HostResult.status == H.ACTIVE))}
    steps: dict[int, Step] = {}
    # The common case - a result that is final - is written per (status, outcome): one batch of
    # transitions each, instead of an INSERT and a flush per host.
    final: dict[tuple[HostStatus, str], list[tuple[HostResult, dict]]] = {}
    for result in results:
        row = rows.pop(result.host, None)
        if row is None:
            continue  # a second result for the same host (e.g. unreachable after the step): first one wins
        step = steps.get(row.step_id) or steps.setdefault(row.step_id, session.get(Step, row.step_id))
        fields = dict(rc=result.rc, outcome=result.outcome, attempts=result.attempts, log_tail=logs.get(row.host),
                      reason=result.reason, boot_id=result.boot_id or row.boot_id)
        status = result.status
        if status is H.UNREACHABLE:
            waited = (now - row.first_contact_at).total_seconds() if row.first_contact_at else 0
            timeout = step.machine_contact_timeout
            if timeout == 0 or waited < timeout:
                retry_at = now + dt.timedelta(seconds=CONTACT_RETRY_SECONDS)
                set_host_status(session, [row], H.READY, cause="offline; contact timeout not reached", actor=actor,
                                contact_attempts=row.contact_attempts + 1, next_attempt_at=retry_at,
                                reason=f"offline ({result.reason}); next contact attempt at {retry_at:%H:%M:%S} UTC",
                                rc=None, outcome=None, log_tail=fields["log_tail"])
                continue
            fields["reason"] = f"no contact within the machine contact timeout ({timeout}s): {result.reason}"
            fields["contact_attempts"] = row.contact_attempts + 1
        if _retry(session, row, step, result, now, actor, fields):
            continue
        if status is H.DEFERRED:
            # awaiting_reboot keeps waiting for the same boot id, polled at the retry interval.
            wait = step.retry_interval if result.outcome == "awaiting_reboot" else CONTACT_RETRY_SECONDS
            fields["next_attempt_at"] = now + dt.timedelta(seconds=wait)
        elif row.wait_boot_id:
            fields["wait_boot_id"] = None
        final.setdefault((status, f"step outcome {result.outcome}"), []).append((row, fields))
    for (status, cause), items in final.items():
        set_host_status(session, [row for row, _ in items], status, cause=cause, actor=actor)
        for row, fields in items:
            for key, value in fields.items():
                setattr(row, key, value)


def _inventories(session: Session, step: Step) -> list[str]:
    sources = []
    for target in session.scalars(select(Target).where(Target.id.in_(step.target_ids or []))):
        if target.inventory not in sources:
            sources.append(target.inventory)
    return sources


def run_batch(factory: sessionmaker[Session], settings: Settings, keys: Keys, run_id: int,
              halted, stopping=lambda: False) -> str:
    """Run one claimed batch to its end; returns ansible-runner's final status.

    ``halted()`` says whether the deployment starts no more hosts (it is being cancelled, or it
    paused): the hosts that began the step finish it, those that had not skip it (the playbook's
    ``depot_stop_file``) and go back to Ready, where a cancel makes them Cancelled and a pause
    keeps them. ``stopping()`` says the worker is shutting down: the run is stopped at once."""
    actor = f"worker:{settings.worker_name}"
    run_dir = Path(settings.data_dir) / "runs" / str(run_id)
    with transaction(factory) as session:
        run = session.get(Run, run_id)
        step = session.get(Step, run.step_id)
        hosts = list(run.hosts)
        forks = run.forks or len(hosts)
        try:
            plan = plan_step(session, step, keys, settings.public_url, settings.content_url_ttl, run.options)
            inventories = _inventories(session, step)
            if not inventories:
                raise PlanError(f"step {step.position} has no targets with an inventory")
        except PlanError as e:
            rows = session.scalars(select(HostResult).where(HostResult.run_id == run_id, HostResult.status == H.ACTIVE)).all()
            set_host_status(session, rows, H.FAILED, cause="the step cannot be planned", actor=actor, reason=str(e))
            run.status, run.finished_at = "error", utcnow()
            lifecycle.settle(session, actor, [run.deployment_id])
            return "error"
        for credential_id in plan.credentials:
            audit.record(session, actor, "credential.use", "credentials", credential_id, run_id=run_id,
                         deployment_id=run.deployment_id, step=step.position, hosts=len(hosts))
        run.artifact_dir = str(run_dir / "artifacts")
        run.status = "running"
        deployment_id = run.deployment_id

    run_dir.mkdir(parents=True, exist_ok=True)
    sink = EventSink(factory, run_id, deployment_id, actor, settings.event_batch_size, settings.event_batch_seconds)
    vars_file = run_dir / "depot-vars.yml"
    # Connection vars are extra vars: they win over the inventory's.
    stop = Stop(halted, stopping, sink, run_dir / "stop")
    vars_file.write_text(varsfile.dump(dict(depot_steps=[plan.entry], depot_end_reboot="never",
                                            depot_stop_file=str(stop.path), **plan.connection)))
    collection = Path(settings.collections_path) / "ansible_collections" / "depot" / "software"
    # ssh connections of this run only (a short path: it holds unix sockets): no run reuses a
    # connection another run opened as another identity.
    control_dir = tempfile.mkdtemp(prefix="depot-cp-")
    envvars = dict(
        ANSIBLE_COLLECTIONS_PATH=str(settings.collections_path),
        ANSIBLE_SSH_CONTROL_PATH_DIR=control_dir,
        ANSIBLE_PIPELINING="True",
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_FORCE_COLOR="False",
        ANSIBLE_NOCOLOR="True",
        PATH=os.pathsep.join([BIN_DIR, os.environ.get("PATH", os.defpath)]),
    )
    status = "error"
    secrets = SecretsFile(plan.secrets) if plan.secrets else None
    try:
        runner = ansible_runner.run(
            private_data_dir=str(run_dir),
            project_dir=str(collection / "playbooks"),
            playbook="deploy.yml",
            inventory=inventories,
            limit=",".join(hosts),
            cmdline=f"-e @{vars_file}" + (f" -e @{secrets.path}" if secrets else ""),
            envvars=envvars,
            ssh_key=plan.ssh_key,   # fed to the run's ssh-agent through a fifo, never a file
            forks=max(1, min(len(hosts), forks)),
            event_handler=sink.handle if secrets is None else _forgetting(secrets, sink.handle),
            cancel_callback=stop.check,
            suppress_env_files=True,
            quiet=True,
        )
        status = runner.status
    finally:
        # Private files first: the writes below may wait for the database.
        drop_private_files(run_dir)
        shutil.rmtree(control_dir, ignore_errors=True)
        if secrets:
            secrets.forget()
        sink.flush(wait=FINAL_WRITE_WAIT)
        unstarted = set(hosts) - sink.started if stop.requested else set()
        retry_while_unreachable(lambda: finish_run(factory, run_id, status, sink.events, actor, unstarted),
                                FINAL_WRITE_WAIT, f"recording the end of run {run_id}")
    return status


class Stop:
    """When a run stops: ``check`` is ansible-runner's cancel callback, called by its loop after
    each output or every few seconds (on the thread that handles events). It writes the sink's
    due results, then: when the worker is stopping, stops the run at once; when the deployment is
    halted (cancelled, paused), creates the stop file, after which hosts that have not begun the
    step skip it and the run ends on its own. ``requested`` says whether either happened.

    It must not raise: that would abandon the playbook mid-run (CallbackError) and lose every
    result still to come. While the database is unreachable the cancel flag is not read."""

    def __init__(self, halted, stopping, sink: EventSink, path: Path):
        self.halted, self.stopping, self.sink, self.path = halted, stopping, sink, path
        self.requested = False

    def check(self) -> bool:
        self.sink.poll()
        if self.stopping():
            self.requested = True
            return True
        if not self.requested:
            try:
                halted = self.halted()
            except Exception as e:
                if not is_disconnect(e):
                    raise
                log.warning("cancel check skipped (the database is unreachable): %s", first_line(e))
                halted = False
            if halted:
                self.path.touch()
                self.requested = True
        return False


def _forgetting(secrets: "SecretsFile", handle):
    """An event handler that removes the secrets file at the playbook's first callback event:
    ansible-playbook has loaded its extra vars by then. Output lines before it (``verbose``
    events: ssh-add's "Identity added", early warnings) come before the vars are read."""
    def handler(event: dict) -> bool:
        if event.get("event") != "verbose":
            secrets.forget()
        return handle(event)
    return handler


class SecretsFile:
    """The run's secrets as an extra-vars document in memory: a 0600 file in a private 0700
    directory on the RAM-backed /dev/shm, removed as soon as ansible-playbook has read it (its
    first callback event: extra vars are loaded before the playbook starts) and in any case when
    the run ends; the directory is named by the worker's pid, so that a worker sweeps those of
    dead workers of its node. Never on a disk, in the private data dir, in an environment (ansible-runner writes the
    environment to its ``command`` artifact) or in the artifacts."""

    def __init__(self, secrets: dict[str, str], base: str = "/dev/shm"):
        self.dir = tempfile.mkdtemp(prefix=f"depot-secrets-{os.getpid()}-", dir=base)
        self.path = os.path.join(self.dir, "secrets.yml")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(varsfile.secrets_document(secrets))

    def forget(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def finish_run(factory: sessionmaker[Session], run_id: int, status: str, events: int, actor: str,
               unstarted: set[str] = frozenset()) -> None:
    """Record the run's end. A host still Active has no result: the ``unstarted`` ones (a stopped
    run's hosts whose step never began) go back to Ready; any other one the run lost mid-way, so
    it is Inconclusive (and re-verified once)."""
    with transaction(factory) as session:
        run = session.get(Run, run_id)
        run.status, run.finished_at, run.events = status, utcnow(), events
        left = session.scalars(select(HostResult).where(HostResult.run_id == run_id, HostResult.status == H.ACTIVE)).all()
        set_host_status(session, [r for r in left if r.host in unstarted], H.READY, cause=f"the run ended ({status}) "
                        "before this host's step began", actor=actor, claimed_by=None, lease_expires_at=None,
                        run_id=None)
        lifecycle.mark_inconclusive(session, [r for r in left if r.host not in unstarted],
                                    cause=f"the run ended ({status}) with no result for this host", actor=actor)
        lifecycle.settle(session, actor, [run.deployment_id])


def drop_private_files(run_dir: Path) -> None:
    """Keep the artifacts (the full output the API serves); drop what ansible-runner staged."""
    for name in ("env", "inventory", "project"):
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
