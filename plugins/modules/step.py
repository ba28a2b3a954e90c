#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: step
short_description: Run one deployment step, a package or script action, from data
version_added: 0.1.0
description:
  - Runs M(depot.software.package) or M(depot.software.script) with O(args) and adds the step's
    identity to the result, so a play can apply a list of steps held in variables without
    templating task arguments, and a callback or the controller can tell the steps apart. The
    C(depot.software.deploy) role runs its steps through it.
  - This is an action plugin; it runs on the controller and calls the module of O(action).
options:
  id:
    description: The step's identity (a number or a string), returned in RV(step).
    type: raw
    required: true
  name:
    description: The step's display name.
    type: str
  action:
    description: Which module the step runs.
    type: str
    required: true
    choices: [package, script]
  args:
    description: Options of the module named by O(action), exactly as that module takes them.
    type: dict
    required: true
  unless_boot_id:
    description:
      - Run the step only when the host has rebooted since it had this boot id (a RV(boot_id) an
        earlier result returned), for a retry that must wait for a reboot.
      - Before anything else one raw command reads the host's current boot id - the boot time
        command of M(depot.software.package) (its C(boot_time_command) in O(args), else the
        host variable C(depot_boot_time_command), else C(cat /proc/sys/kernel/random/boot_id) on
        POSIX or the last boot time on Windows). When it equals this value the action does not run
        and the step returns RV(outcome=awaiting_reboot), neither failed nor changed. When it
        differs the action runs as usual.
      - An unreachable host gives RV(outcome=unreachable), as the action itself would.
    type: str
attributes:
  check_mode:
    support: full
    description: As the module of O(action).
seealso:
  - module: depot.software.package
  - module: depot.software.script
author:
  - Depot developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Apply one step held in a variable
  depot.software.step:
    id: 1
    name: agent
    action: package
    args: "{{ agent_step_args }}"

- name: Retry the step only once the host has rebooted since the failed try
  depot.software.step:
    id: 1
    name: agent
    action: package
    args: "{{ agent_step_args }}"
    unless_boot_id: "{{ previous_result.boot_id }}"
"""

RETURN = r"""
step:
  description: The step's identity.
  returned: always
  type: dict
  sample: {id: 1, name: agent, action: package}
outcome:
  description:
    - As returned by M(depot.software.package) or M(depot.software.script).
    - C(awaiting_reboot) when the host's boot id still equals O(unless_boot_id); nothing ran, and the
      result is neither failed nor changed.
    - C(failure) when O(unless_boot_id) is set and the boot time command fails on the host.
  returned: always
  type: str
  sample: awaiting_reboot
boot_id:
  description: The host's boot id, as the action returned it, or as read for O(unless_boot_id).
  returned: when known
  type: str
"""
