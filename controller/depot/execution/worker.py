"""The worker: claims Ready (step, host) rows, runs each batch with ansible-runner in a thread,
keeps its leases alive while runs go on, and settles deployments.

`depot serve` runs one in-process with the API (the embedded default); `depot worker` runs one
on its own. On PostgreSQL any number of workers on any machines share the work.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from depot.config import Settings
from depot.database.core import transaction, utcnow
from depot.deployments.models import Deployment, HostResult, Run
from depot.orchestration import lifecycle
from depot.execution import wakeup
from depot.execution.claims import claim
from depot.execution.runner import run_batch
from depot.security import Keys

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, factory: sessionmaker[Session], settings: Settings, keys: Keys):
        self.factory = factory
        self.settings = settings
        self.keys = keys
        self.name = settings.worker_name
        self.actor = f"worker:{self.name}"
        self.postgres = factory.kw["bind"].dialect.name == "postgresql"
        self.running: dict[int, tuple[threading.Thread, int]] = {}   # run id -> (thread, hosts)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._cancel_cache: dict[int, tuple[float, bool]] = {}

    # -- one pass ------------------------------------------------------------------------------
    def tick(self) -> int:
        """Recover, settle, claim and start; returns how many runs were started."""
        now = utcnow()
        with transaction(self.factory) as session:
            lifecycle.expire_leases(session, now, self.actor)
            lifecycle.wake_due(session, now, self.actor)
            lifecycle.settle(session, self.actor)
        with self.lock:
            self.running = {k: v for k, v in self.running.items() if v[0].is_alive()}
            busy = sum(hosts for _, hosts in self.running.values())
        capacity = self.settings.worker_forks - busy
        started = []
        with transaction(self.factory) as session:
            claimed = claim(session, self.name, capacity, now, self.settings.lease_seconds, self.postgres,
                            self.settings.lan_networks)
            for batch in claimed.batches:
                run = Run(deployment_id=batch.deployment_id, step_id=batch.step_id, worker=self.name,
                          hosts=[r.host for r in batch.rows], options=batch.options)
                session.add(run)
                session.flush()
                for row in batch.rows:
                    row.run_id = run.id
                started.append((run.id, len(batch.rows)))
        for wake in claimed.wakes:
            try:
                wakeup.send(wake.mac, str(wake.options.broadcast), wake.options.port)
                log.info("Wake-on-LAN sent to %s (%s) via %s:%s", wake.host, wake.mac, wake.options.broadcast,
                         wake.options.port)
            except OSError as e:
                log.warning("Wake-on-LAN to %s (%s) failed: %s", wake.host, wake.mac, e)
        for run_id, hosts in started:
            thread = threading.Thread(target=self._run, args=(run_id,), name=f"depot-run-{run_id}", daemon=True)
            with self.lock:
                self.running[run_id] = (thread, hosts)
            thread.start()
        return len(started)

    def _run(self, run_id: int) -> None:
        try:
            run_batch(self.factory, self.settings, self.keys, run_id, lambda: self._cancelled(run_id))
        except Exception:  # noqa: BLE001 - a crashed run must not take the worker down
            log.exception("run %s crashed", run_id)
            with transaction(self.factory) as session:
                lost = session.scalars(select(HostResult).where(HostResult.run_id == run_id,
                                                                HostResult.status == lifecycle.H.ACTIVE)).all()
                lifecycle.mark_inconclusive(session, lost, cause="the run crashed in the controller", actor=self.actor)

    def _cancelled(self, run_id: int) -> bool:
        """ansible-runner's cancel_callback: reads the deployment's cancel flag, at most once a second."""
        if self.stopping.is_set():
            return True
        checked_at, value = self._cancel_cache.get(run_id, (0.0, False))
        if time.monotonic() - checked_at < 1.0:
            return value
        with self.factory() as session:
            run = session.get(Run, run_id)
            deployment = session.get(Deployment, run.deployment_id)
            # Cancel lets running hosts finish their current step: stop only when none is mid-step.
            value = False if deployment is None else (deployment.cancel_requested and not self._mid_step(session, run_id))
        self._cancel_cache[run_id] = (time.monotonic(), value)
        return value

    @staticmethod
    def _mid_step(session: Session, run_id: int) -> bool:
        return session.scalar(select(HostResult.id).where(HostResult.run_id == run_id,
                                                          HostResult.status == lifecycle.H.ACTIVE).limit(1)) is not None

    def heartbeat(self) -> None:
        with transaction(self.factory) as session:
            lifecycle.renew_leases(session, self.name, utcnow() + dt.timedelta(seconds=self.settings.lease_seconds))

    # -- loops ---------------------------------------------------------------------------------
    def run_forever(self) -> None:
        beat = threading.Thread(target=self._heartbeat_loop, name="depot-heartbeat", daemon=True)
        beat.start()
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - e.g. the database restarting: log and try again
                log.exception("worker tick failed")
            self.stopping.wait(self.settings.worker_poll_interval)
        self.drain()

    def _heartbeat_loop(self) -> None:
        interval = max(1.0, self.settings.lease_seconds / 3)
        while not self.stopping.wait(interval):
            try:
                self.heartbeat()
            except Exception:  # noqa: BLE001
                log.exception("heartbeat failed")

    def drain(self, timeout: float | None = None) -> None:
        with self.lock:
            threads = [t for t, _ in self.running.values()]
        for thread in threads:
            thread.join(timeout)

    def stop(self) -> None:
        self.stopping.set()
