"""Benchmark 5, the scheduler: 10,000 ready deployments with schedules (varied RRULEs, IANA
zones, misfire rules), maintenance windows and exclusions, evaluated by one scheduler tick
(``depot.scheduling.tick.tick``); --quick: 1,000.

Set-up (SQLite, a data dir of its own): one target (a 2-host inventory file), then every
deployment through ``deployments.service.create`` (so its schedule, windows and exclusions are
validated and stored as the API would); the first is made ready through ``service.ready``
(readiness resolves its target), the others, identical but for their schedule and windows, are
moved to ready through ``orchestration.service.set_deployment_state`` (readiness would run
``ansible-inventory`` 10,000 times). Every ``last_fired`` is then set to one instant C, as if the
scheduler had been ticking until C: a tick at C + s sees as due exactly the occurrences in (C, C + s].

Timed: ``tick(session, now)`` in a transaction that is rolled back afterwards (every tick sees the
same database), at C + 1 s (nothing due) and at C + 30 / 60 / 120 s (some due: each started
deployment is a real ``deployments.service.start``). The figure is the median over those ticks,
repeated ``runs`` times (once at the full size: a tick takes a minute there); each tick's time and number started is printed.

Peer, same run: python-dateutil alone (no database, no windows): the same 10,000 RRULE strings
parsed with their DTSTART and zone and asked for their next occurrence after the tick time.

"A due occurrence starts within 2 s": ``depot serve --no-worker`` on a copy of that database
(scheduler_interval 10 s, and 1 s, the default), with probe deployments scheduled once at known
seconds; the delay is from the occurrence to the deployment being seen Active in the database
(polled every 50 ms).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from zoneinfo import ZoneInfo

from bench.common import VENV_BIN, Row, median

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney",
         "Asia/Kolkata", "America/Sao_Paulo", "Europe/London", "Pacific/Auckland", "Africa/Johannesburg",
         "Australia/Lord_Howe", "America/St_Johns", "Asia/Kathmandu"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
INVENTORY = "all:\n  children:\n    web:\n      hosts:\n        web1: {}\n        web2: {}\n"
TICK_OFFSETS = [1, 30, 60, 120]   # seconds after C


def schedule_for(i: int, start: dt.datetime) -> dict:
    """A schedule spread over the day (minute (i * 7919) mod 1440), with a mix of rules."""
    minute = (i * 7919) % 1440
    h, m = divmod(minute, 60)
    kind = i % 100
    if kind < 50:
        rule = f"FREQ=DAILY;BYHOUR={h};BYMINUTE={m}"
    elif kind < 75:
        rule = f"FREQ=WEEKLY;BYDAY={DAYS[i % 7]},{DAYS[(i + 3) % 7]};BYHOUR={h};BYMINUTE={m}"
    elif kind < 82:
        rule = f"FREQ=MONTHLY;BYDAY={1 + i % 4}{DAYS[i % 5]};BYHOUR={h};BYMINUTE={m}"
    elif kind < 90:
        rule = f"FREQ=MONTHLY;BYMONTHDAY={1 + i % 28};BYHOUR={h};BYMINUTE={m}"
    elif kind < 99:
        rule = f"FREQ=HOURLY;INTERVAL={2 + i % 11};BYMINUTE={m}"
    else:
        rule = f"FREQ=MINUTELY;INTERVAL={(15, 30, 45, 90)[i % 4]}"
    misfire = ("run_late", "skip", "wait_for_window")[i % 3]
    return {"rrule": rule, "timezone": ZONES[i % len(ZONES)], "start": start.isoformat(), "misfire": misfire,
            "grace_seconds": 3600}


def windows_for(i: int, zone: str) -> tuple[list[dict], list[dict]]:
    start = "2026-01-01T00:00:00"
    windows = [
        [],
        [{"kind": "recurring", "rrule": "FREQ=DAILY;BYHOUR=22;BYMINUTE=0", "timezone": zone, "start": start,
          "duration_seconds": 8 * 3600}],
        [{"kind": "recurring", "rrule": "FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=0", "timezone": zone, "start": start,
          "duration_seconds": 20 * 3600},
         {"kind": "recurring", "rrule": "FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "timezone": zone, "start": start,
          "duration_seconds": 3 * 3600}],
    ][i % 3]
    exclusions = [
        [],
        [{"kind": "one_off", "start": "2030-12-24T00:00:00+00:00", "end": "2030-12-27T00:00:00+00:00"}],
        [{"kind": "recurring", "rrule": "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=31", "timezone": zone, "start": start,
          "duration_seconds": 86400}],
        [{"kind": "recurring", "rrule": "FREQ=MONTHLY;BYDAY=2TU", "timezone": zone, "start": start,
          "duration_seconds": 6 * 3600}],
    ][i % 4]
    return windows, exclusions


def build(data_dir: str, count: int) -> tuple[str, dt.datetime, list[tuple[str, str, dt.datetime]]]:
    """The database of ``count`` ready scheduled deployments; returns its URL, C, and the
    (rrule, zone, start) of each for the peer."""
    from sqlalchemy import update

    from depot.database.core import make_engine, make_sessionmaker, transaction, utcnow
    from depot.database.migrate import upgrade
    from depot.deployments import service
    from depot.deployments.models import Deployment
    from depot.deployments.schemas import DeploymentCreate
    from depot.orchestration.service import set_deployment_state
    from depot.orchestration.states import DeploymentState
    from depot.targets import service as targets
    from depot.targets.schemas import TargetCreate

    url = f"sqlite:///{data_dir}/depot.db"
    upgrade(url)
    inventory = os.path.join(data_dir, "inventory.yml")
    with open(inventory, "w") as f:
        f.write(INVENTORY)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    today = utcnow().date()
    start = dt.datetime.combine(today - dt.timedelta(days=1), dt.time())
    rules = []
    with transaction(factory) as session:
        target = targets.create(session, TargetCreate(name="web", kind="group", group="web", inventory=inventory))
        target_id = target.id
    for chunk in range(0, count, 500):
        with transaction(factory) as session:
            for i in range(chunk, min(count, chunk + 500)):
                schedule = schedule_for(i, start)
                windows, exclusions = windows_for(i, schedule["timezone"])
                deployment = service.create(session, DeploymentCreate.model_validate({
                    "name": f"scheduled {i}", "schedule": schedule, "windows": windows, "exclusions": exclusions,
                    "steps": [{"action": "script", "script": "true", "target_ids": [target_id]}]}))
                if i == 0:
                    service.ready(session, deployment, "bench")
                else:
                    set_deployment_state(session, deployment, DeploymentState.READY, cause="ready", actor="bench")
                rules.append((deployment.schedule_rrule, deployment.schedule_timezone, deployment.schedule_start))
            session.expunge_all()
    c = (utcnow() + dt.timedelta(seconds=60)).replace(second=0, microsecond=0)
    with transaction(factory) as session:
        session.execute(update(Deployment).values(schedule_last_fired=c))
    engine.dispose()
    return url, c, rules


def time_tick(url: str, now: dt.datetime) -> tuple[float, int]:
    """One tick at ``now``, rolled back; (seconds, deployments started)."""
    from depot.database.core import make_engine, make_sessionmaker
    from depot.scheduling.tick import tick

    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    try:
        with factory() as session:
            session.begin()
            start = time.perf_counter()
            started = tick(session, now)
            elapsed = time.perf_counter() - start
            session.rollback()
        return elapsed, len(started)
    finally:
        engine.dispose()


def peer(rules: list[tuple[str, str, dt.datetime]], now: dt.datetime) -> float:
    """python-dateutil alone: parse each RRULE with its DTSTART in its zone, next occurrence after now."""
    from dateutil.rrule import rrulestr

    start = time.perf_counter()
    zones: dict[str, ZoneInfo] = {}
    found = 0
    for rule, zone, dtstart in rules:
        tz = zones.get(zone) or zones.setdefault(zone, ZoneInfo(zone))
        parsed = rrulestr(rule, dtstart=dtstart.replace(tzinfo=tz))
        found += parsed.after(now.astimezone(tz)) is not None
    elapsed = time.perf_counter() - start
    assert found == len(rules)
    return elapsed


# --- a due occurrence, live, with `depot serve` -----------------------------------------------------

def _add_probes(url: str, at: list[dt.datetime]) -> list[int]:
    from depot.database.core import make_engine, make_sessionmaker, transaction
    from depot.deployments import service
    from depot.deployments.schemas import DeploymentCreate
    from depot.orchestration.service import set_deployment_state
    from depot.orchestration.states import DeploymentState

    engine = make_engine(url)
    ids = []
    with transaction(make_sessionmaker(engine)) as session:
        for n, when in enumerate(at):
            deployment = service.create(session, DeploymentCreate.model_validate({
                "name": f"probe {n}", "steps": [{"action": "script", "script": "true", "target_ids": [1]}],
                "schedule": {"rrule": "FREQ=DAILY;COUNT=1", "timezone": "UTC",
                             "start": when.replace(tzinfo=None).isoformat()}}))
            set_deployment_state(session, deployment, DeploymentState.READY, cause="ready", actor="bench")
            session.flush()
            ids.append(deployment.id)
    engine.dispose()
    return ids


def default_interval() -> float:
    from depot.config import Settings
    return Settings.model_fields["scheduler_interval"].default


def live_latency(base_dir: str, interval: float, probes: int = 5, spacing: float = 7.3) -> list[float]:
    """Seconds from each probe's occurrence to its deployment seen Active, with `depot serve`
    ticking every ``interval`` seconds over the 10,000 schedules."""
    from sqlalchemy import create_engine, update

    from depot.database.core import make_sessionmaker, transaction, utcnow
    from depot.deployments.models import Deployment

    data_dir = tempfile.mkdtemp(prefix="depot-bench-sched-serve-")
    try:
        shutil.copy(os.path.join(base_dir, "depot.db"), os.path.join(data_dir, "depot.db"))
        shutil.copy(os.path.join(base_dir, "inventory.yml"), os.path.join(data_dir, "inventory.yml"))
        url = f"sqlite:///{data_dir}/depot.db"
        # Steady state: the scheduler has handled everything up to now.
        now = utcnow()
        engine = create_engine(url)
        with transaction(make_sessionmaker(engine)) as session:
            session.execute(update(Deployment).values(schedule_last_fired=now))
        engine.dispose()
        first = (now + dt.timedelta(seconds=25)).replace(microsecond=0)
        at = [first + dt.timedelta(seconds=round(n * spacing)) for n in range(probes)]
        ids = _add_probes(url, at)
        port = 13000 + (os.getpid() + 500) % 1000
        env = dict(os.environ, DEPOT_DATA_DIR=data_dir, DEPOT_SCHEDULER_INTERVAL=str(interval),
                   DEPOT_LOG_LEVEL="warning")
        proc = subprocess.Popen([str(VENV_BIN / "depot"), "serve", "--no-worker", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(data_dir, "serve.log"), "w"))
        seen: dict[int, float] = {}
        try:
            db = sqlite3.connect(f"file:{data_dir}/depot.db?mode=ro", uri=True, timeout=30)
            deadline = time.time() + (at[-1] - utcnow()).total_seconds() + 60 + interval * 3
            marks = ",".join(str(i) for i in ids)
            while len(seen) < len(ids) and time.time() < deadline:
                for (did,) in db.execute(f"SELECT id FROM deployments WHERE id IN ({marks}) AND state = 'active'"):
                    seen.setdefault(did, time.time())
                time.sleep(0.05)
            db.close()
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        missing = [i for i in ids if i not in seen]
        if missing:
            raise AssertionError(f"probe deployments {missing} did not start; see {data_dir}/serve.log")
        return [seen[i] - when.timestamp() for i, when in zip(ids, at)]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run(runs: int, quick: bool) -> list[Row]:
    count = 1_000 if quick else 10_000
    base = tempfile.mkdtemp(prefix="depot-bench-sched-")
    try:
        started = time.monotonic()
        url, c, rules = build(base, count)
        print(f"  set-up: {count:,} ready scheduled deployments in {time.monotonic() - started:.0f} s", flush=True)
        ours, theirs, detail = [], [], []
        # At 10,000 schedules one tick takes a minute here: one round of the four tick times.
        rounds = runs if quick else 1
        for r in range(rounds):
            for offset in (TICK_OFFSETS if r % 2 == 0 else TICK_OFFSETS[::-1]):
                now = c + dt.timedelta(seconds=offset)
                seconds, n = time_tick(url, now)
                ours.append(seconds)
                theirs.append(peer(rules, now))
                detail.append((offset, n, seconds))
                print(f"  tick at C+{offset:>3}s: {seconds:.3f} s, {n} started; dateutil alone {theirs[-1]:.3f} s",
                      flush=True)
        none_due = [s for o, n, s in detail if n == 0]
        some_due = [(n, s) for o, n, s in detail if n > 0]
        tick_rows = [Row("5. Scheduler", f"tick, {count:,} schedules with windows/exclusions (median over ticks)",
                         median(ours), "s", peer="python-dateutil: same RRULEs' next occurrence, no database",
                         peer_value=median(theirs), target="≤ 0.25 s", met=median(ours) <= 0.25, samples=ours,
                         peer_samples=theirs,
                         note=(f"ticks with nothing due: median {median(none_due) if none_due else float('nan'):.3f} s; "
                               f"with some due: " + ", ".join(f"{n} started in {s:.2f} s" for n, s in some_due[:8])))]
        latency_rows = []
        for interval in (10.0, 1.0):
            delays = live_latency(base, interval, probes=3)
            print(f"  depot serve, scheduler_interval {interval:g} s: occurrence -> active "
                  f"{[round(d, 2) for d in delays]} s", flush=True)
            latency_rows.append(Row(
                "5. Scheduler", f"due occurrence -> Active, `depot serve`, scheduler_interval {interval:g} s"
                + (" (default)" if interval == default_interval() else ""), max(delays), "s", target="≤ 2 s", met=max(delays) <= 2,
                samples=delays, note=(f"worst of {len(delays)} probes (median {median(delays):.2f} s), with the "
                                      f"{count:,} schedules in the database")))
        print(f"  total {time.monotonic() - started:.0f} s", flush=True)
        return tick_rows + latency_rows
    finally:
        shutil.rmtree(base, ignore_errors=True)
