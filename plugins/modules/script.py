#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: script
short_description: Run a script with the run-as, timeout and exit-code semantics of a package
version_added: 0.1.0
description:
  - Runs a script on the host as one attempt, with the same run-as contexts, time limit,
    exit-code classes, retries and reboots as M(depot.software.package); Chocolatey Central
    Management's "advanced step", Zecurit's "Script" category.
  - With O(detection), the script does not run when detection already says present, and
    detection is evaluated again after it ran.
  - O(secrets) are exported to the script as environment variables and every value is masked
    in all returned output; they never appear in logs or results.
options:
  name:
    description: Display name of the step.
    type: str
  script:
    description: The script text. It is written to a private temporary file and passed to O(interpreter).
    type: str
  script_path:
    description: Path of a script already on the host.
    type: str
  interpreter:
    description:
      - Argument vector the script file is appended to.
      - Defaults to C(/bin/sh) on POSIX and C(powershell.exe -NoProfile -NonInteractive
        -ExecutionPolicy Bypass -File) on Windows.
    type: list
    elements: str
  arguments:
    description: Arguments after the script path, each one argument.
    type: list
    elements: str
    default: []
  secrets:
    description:
      - Name to value; each is exported as an environment variable of that name. Values are
        masked as C(********) in stdout, stderr and every other returned field.
    type: dict
    default: {}
extends_documentation_fragment:
  - depot.software.execution
attributes:
  check_mode:
    support: full
    description: Reports whether the script would run; it does not run.
notes:
  - On POSIX a script reports a Windows-style result code (such as 3010) by writing it to the
    file named by C($DEPOT_RESULT_FILE); otherwise its exit status is the code.
seealso:
  - module: depot.software.package
author:
  - Depot developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Join the agent to its server with a secret token, as CCM's sensitive variables do
  depot.software.script:
    name: enroll agent
    script: |
      /opt/acme/bin/agent enroll --server https://acme.example.com --token "$ACME_TOKEN"
    secrets:
      ACME_TOKEN: "{{ vault_acme_token }}"
    retries: 2
    retry_interval: 30

- name: Clear a user's cache in their own session, only when it exists
  depot.software.script:
    script: rm -rf "$HOME/.cache/acme"; exit 0
    run_as: logged_in_user

- name: A PowerShell step that may ask for a reboot
  depot.software.script:
    script: |
      Enable-WindowsOptionalFeature -Online -FeatureName NetFx3 -NoRestart | Out-Null
      exit 3010
    reboot_timing: immediate
"""

RETURN = r"""
rc:
  description: Exit code (or the code written to C($DEPOT_RESULT_FILE)) as a signed 32-bit integer.
  returned: always
  type: int
outcome:
  description:
    - As for M(depot.software.package), C(invalid) included.
    - Run through M(depot.software.step), the outcome may also be C(awaiting_reboot) (the host has not
      rebooted since the step's C(unless_boot_id), so the script did not run; neither failed nor changed).
  returned: always
  type: str
status:
  description: C(satisfied), C(executed), C(timeout), C(no_user_session) or C(would_change).
  returned: always
  type: str
reboot_required:
  description: A reboot is still needed.
  returned: always
  type: bool
rebooted:
  description: The host was rebooted during this task.
  returned: always
  type: bool
attempts:
  description: One entry per attempt, each with rc, class, status and duration.
  returned: always
  type: list
  elements: dict
detected_before:
  description: Detection before the first attempt; null without O(detection).
  returned: always
  type: bool
detected_after:
  description: Detection after the last attempt; null without O(detection).
  returned: always
  type: bool
stdout_tail:
  description: Last lines of standard output, secrets masked.
  returned: always
  type: list
  elements: str
stderr_tail:
  description: Last lines of standard error, secrets masked.
  returned: always
  type: list
  elements: str
duration:
  description: Seconds the script ran.
  returned: always
  type: float
boot_id:
  description: The host's boot id at the end of the attempt.
  returned: always
  type: str
run_as:
  description: The context and account the script ran as.
  returned: always
  type: dict
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.depot.software.plugins.module_utils._attempt import Attempt
from ansible_collections.depot.software.plugins.module_utils._spec import (
    ACTION_SPEC, SCRIPT_MODULE_SPEC, SCRIPT_MUTUALLY_EXCLUSIVE, SCRIPT_REQUIRED_ONE_OF,
)


class ScriptAttempt(Attempt):
    def __init__(self, module):
        super(ScriptAttempt, self).__init__(module)
        self.tempdir = None

    def command(self, user):
        p = self.params
        path = p["script_path"]
        if path is None:
            self.tempdir = tempfile.mkdtemp(prefix="depot-script-")
            path = os.path.join(self.tempdir, "script")
            with open(path, "w") as f:
                f.write(p["script"])
            if user is not None:
                os.chown(self.tempdir, user.pw_uid, user.pw_gid)
                os.chown(path, user.pw_uid, user.pw_gid)
        elif not os.path.isfile(path):
            raise ValueError("script_path %s does not exist on the host" % path)
        return list(p["interpreter"] or ["/bin/sh"]) + [path] + list(p["arguments"]), None

    def environment(self):
        env = super(ScriptAttempt, self).environment()
        env.update((str(k), str(v)) for k, v in self.params["secrets"].items())
        return env

    def secrets(self):
        return super(ScriptAttempt, self).secrets() + list(self.params["secrets"].values())

    def run(self):
        try:
            return super(ScriptAttempt, self).run()
        finally:
            if self.tempdir:
                for name in os.listdir(self.tempdir):
                    os.unlink(os.path.join(self.tempdir, name))
                os.rmdir(self.tempdir)


def main():
    module = AnsibleModule(
        argument_spec=dict(SCRIPT_MODULE_SPEC, **ACTION_SPEC),
        mutually_exclusive=SCRIPT_MUTUALLY_EXCLUSIVE,
        required_one_of=SCRIPT_REQUIRED_ONE_OF,
        supports_check_mode=True,
    )
    ScriptAttempt(module).main()


if __name__ == "__main__":
    main()
