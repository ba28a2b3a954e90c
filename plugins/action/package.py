# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of depot.software.package: validation and the attempt loop run here, on the
controller; the module does one attempt per call on the host."""

from __future__ import annotations

from ansible_collections.depot.software.plugins.module_utils._content import SHA256_RE, is_url
from ansible_collections.depot.software.plugins.module_utils._spec import (
    PACKAGE_MODULE_SPEC, POSIX_INSTALLER_TYPES, WINDOWS_INSTALLER_TYPES,
)
from ansible_collections.depot.software.plugins.plugin_utils._action import DepotAction

# Types whose installer must be supplied as content when installing.
NEEDS_SRC = ("msi", "msix", "msp", "deb", "rpm", "script", "archive")
# Types with no default detection rule.
NEEDS_DETECTION = ("exe", "msp", "script", "archive")
NEEDS_COMMAND = {"exe": ("install_command", "uninstall_command"), "archive": ("install_command", "uninstall_command"),
                 "script": ("uninstall_command",)}


class ActionModule(DepotAction):
    MODULE = "depot.software.package"
    MODULE_SPEC = PACKAGE_MODULE_SPEC

    def want_present(self, args):
        return args["state"] == "present"

    def installer_type(self, args):
        return args["installer_type"]

    def extra_errors(self, args, windows):
        errors = []
        kind, state = args["installer_type"], args["state"]
        if windows and kind in POSIX_INSTALLER_TYPES:
            errors.append("installer_type %s is for POSIX hosts; this host is Windows" % kind)
        if not windows and kind in WINDOWS_INSTALLER_TYPES:
            errors.append("installer_type %s is for Windows hosts; this host is POSIX" % kind)
        if args["src"] and is_url(args["src"]) and not args["checksum"]:
            errors.append("checksum (sha256) is required when src is a URL")
        # Installing needs content unless a custom command line makes no use of it.
        uses_installer = args["install_command"] is None or "{installer}" in str(args["install_command"])
        if state == "present" and kind in NEEDS_SRC and uses_installer and not args["src"]:
            errors.append("src is required to install a package of installer_type %s" % kind)
        if args["checksum"] and not SHA256_RE.match(args["checksum"]):
            errors.append("checksum must be a sha256 hex digest (64 hex characters)")
        if kind in NEEDS_DETECTION and not args["detection"]:
            errors.append("detection is required for installer_type %s (it has no default detection rule)" % kind)
        option = "install_command" if state == "present" else "uninstall_command"
        if option in NEEDS_COMMAND.get(kind, ()) and not args[option]:
            errors.append("%s is required for installer_type %s with state %s" % (option, kind, state))
        for option in ("install_command", "uninstall_command"):
            value = args[option]
            if value is not None and not _is_command(value):
                errors.append("%s must be a non-empty list of strings or a command-line string" % option)
        if state == "absent" and args["install_command"] and not args["uninstall_command"] and kind in ("exe", "script", "archive"):
            errors.append("uninstall_command is required for state absent; install_command is for state present")
        return errors


def _is_command(value):
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
