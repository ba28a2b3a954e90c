# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Windows target's playbooks stay valid without a Windows host: ansible-playbook
--syntax-check parses them and resolves every module name against this checkout's collection."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOKS = sorted((Path(__file__).resolve().parent / "playbooks").glob("*.yml"))


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.name)
def test_playbook_parses(playbook, tmp_path):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("windows:\n  hosts:\n    win1.depot.test:\n      ansible_connection: psrp\n")
    tool = ROOT / ".venv" / "bin" / "ansible-playbook"
    argv = [str(tool) if tool.exists() else "ansible-playbook", "--syntax-check", "-i", str(inventory), str(playbook)]
    done = subprocess.run(argv, cwd=str(ROOT), env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr


def _depot_tasks(playbook):
    """(name, action, args) of every depot.software package/script task, templated with the play's
    vars and the extra vars test_windows.py passes."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    loader = DataLoader()
    found = []
    for play in loader.load_from_file(str(playbook), trusted_as_template=True):
        variables = dict(play.get("vars") or {}, depot_test_id="0123456789ab", depot_test_canary="canary",
                         ansible_user="Administrator")
        templar = Templar(loader=loader, variables=variables)
        pending = list(play.get("tasks") or [])
        while pending:
            task = pending.pop(0)
            for section in ("block", "rescue", "always"):
                pending.extend(task.get(section) or [])
            for action in ("depot.software.package", "depot.software.script"):
                if action in task:
                    found.append((task["name"], action.rsplit(".", 1)[1], templar.template(task[action])))
    return found


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.name)
def test_playbook_task_args_pass_the_windows_action_plugins(playbook, monkeypatch):
    """Each package/script task of the target goes through the real action plugin over a psrp
    connection (the contract-test harness of tests/unit/plugins/action): the ones named "bad
    input" must be rejected before the host is touched, every other one must be accepted."""
    from tests.unit.plugins.action.conftest import WindowsHarness, satisfied

    tasks = _depot_tasks(playbook)
    assert tasks
    for name, plugin, args in tasks:
        harness = WindowsHarness(monkeypatch, plugin, "psrp")
        harness.module.add(satisfied(args.get("state", "present") == "present"))
        result = harness.run(args)
        if name.startswith("bad input"):
            assert (result["outcome"], harness.untouched()) == ("invalid", True), (name, result)
        else:
            assert result["outcome"] != "invalid", (name, result.get("msg"))
            sent = harness.module.calls[0]["module_args"]
            assert "{{" not in repr(sent), (name, sent)
            for key, value in args.items():
                if key == "detection":
                    assert sent[key]["rules"] == value["rules"], name
                elif key in sent:
                    assert sent[key] == value, (name, key)
