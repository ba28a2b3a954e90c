# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Contract tests of the Windows branch of depot.software.package's action plugin.

The real ``ActionModule.run`` runs over the real psrp/winrm connection plugin (PowerShell shell);
``_execute_module`` replays results in package.ps1's shape and ``_low_level_execute_command``
replays the raw commands of the reboot machinery (see conftest.py). Each test says what the
Windows host "did"; the assertions are about what the action plugin decided and sent.

Tests marked ``xfail(strict=True)`` state behaviour the design asks for and the plugin does not
have yet; each names the plugin bug it documents, and fails loudly (XPASS) once it is fixed.
"""

from __future__ import annotations

import json

import pytest
import requests
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.depot.software.plugins.module_utils._spec import ACTION_SPEC, PACKAGE_MODULE_SPEC
from ansible_collections.depot.software.plugins.plugin_utils._reboot import POSIX_DEFAULTS, WINDOWS_DEFAULTS
from tests.unit.plugins.action.conftest import (
    ABORTED, BOOT_1, BOOT_2, LOGONUI_STARTING, MSI_LOG, MSIEXEC, PRODUCT_CODE, PSRP_ABORTED_AT_OPEN, PSRP_AUTH,
    PSRP_CONNECT_TIMEOUT, PSRP_READ_TIMEOUT, READY, REFUSED, RESET_BY_PEER, SHA, SHUTDOWN_ALREADY_SCHEDULED,
    SHUTDOWN_OK, WINRM_AUTH, WINRM_READ_TIMEOUT, boot_time, module_failed, msi_busy, msi_executed, ps_module_options,
    ps_result, satisfied, would_change,
)

TRANSPORTS = ["psrp", "winrm"]
WINDOWS_REBOOT = 'shutdown.exe /r /t 2 /c "Depot: restart to finish a software installation"'
CANARY = "Canary-7f3e9b1c-run-as-Passw0rd"


def msi(**extra):
    """An msi package pulled from the software repository (sha256-pinned URL)."""
    args = dict(name="acme-agent", installer_type="msi", product_id=PRODUCT_CODE, version="2.1.0",
                src="https://repo.depot.test/pkgs/acme-agent-2.1.0.msi", checksum=SHA)
    args.update(extra)
    return args


def exe(**extra):
    """An exe with its own command lines and a registry detection rule."""
    args = dict(name="acme-tool", installer_type="exe",
                install_command=["C:\\Installers\\acme-tool-setup.exe", "/S", "/norestart"],
                uninstall_command=["C:\\Program Files\\Acme\\Tool\\uninstall.exe", "/S"],
                detection=dict(rules=[dict(type="registry", key="HKLM:\\SOFTWARE\\Acme\\Tool", value="Version",
                                           version="3.4")]))
    args.update(extra)
    return args


def classes(result):
    return [a["class"] for a in result["attempts"]]


def statuses(result):
    return [a["status"] for a in result["attempts"]]


def raw_kinds(harness):
    return [kind for kind, _ in harness.raw.commands]


# ------------------------------------------------------------------------------------------------
# The harness itself: the Windows branch is chosen from the connection's shell.


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_windows_branch_is_taken_from_the_powershell_shell(windows, transport):
    h = windows(transport=transport)
    h.module.add(msi_executed(0))
    before = tuple(h.connection.module_implementation_preferences)
    h.run(msi())
    assert type(h.connection._shell).__module__ == "ansible.plugins.shell.powershell"
    assert h.connection._shell.SHELL_FAMILY == "powershell"
    # A Windows connection keeps preferring package.ps1; only POSIX connections are steered to .py.
    assert tuple(h.connection.module_implementation_preferences) == before
    assert before[0] == ".ps1"
    assert h.module.calls[0]["module_name"] == "depot.software.package"


# ------------------------------------------------------------------------------------------------
# One attempt


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_msi_exit_0_is_success_in_one_round_trip(windows, transport):
    h = windows(transport=transport)
    h.module.add(msi_executed(0))
    r = h.run(msi(retries=3, exit_codes=dict(success=[0, 1707])))
    assert (r["outcome"], r["failed"], r["changed"], r["rc"], r["status"]) == ("success", False, True, 0, "executed")
    assert (r["rebooted"], r["reboot_required"]) == (False, False)
    assert (r["detected_before"], r["detected_after"]) == (False, True)
    assert r["attempts"] == [dict(rc=0, status="executed", duration=41.327, detected_before=False, detected_after=True,
                                  **{"class": "success"})]
    # The last attempt's facts are passed through as package.ps1 reported them.
    assert r["cmd"] == [MSIEXEC, "/i", r["content"]["path"], "/qn", "/norestart", "/L*v", MSI_LOG]
    assert r["content"] == dict(path=r["content"]["path"], sha256=SHA, cached=False, bytes_downloaded=5234688)
    assert r["log_tail"][-2].endswith("Installation success or error status: 0.")
    assert r["run_as"] == dict(context="system", user="NT AUTHORITY\\SYSTEM")
    assert r["boot_id"] == BOOT_1
    assert "invocation" not in r
    assert h.module.detect_only == [False]
    assert h.raw.commands == []


def test_already_installed_costs_one_round_trip_and_is_unchanged(windows):
    h = windows()
    h.module.add(satisfied(True, boot_id=BOOT_1))
    r = h.run(msi())
    assert (r["outcome"], r["changed"], r["failed"]) == ("already", False, False)
    assert (r["status"], r["rc"]) == ("satisfied", None)
    assert (r["detected_before"], r["detected_after"]) == (True, True)
    assert len(h.module.calls) == 1 and h.raw.commands == []


def test_module_args_are_exactly_what_package_ps1_accepts(windows):
    """Ansible.Basic fails on an option it does not know, so every key the action sends must be in
    package.ps1's spec (or Get-DepotCommonSpec's); options of the loop itself stay on the controller."""
    h = windows()
    h.module.add(msi_executed(0))
    args = msi(cache_dir="D:\\DepotCache", arguments=["ADDLOCAL=ALL", "INSTALLDIR=C:\\Program Files\\Acme Agent"],
               log_path="C:\\Windows\\Temp\\acme.log", timeout=900, tail_lines=20, environment=dict(ACME_SITE="lab"),
               detection=dict(match="any", rules=[dict(type="msi", product_code=PRODUCT_CODE, version="2.1.0"),
                                                  dict(type="file", path="C:\\Program Files\\Acme Agent\\agent.exe",
                                                       version="2.1.0.0")]),
               run_as="user", run_as_user="CORP\\svc-deploy", run_as_password=CANARY,
               run_as_logon_type="new_credentials",
               retries=2, retry_interval=10, retry_after_reboot=True, reboot="force", reboot_timing="deferred",
               reboot_timeout=1200, connect_timeout=10, exit_codes=dict(success=[0], soft_reboot=[3010]))
    r = h.run(args)
    assert r["outcome"] == "success"
    sent = h.module.calls[0]["module_args"]
    assert set(sent) <= ps_module_options("package"), set(sent) - ps_module_options("package")
    assert not set(sent) & set(ACTION_SPEC)
    for key, value in args.items():
        if key in PACKAGE_MODULE_SPEC:
            assert sent[key] == value, key
    assert sent["detect_only"] is False


# ------------------------------------------------------------------------------------------------
# Reboots


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_3010_immediate_reboots_with_the_windows_commands_then_verifies_by_detection(windows, transport):
    h = windows(transport=transport)
    h.module.add(msi_executed(3010), satisfied(True, boot_id=BOOT_2))
    h.raw.on("reboot", SHUTDOWN_OK)
    # Still up on the old boot, then down (WinRM refuses), then back with a new boot time.
    h.raw.on("boot_time", boot_time(BOOT_1), AnsibleConnectionFailure(REFUSED[transport]), boot_time(BOOT_2))
    # Back, but the logon screen is still starting; then ready.
    h.raw.on("test", LOGONUI_STARTING, READY)
    original_timeout = h.connection.get_option("connection_timeout")  # psrp: 30, winrm: None
    r = h.run(msi(reboot_timing="immediate"))

    assert (r["outcome"], r["failed"], r["changed"]) == ("soft_reboot", False, True)
    assert (r["rebooted"], r["reboot_required"]) == (True, False)
    assert (r["rc"], r["detected_after"], r["boot_id"]) == (3010, True, BOOT_2)
    assert r["attempts"] == [dict(rc=3010, status="executed", duration=41.327, detected_before=False,
                                  detected_after=True, **{"class": "soft_reboot"})]

    # The Windows defaults, not the POSIX ones.
    assert h.raw.of_kind("reboot") == [WINDOWS_DEFAULTS["reboot_command"]] == [WINDOWS_REBOOT]
    assert h.raw.of_kind("reboot")[0].startswith("shutdown.exe /r /t 2 ")
    assert set(h.raw.of_kind("boot_time")) == {WINDOWS_DEFAULTS["boot_time_command"]}
    assert set(h.raw.of_kind("test")) == {WINDOWS_DEFAULTS["test_command"]}
    assert not any(cmd in POSIX_DEFAULTS.values() for _, cmd in h.raw.commands)
    # The boot id came from the module's result: no boot time read before the reboot command.
    assert raw_kinds(h) == ["reboot", "boot_time", "boot_time", "boot_time", "test", "boot_time", "test"]

    # Then one detection-only call, with the same options; the installer was not run again.
    assert h.module.detect_only == [False, True]
    first, verify = (c["module_args"] for c in h.module.calls)
    assert dict(verify, detect_only=False) == first
    assert h.events.index(("module", "detect")) > max(i for i, e in enumerate(h.events) if e == ("raw", "test"))

    # Every poll is made on a fresh connection, with connect_timeout as the connection timeout,
    # restored afterwards; the waits are the fake clock's.
    for index, event in enumerate(h.events):
        if event == ("raw", "boot_time"):
            assert h.events[index - 2:index] == [("close",), ("reset",)]
    timeouts = [e[2] for e in h.events if e[:2] == ("set_option", "connection_timeout")]
    assert timeouts == [5, original_timeout]
    assert h.connection.get_option("connection_timeout") == original_timeout
    assert h.clock.sleeps == [2.0, 2.0, 2.0]


def test_3010_deferred_by_default_reports_reboot_required(windows):
    h = windows()
    h.module.add(msi_executed(3010))
    r = h.run(msi())
    assert (r["outcome"], r["failed"], r["reboot_required"], r["rebooted"]) == ("soft_reboot", False, True, False)
    assert h.raw.commands == [] and len(h.module.calls) == 1


def test_3010_with_reboot_never_does_not_reboot_even_when_immediate(windows):
    h = windows()
    h.module.add(msi_executed(3010))
    r = h.run(msi(reboot="never", reboot_timing="immediate"))
    assert (r["outcome"], r["reboot_required"], r["rebooted"]) == ("soft_reboot", True, False)
    assert h.raw.commands == []


def test_3010_immediate_after_the_window_closed_sends_no_reboot_and_leaves_it_owed(windows):
    """reboot_not_after is decided on the controller: package.ps1 never sees it, no reboot command is sent."""
    h = windows()
    h.module.add(msi_executed(3010))
    r = h.run(msi(reboot_timing="immediate", reboot_not_after="2001-01-01T06:00:00+01:00"))
    assert (r["outcome"], r["failed"], r["reboot_required"], r["rebooted"]) == ("soft_reboot", False, True, False)
    assert "maintenance window closes at 2001-01-01T06:00:00+01:00" in r["msg"]
    assert h.raw.commands == [] and len(h.module.calls) == 1
    assert "reboot_not_after" not in h.module.calls[0]["module_args"]


def test_1641_after_the_window_closed_is_still_waited_for(windows):
    h = windows()
    h.module.add(msi_executed(1641), satisfied(True, boot_id=BOOT_2))
    h.raw.on("boot_time", boot_time(BOOT_2))
    h.raw.on("test", READY)
    r = h.run(msi(reboot_timing="immediate", reboot_not_after="2001-01-01T05:00:00Z"))
    assert (r["outcome"], r["rebooted"], r["boot_id"]) == ("hard_reboot", True, BOOT_2)
    assert h.raw.of_kind("reboot") == []


def test_1641_waits_for_the_installers_own_reboot_and_sends_no_reboot_command(windows):
    h = windows()
    h.module.add(msi_executed(1641), satisfied(True, boot_id=BOOT_2))
    h.raw.on("boot_time", boot_time(BOOT_1), AnsibleConnectionFailure(REFUSED["psrp"]), boot_time(BOOT_2))
    h.raw.on("test", READY)
    r = h.run(msi())
    assert (r["outcome"], r["failed"], r["rebooted"], r["detected_after"]) == ("hard_reboot", False, True, True)
    assert r["attempts"][0]["rc"] == 1641 and r["attempts"][0]["class"] == "hard_reboot"
    assert h.raw.of_kind("reboot") == []
    assert raw_kinds(h) == ["boot_time", "boot_time", "boot_time", "test"]
    assert h.module.detect_only == [False, True]


@pytest.mark.parametrize("error", [ABORTED, RESET_BY_PEER, PSRP_READ_TIMEOUT, WINRM_READ_TIMEOUT])
def test_1641_result_lost_mid_attempt_is_decided_by_detection_never_rerun(windows, error):
    """msiexec returned 1641 and Windows went down before WinRM delivered the result. The boot id
    is known from the attempt before (MSI was busy), so the new boot time proves the reboot."""
    h = windows()
    h.module.add(msi_busy(boot_id=BOOT_1), AnsibleConnectionFailure(error), satisfied(True, boot_id=BOOT_2))
    h.raw.on("boot_time", AnsibleConnectionFailure(REFUSED["psrp"]), boot_time(BOOT_2))
    h.raw.on("test", READY)
    r = h.run(msi(retries=2, retry_interval=60))
    assert (r["outcome"], r["failed"], r["rebooted"], r["detected_after"]) == ("success", False, True, True)
    assert statuses(r) == ["busy", "connection_lost"]
    assert classes(r) == ["retry", "success"]
    assert r["rc"] is None and "connection lost during the attempt" in r["msg"] and error in r["msg"]
    # Two installer attempts (the busy one and the lost one), then detection only: nothing re-run.
    assert h.module.detect_only == [False, False, True]
    assert h.raw.of_kind("reboot") == []
    assert r["boot_id"] == BOOT_2



def test_result_lost_on_the_first_attempt_is_decided_by_detection_never_rerun(windows):
    h = windows()
    h.module.add(AnsibleConnectionFailure(ABORTED), satisfied(True, boot_id=BOOT_2))
    h.raw.on("boot_time", AnsibleConnectionFailure(REFUSED["psrp"]), boot_time(BOOT_2))
    h.raw.on("test", READY)
    r = h.run(msi())
    assert (r["outcome"], r["failed"], r["detected_after"]) == ("success", False, True)
    assert h.module.detect_only == [False, True]


def test_result_lost_on_the_first_attempt_reports_the_change_and_an_unknown_reboot(windows):
    """No boot id was known before the first attempt, so whether the host rebooted is unknown
    (null), not false; the attempt did start, so it counts as a change."""
    h = windows()
    h.module.add(AnsibleConnectionFailure(ABORTED), satisfied(True, boot_id=BOOT_2))
    h.raw.on("boot_time", AnsibleConnectionFailure(REFUSED["psrp"]), boot_time(BOOT_2))
    h.raw.on("test", READY)
    r = h.run(msi())
    assert (r["rebooted"], r["changed"]) == (None, True)


def test_result_lost_and_not_detected_afterwards_is_a_failure_not_a_rerun(windows):
    h = windows()
    h.module.add(msi_busy(), AnsibleConnectionFailure(ABORTED), would_change(False, boot_id=BOOT_2))
    h.raw.on("boot_time", AnsibleConnectionFailure(REFUSED["psrp"]), boot_time(BOOT_2))
    h.raw.on("test", READY)
    r = h.run(msi(retries=5, retry_interval=1))
    assert (r["outcome"], r["failed"], r["detected_after"]) == ("failure", True, False)
    assert h.module.detect_only == [False, False, True]


def test_failure_with_retry_after_reboot_reboots_once_with_the_boot_id_from_the_module(windows):
    h = windows()
    h.module.add(msi_executed(1603, detected_after=False), msi_executed(0, boot_id=BOOT_2))
    h.raw.on("reboot", SHUTDOWN_OK)
    h.raw.on("boot_time", boot_time(BOOT_2))
    h.raw.on("test", READY)
    r = h.run(msi(retry_after_reboot=True))
    assert (r["outcome"], r["failed"], r["rebooted"], r["rc"]) == ("success", False, True, 0)
    assert classes(r) == ["failure", "success"]
    assert raw_kinds(h) == ["reboot", "boot_time", "test"]
    assert h.module.detect_only == [False, False]


def test_reboot_timeout_when_the_host_never_comes_back(windows):
    h = windows()
    h.module.add(msi_executed(3010))
    h.raw.on("reboot", SHUTDOWN_OK)
    h.raw.on("boot_time", boot_time(BOOT_1), AnsibleConnectionFailure(REFUSED["psrp"]))
    r = h.run(msi(reboot_timing="immediate", reboot_timeout=300))
    assert (r["outcome"], r["failed"], r["rebooted"]) == ("reboot_timeout", True, False)
    assert "reboot_timeout (300s)" in r["msg"] and "Connection refused" in r["msg"]
    assert sum(h.clock.sleeps) >= 300
    assert len(h.module.calls) == 1


def test_readiness_that_never_passes_ends_in_reboot_timeout(windows):
    h = windows()
    h.module.add(msi_executed(3010))
    h.raw.on("reboot", SHUTDOWN_OK)
    h.raw.on("boot_time", boot_time(BOOT_2))
    h.raw.on("test", LOGONUI_STARTING)
    r = h.run(msi(reboot_timing="immediate", reboot_timeout=60))
    assert (r["outcome"], r["failed"]) == ("reboot_timeout", True)
    assert "readiness check failed (rc 1): LogonUI still starting" in r["msg"]


def test_reboot_already_scheduled_by_someone_else_still_reboots(windows):
    h = windows()
    h.module.add(msi_executed(3010), satisfied(True, boot_id=BOOT_2))
    h.raw.on("reboot", SHUTDOWN_ALREADY_SCHEDULED, SHUTDOWN_OK, SHUTDOWN_OK)
    h.raw.on("boot_time", boot_time(BOOT_2))
    h.raw.on("test", READY)
    r = h.run(msi(reboot_timing="immediate"))
    assert (r["outcome"], r["failed"], r["rebooted"]) == ("soft_reboot", False, True)


# ------------------------------------------------------------------------------------------------
# Reboot commands: option, then depot_* host variable, then the Windows default


def test_depot_reboot_command_host_var_overrides_the_windows_default(windows):
    custom = 'shutdown.exe /r /f /t 0 /d p:4:1 /c "Depot lab reboot"'
    h = windows()
    h.module.add(msi_executed(3010), satisfied(True, boot_id=BOOT_2))
    h.raw.on("reboot", SHUTDOWN_OK)
    h.raw.on("boot_time", boot_time(BOOT_2))
    h.raw.on("test", READY)
    r = h.run(msi(reboot_timing="immediate"), task_vars=dict(depot_reboot_command=custom))
    assert (r["outcome"], r["rebooted"]) == ("soft_reboot", True)
    assert h.raw.of_kind("reboot") == [custom]
    assert set(h.raw.of_kind("boot_time")) == {WINDOWS_DEFAULTS["boot_time_command"]}


@pytest.mark.parametrize("option, host_var, expected", [
    (None, None, "default"),
    (None, "host", "host"),
    ("option", "host", "option"),
])
def test_reboot_commands_option_then_host_var_then_default(windows, option, host_var, expected):
    values = dict(
        option=dict(reboot_command="C:\\Tools\\reboot.exe --now", boot_time_command="C:\\Tools\\boottime.exe",
                    test_command="C:\\Tools\\ready.exe"),
        host=dict(reboot_command="shutdown.exe /r /t 0", boot_time_command="(Get-Date).Ticks",
                  test_command="Get-Service -Name WinRM"),
        default=WINDOWS_DEFAULTS,
    )
    h = windows()
    for kind in ("reboot", "boot_time", "test"):
        for source in values.values():
            h.raw.kinds[source["%s_command" % kind]] = kind
    h.module.add(msi_executed(3010), satisfied(True, boot_id=BOOT_2))
    h.raw.on("reboot", SHUTDOWN_OK)
    h.raw.on("boot_time", boot_time(BOOT_2))
    h.raw.on("test", READY)
    args = msi(reboot_timing="immediate", **(values["option"] if option else {}))
    task_vars = {"depot_%s" % k: v for k, v in values["host"].items()} if host_var else {}
    r = h.run(args, task_vars=task_vars)
    assert r["rebooted"] is True
    want = values[expected]
    assert h.raw.commands == [("reboot", want["reboot_command"]), ("boot_time", want["boot_time_command"]),
                              ("test", want["test_command"])]


def test_the_default_boot_time_command_is_win_reboots(windows):
    """package.ps1's boot_id (Get-DepotBootId) and the poll must be comparable: both are
    LastBootUpTime.ToFileTime(), the boot time command of ansible.windows.win_reboot."""
    reboot = pytest.importorskip("ansible_collections.ansible.windows.plugins.plugin_utils._reboot")
    assert WINDOWS_DEFAULTS["boot_time_command"] == reboot._DEFAULT_BOOT_TIME_COMMAND


# ------------------------------------------------------------------------------------------------
# Retries and exit-code classes


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_1618_twice_then_0_is_retried_after_the_interval(windows, transport):
    h = windows(transport=transport)
    h.module.add(msi_busy(), msi_executed(1618, detected_after=False), msi_executed(0))
    r = h.run(msi(retries=3, retry_interval=45))
    assert (r["outcome"], r["failed"], r["changed"], r["rc"]) == ("success", False, True, 0)
    assert statuses(r) == ["busy", "executed", "executed"]
    assert classes(r) == ["retry", "retry", "success"]
    assert [a["rc"] for a in r["attempts"]] == [1618, 1618, 0]
    assert h.clock.sleeps == [45, 45]
    assert h.module.detect_only == [False, False, False]
    assert h.raw.commands == []


def test_1618_retries_exhausted_is_a_failure(windows):
    h = windows()
    h.module.add(msi_busy(), msi_busy())
    r = h.run(msi(retries=1, retry_interval=5))
    assert (r["outcome"], r["failed"], r["rc"]) == ("retry", True, 1618)
    assert r["msg"] == "still busy (rc 1618) after 1 retries"
    assert h.clock.sleeps == [5]


def test_msix_deployment_busy_codes_are_retried(windows):
    h = windows()
    h.module.add(ps_result("executed", rc=15605, detected_before=False, detected_after=False, changed=True),
                 ps_result("executed", rc=0, detected_before=False, detected_after=True, changed=True))
    r = h.run(dict(name="acme-app", installer_type="msix", product_id="Acme.App_8wekyb3d8bbwe",
                   src="C:\\Installers\\Acme.App.msixbundle", retries=1, retry_interval=1))
    assert classes(r) == ["retry", "success"] and r["outcome"] == "success"


@pytest.mark.parametrize("rc", [1605, 1614])
def test_1605_and_1614_on_uninstall_are_already(windows, rc):
    h = windows()
    h.module.add(msi_executed(rc, detected_after=False, state="absent"))
    r = h.run(msi(state="absent", src=None, checksum=None))
    assert (r["outcome"], r["failed"], r["rc"]) == ("already", False, rc)
    assert r["attempts"][0]["class"] == "already"
    assert h.module.calls[0]["module_args"]["state"] == "absent"


def test_1605_on_uninstall_is_not_changed(windows):
    h = windows()
    h.module.add(msi_executed(1605, detected_after=False, state="absent"))
    r = h.run(msi(state="absent", src=None, checksum=None))
    assert r["changed"] is False


def test_1605_on_install_is_a_failure(windows):
    h = windows()
    h.module.add(msi_executed(1605, detected_after=False))
    r = h.run(msi())
    assert (r["outcome"], r["failed"], r["msg"]) == ("failure", True, "exit code 1605 is a failure")


@pytest.mark.parametrize("module_rc, exit_codes, outcome", [
    # An unsigned code from the host matches the signed code the author listed, and the other way.
    (4294967295, dict(success=[-1]), "success"),
    (-1, dict(success=[4294967295]), "success"),
    (-1073741819, dict(retry=[3221225477]), "retry"),
    # 0xC0000005 (access violation) in no class is a failure, however it is spelled.
    (3221225477, None, "failure"),
    (-1073741819, None, "failure"),
    # 3010 spelled unsigned-with-wraparound is still 3010.
    (4294970306, None, "soft_reboot"),
])
def test_unsigned_and_signed_exit_codes_are_the_same_code(windows, module_rc, exit_codes, outcome):
    h = windows()
    h.module.add(msi_executed(module_rc, detected_after=outcome != "failure"))
    args = msi(retries=0)
    if exit_codes:
        args["exit_codes"] = exit_codes
    r = h.run(args)
    assert r["outcome"] == outcome


def test_the_reported_rc_is_the_signed_code(windows):
    h = windows()
    h.module.add(msi_executed(3221225477, detected_after=False))
    r = h.run(msi())
    assert (r["rc"], r["attempts"][0]["rc"]) == (-1073741819, -1073741819)


# ------------------------------------------------------------------------------------------------
# Other outcomes reported by package.ps1


def test_success_but_not_detected_is_a_failure(windows):
    h = windows()
    h.module.add(msi_executed(0, detected_after=False))
    r = h.run(msi())
    assert (r["outcome"], r["failed"]) == ("not_detected", True)
    assert "not detected after the attempt" in r["msg"]


def test_timeout_is_a_failure_with_the_modules_message(windows):
    h = windows()
    h.module.add(ps_result("timeout", detected_before=False, detected_after=False, changed=True, duration=600.011,
                           msg="the installer was killed with its process tree after the timeout of 600 seconds"))
    r = h.run(exe(timeout=600))
    assert (r["outcome"], r["failed"], r["rc"]) == ("timeout", True, None)


def test_a_module_failure_is_not_retried(windows):
    message = ("checksum mismatch for src 'https://repo.depot.test/pkgs/acme-agent-2.1.0.msi': expected sha256 %s, "
               "got 0000000000000000000000000000000000000000000000000000000000000000; nothing was run" % SHA)
    h = windows()
    h.module.add(module_failed(message, detected_before=False))
    r = h.run(msi(retries=3, retry_after_reboot=True))
    assert (r["outcome"], r["failed"], r["msg"]) == ("failure", True, message)
    assert len(h.module.calls) == 1 and h.raw.commands == []


def test_logged_in_user_with_nobody_logged_on_is_skipped(windows):
    h = windows()
    h.module.add(ps_result("no_user_session", detected_before=False, context="logged_in_user", user=None,
                           msg="run_as logged_in_user: no user is logged on"))
    r = h.run(exe(run_as="logged_in_user", retries=3))
    assert (r["outcome"], r["skipped"], r["failed"], r["changed"]) == ("no_user_session", True, False, False)
    assert r["msg"] == "run_as logged_in_user: no user is logged on"
    assert r["run_as"] == dict(context="logged_in_user", user=None)
    assert len(h.module.calls) == 1


def test_run_as_user_password_reaches_the_module_and_nothing_else(windows):
    h = windows()
    h.module.add(msi_executed(0, context="user", user="CORP\\svc-deploy",
                              cmd=[MSIEXEC, "/i", "C:\\x.msi", "/qn", "PASSWORD=********"]))
    r = h.run(exe(run_as="user", run_as_user="CORP\\svc-deploy", run_as_password=CANARY))
    assert h.module.calls[0]["module_args"]["run_as_password"] == CANARY
    assert r["run_as"] == dict(context="user", user="CORP\\svc-deploy")
    assert CANARY not in json.dumps(r)


def test_check_mode_is_detection_only(windows):
    h = windows()
    h.module.add(would_change(False, boot_id=BOOT_1, changed=True))
    r = h.run(msi(reboot_timing="immediate"), check_mode=True)
    assert (r["outcome"], r["changed"], r["failed"]) == ("would_change", True, False)
    assert len(h.module.calls) == 1 and h.raw.commands == []


# ------------------------------------------------------------------------------------------------
# Unreachable


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_connection_refused_at_first_contact_is_unreachable_at_once(windows, transport):
    h = windows(transport=transport)
    h.module.add(AnsibleConnectionFailure(REFUSED[transport]))
    r = h.run(msi(retries=3))
    assert (r["outcome"], r["unreachable"], r["failed"]) == ("unreachable", True, False)
    assert "Connection refused" in r["msg"]
    assert len(h.module.calls) == 1 and h.raw.commands == [] and h.clock.sleeps == []


@pytest.mark.parametrize("message", [PSRP_AUTH, WINRM_AUTH, PSRP_CONNECT_TIMEOUT, PSRP_ABORTED_AT_OPEN],
                         ids=["psrp-auth", "winrm-auth", "psrp-connect-timeout", "psrp-dropped-at-open"])
def test_windows_connect_failures_at_first_contact_are_unreachable_at_once(windows, message):
    h = windows()
    h.connect_failures.append(AnsibleConnectionFailure(message))
    h.raw.on("boot_time", AnsibleConnectionFailure(message))
    r = h.run(msi())
    assert (r["outcome"], r.get("unreachable")) == ("unreachable", True)
    assert h.raw.commands == []


def test_psrp_lets_connection_errors_during_a_command_through_unwrapped(windows):
    """Evidence for the next two tests: ansible-core's psrp plugin wraps errors while it connects
    (see REFUSED) but not while a command runs, so the action sees requests' own exception."""
    h = windows()
    connection = h.connection
    connection._build_kwargs()
    connection._connected = True
    connection.runspace = object()

    def dropped(**kwargs):
        raise requests.exceptions.ConnectionError(ABORTED)
    connection._exec_psrp_script = dropped
    with pytest.raises(requests.exceptions.ConnectionError) as raised:
        connection.exec_command("(Get-CimInstance -ClassName Win32_OperatingSystem).LastBootUpTime.ToFileTime()")
    assert not isinstance(raised.value, AnsibleConnectionFailure)


