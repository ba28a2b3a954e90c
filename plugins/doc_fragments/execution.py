# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Options every executor shares: run-as, time limit, detection, output.
    DOCUMENTATION = r"""
options:
  run_as:
    description:
      - The context the installer or script runs in.
      - C(system) is the module's own identity (LocalSystem with C(become_method=runas) and
        C(become_user=SYSTEM) on Windows; root on POSIX).
      - C(logged_in_user) is the interactive user's session. On Windows a one-off scheduled task
        with an interactive principal runs the command and its exit code is read back; on POSIX
        the active session's user is taken from C(loginctl), falling back to utmp. With nobody
        logged in the task is skipped with RV(outcome=no_user_session); it is not a failure.
      - C(user) is the named account O(run_as_user).
    type: str
    choices: [system, logged_in_user, user]
    default: system
  run_as_user:
    description: Account for O(run_as=user).
    type: str
  run_as_password:
    description:
      - Password of O(run_as_user). Required on Windows; on POSIX root switches to the account
        without it and it is ignored.
    type: str
  run_as_logon_type:
    description:
      - Windows only, with O(run_as=user); how the account logs on. V(new_credentials) is
        C(runas /netonly) (C(LOGON_NETCREDENTIALS_ONLY)) - the command keeps the module's local
        identity and uses O(run_as_user)'s credentials for network shares. Ignored on POSIX.
    type: str
    choices: [interactive, batch, network_cleartext, new_credentials]
    default: interactive
  timeout:
    description:
      - Seconds one attempt may run before its whole process tree is ended; the attempt's
        outcome is then C(timeout). V(0) means no limit.
    type: int
    default: 3600
  tail_lines:
    description: Lines of stdout, stderr and installer log returned.
    type: int
    default: 40
  environment:
    description: Extra environment variables for the installer or script. Values are never logged.
    type: dict
    default: {}
  detection:
    description:
      - Rules that say whether the software is present, evaluated before and after each attempt
        in the same remote execution. See the module contract for rule types.
      - Rule types C(file) (C(path), optional version), C(dpkg) and C(rpm)
        (name, optional version), C(msi) (product_code), C(msix) (name), C(registry) (key, value,
        data or version) and C(script) (script text; exit 0 with output = installed, exit 0
        without output = not installed, any other exit = cannot be evaluated, which fails the task).
    type: dict
    suboptions:
      match:
        description: Whether every rule (V(all)) or one rule (V(any)) must say installed.
        type: str
        choices: [all, any]
        default: all
      rules:
        description: The rules, each a dict with a C(type) key.
        type: list
        elements: dict
        required: true
  detect_only:
    description:
      - Only evaluate detection and report; nothing runs. The action plugin uses this to verify
        a host after a reboot.
    type: bool
    default: false
  retries:
    description: Attempts repeated after one classed C(retry) (for example 1618, installer busy).
    type: int
    default: 0
  retry_interval:
    description: Seconds between retries.
    type: int
    default: 30
  retry_after_reboot:
    description: When an attempt fails, reboot the host once and try again.
    type: bool
    default: false
  exit_codes:
    description:
      - Exit-code classes, each a list of signed 32-bit codes replacing that class's defaults.
        Any code in no class is a failure. A code may be in one class only.
      - Defaults (MECM/Intune) are success 0, 1707; soft_reboot 3010; hard_reboot 1641; retry 1618
        (and 15605, 15618 for msix); already 1605, 1614 on uninstall.
    type: dict
    suboptions:
      success:
        description: Done.
        type: list
        elements: int
      soft_reboot:
        description: Done; a reboot is needed to finish.
        type: list
        elements: int
      hard_reboot:
        description: The installer has started a reboot; wait for the host, then verify.
        type: list
        elements: int
      retry:
        description: Transient; try again after O(retry_interval).
        type: list
        elements: int
      already:
        description: Already in the desired state; success, not changed.
        type: list
        elements: int
  reboot:
    description:
      - What to do when an attempt ends C(soft_reboot). V(never) only reports
        RV(reboot_required); V(if_required) reboots when one is required; V(force) reboots after
        a successful change even if none was required.
    type: str
    choices: [never, if_required, force]
    default: if_required
  reboot_timing:
    description:
      - V(immediate) reboots within this task, then verifies with detection; V(deferred) only
        reports RV(reboot_required) so that a play (the C(depot.software.deploy) role) reboots
        once at the end of its steps.
    type: str
    choices: [immediate, deferred]
    default: deferred
  reboot_timeout:
    description:
      - Seconds to wait for a rebooting host to come back and pass its readiness check. A host that
        does not ends the task with C(outcome=reboot_timeout) (failed).
      - Also how long to wait for a host whose connection was lost in the middle of an attempt; one
        that does not answer again within it is C(unreachable) (the attempt's result is unknown).
    type: int
    default: 600
  reboot_not_after:
    description:
      - End of the maintenance window, an ISO 8601 date and time with a UTC offset
        (V(2026-05-01T06:00:00Z), V(2026-05-01T08:00:00+02:00)). A reboot this task would start
        itself (O(reboot_timing=immediate), or the one of O(retry_after_reboot)) is held back when,
        by the controller's clock, now is at or after O(reboot_not_after) minus O(reboot_timeout).
      - Held back, a soft reboot ends as with O(reboot_timing=deferred) - RV(outcome) of the
        attempt (C(soft_reboot)) with RV(reboot_required=true) and C(msg) saying when the window
        closes - and a failed attempt is not retried after a reboot.
      - A reboot the installer starts itself (C(hard_reboot), 1641) is waited for all the same.
      - Not set, reboots are never held back. A value that is not such a date and time fails the
        task before the host is touched (RV(outcome=invalid)).
    type: str
  reboot_command:
    description:
      - Command that reboots the host. Defaults to the host variable C(depot_reboot_command),
        else C(shutdown -r now) on POSIX or C(shutdown.exe /r /t 2) on Windows.
    type: str
  boot_time_command:
    description:
      - Command whose output changes with every boot. Defaults to the host variable
        C(depot_boot_time_command), else C(cat /proc/sys/kernel/random/boot_id) on POSIX or the
        last boot time on Windows.
    type: str
  test_command:
    description:
      - Readiness check run after a reboot until it succeeds. Defaults to C(whoami) on POSIX; on
        Windows it waits for LogonUI and servicing (TrustedInstaller) to settle.
    type: str
  connect_timeout:
    description: Connection timeout in seconds while polling a rebooting host.
    type: int
    default: 5
"""
