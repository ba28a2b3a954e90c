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
"""

RETURN = r"""
step:
  description: The step's identity.
  returned: always
  type: dict
  sample: {id: 1, name: agent, action: package}
outcome:
  description: As returned by M(depot.software.package).
  returned: always
  type: str
"""
