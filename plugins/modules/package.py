#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: package
short_description: Install or uninstall one package with endpoint-management semantics
version_added: 0.1.0
description:
  - Installs or uninstalls one package the way MECM, Intune or PDQ Deploy do, on Windows
    (C(package.ps1)) and POSIX (this file) hosts alike.
  - One attempt is one remote execution; detection, then install or uninstall, then detection
    again. A package that is already in the desired state costs one round trip and reports
    C(changed=false).
  - The action plugin of the same name runs the attempts; it classifies the exit code (success,
    soft reboot, hard reboot, retry, already, failure), retries, reboots and resumes, and verifies
    with detection after a reboot.
  - Content is pulled by the host from O(src) into a hash-addressed cache and verified against
    O(checksum) before anything runs, so a re-run transfers nothing.
  - Nothing in the options is passed through a shell; command lines are argument vectors.
options:
  name:
    description: Display name; also the default O(product_id).
    type: str
    required: true
  state:
    description: Whether the package should be installed or absent.
    type: str
    choices: [present, absent]
    default: present
  installer_type:
    description:
      - C(msi), C(msix), C(exe), C(msp), C(choco) and C(winget) on Windows; C(deb), C(rpm),
        C(script) (an executable installer) and C(archive) (a tar or zip unpacked into the cache,
        then O(install_command) runs inside it) on POSIX.
    type: str
    required: true
    choices: [msi, msix, exe, msp, choco, winget, deb, rpm, script, archive]
  product_id:
    description:
      - The identity detection and default uninstallation use; MSI product code, deb or rpm
        package name, Chocolatey or winget id, MSIX package family name. Defaults to O(name)
        for deb, rpm, choco and winget.
    type: str
  version:
    description: Minimum version the default detection rule requires.
    type: str
  src:
    description:
      - Where the installer is; an C(http) or C(https) URL the host downloads (pull), or an
        absolute path on the host (or a UNC path on Windows).
    type: str
  checksum:
    description:
      - The sha256 of O(src), required for URLs. A mismatch fails the task before anything runs.
    type: str
  cache_dir:
    description: Hash-addressed content cache on the host; unset means C(/var/cache/depot) (POSIX) or C(%ProgramData%\Depot\cache) (Windows).
    type: path
  arguments:
    description: Extra installer arguments, each one argument.
    type: list
    elements: str
    default: []
  install_command:
    description:
      - The command line that installs, as a list of arguments or a string split into arguments
        (shell-like on POSIX, C(CommandLineToArgvW) rules on Windows); never run through a shell.
      - C({installer}) in any argument is replaced by the cached installer's path (the unpacked
        directory for C(archive)). Defaults by type, for example C(dpkg -i {installer}).
    type: raw
  uninstall_command:
    description: The command line that uninstalls, as O(install_command).
    type: raw
  log_path:
    description: Installer log whose tail is returned (MSI writes it through C(/L*v)).
    type: path
extends_documentation_fragment:
  - depot.software.execution
attributes:
  check_mode:
    support: full
    description: Detection only; reports whether an attempt would act.
notes:
  - Exit statuses on POSIX are 8 bits. An installer (or a wrapper) that reports a Windows-style
    result code such as 3010 writes it as decimal text to the file named by C($DEPOT_RESULT_FILE).
  - On POSIX a deb or rpm attempt first checks the package database lock; when another process
    holds it the attempt returns rc 1618 (installer busy), which the default classes retry.
seealso:
  - module: depot.software.script
  - module: depot.software.preflight
  - module: depot.software.software_facts
author:
  - Depot developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Install a deb pulled from the software repository, rebooting at the end of the play if needed
  depot.software.package:
    name: acme-agent
    installer_type: deb
    src: https://depot.example.com/content/acme-agent_2.1.0_amd64.deb
    checksum: 9f2c4e0e3bb2a3a5c1d3e6c2f0f1b1e7a9d6c1b2e3f4a5b6c7d8e9f0a1b2c3d4
    version: 2.1.0
    retries: 3
    retry_interval: 60