def test_raw_requests_error_mid_attempt_is_resolved_by_detection(windows):
    h = windows()
    h.module.add(msi_busy(), requests.exceptions.ConnectionError(ABORTED), satisfied(True, boot_id=BOOT_2))
    h.raw.on("boot_time", AnsibleConnectionFailure(REFUSED["psrp"]), boot_time(BOOT_2))
    h.raw.on("test", READY)
    r = h.run(msi(retries=1, retry_interval=1))
    assert (r["outcome"], r["rebooted"]) == ("success", True)


def test_raw_requests_error_while_polling_is_polled_again(windows):
    h = windows()
    h.module.add(msi_executed(3010), satisfied(True, boot_id=BOOT_2))
    h.raw.on("reboot", SHUTDOWN_OK)
    h.raw.on("boot_time", boot_time(BOOT_1), requests.exceptions.ConnectionError(RESET_BY_PEER), boot_time(BOOT_2))
    h.raw.on("test", READY)
    r = h.run(msi(reboot_timing="immediate"))
    assert (r["outcome"], r["rebooted"]) == ("soft_reboot", True)


# ------------------------------------------------------------------------------------------------
# Bad input: rejected before anything reaches the host, with a message naming the option


@pytest.mark.parametrize("args, message", [
    (msi(installer_type="deb"), "installer_type deb is for POSIX hosts; this host is Windows"),
    (msi(installer_type="rpm"), "installer_type rpm is for POSIX hosts; this host is Windows"),
    (exe(installer_type="script", src="C:\\x.ps1"), "installer_type script is for POSIX hosts; this host is Windows"),
    (exe(run_as="user", run_as_user="CORP\\svc-deploy"),
     "run_as_password is required when run_as is user on a Windows host"),
    (exe(run_as="user"), "run_as_user is required when run_as is user"),
    (exe(run_as_password=CANARY), "run_as_password is only used with run_as: user, but run_as is system"),
    (msi(detection=dict(rules=[dict(type="dpkg", name="acme-agent")])),
     "detection.rules[0].type dpkg cannot be evaluated on a Windows host"),
    (msi(detection=dict(match="any", rules=[dict(type="msi", product_code=PRODUCT_CODE),
                                            dict(type="rpm", name="acme-agent")])),
     "detection.rules[1].type rpm cannot be evaluated on a Windows host"),
    (msi(detection=dict(rules=[dict(type="registry")])), "detection.rules[0].key is required for a registry rule"),
    (exe(detection=None), "detection is required for installer_type exe"),
    (exe(install_command=None), "install_command is required for installer_type exe with state present"),
    (msi(checksum=None), "checksum (sha256) is required when src is a URL"),
    (msi(src=None, checksum=None), "src is required to install a package of installer_type msi"),
    (msi(exit_codes=dict(success=[0, 3010], soft_reboot=[3010])),
     "exit code 3010 is in two classes: exit_codes.success and exit_codes.soft_reboot"),
    (msi(reboot_timeout=0), "reboot_timeout must be more than 0, got 0"),
    (msi(reboot_not_after="tomorrow 06:00"), "reboot_not_after must be an ISO 8601 date and time with a UTC offset"),
    (msi(reboot_not_after="2026-05-01T06:00:00"), "reboot_not_after must be an ISO 8601 date and time with a UTC offset"),
    (msi(environment={"ACME SITE": "lab"}), "environment: 'ACME SITE' is not a valid environment variable name"),
    (msi(run_as_logon_type="network"), "run_as_logon_type"),
    (msi(installer_typo="msi"), "Unsupported parameters for (depot.software.package) module: installer_typo"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_bad_input_is_rejected_before_the_host_is_touched(windows, args, message):
    h = windows()
    args = {k: v for k, v in args.items() if v is not None}
    r = h.run(args)
    assert (r["outcome"], r["failed"], r["changed"]) == ("invalid", True, False)
    assert message in r["msg"]
    assert h.untouched()
    assert CANARY not in json.dumps(r)


def test_every_problem_is_reported_at_once(windows):
    h = windows()
    r = h.run(exe(installer_type="deb", run_as="user", run_as_user="CORP\\svc-deploy",
                  detection=dict(rules=[dict(type="dpkg", name="acme")])))
    assert r["outcome"] == "invalid"
    for part in ("installer_type deb", "run_as_password", "detection.rules[0].type dpkg"):
        assert part in r["msg"]
    assert h.untouched()
