# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The opt-in Windows integration target: depot.software on real Windows hosts.

Runs only when DEPOT_WINDOWS_INVENTORY names an Ansible inventory whose group ``windows`` holds real
Windows hosts (psrp or winrm connection); skipped otherwise. It runs playbooks/windows.yml once
with ansible-playbook and the ansible.posix.json callback and asserts each task's JSON result; with
DEPOT_WINDOWS_ALLOW_REBOOT=1 it also runs playbooks/windows-reboot.yml, which reboots every host.
See README.md in this folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, Results

INVENTORY_VAR = "DEPOT_WINDOWS_INVENTORY"
REBOOT_VAR = "DEPOT_WINDOWS_ALLOW_REBOOT"
HERE = Path(__file__).resolve().parent
PLAYBOOKS = HERE / "playbooks"

pytestmark = pytest.mark.skipif(
    not os.environ.get(INVENTORY_VAR),
    reason=("opt-in Windows target: set %s to an Ansible inventory whose group 'windows' holds real Windows hosts "
            "reachable over psrp or winrm, e.g. "
            "`%s=~/windows.yml .venv/bin/python -m pytest tests/integration/windows` "
            "(add %s=1 to allow the reboot test); see tests/integration/windows/README.md"
            % (INVENTORY_VAR, INVENTORY_VAR, REBOOT_VAR)),
)

FACT_KEYS = {"name", "version", "publisher", "source", "product_code", "uninstall_string", "install_date",
             "architecture", "scope"}


def _ansible(tool):
    path = ROOT / ".venv" / "bin" / tool
    return str(path) if path.exists() else tool


def _env():
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")


@pytest.fixture(scope="module")
def inventory():
    path = Path(os.path.expanduser(os.environ[INVENTORY_VAR])).resolve()
    if not path.exists():
        pytest.fail("%s=%s does not exist" % (INVENTORY_VAR, path))
    return path


