"""Benchmark 4, event ingestion: the event stream of a large run (10,000 hosts x 5 steps; --quick:
500 hosts) replayed into the controller's event path, on SQLite and on PostgreSQL.

The stream is the one ansible-runner hands ``EventSink.handle`` for ``playbooks/deploy.yml`` with
one depot.software.step per run, as recorded from a real run of it (a three-host lab run of the
secrets test: 112 events = 4 per run + 36 per host). Per run: ``verbose`` (ssh-add's "Identity
added"), ``playbook_on_start``, ``playbook_on_play_start``, then per host, for each of the role's 11
tasks, ``playbook_on_task_start`` (strategy free: one per host) + ``runner_on_start`` + the result
(``runner_on_ok`` / ``_failed`` / ``_skipped``, ``runner_item_on_*`` of the loops,
``playbook_on_include`` of the include), with the recorded event_data keys, banners and the step's
full ``res`` (outcome, rc, attempts, boot_id, tails, run_as ...); last, ``playbook_on_stats``.

Outcomes per (host, step), fixed by the host's number: 2% failure (rc 1603, runner_on_failed, the
host's later steps are then cancelled by the controller: ``only_run_further_steps_if_successful``),
1% unreachable past the machine contact timeout, 2% soft_reboot with reboot_required, 2% already,
the rest success.

Depot's side, as ``runner.run_batch`` does it: the worker claims a batch of ``worker_forks`` (25, the
default) Ready host results of the current step (as ``claims.claim`` marks them: Active, claimed,
with a Run holding the batch's hosts; not timed, that is the claim, not event ingestion), then
timed: an ``EventSink`` with the default ``event_batch_size``/``event_batch_seconds`` is fed every
event of the run, ``flush(wait=...)`` and ``finish_run`` end it. Steps run one after another
(not pipelined): step k's batches only hold the hosts still Ready at step k. Count check
afterwards: every (host, step) row is in the status its outcome means (cancelled where an earlier
step failed), and every Run's ``events`` equals the events replayed into it.

Peer, on the same kind of database, with the same events: an AWX-style callback receiver that
stores every event as a row of a ``main_jobevent``-like table (event_data as JSON text), buffered
and written with one bulk INSERT per 1,000 events or per second (AWX's callback receiver:
``JOB_EVENT_BUFFER_SECONDS``). Event generation is not timed on either side.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import tempfile
import time
import uuid

from sqlalchemy import (
    Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, create_engine, func, insert, select, text,
)

from bench.common import Row, alternate, median

PG_ADMIN_URL = os.environ.get("DEPOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STEPS = 5
FORKS = 25                  # Settings.worker_forks default: hosts per batch (one Run)
ACTOR = "worker:bench"
ROLE = "depot.software.deploy"
TASK_PATH = "/work/main/.collections/ansible_collections/depot/software/roles/deploy/tasks/"
ACTION = "depot.software.step"

# The role's tasks for one step, in order, as recorded: (task name, action, path, events after
# playbook_on_task_start + runner_on_start).  "{n}" is the step number.
TASKS = [
    ("Validating arguments against arg spec 'main' - Apply an ordered list of deployment steps on each host",
     "ansible.builtin.validate_argument_spec", "main.yml:1", ["ok"]),
    ("Start with no step results", "ansible.builtin.set_fact", "main.yml:3", ["ok"]),
    ("Apply the steps in order", "ansible.builtin.include_tasks", "main.yml:7", ["item_ok", "ok", "include"]),
    ("Step {n}: {name}", ACTION, "step.yml:3", ["step"]),
    ("Record step {n}", "ansible.builtin.set_fact", "step.yml:15", ["ok"]),
    ("Reboot once at the end of the steps", "depot.software.reboot", "main.yml:20", ["skipped"]),
    ("Record that the deferred reboot happened", "ansible.builtin.set_fact", "main.yml:30",
     ["item_skipped", "skipped"]),
    ("Keep the results with the reboot recorded", "ansible.builtin.set_fact", "main.yml:40", ["skipped"]),
    ("Publish the step results", "ansible.builtin.set_stats", "main.yml:45", ["ok"]),
    ("Fail the host when a step that fails the deployment was not successful", "ansible.builtin.fail", "main.yml:50",
     ["fail_if_failed"]),
    ("Fail the host when the end-of-steps reboot failed", "ansible.builtin.fail", "main.yml:55", ["skipped"]),
]
EVENTS_PER_HOST = sum(2 + len(t[3]) for t in TASKS)   # 36; 33 on a host the step failed (the last task does not run)
HALTS = ("failure", "unreachable")
EVENTS_PER_RUN = 4


def outcome_of(host_index: int, step: int) -> str:
    """The step's outcome on this host (deterministic: the count check knows what to expect)."""
    k = (host_index * 7 + step * 13) % 100
    if k < 2:
        return "failure"
    if k < 3:
        return "unreachable"
    if k < 5:
        return "soft_reboot"
    if k < 7:
        return "already"
    return "success"


