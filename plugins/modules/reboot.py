#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: reboot
short_description: Reboot a host and wait until it is back and ready
version_added: 0.1.0
description:
  - Sends the reboot command, waits until the boot id changes and the readiness check passes.
    The same machinery M(depot.software.package) uses for soft and hard reboots, with the same
    host variables (C(depot_reboot_command), C(depot_boot_time_command), C(depot_test_command)),
    so a play that defers reboots to its end (the C(depot.software.deploy) role) reboots the
    same way.
  - This is an action plugin; nothing is copied to the host.
options:
  reboot_command:
    description: Command that reboots; defaults to C(depot_reboot_command), else C(shutdown -r now) or C(shutdown.exe /r /t 2).
    type: str
  boot_time_command:
    description: Command whose output changes with every boot; defaults to C(depot_boot_time_command), else the boot id or last boot time.
    type: str
  test_command:
    description: Readiness check run until it succeeds.
    type: str
  reboot_timeout:
    description: Seconds to wait for the host to come back.
    type: int
    default: 600
  connect_timeout:
    description: Connection timeout in seconds while polling.
    type: int
    default: 5
attributes:
  check_mode:
    support: full
    description: Reports a change without rebooting.
seealso:
  - module: ansible.builtin.reboot
  - module: ansible.windows.win_reboot
author:
  - Depot developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Reboot once at the end of the steps when one of them asked for it
  depot.software.reboot:
  when: depot_reboot_pending | bool
"""

RETURN = r"""
rebooted:
  description: The host rebooted.
  returned: always
  type: bool
boot_id:
  description: The boot id after the reboot.
  returned: success
  type: str
"""
