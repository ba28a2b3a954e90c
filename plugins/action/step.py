# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of depot.software.step: one deployment step (a package or script action) with
its identity, so a role can run steps from data without templating task arguments, and every
result says which step it belongs to."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.depot.software.plugins.plugin_utils._action import CONNECTION_ERRORS
from ansible_collections.depot.software.plugins.plugin_utils._reboot import reboot_commands

ACTIONS = {"package": "depot.software.package", "script": "depot.software.script"}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        try:
            args = self.validate_argument_spec(argument_spec=dict(
                id=dict(type="raw", required=True),
                name=dict(type="str"),
                action=dict(type="str", required=True, choices=sorted(ACTIONS)),
                args=dict(type="dict", required=True),
                unless_boot_id=dict(type="str"),
            ))[1]
        except AnsibleActionFail as e:
            return dict(result, failed=True, msg=str(e), outcome="invalid", changed=False)
        result["step"] = dict(id=args["id"], name=args["name"], action=args["action"])

        boot_id = None
        if args["unless_boot_id"] is not None:
            # One raw command, the boot time command the reboot machinery uses (option, host var, default).
            command = reboot_commands(self._connection, args["args"], task_vars)["boot_time_command"]
            try:
                answer = self._low_level_execute_command(command)
            except CONNECTION_ERRORS as e:
                return _not_run(result, "unreachable", str(e), unreachable=True)
            boot_id = (answer.get("stdout") or "").strip()
            if answer.get("rc") != 0 or not boot_id:
                return _not_run(result, "failure", "the boot time command failed (rc %s): %s"
                                % (answer.get("rc"), (answer.get("stderr") or "").strip()), failed=True)
            if boot_id == args["unless_boot_id"]:
                return _not_run(result, "awaiting_reboot", "the host has not rebooted since boot id %s; not run"
                                % boot_id, boot_id=boot_id)

        task = self._task.copy()
        task.args = dict(args["args"])
        action = self._shared_loader_obj.action_loader.get(
            ACTIONS[args["action"]], task=task, connection=self._connection, play_context=self._play_context,
            loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)
        step_result = action.run(task_vars=task_vars)
        if boot_id:
            step_result.setdefault("boot_id", boot_id)
        return dict(result, **step_result)


def _not_run(result, outcome, msg, failed=False, **extra):
    """A step result for a step whose action did not run."""
    return dict(result, outcome=outcome, msg=msg, failed=failed, changed=False, rc=None, attempts=[],
                rebooted=False, reboot_required=False, **extra)
