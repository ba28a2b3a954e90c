# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of depot.software.preflight: runs the module once, choosing preflight.py on POSIX
hosts and preflight.ps1 on Windows (the module has both under one name)."""

from __future__ import annotations

from ansible_collections.depot.software.plugins.plugin_utils._action import ExecutorAction


class ActionModule(ExecutorAction):
    MODULE = "depot.software.preflight"
