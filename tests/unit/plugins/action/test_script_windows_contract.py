# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Contract tests of the Windows branch of depot.software.script's action plugin: the same loop as
package, over results in script.ps1's shape (see conftest.py)."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.depot.software.plugins.module_utils._spec import ACTION_SPEC
from ansible_collections.depot.software.plugins.plugin_utils._reboot import WINDOWS_DEFAULTS
from tests.unit.plugins.action.conftest import (
    BOOT_1, BOOT_2, POWERSHELL, READY, REFUSED, SHUTDOWN_OK, boot_time, ps_module_options, ps_result, satisfied,
)

CANARY = "Canary-0c4d2a9e-enrol-token"
RUN_DIRECTORY = "C:\\Windows\\TEMP\\depot-run-3f9c2b7a"
SCRIPT = "& C:\\ProgramData\\Acme\\agent.exe enroll --token $env:ACME_TOKEN\r\nexit $LASTEXITCODE"


def script_executed(rc, stdout=(), stderr=(), detected_before=None, detected_after=None, boot_id=BOOT_1, **extra):
    """Set-DepotRunResult after the default interpreter ran the script file; secrets already masked."""
    cmd = [POWERSHELL, "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File",
           RUN_DIRECTORY + "\\script.ps1"]
    return ps_result("executed", rc=rc, detected_before=detected_before, detected_after=detected_after,
                     boot_id=boot_id, changed=True, cmd=cmd, duration=3.852, stdout_tail=list(stdout),
                     stderr_tail=list(stderr), **extra)


def enrol(**extra):
    args = dict(name="enrol acme agent", script=SCRIPT, secrets=dict(ACME_TOKEN=CANARY))
    args.update(extra)
    return args


def test_secrets_reach_the_module_and_are_masked_everywhere_else_exit_3010_is_soft_reboot(windows):
    h = windows("script")
    h.module.add(script_executed(3010, stdout=["Enrolling with token ********", "Enrolled; restart required"]))
    r = h.run(enrol())
    assert (r["outcome"], r["failed"], r["changed"], r["rc"]) == ("soft_reboot", False, True, 3010)
    assert (r["reboot_required"], r["rebooted"]) == (True, False)
    assert r["stdout_tail"] == ["Enrolling with token ********", "Enrolled; restart required"]
    assert h.module.calls[0]["module_name"] == "depot.software.script"
    sent = h.module.calls[0]["module_args"]
    assert sent["secrets"] == dict(ACME_TOKEN=CANARY)
    assert set(sent) <= ps_module_options("script"), set(sent) - ps_module_options("script")
    assert not set(sent) & set(ACTION_SPEC)
    assert "interpreter" not in sent  # script.ps1 picks powershell.exe -File itself
    assert CANARY not in json.dumps(r)
    assert h.raw.commands == []


def test_script_3010_immediate_reboots_with_the_windows_commands(windows):
    h = windows("script", transport="winrm")
    h.module.add(script_executed(3010), ps_result("would_change", boot_id=BOOT_2))
    h.raw.on("reboot", SHUTDOWN_OK)
    h.raw.on("boot_time", boot_time(BOOT_1), AnsibleConnectionFailure(REFUSED["winrm"]), boot_time(BOOT_2))
    h.raw.on("test", READY)
    r = h.run(enrol(reboot_timing="immediate"))
    # A script without detection: detection cannot disagree, so the reboot finishes the step.
    assert (r["outcome"], r["failed"], r["rebooted"], r["reboot_required"]) == ("soft_reboot", False, True, False)
    assert h.raw.of_kind("reboot") == [WINDOWS_DEFAULTS["reboot_command"]]
    assert h.module.detect_only == [False, True]


def test_detection_satisfied_skips_the_script(windows):
    h = windows("script")
    h.module.add(satisfied(True, boot_id=BOOT_1))
    r = h.run(enrol(detection=dict(rules=[dict(type="registry", key="HKLM:\\SOFTWARE\\Acme\\Agent", value="Enrolled",
                                               data="1")])))
    assert (r["outcome"], r["changed"], r["failed"]) == ("already", False, False)
    assert len(h.module.calls) == 1


def test_script_exit_code_not_in_a_class_is_a_failure_with_its_tails(windows):
    h = windows("script")
    h.module.add(script_executed(-2147024891, stderr=["agent.exe : Access is denied."]))
    r = h.run(enrol(retries=2))
    assert (r["outcome"], r["failed"], r["rc"]) == ("failure", True, -2147024891)
    assert r["msg"] == "exit code -2147024891 is a failure"
    assert r["stderr_tail"] == ["agent.exe : Access is denied."]
    assert len(h.module.calls) == 1


def test_script_exit_codes_are_configurable(windows):
    h = windows("script")
    h.module.add(script_executed(1), script_executed(0))
    r = h.run(enrol(exit_codes=dict(retry=[1]), retries=1, retry_interval=20))
    assert [a["class"] for a in r["attempts"]] == ["retry", "success"]
    assert h.clock.sleeps == [20]


def test_script_as_logged_in_user_with_nobody_logged_on_is_skipped(windows):
    h = windows("script")
    h.module.add(ps_result("no_user_session", context="logged_in_user", user=None,
                           msg="run_as logged_in_user: no user is logged on"))
    r = h.run(enrol(run_as="logged_in_user"))
    assert (r["outcome"], r["skipped"], r["failed"]) == ("no_user_session", True, False)


@pytest.mark.parametrize("args, message", [
    (enrol(secrets={"ACME-TOKEN": CANARY}), "secrets: 'ACME-TOKEN' is not a valid environment variable name"),
    (enrol(run_as="user", run_as_user="CORP\\svc-enrol"),
     "run_as_password is required when run_as is user on a Windows host"),
    (enrol(script_path="C:\\Scripts\\enrol.ps1"), "parameters are mutually exclusive: script|script_path"),
    (dict(name="nothing to run"), "one of the following is required: script, script_path"),
    (enrol(interpreter=[]), "interpreter must not be empty"),
    (enrol(detection=dict(rules=[dict(type="dpkg", name="acme-agent")])),
     "detection.rules[0].type dpkg cannot be evaluated on a Windows host"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_bad_script_input_is_rejected_before_the_host_is_touched(windows, args, message):
    h = windows("script")
    r = h.run(args)
    assert (r["outcome"], r["failed"], r["changed"]) == ("invalid", True, False)
    assert message in r["msg"]
    assert h.untouched()
    assert CANARY not in json.dumps(r)
