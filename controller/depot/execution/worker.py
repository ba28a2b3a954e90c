"""The worker: claims Ready (step, host) rows, runs each batch with ansible-runner in a thread,
keeps its leases alive while runs go on, and settles deployments.

`depot serve` runs one in-process with the API (the embedded default); `depot worker` runs one
on its own. On PostgreSQL any number of workers on any machines share the work.

A worker that dies loses its work when its leases run out (lease_seconds), wherever it ran. On
its own node it is noticed at once: every worker holds a lock on a presence file of its name in a
per-user directory of the node (/dev/shm) for as long as its process lives, and the kernel drops
that lock when the process dies, however it dies. A worker that finds the presence file of a
worker holding work unlocked expires that worker's leases at once (its hosts become
Inconclusive and are re-verified) and closes its runs as "lost". A worker whose presence is not
visible here (another node, another container) is left to its leases.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from depot.config import Settings
from depot.database.core import log_failure, transaction, utcnow
from depot.deployments.models import Deployment, HostResult, Run
from depot.orchestration import lifecycle
from depot.orchestration.states import DeploymentState
from depot.orchestration.signals import work_available
from depot.execution import wakeup
from depot.execution.claims import claim
from depot.execution.presence import Presence, sweep_secrets
from depot.execution.runner import drop_private_files, run_batch
from depot.observability import log_context
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
        self.hosts_per_fork = settings.worker_hosts_per_fork or (1 if self.postgres else 4)
        self.running: dict[int, tuple[threading.Thread, int]] = {}   # run id -> (thread, forks)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._halted_cache: dict[int, tuple[float, bool]] = {}
        self.presence = Presence()

    # -- one pass ------------------------------------------------------------------------------
    def tick(self) -> int:
        """Recover, settle, claim and start; returns how many runs were started."""
        now = utcnow()
        self.recover(now)
        with self.lock:
            self.running = {k: v for k, v in self.running.items() if v[0].is_alive()}
            busy = sum(forks for _, forks in self.running.values())
        capacity = self.settings.worker_forks - busy
        started = []
        with transaction(self.factory) as session:
            claimed = claim(session, self.name, capacity, now, self.settings.lease_seconds, self.postgres,
                            self.settings.lan_networks, self.hosts_per_fork)
            for batch in claimed.batches:
                run = Run(deployment_id=batch.deployment_id, step_id=batch.step_id, worker=self.name,
                          hosts=[r.host for r in batch.rows], forks=batch.forks, options=batch.options)
                session.add(run)
                session.flush()
                for row in batch.rows:
                    row.run_id = run.id
                started.append((run.id, batch.forks))
        for wake in claimed.wakes:
            try:
                wakeup.send(wake.mac, str(wake.options.broadcast), wake.options.port)
                log.info("Wake-on-LAN sent to %s (%s) via %s:%s", wake.host, wake.mac, wake.options.broadcast,
                         wake.options.port)
            except OSError as e:
                log.warning("Wake-on-LAN to %s (%s) failed: %s", wake.host, wake.mac, e)
        for run_id, forks in started:
            thread = threading.Thread(target=self._run, args=(run_id,), name=f"depot-run-{run_id}", daemon=True)
            with self.lock:
                self.running[run_id] = (thread, forks)
            thread.start()
        return len(started)

    # -- recovery ------------------------------------------------------------------------------
    def recover(self, now: dt.datetime) -> None:
        """Lost work back to Ready (dead workers: at once if known here, else by their leases),
        lost runs closed, due deferrals woken, deployments settled."""
        with transaction(self.factory) as session:
            gone = self._gone(session)
            lifecycle.expire_leases(session, now, self.actor, gone)
            lost = lifecycle.close_lost_runs(session, now, now - dt.timedelta(seconds=self.settings.lease_seconds), gone)
            lifecycle.wake_due(session, now, self.actor)
            lifecycle.settle(session, self.actor)
        self._forget_runs(lost)

    def _holders(self, session: Session) -> set[str]:
        """Workers holding work: Active rows or unfinished runs."""
        return set(session.scalars(select(HostResult.claimed_by).where(
            HostResult.status == lifecycle.H.ACTIVE, HostResult.claimed_by.is_not(None)).distinct())) | set(
            session.scalars(select(Run.worker).where(Run.finished_at.is_(None)).distinct()))

    def _gone(self, session: Session) -> set[str]:
        """Workers holding work whose process is known to have ended (see Presence)."""
        return {name for name in self._holders(session) if name != self.name and self.presence.gone(name)}

    def _forget_runs(self, run_ids: list[int]) -> None:
        """Runs closed as lost: log them, and drop what ansible-runner staged for them where their
        run directory is on this machine (the artifacts stay)."""
        for run_id in run_ids:
            log.warning("run %s was lost with its worker: closed as lost", run_id)
            drop_private_files(Path(self.settings.data_dir) / "runs" / str(run_id))

    def start(self) -> None:
        """Once, before the first tick of a long-lived worker: be present on this node, take over
        from a dead predecessor of the same name (Active rows and runs under this name are its:
        this process has claimed nothing yet), and sweep the presence files and run secrets that
        dead processes of this node left."""
        if not self.presence.register(self.name):
            log.warning("worker %s is not present on this node: its work is recovered by its leases only", self.name)
            return
        now = utcnow()
        with transaction(self.factory) as session:
            mine = [self.name]
            count = lifecycle.expire_leases(session, now, self.actor, mine)
            lost = lifecycle.close_lost_runs(session, now, now - dt.timedelta(seconds=self.settings.lease_seconds), mine)
            holders = self._holders(session)
        if count:
            log.warning("took over from a previous worker named %s: %d host(s) are re-verified", self.name, count)
        self._forget_runs(lost)
        for name, path in self.presence.names().items():
            if name != self.name and name not in holders and self.presence.gone(name):
                path.unlink(missing_ok=True)
        for path in sweep_secrets():
            log.info("removed %s, left by a process that died", path)

    def _run(self, run_id: int) -> None:
        with log_context(run_id=run_id):   # on every log line of this run's thread
            try:
                run_batch(self.factory, self.settings, self.keys, run_id, lambda: self._halted(run_id),
                          self.stopping.is_set)
            except Exception:  # noqa: BLE001 - a crashed run must not take the worker down
                log.exception("run %s crashed", run_id)
                with transaction(self.factory) as session:
                    lost = session.scalars(select(HostResult).where(HostResult.run_id == run_id,
                                                                    HostResult.status == lifecycle.H.ACTIVE)).all()
                    lifecycle.mark_inconclusive(session, lost, cause="the run crashed in the controller",
                                                actor=self.actor)
            finally:
                self._halted_cache.pop(run_id, None)
                work_available.notify()   # its forks are free: claim again now

    def _halted(self, run_id: int) -> bool:
        """Whether the run's deployment starts no more hosts (cancelled or paused): read at most
        once a second."""
        checked_at, value = self._halted_cache.get(run_id, (0.0, False))
        if time.monotonic() - checked_at < 1.0:
            return value
        with self.factory() as session:
            deployment = session.get(Deployment, session.get(Run, run_id).deployment_id)
            value = deployment is None or deployment.cancel_requested or deployment.state is DeploymentState.PAUSED
        self._halted_cache[run_id] = (time.monotonic(), value)
        return value

    def heartbeat(self) -> None:
        with transaction(self.factory) as session:
            now = utcnow()
            lifecycle.renew_leases(session, self.name, now + dt.timedelta(seconds=self.settings.lease_seconds), now)

    # -- loops ---------------------------------------------------------------------------------
    def run_forever(self) -> None:
        try:
            self.start()
        except Exception as e:  # noqa: BLE001 - recovery is also done by the leases: go on
            log_failure(log, "worker start-up recovery", e)
        beat = threading.Thread(target=self._heartbeat_loop, name="depot-heartbeat", daemon=True)
        beat.start()
        while not self.stopping.is_set():
            seen = work_available.generation
            try:
                self.tick()
            except Exception as e:  # noqa: BLE001 - e.g. the database restarting: log and try again
                log_failure(log, "worker tick", e)
            work_available.wait(seen, self.settings.worker_poll_interval)
        self.drain()
        self.presence.release()

    def _heartbeat_loop(self) -> None:
        interval = max(1.0, self.settings.lease_seconds / 3)
        while not self.stopping.wait(interval):
            try:
                self.heartbeat()
            except Exception as e:  # noqa: BLE001
                log_failure(log, "heartbeat", e)

    def drain(self, timeout: float | None = None) -> None:
        with self.lock:
            threads = [t for t, _ in self.running.values()]
        for thread in threads:
            thread.join(timeout)

    def stop(self) -> None:
        self.stopping.set()
        work_available.notify()
