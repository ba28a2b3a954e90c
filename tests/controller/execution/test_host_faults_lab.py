"""Host faults on the lab, through the controller (in-process worker, real hosts): one two-step
deployment over seven hosts where, during step 1,

- h1 reboots in the middle of its installer (before the installer has installed anything),
- h2 reboots in the middle of its installer (after it installed, while it is "finishing up"),
- h3's installer asks for a reboot (3010), the step reboots it, and it never comes back
  (switched off once the reboot has begun) within the step's short reboot_timeout,
- h4 drops its connection mid-install (switched off until ssh gives up on the session) and
  comes back soon after,
- h5 drops its connection mid-install and stays away longer than the step's reboot_timeout: the
  controller tries to contact it again later, when it is back,
- h6 and h7 have no fault,

and the deployment goes on for the others: every host ends in a terminal status that says what
happened (with the reason), no success is claimed without detection, no installer runs twice,
and step 2 runs on every host whose step 1 succeeded.
"""

import hashlib
import subprocess
import threading
import time

import pytest
from sqlalchemy import select

from depot.database.core import transaction
from depot.deployments.models import Deployment, HostResult, Run, Step
from depot.orchestration.models import Transition
from depot.orchestration.states import TERMINAL_HOST_STATUSES, DeploymentOutcome, DeploymentState, HostStatus
from depot.packages.models import Package
from depot.targets.models import Target
from tests.controller.running import lab_worker, run_until_complete, start
from tests.lab import HOST_INSTALLERS

pytestmark = pytest.mark.lab
H = HostStatus
HOSTS = ["h1", "h2", "h3", "h4", "h5", "h6", "h7"]
DIR = "/opt/depot-hf"               # survives a reboot (/run and /tmp do not)
MARKER = f"{DIR}/agent"             # what detection looks for
RUNNING = f"{DIR}/running"          # written by the installer while it runs
CALLS = f"{DIR}/calls"              # one line per installer run: "<pid> <boot id>"
REBOOT_TIMEOUT = 15

# The installer: behaves per host. Every run is counted in CALLS first.
INSTALLER = f"""#!/bin/sh
mkdir -p {DIR}
echo "$$ $(cat /proc/sys/kernel/random/boot_id)" >>{CALLS}
case $(hostname) in
  h1) touch {RUNNING}; sleep 60; exec {HOST_INSTALLERS}/ok "$1" ;;
  h2) {HOST_INSTALLERS}/ok "$1"; touch {RUNNING}; sleep 60 ;;
  h3) exec {HOST_INSTALLERS}/soft-reboot "$1" ;;
  h4|h5) touch {RUNNING}; sleep 4; exec {HOST_INSTALLERS}/ok "$1" ;;
  *) exec {HOST_INSTALLERS}/ok "$1" ;;
esac
""".encode()


@pytest.fixture
def controller(tmp_path, lab, lab_inventory):
    with lab_worker(tmp_path / "data", lease_seconds=300) as (_, factory, worker):
        yield factory, worker