- name: Install an MSI as SYSTEM, treating 3010 as success that needs a reboot now
  depot.software.package:
    name: 7-Zip
    installer_type: msi
    src: https://depot.example.com/content/7z2301-x64.msi
    checksum: 0ba639b6dacdf573d847c911bd147c6384381a54dac082b1e8c77bc73d58958b
    product_id: '{23170F69-40C1-2702-2301-000001000000}'
    arguments: [ALLUSERS=1]
    reboot_timing: immediate

- name: Run an installer in the logged-in user's session, detected by a file
  depot.software.package:
    name: user-tool
    installer_type: script
    src: /opt/installers/user-tool.run
    install_command: ['{installer}', '--user', '--quiet']
    run_as: logged_in_user
    detection:
      rules:
        - type: script
          script: test -e "$HOME/.local/bin/user-tool" && echo present

- name: Uninstall, accepting the vendor's own "not installed" code
  depot.software.package:
    name: legacy-agent
    installer_type: exe
    state: absent
    uninstall_command: C:\Program Files\Legacy\uninst.exe /S
    exit_codes:
      already: [1605, 1614, 2]
    detection:
      rules:
        - type: registry
          key: HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\LegacyAgent
"""

RETURN = r"""
rc:
  description: Exit code of the last attempt as a signed 32-bit integer; null when nothing ran.
  returned: always
  type: int
  sample: 3010
