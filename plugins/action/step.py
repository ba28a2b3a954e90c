# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of depot.software.step: one deployment step (a package or script action) with
its identity, so a role can run steps from data without templating task arguments, and every
result says which step it belongs to."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

ACTIONS = {"package": "depot.software.package", "script": "depot.software.script"}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        try:
            args = self.validate_argument_spec(argument_spec=dict(
                id=dict(type="raw", required=True),
                name=dict(type="str"),
                action=dict(type="str", required=True, choices=sorted(ACTIONS)),
                args=dict(type="dict", required=True),
            ))[1]
        except AnsibleActionFail as e:
            return dict(result, failed=True, msg=str(e), outcome="invalid", changed=False)
        task = self._task.copy()
        task.args = dict(args["args"])
        action = self._shared_loader_obj.action_loader.get(
            ACTIONS[args["action"]], task=task, connection=self._connection, play_context=self._play_context,
            loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)
        step_result = action.run(task_vars=task_vars)
        step_result.update(step=dict(id=args["id"], name=args["name"], action=args["action"]))
        return dict(result, **step_result)
