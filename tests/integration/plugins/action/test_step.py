"""depot.software.step end to end with ansible-playbook on the lab's real hosts: unless_boot_id (run
only once the host has rebooted) and reboot_not_after (no reboot of ours past the end of the
maintenance window), read back from the hosts themselves."""

import datetime

import pytest

from tests.integration.conftest import installer

pytestmark = pytest.mark.lab


def step(marker, kind="ok", unless_boot_id=None, **args):
    """A package step whose installer is a lab test installer and whose detection is its marker."""
    package = dict(name=marker.rsplit("/", 1)[-1], installer_type="script", src=installer(kind),
                   install_command=["{installer}", marker], detection=dict(rules=[dict(type="file", path=marker)]))
    package.update(args)
    options = dict(id=3, name="agent", action="package", args=package)
    if unless_boot_id is not None:
        options["unless_boot_id"] = unless_boot_id
    return {"depot.software.step": options, "register": "r"}


def exists(lab, host, path):
    return lab.host_path(host, path).exists()


def instant(**delta):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(**delta)).isoformat()


def test_unless_boot_id_runs_nothing_until_the_host_has_rebooted(lab, play):
    host, marker = "h4", "/opt/depot-test/step-after-reboot"
    boot = lab.boot_id(host)
    lab.reset_commands(host)
    waiting = play([step(marker, unless_boot_id=boot)], host).last(host)
    assert (waiting["outcome"], waiting["changed"], waiting.get("failed", False)) == ("awaiting_reboot", False, False)
    assert waiting["boot_id"] == boot
    assert waiting["msg"] == "the host has not rebooted since boot id %s; not run" % boot
    assert waiting["step"] == dict(id=3, name="agent", action="package")
    commands = lab.commands(host)
    assert len(commands) == 1 and "/proc/sys/kernel/random/boot_id" in commands[0], commands
    assert not exists(lab, host, marker)

    lab.reboot(host)
    ran = play([step(marker, unless_boot_id=boot)], host).last(host)
    assert (ran["outcome"], ran["changed"], ran.get("failed", False)) == ("success", True, False)
    assert ran["boot_id"] == lab.boot_id(host) != boot
    assert exists(lab, host, marker)


def test_unless_boot_id_of_an_unreachable_host_is_unreachable(lab, play):
    host = "h4"
    lab.offline(host)
    try:
        results = play([step("/opt/depot-test/step-offline", unless_boot_id="x")], host)
    finally:
        lab.online(host)
    assert results.stats(host)["unreachable"] == 1
    assert results.last(host)["outcome"] == "unreachable"


def test_soft_reboot_past_the_maintenance_window_is_held_back(lab, play):
    host, marker = "h5", "/opt/depot-test/step-window-closed"
    boot = lab.boot_id(host)
    closes = instant(minutes=-5)
    r = play([step(marker, "soft-reboot", reboot_timing="immediate", reboot_not_after=closes)], host).last(host)
    assert (r["outcome"], r["reboot_required"], r["rebooted"], r.get("failed", False)) == ("soft_reboot", True, False, False)
    assert r["attempts"][0]["rc"] == 3010
    assert "the reboot was held back because the maintenance window closes at %s" % closes in r["msg"]
    assert lab.boot_id(host) == boot == r["boot_id"]
    assert exists(lab, host, marker)


def test_soft_reboot_with_the_window_open_an_hour_reboots_as_before(lab, play):
    host, marker = "h5", "/opt/depot-test/step-window-open"
    boot = lab.boot_id(host)
    r = play([step(marker, "soft-reboot", reboot_timing="immediate", reboot_not_after=instant(hours=1))], host).last(host)
    assert (r["outcome"], r["reboot_required"], r["rebooted"], r.get("failed", False)) == ("soft_reboot", False, True, False)
    assert lab.boot_id(host) != boot
    assert r["boot_id"] == lab.boot_id(host)
    assert exists(lab, host, marker)