def wait_for(what, condition, timeout=90, interval=0.05):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def ssh_sessions(address):
    """Established TCP connections from this machine to the host's sshd."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "dst", address], capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines() if line.split() and line.split()[-1].endswith(":22")]


class Faults:
    """The faults, each in its own thread, each waiting (bounded) for its moment in the host's
    life; what they saw is kept for the assertions, and any error fails the test."""

    def __init__(self, lab, factory, deployment_id):
        self.lab, self.factory, self.deployment_id = lab, factory, deployment_id
        self.errors, self.seen, self.threads = [], {}, []

    def spawn(self, name, fn):
        def guarded():
            try:
                fn()
            except BaseException as e:  # noqa: B902 - reported by check()
                self.errors.append(f"{name}: {e!r}")
        thread = threading.Thread(target=guarded, name=f"fault-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def check(self):
        for thread in self.threads:
            thread.join(timeout=120)
            assert not thread.is_alive(), f"{thread.name} did not end"
        assert not self.errors, self.errors

    def exists(self, host, path):
        return lambda: self.lab.host_path(host, path).exists()

    def reboot_mid_install(self, host):
        wait_for(f"{host}'s installer to run", self.exists(host, RUNNING))
        self.seen[host] = dict(installed_before_reboot=self.lab.host_path(host, MARKER).exists())
        self.lab.reboot(host, delay=1.0)

    def never_back_after_its_reboot(self, host, boot_before):
        wait_for(f"{host}'s installer to finish", self.exists(host, MARKER))
        # The step's own reboot has begun once the boot id changes; sshd is back only a few
        # seconds later, and by then the host is switched off.
        wait_for(f"{host} to reboot", lambda: self.lab.boot_id(host) != boot_before, interval=0.02)
        self.lab.offline(host)

    def drop_connection(self, host, until_controller_retries=False):
        address = self.lab.host(host).address
        wait_for(f"{host}'s installer to run", self.exists(host, RUNNING))
        assert ssh_sessions(address), f"no ssh session to {host} while its installer runs"
        self.lab.offline(host)
        # The installer goes on while the host is cut off; ssh gives up on the session (keepalives).
        wait_for(f"{host}'s installer to finish while offline", self.exists(host, MARKER))
        wait_for(f"ssh to give up on {host}'s session", lambda: not ssh_sessions(address), interval=0.2)
        seen = self.seen.setdefault(host, {})
        if until_controller_retries:
            # Away longer than reboot_timeout: the step gives up, the controller will try again.
            def offline_row():
                with self.factory() as s:
                    row = s.scalar(select(HostResult).where(HostResult.deployment_id == self.deployment_id,
                                                            HostResult.host == host, HostResult.position == 1))
                    if row.status is H.READY and row.contact_attempts >= 1:
                        seen["while_away"] = dict(status=row.status, reason=row.reason, outcome=row.outcome)
                        return True
                    assert row.status in (H.ACTIVE, H.READY), (row.status, row.reason)
                    return False
            wait_for(f"the controller to record {host} as offline", offline_row, timeout=120, interval=0.3)
        self.lab.online(host)


def test_host_faults_mid_step(controller, lab, lab_inventory, tmp_path):
    factory, worker = controller
    www = tmp_path / "www"
    www.mkdir()
    (www / "agent-setup").write_bytes(INSTALLER)
    url = lab.serve(www) + "/agent-setup"
    for host in HOSTS:
        lab.exec(host, f"rm -rf {DIR} /opt/depot-hf-configured")
        lab.reset_commands(host)
    boots = {host: lab.boot_id(host) for host in HOSTS}
    with transaction(factory) as s:
        target = Target(name="lab", kind="group", inventory=str(lab_inventory), group="lab")
        package = Package(name="agent", version="1.0", platform="linux", installer_type="script",
                          content_url=url, content_sha256=hashlib.sha256(INSTALLER).hexdigest(),
                          content_filename="agent-setup",
                          options=dict(install_command=["{installer}", MARKER],
                                       detection=dict(rules=[dict(type="file", path=MARKER)])))
        s.add_all([target, package])
        s.flush()
        d = Deployment(name="host faults", state=DeploymentState.READY)
        d.steps = [
            # Reboots are short and a host that stays away is given up on soon (reboot_timeout);
            # the controller keeps trying to contact a lost host for two minutes.
            Step(position=1, name="agent", action="package", package_id=package.id, target_ids=[target.id],
                 execution_timeout=120, machine_contact_timeout=120,
                 options=dict(reboot_timeout=REBOOT_TIMEOUT, connect_timeout=3)),
            Step(position=2, name="configure", action="script", target_ids=[target.id],
                 script="mkdir -p /opt && hostname > /opt/depot-hf-configured", machine_contact_timeout=8),
        ]
        s.add(d)
        s.flush()
        deployment_id = d.id

    faults = Faults(lab, factory, deployment_id)
    began = time.monotonic()
    try:
        faults.spawn("h1", lambda: faults.reboot_mid_install("h1"))
        faults.spawn("h2", lambda: faults.reboot_mid_install("h2"))
        faults.spawn("h3", lambda: faults.never_back_after_its_reboot("h3", boots["h3"]))
        faults.spawn("h4", lambda: faults.drop_connection("h4"))
        faults.spawn("h5", lambda: faults.drop_connection("h5", until_controller_retries=True))
        start(factory, deployment_id, HOSTS)
        run_until_complete(factory, worker, [deployment_id], limit=240)
        wall = time.monotonic() - began
        for thread in faults.threads:
            thread.join(timeout=120)
        # h3 stayed switched off to the end.
        h3_online = lab.is_online("h3")
    finally:
        lab.heal()

    commands = {host: lab.commands(host) for host in HOSTS}
    calls = {host: (lab.host_path(host, CALLS).read_text().splitlines() if lab.host_path(host, CALLS).exists() else [])
             for host in HOSTS}
    with factory() as s:
        d = s.get(Deployment, deployment_id)
        rows = {(r.host, r.position): r for r in s.scalars(select(HostResult).where(HostResult.deployment_id == deployment_id))}
        transitions = {key: [(t.from_state, t.to_state, t.cause) for t in s.scalars(
            select(Transition).where(Transition.entity == "host_result", Transition.entity_id == row.id)
            .order_by(Transition.id))] for key, row in rows.items()}
        runs = s.scalars(select(Run).where(Run.deployment_id == deployment_id)).all()

        print(f"\nhost faults: {len(HOSTS)} hosts, {len(runs)} runs, wall time {wall:.1f}s")
        for (host, position), row in sorted(rows.items()):
            print(f"  {host} step {position}: {row.status.value:<12} outcome={row.outcome} rc={row.rc} "
                  f"commands={len(commands[host])} installer_runs={len(calls[host])}\n      reason: {row.reason}")
        print(f"  h5 while away: {faults.seen.get('h5', {}).get('while_away')}")
        for host in HOSTS:
            print(f"  {host} remote commands: {[c[:70] for c in commands[host]]}")

        faults.check()
        assert not h3_online
        # The deployment completed, with the truth: some hosts failed.
        assert d.state is DeploymentState.COMPLETED and d.outcome is DeploymentOutcome.FAILED
        assert all(row.status in TERMINAL_HOST_STATUSES for row in rows.values()), \
            {k: r.status for k, r in rows.items()}
        # No installer ran twice on any host.
        assert all(len(calls[host]) == 1 for host in HOSTS), calls

        # h1: rebooted before its installer had installed anything. The session broke; the step
        # waited for the host and asked detection (absent): Failed, saying so. Not run again.
        r1 = rows[("h1", 1)]
        assert faults.seen["h1"]["installed_before_reboot"] is False
        assert (r1.status, r1.outcome) == (H.FAILED, "failure"), (r1.status, r1.outcome, r1.reason)
        assert "connection lost during the attempt" in r1.reason and "says absent" in r1.reason, r1.reason
        assert [a["status"] for a in r1.attempts] == ["connection_lost"], r1.attempts
        assert not lab.host_path("h1", MARKER).exists()
        assert lab.boot_id("h1") != boots["h1"]
        assert ("active", "failed", "step outcome failure") in transitions[("h1", 1)]
        assert rows[("h1", 2)].status is H.CANCELLED and "step 1" in rows[("h1", 2)].reason

        # h2: rebooted while its installer was finishing, after it had installed. Success, but
        # only because detection said so after the host came back; the installer did not run again.
        r2 = rows[("h2", 1)]
        assert faults.seen["h2"]["installed_before_reboot"] is True
        assert (r2.status, r2.outcome) == (H.SUCCESS, "success"), (r2.status, r2.outcome, r2.reason)
        assert "connection lost during the attempt" in r2.reason and "says present" in r2.reason, r2.reason
        assert [a["status"] for a in r2.attempts] == ["connection_lost"], r2.attempts
        assert lab.boot_id("h2") != boots["h2"]

        # h3: its installer succeeded with 3010, the step rebooted it, it never came back:
        # Failed because the reboot timed out, and the reason says so.
        r3 = rows[("h3", 1)]
        assert (r3.status, r3.outcome) == (H.FAILED, "reboot_timeout"), (r3.status, r3.outcome, r3.reason)
        assert f"did not come back within reboot_timeout ({REBOOT_TIMEOUT}s)" in r3.reason, r3.reason
        assert [(a["rc"], a["class"]) for a in r3.attempts] == [(3010, "soft_reboot")], r3.attempts
        assert lab.host_path("h3", MARKER).exists()
        assert lab.boot_id("h3") != boots["h3"]
        assert ("active", "failed", "step outcome reboot_timeout") in transitions[("h3", 1)]
        assert rows[("h3", 2)].status is H.CANCELLED

        # h4: cut off mid-install and back within reboot_timeout: the installer finished while the
        # host was away, detection confirmed it once it was back: Success, with what happened.
        r4 = rows[("h4", 1)]
        assert (r4.status, r4.outcome) == (H.SUCCESS, "success"), (r4.status, r4.outcome, r4.reason)
        assert "connection lost during the attempt" in r4.reason and "says present" in r4.reason, r4.reason
        assert [a["status"] for a in r4.attempts] == ["connection_lost"], r4.attempts
        assert lab.boot_id("h4") == boots["h4"]

        # h5: cut off mid-install and away longer than reboot_timeout: the step's result is
        # unknown, so the host is not Failed (nor Success) but offline, to be contacted again; the
        # next contact found the software installed (detection first: no second installer run).
        r5 = rows[("h5", 1)]
        away = faults.seen["h5"]["while_away"]
        assert "connection lost during the attempt" in away["reason"] and "unknown" in away["reason"], away
        assert (r5.status, r5.outcome, r5.contact_attempts) == (H.SUCCESS, "already", 1), \
            (r5.status, r5.outcome, r5.reason)
        assert [(f, t) for f, t, _ in transitions[("h5", 1)]] == [
            ("ready", "active"), ("active", "ready"), ("ready", "active"), ("active", "success")], transitions[("h5", 1)]
        assert transitions[("h5", 1)][1][2] == "offline; contact timeout not reached"

        # The deployment went on for the others: step 2 ran wherever step 1 succeeded.
        for host in ("h2", "h4", "h5", "h6", "h7"):
            assert rows[(host, 1)].status is H.SUCCESS, (host, rows[(host, 1)].reason)
            assert rows[(host, 2)].status is H.SUCCESS, (host, rows[(host, 2)].reason)
            assert lab.host_path(host, "/opt/depot-hf-configured").read_text().strip() == host
        for host in ("h6", "h7"):
            assert [a["status"] for a in rows[(host, 1)].attempts] == ["executed"]
            assert len(commands[host]) == 2, commands[host]   # one round trip per step, faults elsewhere or not
        for host in ("h1", "h3"):
            assert not lab.host_path(host, "/opt/depot-hf-configured").exists()
        # Every fault left its reason on the row.
        assert all(rows[(host, 1)].reason for host in ("h1", "h2", "h3", "h4"))
        assert all(r.finished_at is not None for r in runs)