def expected_status(outcome: str) -> str:
    return {"failure": "failed", "unreachable": "unreachable", "soft_reboot": "success_reboot_pending"}.get(
        outcome, "success")


def host_name(i: int) -> str:
    return f"host{i:05d}.bench.example"


# --- the stream ----------------------------------------------------------------------------------

class Stream:
    """Events of one run (a batch of hosts, one step), generated as ansible-runner hands them over."""

    def __init__(self, run_ident: str, step: int, hosts: list[tuple[int, str]]):
        self.ident = run_ident
        self.step = step
        self.hosts = hosts
        self.counter = 0
        self.line = 0
        self.playbook_uuid = str(uuid.uuid4())
        self.play_uuid = str(uuid.uuid4())
        self.now = dt.datetime(2030, 3, 1, 2, 0, tzinfo=dt.timezone.utc)

    def _event(self, kind: str, stdout: str, data: dict, parent: str | None) -> dict:
        self.counter += 1
        lines = stdout.count("\n") + (1 if stdout else 0)
        event_uuid = str(uuid.uuid4())
        self.now += dt.timedelta(microseconds=731)
        event = {"uuid": event_uuid, "counter": self.counter, "stdout": stdout, "start_line": self.line,
                 "end_line": self.line + lines, "runner_ident": self.ident, "event": kind, "pid": 20126,
                 "created": self.now.isoformat(), "parent_uuid": parent, "event_data": dict(data, uuid=event_uuid)}
        self.line += lines
        if parent is None:
            del event["parent_uuid"]
        return event

    def _task_data(self, task: str, action: str, path: str, task_uuid: str) -> dict:
        return {"playbook": "deploy.yml", "playbook_uuid": self.playbook_uuid, "play": "Deploy software steps",
                "play_uuid": self.play_uuid, "play_pattern": "all", "task": task, "task_uuid": task_uuid,
                "task_action": action, "resolved_action": action, "task_args": "", "task_path": TASK_PATH + path,
                "resolved_role": ROLE, "role": "deploy"}

    def _step_res(self, index: int, outcome: str) -> tuple[str, dict]:
        rc = {"failure": 1603, "soft_reboot": 3010, "unreachable": None}.get(outcome, 0)
        attempt = {"rc": rc, "status": "executed", "duration": 12.5, "detected_before": None,
                   "detected_after": None, "class": {"already": "success"}.get(outcome, outcome)}
        res = {"step": {"id": self.step, "name": f"step {self.step}", "action": "package"}, "outcome": outcome,
               "changed": outcome in ("success", "soft_reboot"), "rc": rc, "status": "executed",
               "reboot_required": outcome == "soft_reboot", "rebooted": False,
               "attempts": [] if outcome == "unreachable" else [attempt],
               "detected_before": None, "detected_after": {"version": "2.1.0"} if outcome != "failure" else None,
               "stdout_tail": ["Installing acme-agent 2.1.0", "done"], "stderr_tail": [],
               "log_tail": ["MSI (s) (A4:B8) Product: acme-agent -- Installation completed."],
               "cmd": ["/usr/bin/dpkg", "-i", "/var/cache/depot/acme-agent_2.1.0_amd64.deb"],
               "run_as": {"context": "system"}, "duration": 12.5,
               "boot_id": f"{index:08x}-9e43-4c8e-ae21-dd482de5b3bd", "_ansible_no_log": False}
        if outcome == "failure":
            res.update(failed=True, msg="the installer failed (rc 1603, class failure)")
            return "runner_on_failed", res
        if outcome == "unreachable":
            res.update(unreachable=True, msg="Failed to connect to the host via ssh: Connection timed out")
            return "runner_on_unreachable", res
        return "runner_on_ok", res

    def events(self) -> list[dict]:
        out = [self._event("verbose", f"Identity added: /var/lib/depot/runs/{self.ident}/artifacts/ssh_key_data "
                                      "(depot@controller)", {}, None),
               self._event("playbook_on_start", "", {"playbook": "deploy.yml", "playbook_uuid": self.playbook_uuid},
                           None),
               self._event("playbook_on_play_start", "\r\nPLAY [Deploy software steps] " + "*" * 51,
                           {"playbook": "deploy.yml", "playbook_uuid": self.playbook_uuid,
                            "play": "Deploy software steps", "play_uuid": self.play_uuid, "play_pattern": "all",
                            "name": "Deploy software steps", "pattern": "all"}, self.playbook_uuid)]
        stats = collections.defaultdict(dict)
        for task, action, path, results in TASKS:
            task = task.format(n=self.step, name=f"step {self.step}")
            task_uuid = str(uuid.uuid4())
            data = self._task_data(task, action, path, task_uuid)
            banner = f"\r\nTASK [{ROLE} : {task}] " + "*" * max(3, 60 - len(task))
            for index, host in self.hosts:
                outcome = outcome_of(index, self.step)
                if action == "ansible.builtin.fail" and outcome in HALTS and path == TASKS[-1][2]:
                    continue   # the task before failed the host: ansible runs nothing more on it
                out.append(self._event("playbook_on_task_start", "", dict(data, name=task, is_conditional=False),
                                       self.play_uuid))
                host_data = dict(data, host=host, remote_addr=host)
                out.append(self._event("runner_on_start", "", host_data, task_uuid))
                for result in results:
                    timing = {"start": self.now.isoformat(), "end": self.now.isoformat(), "duration": 0.011,
                              "event_loop": None}
                    if result == "ok":
                        out.append(self._event("runner_on_ok", f"{banner}\r\nok: [{host}]",
                                               dict(host_data, res={"changed": False, "_ansible_no_log": False},
                                                    **timing), task_uuid))
                        stats["ok"][host] = stats["ok"].get(host, 0) + 1
                    elif result == "item_ok":
                        out.append(self._event("runner_item_on_ok", "", dict(host_data, res={
                            "item": "step", "ansible_loop_var": "depot_step", "_ansible_no_log": True}), task_uuid))
                    elif result == "include":
                        out.append(self._event("playbook_on_include", f"included: {TASK_PATH}step.yml for {host} => "
                                               "(item=(censored due to no_log))",
                                               dict(data, included_file=TASK_PATH + "step.yml"), task_uuid))
                    elif result == "step":
                        kind, res = self._step_res(index, outcome)
                        word = {"runner_on_failed": "fatal", "runner_on_unreachable": "fatal"}.get(kind, "changed")
                        shown = f"{banner}\r\n{word}: [{host}]"
                        if kind != "runner_on_ok":
                            shown += f": FAILED! => {json.dumps({'msg': res['msg'], 'rc': res['rc']})}\r\n...ignoring"
                        out.append(self._event(kind, shown, dict(host_data, res=res, **timing), task_uuid))
                        stats["changed" if kind == "runner_on_ok" else "ignored"][host] = 1
                    elif result in ("skipped", "item_skipped"):
                        kind = "runner_on_skipped" if result == "skipped" else "runner_item_on_skipped"
                        out.append(self._event(kind, f"{banner}\r\nskipping: [{host}]", dict(host_data, res={
                            "changed": False, "skipped": True, "skip_reason": "Conditional result was False",
                            "false_condition": "depot_reboot_due"}), task_uuid))
                        stats["skipped"][host] = stats["skipped"].get(host, 0) + 1
                    elif result == "fail_if_failed":
                        if outcome in ("failure", "unreachable"):
                            out.append(self._event("runner_on_failed", f"{banner}\r\nfatal: [{host}]: FAILED! => "
                                                   '{"changed": false, "msg": "step failed"}',
                                                   dict(host_data, res={"msg": "step failed", "failed": True,
                                                                        "changed": False}, **timing), task_uuid))
                            stats["failures"][host] = 1
                        else:
                            out.append(self._event("runner_on_skipped", f"{banner}\r\nskipping: [{host}]",
                                                   dict(host_data, res={"changed": False, "skipped": True}),
                                                   task_uuid))
        recap = "".join(f"\r\n{h:<27}: ok={stats['ok'].get(h, 0)}    changed={stats['changed'].get(h, 0)}    "
                        f"unreachable=0    failed={stats['failures'].get(h, 0)}    skipped={stats['skipped'].get(h, 0)}"
                        "    rescued=0    ignored=0   " for _, h in self.hosts)
        out.append(self._event("playbook_on_stats", "\r\nPLAY RECAP " + "*" * 69 + recap, {
            "playbook": "deploy.yml", "playbook_uuid": self.playbook_uuid,
            **{k: dict(stats.get(k, {})) for k in ("changed", "dark", "failures", "ignored", "ok", "rescued",
                                                     "skipped")},
            "processed": {h: 1 for _, h in self.hosts}, "artifact_data": {}}, self.playbook_uuid))
        return out


