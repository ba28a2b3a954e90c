# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run-as contexts on POSIX hosts (DESIGN §2.4).

- ``system``: the module's own identity (root, through the connection or become).
- ``logged_in_user``: the user of the active session (systemd-logind, else utmp).
- ``user``: a named account. Root needs no password to switch to it; the password the
  Windows twin needs is accepted and not used here.
"""

from __future__ import annotations

import os
import pwd

from ansible_collections.depot.software.plugins.module_utils import _utmp


class NoUserSession(Exception):
    """Nobody is logged in: not a failure of the package; the caller may wait or retry."""


class RunAsError(Exception):
    pass


def _logind_user(module):
    """The user of the active graphical/tty session according to loginctl, or None."""
    loginctl = module.get_bin_path("loginctl")
    if not loginctl:
        return None
    rc, out = module.run_command([loginctl, "list-sessions", "--no-legend"])[:2]
    if rc != 0:
        return None  # logind not running: fall back to utmp
    for line in out.splitlines():
        fields = line.split()
        if not fields:
            continue
        props = module.run_command([loginctl, "show-session", fields[0], "-p", "Name", "-p", "Active", "-p", "Class"])[1]
        values = dict(p.split("=", 1) for p in props.splitlines() if "=" in p)
        if values.get("Active") == "yes" and values.get("Class") == "user":
            return values.get("Name")
    return None


def resolve(module, context, user=None):
    """Return ``(passwd entry or None for system, description dict)``."""
    if context == "system":
        return None, dict(context="system", user=pwd.getpwuid(os.geteuid()).pw_name)
    if context == "user":
        if not user:
            raise RunAsError("run_as_user is required when run_as is user")
        name = user
    else:
        name = _logind_user(module)
        if name is None:
            users = _utmp.logged_in_users()
            name = users[0] if users else None
        if name is None:
            raise NoUserSession("no user is logged in")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise RunAsError("run_as user %r does not exist on this host" % name)
    return entry, dict(context=context, user=entry.pw_name)
