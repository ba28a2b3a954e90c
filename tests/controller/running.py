"""Running deployments to their end with an in-process worker, for the lab tests."""

import time

from sqlalchemy import select

from depot.deployments.models import Deployment, Run
from depot.orchestration.states import DeploymentState


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