def plan(hosts: int) -> list[tuple[int, list[tuple[int, str]]]]:
    """(step, batch of (index, host)) in the order the worker runs them: step by step, the hosts
    still Ready at that step (an earlier failure cancels the host's later steps)."""
    batches = []
    alive = list(range(hosts))
    for step in range(1, STEPS + 1):
        for start in range(0, len(alive), FORKS):
            batches.append((step, [(i, host_name(i)) for i in alive[start:start + FORKS]]))
        alive = [i for i in alive if outcome_of(i, step) not in ("failure", "unreachable")]
    return batches


def expected(hosts: int) -> dict[tuple[str, int], str]:
    out = {}
    for i in range(hosts):
        failed_at = None
        for step in range(1, STEPS + 1):
            if failed_at is not None:
                out[(host_name(i), step)] = "cancelled"
                continue
            outcome = outcome_of(i, step)
            out[(host_name(i), step)] = expected_status(outcome)
            if outcome in ("failure", "unreachable"):
                failed_at = step
    return out


def total_events(batches) -> int:
    return sum(EVENTS_PER_RUN + sum(EVENTS_PER_HOST - 3 * (outcome_of(i, step) in HALTS) for i, _ in b)
               for step, b in batches)


# --- databases -----------------------------------------------------------------------------------

