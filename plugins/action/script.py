# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of depot.software.script: the same loop as package, over the script module."""

from __future__ import annotations

from ansible_collections.depot.software.plugins.module_utils._spec import (
    SCRIPT_MODULE_SPEC, SCRIPT_MUTUALLY_EXCLUSIVE, SCRIPT_REQUIRED_ONE_OF,
)
from ansible_collections.depot.software.plugins.plugin_utils._action import DepotAction, env_name_errors


class ActionModule(DepotAction):
    MODULE = "depot.software.script"
    MODULE_SPEC = SCRIPT_MODULE_SPEC
    MUTUALLY_EXCLUSIVE = SCRIPT_MUTUALLY_EXCLUSIVE
    REQUIRED_ONE_OF = SCRIPT_REQUIRED_ONE_OF

    def extra_errors(self, args, windows):
        errors = env_name_errors("secrets", args["secrets"])
        if args["interpreter"] is not None and not args["interpreter"]:
            errors.append("interpreter must not be empty")
        return errors
