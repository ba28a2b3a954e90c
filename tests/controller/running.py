"""Running deployments to their end with an in-process worker, for the lab tests."""

import time
from contextlib import contextmanager

from sqlalchemy import select

from depot.config import Settings
from depot.database.core import make_engine, make_sessionmaker, transaction
from depot.database.migrate import upgrade
from depot.deployments.models import Deployment, HostResult, Run
from depot.execution.worker import Worker
from depot.orchestration.states import DeploymentState
from depot.security import load_keys


@contextmanager
def lab_worker(data_dir, **settings):
    """An in-process worker "w1" on a fresh SQLite database in ``data_dir``: yields (settings,
    session factory, worker); stops and drains it at the end."""
    options = dict(worker_name="w1", worker_forks=8, event_batch_seconds=0.2, lease_seconds=120)
    settings = Settings(data_dir=data_dir, **dict(options, **settings))
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    worker = Worker(factory, settings, load_keys(settings.data_dir))
    try:
        yield settings, factory, worker
    finally:
        worker.stop()
        worker.drain(60)
        engine.dispose()


def start(factory, deployment_id, hosts):
    """What the API's start action does: one Ready row per (step, host), deployment Active."""
    with transaction(factory) as s:
        d = s.get(Deployment, deployment_id)
        d.state = DeploymentState.ACTIVE
        for step in d.steps:
            for host in hosts:
                s.add(HostResult(deployment_id=d.id, step_id=step.id, position=step.position, host=host))


def runs_finish(factory, deadline):
    """Every run ends on its own terms (finish_run records it): a run that crashed in the
    controller never does, and fails the test."""
    while True:
        with factory() as s:
            if all(r.finished_at is not None for r in s.scalars(select(Run))):
                return
        assert time.monotonic() < deadline + 120, "a run did not finish: it crashed in the controller"
        time.sleep(0.5)


def run_until_complete(factory, worker, deployment_ids, limit=300):
    """Tick ``worker`` until every deployment of ``deployment_ids`` has completed, and its runs ended."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        worker.tick()
        with factory() as s:
            if all(s.get(Deployment, d).state is DeploymentState.COMPLETED for d in deployment_ids):
                worker.drain(60)
                runs_finish(factory, deadline)
                return
        time.sleep(0.5)
    raise AssertionError("the deployments did not complete in time")