class Database:
    """A fresh database of one kind (a SQLite file, or a PostgreSQL database of its own), removed on close."""

    def __init__(self, kind: str):
        self.kind = kind
        if kind == "sqlite":
            self.dir = tempfile.TemporaryDirectory(prefix="depot-bench-events-")
            self.url = f"sqlite:///{self.dir.name}/depot.db"
        else:
            self.name = f"depot_bench_{uuid.uuid4().hex[:12]}"
            self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with self.admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{self.name}"'))
            self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.name

    def close(self) -> None:
        if self.kind == "sqlite":
            self.dir.cleanup()
        else:
            with self.admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            self.admin.dispose()


def postgres_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as c:
            c.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means: no server
        return False


# --- Depot's side --------------------------------------------------------------------------------

def _setup_depot(factory, hosts: int) -> tuple[int, dict[int, int]]:
    """An active deployment with 5 steps and a Ready host result per (step, host); returns its id
    and {step position: step id}."""
    from depot.database.core import transaction
    from depot.deployments.models import Deployment, HostResult, Step
    from depot.orchestration.states import DeploymentState, HostStatus

    with transaction(factory) as session:
        deployment = Deployment(name="bench events", state=DeploymentState.ACTIVE,
                                started_at=dt.datetime.now(dt.timezone.utc))
        session.add(deployment)
        session.flush()
        steps = {}
        for position in range(1, STEPS + 1):
            # Contact timeout 1 s and a first contact long ago: an unreachable host is final at once.
            step = Step(deployment_id=deployment.id, position=position, name=f"step {position}", action="script",
                        script="true", target_ids=[1], machine_contact_timeout=1)
            session.add(step)
            session.flush()
            steps[position] = step.id
        long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
        rows = [dict(deployment_id=deployment.id, step_id=steps[p], position=p, host=host_name(i),
                     status=HostStatus.READY, targets=[1], address=host_name(i), first_contact_at=long_ago)
                for p in range(1, STEPS + 1) for i in range(hosts)]
        for start in range(0, len(rows), 5000):
            session.execute(insert(HostResult), rows[start:start + 5000])
        return deployment.id, steps