@pytest.fixture(scope="module")
def hosts(inventory):
    """The hosts of the group ``windows``; the target fails (not skips) when there are none."""
    done = subprocess.run([_ansible("ansible-inventory"), "-i", str(inventory), "--list"], cwd=str(ROOT), env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    names = set(data.get("windows", {}).get("hosts", []))
    for child in data.get("windows", {}).get("children", []):
        names.update(data.get(child, {}).get("hosts", []))
    if not names:
        pytest.fail("the inventory %s has no hosts in the group 'windows'" % inventory)
    return sorted(names)


class Run(object):
    """One ansible-playbook run: its Results, its raw output and its secret canary."""

    def __init__(self, inventory, playbook, workdir, extra_vars):
        vars_file = workdir / ("%s.vars.json" % playbook.stem)
        vars_file.write_text(json.dumps(extra_vars))
        argv = [_ansible("ansible-playbook"), "-i", str(inventory), str(playbook), "-e", "@%s" % vars_file]
        self.process = subprocess.run(argv, cwd=str(ROOT), env=_env(), capture_output=True, text=True, timeout=3600)
        vars_file.unlink()
        try:
            data = json.loads(self.process.stdout[self.process.stdout.index("{"):])
        except ValueError:
            raise AssertionError("ansible-playbook printed no JSON (rc %d):\n%s\n%s" % (
                self.process.returncode, self.process.stdout[-3000:], self.process.stderr[-3000:]))
        self.results = Results(data, self.process)
        self.output = self.process.stdout + self.process.stderr

    def task(self, host, name):
        found = [r for r in self.results[host] if r["_task"] == name]
        assert found, "no result of task %r for %s (tasks: %s)" % (name, host, [r["_task"] for r in self.results[host]])
        return found[-1]


@pytest.fixture(scope="module")
def canary():
    return "depot-canary-%s" % uuid.uuid4().hex


@pytest.fixture(scope="module")
def run(inventory, hosts, canary, tmp_path_factory):
    return Run(inventory, PLAYBOOKS / "windows.yml", tmp_path_factory.mktemp("windows"),
               dict(depot_test_id=uuid.uuid4().hex[:12], depot_test_canary=canary))


def test_every_host_ran_the_whole_play(run, hosts):
    for host in hosts:
        stats = run.results.stats(host)
        unreachable = [(r["_task"], r.get("msg")) for r in run.results[host] if r.get("unreachable")]
        assert stats.get("unreachable", 0) == 0 and not unreachable, unreachable or stats
        assert run.task(host, "cleanup").get("failed") is not True


def test_software_facts_reads_the_uninstall_registry(run, hosts):
    for host in hosts:
        r = run.task(host, "software_facts")
        assert not r.get("failed"), r.get("msg")
        assert "registry" in r["sources"]
        software = r["ansible_facts"]["depot_software"]
        assert isinstance(software, list)
        for entry in software:
            assert set(entry) >= FACT_KEYS, entry
            assert entry["source"] in ("registry", "msix"), entry


def test_preflight_reports_every_check(run, hosts):
    for host in hosts:
        r = run.task(host, "preflight")
        assert not r.get("failed"), r.get("msg")
        checks = r["preflight"]
        assert set(checks) == {"pending_reboot", "installer_busy", "free_disk", "logged_on_users", "network", "power"}
        assert isinstance(checks["pending_reboot"]["value"], bool)
        assert checks["free_disk"]["free_mb"] >= 1 and checks["free_disk"]["passed"] is True
        assert isinstance(r["passed"], bool) and isinstance(r["failed_checks"], list)
        assert r["boot_id"].isdigit()  # LastBootUpTime as FILETIME


def test_script_masks_its_secrets_and_reports_3010_as_soft_reboot(run, hosts, canary):
    for host in hosts:
        r = run.task(host, "script with a secret exits 3010")
        assert (r["outcome"], r.get("failed"), r["rc"]) == ("soft_reboot", False, 3010), r.get("msg")
        assert (r["reboot_required"], r["rebooted"]) == (True, False)
        assert "token=********" in r["stdout_tail"]
    assert canary not in run.output


def test_package_installs_is_idempotent_and_uninstalls(run, hosts):
    for host in hosts:
        first = run.task(host, "package install")
        assert (first["outcome"], first["changed"], first.get("failed"), first["rc"]) == ("success", True, False, 0), \
            first.get("msg")
        assert (first["detected_before"], first["detected_after"]) == (False, True)
        assert first["run_as"]["context"] == "system"

        again = run.task(host, "package install again")
        assert (again["outcome"], again["changed"], again["status"]) == ("already", False, "satisfied")
        assert len(again["attempts"]) == 1

        remove = run.task(host, "package uninstall")
        assert (remove["outcome"], remove["changed"], remove.get("failed")) == ("success", True, False), \
            remove.get("msg")
        assert (remove["detected_before"], remove["detected_after"]) == (True, False)

        gone = run.task(host, "package uninstall again")
        assert (gone["outcome"], gone["changed"], gone["status"]) == ("already", False, "satisfied")


def test_logged_in_user_without_a_session_is_skipped(run, hosts):
    """Depends on the host: with nobody logged on (the usual state of a server reached over WinRM)
    the step is skipped with no_user_session; with an interactive session it runs there."""
    for host in hosts:
        r = run.task(host, "script as the logged-in user")
        sessions = run.task(host, "preflight")["preflight"]["logged_on_users"] or []
        if r["outcome"] == "no_user_session":
            assert (r.get("skipped"), r.get("failed")) == (True, False)
            assert r["run_as"] == dict(context="logged_in_user", user=None)
            # Active and disconnected sessions both count as logged on (Get-DepotInteractiveUser).
            assert not [s for s in sessions if s.get("state") in ("active", "disconnected")], sessions
        else:
            assert (r["outcome"], r.get("failed")) == ("success", False), r.get("msg")
            assert r["run_as"]["user"] and r["stdout_tail"], r
            assert sessions, "the step ran in a session that preflight did not see"


@pytest.mark.parametrize("task, message", [
    ("bad input POSIX installer type", "installer_type deb is for POSIX hosts; this host is Windows"),
    ("bad input run_as user without password", "run_as_password is required when run_as is user on a Windows host"),
])
def test_bad_input_fails_before_the_host_is_touched(run, hosts, task, message):
    for host in hosts:
        r = run.task(host, task)
        assert (r["outcome"], r["failed"], r["changed"]) == ("invalid", True, False)
        assert message in r["msg"]
        assert "attempts" not in r


@pytest.mark.skipif(os.environ.get(REBOOT_VAR) != "1",
                    reason="reboots every Windows host: set %s=1 to allow it" % REBOOT_VAR)
def test_3010_immediate_reboots_and_resumes(inventory, hosts, tmp_path_factory):
    reboot = Run(inventory, PLAYBOOKS / "windows-reboot.yml", tmp_path_factory.mktemp("windows-reboot"), {})
    for host in hosts:
        before = reboot.task(host, "boot before")["boot_id"]
        r = reboot.task(host, "script 3010 reboot immediate")
        assert (r["outcome"], r.get("failed")) == ("soft_reboot", False), r.get("msg")
        assert (r["rebooted"], r["reboot_required"]) == (True, False)
        after = reboot.task(host, "boot after")["boot_id"]
        assert int(after) > int(before)
        assert r["boot_id"] == after
