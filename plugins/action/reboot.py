# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of depot.software.reboot: the reboot the package plugin does, on its own, with
the same commands (options, then the depot_* host variables, then the platform's defaults)."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.depot.software.plugins.plugin_utils._loop import RebootFailed
from ansible_collections.depot.software.plugins.plugin_utils._reboot import Rebooter, reboot_commands


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        try:
            args = self.validate_argument_spec(argument_spec=dict(
                reboot_command=dict(type="str"),
                boot_time_command=dict(type="str"),
                test_command=dict(type="str"),
                reboot_timeout=dict(type="int", default=600),
                connect_timeout=dict(type="int", default=5),
            ))[1]
        except AnsibleActionFail as e:
            return dict(result, failed=True, msg=str(e))
        for option in ("reboot_timeout", "connect_timeout"):
            if args[option] <= 0:
                return dict(result, failed=True, msg="%s must be more than 0, got %d" % (option, args[option]))
        if self._task.check_mode:
            return dict(result, changed=True, rebooted=False)
        rebooter = Rebooter(self, reboot_commands(self._connection, args, task_vars),
                            reboot_timeout=args["reboot_timeout"], connect_timeout=args["connect_timeout"])
        try:
            boot_id = rebooter.reboot(None)
        except RebootFailed as e:
            return dict(result, failed=True, rebooted=False, msg=str(e))
        return dict(result, changed=True, rebooted=True, boot_id=boot_id)
