# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""depot.software.step's own logic (unless_boot_id, pass-through of the action's options) over the
Windows harness of conftest.py: the step plugin and the action it delegates to share the replays."""

from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleConnectionFailure
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.parsing.dataloader import DataLoader
from ansible.plugins import loader as plugin_loader
from ansible.plugins.action import ActionBase
from ansible.template import Templar

from ansible_collections.depot.software.plugins.action import step as step_action
from ansible_collections.depot.software.plugins.plugin_utils._reboot import WINDOWS_DEFAULTS
from tests.unit.plugins.action.conftest import PLUGINS, BOOT_1, BOOT_2, HOST, PRODUCT_CODE, REFUSED, SHA, boot_time, msi_executed, raw

ARGS = dict(name="acme-agent", installer_type="msi", product_id=PRODUCT_CODE,
            src="https://repo.depot.test/pkgs/acme-agent-2.1.0.msi", checksum=SHA)


class SharedLoader(object):
    """ansible.plugins.loader, but its action_loader builds the collection's plugins from the
    imported classes (no collection finder is configured in the unit tests)."""

    def __init__(self):
        self.action_loader = self
        self.loaded = []

    def get(self, name, task, connection, play_context, loader, templar, shared_loader_obj):
        self.loaded.append(name)
        action = PLUGINS[name.rsplit(".", 1)[-1]](task, connection, play_context, loader, templar, shared_loader_obj)
        action._load_name = name
        return action

    def __getattr__(self, name):
        return getattr(plugin_loader, name)


class StepHarness(object):
    """The Windows harness, with the step plugin built over it."""

    def __init__(self, harness):
        self.h = harness
        self.raw = harness.raw
        self.module = harness.module
        self.shared = SharedLoader()

    def run(self, **step_args):
        task = Task()
        task.action = "depot.software.step"
        task.args = copy.deepcopy(dict(dict(id=1, name="agent", action="package", args=ARGS), **step_args))
        loader = DataLoader()
        play_context = PlayContext()
        play_context.remote_addr = HOST
        action = step_action.ActionModule(task, self.h.connection, play_context, loader, Templar(loader=loader),
                                          plugin_loader)
        action._load_name = task.action
        action._shared_loader_obj = self.shared  # ActionBase ignores the argument and takes plugin_loader
        return action.run(task_vars=dict(ansible_host=HOST, ansible_connection="psrp", inventory_hostname="win1"))


@pytest.fixture
def step(windows, monkeypatch):
    """A StepHarness; the package action the step delegates to answers from the same replays."""
    h = windows()
    monkeypatch.setattr(ActionBase, "_execute_module", h.module)
    monkeypatch.setattr(ActionBase, "_low_level_execute_command", h.raw)
    return StepHarness(h)


def test_same_boot_id_is_awaiting_reboot_after_one_raw_command(step):
    step.raw.on("boot_time", boot_time(BOOT_1))
    r = step.run(unless_boot_id=BOOT_1)
    assert (r["outcome"], r["failed"], r["changed"], r["boot_id"]) == ("awaiting_reboot", False, False, BOOT_1)
    assert r["msg"] == "the host has not rebooted since boot id %s; not run" % BOOT_1
    assert r["step"] == dict(id=1, name="agent", action="package")
    assert step.raw.commands == [("boot_time", WINDOWS_DEFAULTS["boot_time_command"])]
    assert step.module.calls == []


def test_other_boot_id_runs_the_action(step):
    step.raw.on("boot_time", boot_time(BOOT_2))
    step.module.add(msi_executed(0, boot_id=BOOT_2))
    r = step.run(unless_boot_id=BOOT_1)
    assert (r["outcome"], r["changed"], r["boot_id"], r["step"]["id"]) == ("success", True, BOOT_2, 1)
    assert [kind for kind, _ in step.raw.commands] == ["boot_time"] and len(step.module.calls) == 1
    assert step.shared.loaded == ["depot.software.package"]


def test_the_boot_time_command_of_the_args_is_used(step):
    step.raw.kinds["Get-Boot"] = "boot_time"
    step.raw.on("boot_time", boot_time(BOOT_1))
    r = step.run(args=dict(ARGS, boot_time_command="Get-Boot"), unless_boot_id=BOOT_1)
    assert r["outcome"] == "awaiting_reboot"
    assert step.raw.commands == [("boot_time", "Get-Boot")]


def test_unreachable_host_is_reported_as_unreachable(step):
    step.raw.on("boot_time", AnsibleConnectionFailure(REFUSED["psrp"]))
    r = step.run(unless_boot_id=BOOT_1)
    assert (r["outcome"], r["unreachable"], r["failed"], r["changed"]) == ("unreachable", True, False, False)
    assert step.module.calls == []


def test_a_failing_boot_time_command_fails_the_step(step):
    step.raw.on("boot_time", raw(1, stderr="Get-CimInstance : Access denied"))
    r = step.run(unless_boot_id=BOOT_1)
    assert (r["outcome"], r["failed"]) == ("failure", True)
    assert "Access denied" in r["msg"] and step.module.calls == []


def test_without_unless_boot_id_nothing_extra_reaches_the_host(step):
    step.module.add(msi_executed(0))
    r = step.run()
    assert r["outcome"] == "success" and step.raw.commands == []


def test_reboot_not_after_is_passed_through_to_the_action(step):
    step.module.add(msi_executed(3010))
    r = step.run(args=dict(ARGS, reboot_timing="immediate", reboot_not_after="2001-01-01T00:00:00Z"))
    assert (r["outcome"], r["reboot_required"], r["rebooted"]) == ("soft_reboot", True, False)
    assert "maintenance window" in r["msg"] and step.raw.commands == []
    bad = step.run(args=dict(ARGS, reboot_not_after="soon"))
    assert (bad["outcome"], bad["failed"]) == ("invalid", True) and "reboot_not_after" in bad["msg"]