outcome:
  description:
    - The exit-code class of the final attempt (C(success), C(soft_reboot), C(hard_reboot),
      C(retry) when retries ran out, C(already), C(failure)) or C(timeout), C(not_detected)
      (the installer said success but detection disagrees), C(no_user_session), C(unreachable),
      C(reboot_timeout), C(invalid) (bad input, nothing ran).
    - A C(soft_reboot) whose reboot O(reboot_not_after) held back has RV(reboot_required=true).
    - Run through M(depot.software.step), the outcome may also be C(awaiting_reboot) (the host has not
      rebooted since the step's C(unless_boot_id), so nothing ran; neither failed nor changed).
  returned: always
  type: str
  sample: soft_reboot
reboot_required:
  description: A reboot is still needed to finish (soft reboot deferred or not allowed).
  returned: always
  type: bool
rebooted:
  description: The host was rebooted during this task (by the installer or by the plugin).
  returned: always
  type: bool
attempts:
  description:
    - One entry per attempt.
    - On POSIX hosts one Depot attempt runs at a time (a lock in /run/depot held by the installer
      itself). An attempt that found an earlier one's installer still running - its controller
      lost it - waited for it and detected again; its entry then has C(waited_for)
      (C(holder), C(seconds)).
  returned: always
  type: list
  elements: dict
  sample: [{rc: 1618, class: retry, status: executed, duration: 1.2}, {rc: 0, class: success, status: executed, duration: 14.8}]
detected_before:
  description: Detection before the first attempt.
  returned: always
  type: bool
detected_after:
  description: Detection after the last attempt (after the reboot, when there was one).
  returned: always
  type: bool
status:
  description:
    - What the last attempt on the host did; C(satisfied), C(executed), C(timeout),
      C(no_user_session), C(busy) or C(would_change).
  returned: always
  type: str
cmd:
  description: The argument vector that ran.
  returned: when an installer ran
  type: list
  elements: str
duration:
  description: Seconds the installer ran in the last attempt.
  returned: always
  type: float
stdout_tail:
  description: Last lines of the installer's standard output.
  returned: always
  type: list
  elements: str
stderr_tail:
  description: Last lines of the installer's standard error.
  returned: always
  type: list
  elements: str
log_tail:
  description: Last lines of the installer log (O(log_path)).
  returned: always
  type: list
  elements: str
content:
  description: Where the installer was taken from, its sha256, and whether the cache already had it.
  returned: when content was needed
  type: dict
  sample: {path: /var/cache/depot/sha256/9f2c.../acme.deb, sha256: 9f2c..., cached: true, bytes_downloaded: 0}
boot_id:
  description: The host's boot id (POSIX) or last boot time (Windows) at the end of the attempt.
  returned: always
  type: str
run_as:
  description: The context and account the installer ran as.
  returned: always
  type: dict
  sample: {context: logged_in_user, user: alice}
"""

import shlex

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.depot.software.plugins.module_utils import _content
from ansible_collections.depot.software.plugins.module_utils._attempt import Attempt
from ansible_collections.depot.software.plugins.module_utils._detection import DetectionError, default_rules
from ansible_collections.depot.software.plugins.module_utils._locks import package_db_busy
from ansible_collections.depot.software.plugins.module_utils._spec import (
    ACTION_SPEC, PACKAGE_MODULE_SPEC, POSIX_INSTALLER_TYPES,
)

INSTALLER = "{installer}"
PRODUCT = "{product_id}"

DEFAULT_COMMANDS = {
    ("deb", "present"): ["dpkg", "-i", INSTALLER],
    ("deb", "absent"): ["dpkg", "-r", PRODUCT],
    ("rpm", "present"): ["rpm", "-U", "--replacepkgs", INSTALLER],
    ("rpm", "absent"): ["rpm", "-e", PRODUCT],
    ("script", "present"): [INSTALLER],
}


def as_argv(value, option):
    """A command line as an argument vector: lists as given, strings split shell-like (no shell)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        return shlex.split(value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError("%s must be a non-empty list of strings or a command-line string" % option)


class PackageAttempt(Attempt):
    def __init__(self, module):
        super(PackageAttempt, self).__init__(module)
        self.want_present = self.params["state"] == "present"
        self.option = "install_command" if self.want_present else "uninstall_command"
        self.template = as_argv(self.params[self.option], self.option)

    def detection_spec(self):
        p = self.params
        spec = p["detection"] or default_rules(p["installer_type"], p["product_id"] or p["name"], p["version"])
        if spec is None:
            raise DetectionError("detection is required for installer_type %s (it has no default rule)" % p["installer_type"])
        return spec

    def command(self, user):
        p = self.params
        argv = self.template or DEFAULT_COMMANDS.get((p["installer_type"], p["state"]))
        if argv is None:
            raise ValueError("%s is required for installer_type %s" % (self.option, p["installer_type"]))
        installer = None
        if p["src"] and (self.want_present or any(INSTALLER in a for a in argv)):
            content = _content.fetch(p["src"], p["checksum"], p["cache_dir"])
            self.result["content"] = content
            installer = content["path"]
            if p["installer_type"] == "archive":
                installer = _content.unpack(installer, p["cache_dir"])
        if installer is None and any(INSTALLER in a for a in argv):
            raise ValueError("src is required: %s refers to {installer}" % self.option)
        # Whole-string replacement of two fixed placeholders: nothing is templated.
        product = p["product_id"] or p["name"]
        argv = [a.replace(INSTALLER, installer or "").replace(PRODUCT, product) for a in argv]
        cwd = installer if p["installer_type"] == "archive" else None
        return argv + list(p["arguments"]), cwd

    def busy(self):
        if self.params["installer_type"] in ("deb", "rpm"):
            return package_db_busy(self.params["installer_type"])
        return None

    def environment(self):
        env = super(PackageAttempt, self).environment()
        if self.params["installer_type"] == "deb":
            env.setdefault("DEBIAN_FRONTEND", "noninteractive")
        return env

    def log_path(self):
        return self.params["log_path"]


def main():
    module = AnsibleModule(argument_spec=dict(PACKAGE_MODULE_SPEC, **ACTION_SPEC), supports_check_mode=True)
    if module.params["installer_type"] not in POSIX_INSTALLER_TYPES:
        module.fail_json(msg="installer_type %s is for Windows hosts; this host is POSIX" % module.params["installer_type"])
    try:
        attempt = PackageAttempt(module)
    except ValueError as e:
        module.fail_json(msg=str(e))
    attempt.main()


if __name__ == "__main__":
    main()