def _claim(factory, deployment_id: int, step_id: int, hosts: list[str]) -> int:
    """What claims.claim + Worker.tick do for a batch: Active, claimed, leased, in a new Run."""
    from depot.database.core import transaction
    from depot.deployments.models import HostResult, Run
    from depot.orchestration.service import set_host_status
    from depot.orchestration.states import HostStatus

    now = dt.datetime.now(dt.timezone.utc)
    with transaction(factory) as session:
        rows = session.scalars(select(HostResult).where(HostResult.step_id == step_id, HostResult.host.in_(hosts),
                                                        HostResult.status == HostStatus.READY)).all()
        assert len(rows) == len(hosts), (len(rows), len(hosts))
        set_host_status(session, rows, HostStatus.ACTIVE, cause="claimed", actor=ACTOR, claimed_by="bench",
                        lease_expires_at=now + dt.timedelta(seconds=600), queued_behind=None, reason=None)
        run = Run(deployment_id=deployment_id, step_id=step_id, worker="bench", hosts=hosts, status="running")
        session.add(run)
        session.flush()
        for row in rows:
            row.run_id = run.id
        return run.id


def depot_replay(kind: str, hosts: int, cpu: list | None = None) -> float:
    """Replay the stream into Depot's event path on a fresh database; returns events/s."""
    from depot.config import Settings
    from depot.database.core import make_engine, make_sessionmaker
    from depot.database.migrate import upgrade
    from depot.deployments.models import HostResult, Run, Step
    from depot.execution.runner import EventSink, finish_run

    settings = Settings(data_dir=tempfile.gettempdir(), database_url="sqlite://")
    db = Database(kind)
    try:
        upgrade(db.url)
        engine = make_engine(db.url)
        factory = make_sessionmaker(engine)
        deployment_id, steps = _setup_depot(factory, hosts)
        batches = plan(hosts)
        replayed: dict[int, int] = {}
        busy = busy_cpu = 0.0
        for step, batch in batches:
            run_id = _claim(factory, deployment_id, steps[step], [h for _, h in batch])
            events = Stream(f"run-{run_id}", step, batch).events()
            start, start_cpu = time.perf_counter(), time.process_time()
            sink = EventSink(factory, run_id, deployment_id, ACTOR, settings.event_batch_size,
                             settings.event_batch_seconds)
            for event in events:
                sink.handle(event)
            sink.flush(wait=60)
            finish_run(factory, run_id, "successful", sink.events, ACTOR)
            busy += time.perf_counter() - start
            busy_cpu += time.process_time() - start_cpu
            replayed[run_id] = len(events)
        count = sum(replayed.values())
        assert count == total_events(batches), (count, total_events(batches))
        # The count check: nothing lost, nothing misread.
        want = expected(hosts)
        with factory() as session:
            got = {(host, position): status.value for host, position, status in session.execute(
                select(HostResult.host, Step.position, HostResult.status).join(Step, Step.id == HostResult.step_id)
                .where(HostResult.deployment_id == deployment_id))}
            events_by_run = dict(session.execute(select(Run.id, Run.events)).all())
        wrong = {k: (v, got.get(k)) for k, v in want.items() if got.get(k) != v}
        assert len(got) == len(want) and not wrong, f"{len(wrong)} host results wrong, e.g. {list(wrong.items())[:5]}"
        assert events_by_run == replayed, "a run's event count differs from the events replayed into it"
        if cpu is not None:
            cpu.append(count / busy_cpu)
        engine.dispose()
        return count / busy
    finally:
        db.close()


# --- the peer: an AWX-style callback receiver ----------------------------------------------------

_meta = MetaData()
JOB_EVENTS = Table(
    "main_jobevent", _meta,
    Column("id", Integer, primary_key=True),
    Column("created", DateTime(timezone=True)), Column("modified", DateTime(timezone=True)),
    Column("job_id", Integer, index=True), Column("event", String(100)), Column("event_data", Text),
    Column("failed", Boolean), Column("changed", Boolean), Column("uuid", String(1024)),
    Column("parent_uuid", String(1024)), Column("host_name", String(1024)), Column("playbook", String(1024)),
    Column("play", String(1024)), Column("role", String(1024)), Column("task", String(1024)),
    Column("counter", Integer), Column("stdout", Text), Column("verbosity", Integer),
    Column("start_line", Integer), Column("end_line", Integer),
)
AWX_BUFFER_EVENTS = 1000
AWX_BUFFER_SECONDS = 1.0


