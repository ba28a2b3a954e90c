"""The in-process hint that work may be claimable: sent when a transaction that made work
claimable commits, not before and not on rollback."""

import threading

from depot.database.core import transaction
from depot.deployments.models import Deployment
from depot.orchestration.service import set_deployment_state
from depot.orchestration.signals import Signal, work_available
from depot.orchestration.states import DeploymentState


def test_a_notification_between_two_waits_is_not_lost():
    signal = Signal()
    seen = signal.generation
    signal.notify()
    assert signal.wait(seen, 0) is True
    assert signal.wait(signal.generation, 0.01) is False
    seen = signal.generation
    threading.Timer(0.05, signal.notify).start()
    assert signal.wait(seen, 30) is True


def test_starting_a_deployment_wakes_workers_when_it_commits(sessions):
    with transaction(sessions) as s:
        d = Deployment(name="d", state=DeploymentState.READY)
        s.add(d)
    seen = work_available.generation
    try:
        with transaction(sessions) as s:
            set_deployment_state(s, s.get(Deployment, d.id), DeploymentState.ACTIVE, cause="test", actor="t")
            assert work_available.generation == seen        # not before the commit
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert work_available.generation == seen                # nor after a rollback
    with transaction(sessions) as s:
        set_deployment_state(s, s.get(Deployment, d.id), DeploymentState.ACTIVE, cause="test", actor="t")
    assert work_available.generation > seen


def test_the_reports_counts_follow_this_processes_changes_at_once(sessions):
    """The report's counts are cached, and a committed status change here replaces them."""
    from depot.deployments import service
    from depot.deployments.models import HostResult, Step
    from depot.orchestration.service import set_host_status
    from depot.orchestration.states import HostStatus
    with transaction(sessions) as s:
        d = Deployment(name="d", state=DeploymentState.ACTIVE)
        d.steps = [Step(position=1, name="s", action="script", script="true")]
        s.add(d)
        s.flush()
        s.add_all([HostResult(deployment_id=d.id, step_id=d.steps[0].id, position=1, host=f"h{i}") for i in range(3)])
    with sessions() as s:
        assert service.status_counts(s, d.id) == {"ready": 3}
    with transaction(sessions) as s:
        rows = s.query(HostResult).filter_by(deployment_id=d.id).all()
        set_host_status(s, rows[:1], HostStatus.ACTIVE, cause="test", actor="t")
    with sessions() as s:
        assert service.status_counts(s, d.id) == {"ready": 2, "active": 1}
