"""Runs connect with the target's credential: on the lab, with an inventory that names no key, an
ssh_key credential holding the lab's private key reaches every host, and the key lands in no file
of the run and in the database only encrypted; a wrong key or a refused password ends Unreachable."""

import subprocess
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from depot.audit.models import AuditEvent
from depot.config import Settings
from depot.credentials.models import Credential
from depot.database.core import make_engine, make_sessionmaker, transaction
from depot.database.migrate import upgrade
from depot.deployments.models import Deployment, HostResult, Run, Step
from depot.execution.worker import Worker
from depot.orchestration.states import DeploymentOutcome, DeploymentState, HostStatus
from depot.security import load_keys
from depot.targets.models import Target
from tests.controller.running import run_until_complete

pytestmark = pytest.mark.lab
H = HostStatus
CANARY = "canary-Pa55w0rd-3f9a61"


@pytest.fixture
def controller(tmp_path, lab):
    settings = Settings(data_dir=tmp_path / "data", worker_name="w1", worker_forks=8, event_batch_seconds=0.2,
                        lease_seconds=120)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    keys = load_keys(settings.data_dir)
    worker = Worker(factory, settings, keys)
    yield settings, factory, keys, worker
    worker.stop()
    worker.drain(60)
    engine.dispose()


@pytest.fixture
def keyless_inventory(lab, tmp_path):
    """The lab's inventory without ansible_ssh_private_key_file (nor ansible_user): only a credential
    gets a run in."""
    inventory = yaml.safe_load(Path(lab.inventory).read_text())
    variables = inventory["all"]["children"]["lab"]["vars"]
    del variables["ansible_ssh_private_key_file"], variables["ansible_user"]
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def deploy(factory, keys, inventory, hosts, kind, secret, username="root", timeout=600, name=None):
    """A one-step script deployment to ``hosts`` through a target connecting with a new credential,
    started the way the API's start action does it."""
    name = name or kind
    marker = f"/opt/depot-cred/{name}"
    with transaction(factory) as s:
        credential = Credential(name=name, kind=kind, username=username, options={}, secret=keys.encrypt(secret))
        s.add(credential)
        s.flush()
        target = Target(name=name, kind="host", hosts=hosts, inventory=str(inventory), credential_id=credential.id)
        s.add(target)
        s.flush()
        d = Deployment(name=name, state=DeploymentState.ACTIVE)
        d.steps = [Step(position=1, name="mark", action="script", target_ids=[target.id], machine_contact_timeout=timeout,
                        script=f"mkdir -p /opt/depot-cred && whoami > {marker}")]
        s.add(d)
        s.flush()
        for host in hosts:
            s.add(HostResult(deployment_id=d.id, step_id=d.steps[0].id, position=1, host=host))
        return d.id, marker


def rows(factory, deployment_id):
    with factory() as s:
        return {r.host: r for r in s.scalars(select(HostResult).where(HostResult.deployment_id == deployment_id))}


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def database_bytes(settings) -> bytes:
    """The SQLite database and its WAL, as raw bytes."""
    return b"".join(p.read_bytes() for p in sorted(Path(settings.data_dir).glob("depot.db*")) if p.is_file())


def test_an_ssh_key_credential_connects_and_leaves_no_trace(controller, lab, keyless_inventory):
    settings, factory, keys, worker = controller
    private_key = Path(lab.key).read_text()
    # a line from the middle of the key: base64 that occurs nowhere else
    distinctive = private_key.strip().splitlines()[2].encode()
    assert len(distinctive) > 40
    hosts = ["h1", "h2", "h3"]
    deployment_id, marker = deploy(factory, keys, keyless_inventory, hosts, "ssh_key", private_key)
    run_until_complete(factory, worker, [deployment_id])

    result = rows(factory, deployment_id)
    for host in hosts:
        assert result[host].status is H.SUCCESS, (host, result[host].reason, result[host].log_tail)
        assert lab.host_path(host, marker).read_text().strip() == "root"
    with factory() as s:
        assert s.get(Deployment, deployment_id).outcome is DeploymentOutcome.SUCCESS
        run = s.scalars(select(Run).where(Run.deployment_id == deployment_id)).first()
    run_dir = Path(settings.data_dir) / "runs" / str(run.id)
    assert (run_dir / "artifacts").is_dir() and (run_dir / "depot-vars.yml").is_file()
    assert "ansible_user: !unsafe 'root'" in (run_dir / "depot-vars.yml").read_text()
    assert files_containing(Path(settings.data_dir) / "runs", distinctive) == []
    assert not list((Path(settings.data_dir) / "runs").rglob("ssh_key_data"))
    assert distinctive not in database_bytes(settings)
    with factory() as s:   # it is there, encrypted
        stored = s.scalars(select(Credential).where(Credential.kind == "ssh_key")).one()
        assert keys.decrypt(stored.secret) == private_key


def test_a_wrong_key_or_a_refused_password_ends_unreachable(controller, lab, keyless_inventory, tmp_path):
    settings, factory, keys, worker = controller
    wrong = tmp_path / "wrong"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wrong", "-f", str(wrong)], check=True)
    wrong_key = wrong.read_text()
    # The lab's sshd takes keys only: a password is refused, which shows the password reaches ssh
    # (through sshpass) and stays out of every file.
    key_run, key_marker = deploy(factory, keys, keyless_inventory, ["h4", "h5"], "ssh_key", wrong_key, timeout=3)
    password_run, _ = deploy(factory, keys, keyless_inventory, ["h6"], "ssh_password", CANARY, timeout=3)
    run_until_complete(factory, worker, [key_run, password_run], limit=180)

    for deployment_id, hosts in ((key_run, ["h4", "h5"]), (password_run, ["h6"])):
        result = rows(factory, deployment_id)
        for host in hosts:
            assert result[host].status is H.UNREACHABLE, (host, result[host].status, result[host].reason)
            assert "Permission denied" in result[host].reason, result[host].reason
        with factory() as s:
            assert s.get(Deployment, deployment_id).outcome is DeploymentOutcome.FAILED
    assert not lab.host_path("h4", key_marker).exists()
    with factory() as s:   # each run's use of its credential is in the audit trail
        uses = s.scalars(select(AuditEvent).where(AuditEvent.action == "credential.use")).all()
        assert {u.detail["deployment_id"] for u in uses} == {key_run, password_run}
    runs = Path(settings.data_dir) / "runs"
    assert files_containing(runs, CANARY.encode()) == []
    assert files_containing(runs, wrong_key.strip().splitlines()[2].encode()) == []
    assert CANARY.encode() not in database_bytes(settings)
    # The secret never was in the run's environment (which ansible-runner writes to `command`),
    # and its in-memory vars file is gone with the run.
    commands = list(runs.rglob("command"))
    assert commands and not any(b"DEPOT_SECRET" in p.read_bytes() for p in commands)
    assert not list(Path("/dev/shm").glob("depot-secrets-*"))
