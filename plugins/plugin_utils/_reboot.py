# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rebooting a host and waiting for it over the task's own connection, on POSIX and Windows.

This follows ansible.builtin.reboot and ansible.windows' win_reboot: read a boot id, send the
reboot command, reset the connection and poll (with a short connection timeout) until the boot
id changes, then run a readiness check. Unlike them it can also *only wait*, for the case where
the installer has already started the reboot (exit code 1641), and it takes the boot id from
the module's last result instead of asking for it again.
"""

from __future__ import annotations

import time

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.utils.display import Display

from ansible_collections.depot.software.plugins.plugin_utils._loop import RebootFailed

display = Display()

ALREADY_SCHEDULED = 1190  # ERROR_SHUTDOWN_IS_SCHEDULED

POSIX_DEFAULTS = dict(
    reboot_command="shutdown -r now",
    boot_time_command="cat /proc/sys/kernel/random/boot_id",
    test_command="whoami",
)
WINDOWS_DEFAULTS = dict(
    reboot_command='shutdown.exe /r /t 2 /c "Depot: restart to finish a software installation"',
    boot_time_command="(Get-CimInstance -ClassName Win32_OperatingSystem -Property LastBootUpTime).LastBootUpTime.ToFileTime()",
    # Ready when nobody is still at the boot-time logon screen and servicing has settled.
    test_command=(
        "$ErrorActionPreference = 'Stop'; "
        "if (Get-Process -Name LogonUI -ErrorAction SilentlyContinue) { if ((Get-Date) - (Get-Process -Name LogonUI).StartTime "
        "-lt [TimeSpan]::FromSeconds(30)) { throw 'LogonUI still starting' } }; "
        "if ((Get-Service -Name TrustedInstaller).Status -eq 'StartPending') { throw 'servicing in progress' }; 'ready'"
    ),
)


def is_windows(connection):
    """The host speaks PowerShell (winrm, psrp, or ssh with a PowerShell shell)."""
    return getattr(connection._shell, "SHELL_FAMILY", "") == "powershell"


def reboot_commands(connection, args, task_vars):
    """The reboot, boot time and readiness commands: the task's options, then the host's
    depot_* variables, then the platform's defaults."""
    defaults = WINDOWS_DEFAULTS if is_windows(connection) else POSIX_DEFAULTS
    return {key: args.get(key) or task_vars.get("depot_%s" % key) or default for key, default in defaults.items()}


class Rebooter(object):
    """Reboot helpers bound to an action plugin's connection."""

    def __init__(self, action, commands, reboot_timeout=600, connect_timeout=5, poll_interval=2.0,
                 clock=time.monotonic, sleep=time.sleep):
        self.action = action
        self.connection = action._connection
        self.commands = commands
        self.reboot_timeout = reboot_timeout
        self.connect_timeout = connect_timeout
        self.poll_interval = poll_interval
        self.clock = clock
        self.sleep = sleep
        self.name = action._task.action

    def run(self, command):
        """(rc, stdout, stderr) of a raw command; connection errors propagate."""
        result = self.action._low_level_execute_command(command)
        return result.get("rc"), (result.get("stdout") or "").strip(), (result.get("stderr") or "").strip()

    def reset(self):
        for step in (self.connection.close, self.connection.reset):
            try:
                step()
            except (AnsibleError, AttributeError, OSError) as e:
                display.vvvv("%s: connection %s failed: %s" % (self.name, step.__name__, e))

    def _set_connect_timeout(self, value):
        for option in ("connection_timeout", "timeout"):
            try:
                original = self.connection.get_option(option)
            except KeyError:
                continue
            self.connection.set_option(option, value)
            return option, original
        return None, None

    def boot_id(self):
        rc, out, err = self.run(self.commands["boot_time_command"])
        if rc != 0 or not out:
            raise AnsibleConnectionFailure("boot time command failed (rc %s): %s" % (rc, err))
        return out

    def reboot(self, previous_boot_id):
        """Send the reboot command and wait for a new boot; returns the new boot id."""
        if previous_boot_id is None:
            previous_boot_id = self.boot_id()
        display.vv("%s: rebooting with %r" % (self.name, self.commands["reboot_command"]))
        try:
            rc, out, err = self.run(self.commands["reboot_command"])
        except (AnsibleConnectionFailure, OSError) as e:
            rc, out, err = 0, "", str(e)  # the host may drop the session while going down
        # shutdown.exe 1190: a shutdown is already scheduled - the host is going down anyway.
        if rc not in (0, None, ALREADY_SCHEDULED):
            raise RebootFailed("the reboot command failed (rc %s): %s %s" % (rc, out, err))
        return self.wait_for_boot(previous_boot_id)

    def wait_for_boot(self, previous_boot_id):
        """Poll until the host answers with a boot id that is not ``previous_boot_id`` and passes
        the readiness check. With ``previous_boot_id`` None any answer will do."""
        deadline = self.clock() + self.reboot_timeout
        option, original = self._set_connect_timeout(self.connect_timeout)
        last_error = "no answer"
        try:
            while True:
                self.reset()
                try:
                    current = self.boot_id()
                    if previous_boot_id is None or current != previous_boot_id:
                        rc, out, err = self.run(self.commands["test_command"])
                        if rc == 0:
                            display.vv("%s: host is back with boot id %s" % (self.name, current))
                            return current
                        last_error = "readiness check failed (rc %s): %s" % (rc, err or out)
                    else:
                        last_error = "boot id unchanged (%s): the host has not rebooted yet" % current
                except (AnsibleError, OSError) as e:  # OSError: requests' errors from psrp/winrm
                    last_error = str(e)
                if self.clock() >= deadline:
                    raise RebootFailed("the host did not come back within reboot_timeout (%ss): %s"
                                       % (self.reboot_timeout, last_error))
                self.sleep(self.poll_interval)
        finally:
            if option is not None:
                self.connection.set_option(option, original)
                self.reset()