class AwxSink:
    """Every event a row, bulk-inserted per 1,000 events or per second, as AWX's callback receiver."""

    FAILED = {"runner_on_failed", "runner_on_unreachable", "runner_item_on_failed"}

    def __init__(self, engine, job_id: int):
        self.engine = engine
        self.job_id = job_id
        self.buffer: list[dict] = []
        self.last_flush = time.monotonic()
        self.events = 0

    def handle(self, event: dict) -> bool:
        self.events += 1
        data = event.get("event_data") or {}
        now = dt.datetime.now(dt.timezone.utc)
        res = data.get("res") or {}
        self.buffer.append(dict(
            created=dt.datetime.fromisoformat(event["created"]), modified=now, job_id=self.job_id,
            event=event["event"], event_data=json.dumps(data), failed=event["event"] in self.FAILED,
            changed=bool(res.get("changed")), uuid=event.get("uuid"), parent_uuid=event.get("parent_uuid") or "",
            host_name=data.get("host") or "", playbook=data.get("playbook") or "", play=data.get("play") or "",
            role=data.get("role") or "", task=data.get("task") or "", counter=event["counter"],
            stdout=event.get("stdout") or "", verbosity=0, start_line=event["start_line"],
            end_line=event["end_line"]))
        if len(self.buffer) >= AWX_BUFFER_EVENTS or time.monotonic() - self.last_flush > AWX_BUFFER_SECONDS:
            self.flush()
        return True

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if self.buffer:
            with self.engine.begin() as c:
                c.execute(insert(JOB_EVENTS), self.buffer)
            self.buffer = []


def peer_replay(kind: str, hosts: int, cpu: list | None = None) -> float:
    from depot.database.core import make_engine

    db = Database(kind)
    try:
        engine = make_engine(db.url)
        _meta.create_all(engine)
        batches = plan(hosts)
        busy = busy_cpu = 0.0
        count = 0
        for job, (step, batch) in enumerate(batches, start=1):
            events = Stream(f"job-{job}", step, batch).events()
            start, start_cpu = time.perf_counter(), time.process_time()
            sink = AwxSink(engine, job)
            for event in events:
                sink.handle(event)
            sink.flush()
            busy += time.perf_counter() - start
            busy_cpu += time.process_time() - start_cpu
            count += len(events)
        with engine.connect() as c:
            stored = c.scalar(select(func.count()).select_from(JOB_EVENTS))
        assert stored == count, (stored, count)
        if cpu is not None:
            cpu.append(count / busy_cpu)
        engine.dispose()
        return count / busy
    finally:
        db.close()


def run(runs: int, quick: bool) -> list[Row]:
    hosts = 500 if quick else 10_000
    # One round of the full size is 1.85 million events per side and database (2,000 runs): its
    # figure is already an aggregate over 2,000 runs, and three rounds would take over an hour here.
    rounds = runs if quick else 1
    batches = plan(hosts)
    n_events = total_events(batches)
    rows = []
    kinds = ["sqlite"] + (["postgresql"] if postgres_available() else [])
    for kind in kinds:
        started = time.monotonic()
        our_cpu: list[float] = []
        their_cpu: list[float] = []
        ours, theirs = alternate(rounds, lambda: depot_replay(kind, hosts, our_cpu),
                                 lambda: peer_replay(kind, hosts, their_cpu))
        elapsed = time.monotonic() - started
        print(f"  {kind}: Depot {[round(x) for x in ours]} events/s ({[round(x) for x in our_cpu]} per CPU-second of "
              f"the replaying process), peer {[round(x) for x in theirs]} events/s ({[round(x) for x in their_cpu]} "
              f"per CPU-second) ({elapsed:.0f} s)", flush=True)
        value = median(ours)
        rows.append(Row(
            "4. Event ingestion", f"events/s, {hosts:,} hosts x {STEPS} steps, {kind}", value, "events/s",
            peer="AWX-style: every event a row, bulk INSERT per 1,000 events / 1 s", peer_value=median(theirs),
            target="≥ 5,000 events/s", met=value >= 5000, samples=ours, peer_samples=theirs,
            note=(f"{n_events:,} events in {len(batches):,} runs of {FORKS} hosts (worker_forks default), "
                  f"{EVENTS_PER_HOST} events per host per step as recorded from a real run; count check passed "
                  f"(every host result's status, every Run.events); per CPU-second of the replaying process "
                  f"(without the database server's CPU on PostgreSQL): Depot {median(our_cpu):,.0f}, peer "
                  f"{median(their_cpu):,.0f}; {elapsed:.0f} s for {rounds} round(s) of both")))
    if "postgresql" not in kinds:
        print("  PostgreSQL is not reachable: no PostgreSQL row", flush=True)
    return rows

