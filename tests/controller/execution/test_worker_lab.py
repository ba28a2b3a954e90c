"""The worker end to end on the lab: a two-step deployment over eight real hosts with one
offline, one failing, one needing a reboot, the rest succeeding."""

import hashlib

import pytest
from sqlalchemy import select

from depot.database.core import transaction
from depot.deployments.models import Deployment, HostResult, Run, Step
from depot.orchestration.states import DeploymentOutcome, DeploymentState, HostStatus
from depot.packages.models import Package
from depot.targets.models import Target
from tests.controller.running import lab_worker, run_until_complete, start
from tests.lab import HOST_INSTALLERS

pytestmark = pytest.mark.lab
H = HostStatus


@pytest.fixture
def controller(tmp_path, lab, lab_inventory):
    with lab_worker(tmp_path / "data") as (_, factory, worker):
        yield factory, worker


def test_two_step_deployment_on_eight_hosts(controller, lab, lab_inventory, tmp_path):
    factory, worker = controller
    www = tmp_path / "www"
    www.mkdir()
    # A script "installer" whose behaviour depends on the host it runs on.
    installer = (
        "#!/bin/sh\n"
        "case $(hostname) in\n"
        f"  h3) exec {HOST_INSTALLERS}/fail \"$1\" ;;\n"
        f"  h4) exec {HOST_INSTALLERS}/soft-reboot \"$1\" ;;\n"
        f"  *) exec {HOST_INSTALLERS}/ok \"$1\" ;;\n"
        "esac\n").encode()
    (www / "agent-setup").write_bytes(installer)
    url = lab.serve(www) + "/agent-setup"
    marker = "/opt/depot-ctl/agent"
    hosts = [h.name for h in lab.hosts]
    with transaction(factory) as s:
        target = Target(name="lab", kind="group", inventory=str(lab_inventory), group="lab")
        package = Package(name="agent", version="1.0", platform="linux", installer_type="script",
                          content_url=url, content_sha256=hashlib.sha256(installer).hexdigest(), content_filename="agent-setup",
                          options=dict(install_command=["{installer}", marker],
                                       detection=dict(rules=[dict(type="file", path=marker)])))
        s.add_all([target, package])
        s.flush()
        d = Deployment(name="two steps", state=DeploymentState.READY)
        d.steps = [
            Step(position=1, name="agent", action="package", package_id=package.id, target_ids=[target.id],
                 machine_contact_timeout=8),
            Step(position=2, name="configure", action="script", target_ids=[target.id],
                 script="mkdir -p /opt/depot-ctl && hostname > /opt/depot-ctl/configured",
                 machine_contact_timeout=8),
        ]
        s.add(d)
        s.flush()
        deployment_id = d.id
    lab.offline("h8")
    boot_h4 = lab.boot_id("h4")
    try:
        start(factory, deployment_id, hosts)
        run_until_complete(factory, worker, [deployment_id])
    finally:
        lab.online("h8")

    with factory() as s:
        d = s.get(Deployment, deployment_id)
        rows = {(r.host, r.position): r for r in s.scalars(select(HostResult).where(HostResult.deployment_id == deployment_id))}
        assert d.outcome is DeploymentOutcome.FAILED
        for host in ("h1", "h2", "h5", "h6", "h7"):
            assert rows[(host, 1)].status is H.SUCCESS, (host, rows[(host, 1)].reason)
            assert rows[(host, 2)].status is H.SUCCESS
            assert lab.host_path(host, "/opt/depot-ctl/configured").read_text().strip() == host
        assert (rows[("h3", 1)].status, rows[("h3", 1)].rc) == (H.FAILED, 1603)
        assert rows[("h3", 2)].status is H.CANCELLED and "step 1" in rows[("h3", 2)].reason
        assert not lab.host_path("h3", "/opt/depot-ctl/configured").exists()
        assert (rows[("h4", 1)].status, rows[("h4", 1)].outcome, rows[("h4", 1)].rc) == (H.SUCCESS, "soft_reboot", 3010)
        assert lab.boot_id("h4") != boot_h4
        assert rows[("h4", 2)].status is H.SUCCESS
        assert rows[("h8", 1)].status is H.UNREACHABLE and rows[("h8", 1)].contact_attempts >= 1
        assert rows[("h8", 2)].status is H.CANCELLED
        assert all(r.log_tail for (h, p), r in rows.items() if r.status is H.SUCCESS)
        runs = s.scalars(select(Run).where(Run.deployment_id == deployment_id)).all()
        assert runs and all(r.status in ("successful", "failed") for r in runs)
