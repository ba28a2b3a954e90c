"""Self-test of the lab (tests/lab): the hosts are real, private, rebootable, and leave nothing behind."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab import HOST_INSTALLERS, Lab, LabError

REPO = Path(__file__).resolve().parents[2]


def netns_pids(lab: Lab, host: str) -> set[int]:
    out = subprocess.run(["ip", "netns", "pids", lab.host(host).netns], capture_output=True, text=True, check=True)
    return {int(pid) for pid in out.stdout.split()}


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds (bounded; no timing is asserted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def test_every_host_answers_ansible_ping(lab: Lab, lab_inventory: Path) -> None:
    result = subprocess.run(
        [str(REPO / ".venv/bin/ansible"), "lab", "-i", str(lab_inventory), "-m", "ansible.builtin.ping"],
        cwd=REPO, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for host in lab.hosts:
        assert f"{host.name} | SUCCESS" in result.stdout


def test_hostnames_differ(lab: Lab) -> None:
    names = [lab.ssh(host, "hostname").stdout.strip() for host in lab.hosts]
    assert names == [host.name for host in lab.hosts]


def test_a_file_written_in_one_host_is_invisible_elsewhere(lab: Lab) -> None:
    path = "/opt/depot-selftest/only-in-h1"
    assert lab.ssh("h1", f"mkdir -p /opt/depot-selftest && echo h1 > {path}").returncode == 0
    assert lab.ssh("h1", f"cat {path}").stdout == "h1\n"
    assert lab.ssh("h2", f"test -e {path}").returncode == 1
    assert not Path(path).exists()  # nor on the machine itself
    assert lab.host_path("h1", path).read_text() == "h1\n"


def test_reboot_ends_every_process_and_changes_the_boot_id(lab: Lab) -> None:
    # a session child that outlives its ssh session, like an installer started in the background
    assert lab.ssh("h3", "setsid sleep 1000 </dev/null >/dev/null 2>&1 &").returncode == 0
    old_processes = netns_pids(lab, "h3")
    old_boot = lab.boot_id("h3")
    assert len(old_processes) >= 2  # sshd and the sleep

    lab.reboot("h3", delay=0.5)

    assert lab.boot_id("h3") != old_boot
    assert lab.ssh("h3", "cat /proc/sys/kernel/random/boot_id").stdout.strip() == lab.boot_id("h3")
    assert not old_processes & netns_pids(lab, "h3")
    assert "sleep 1000" not in lab.ssh("h3", "ps -eo args").stdout


def test_lab_reboot_inside_the_host(lab: Lab) -> None:
    old_boot = lab.boot_id("h4")
    result = lab.ssh("h4", "/usr/local/sbin/lab-reboot 0.5; echo returned")
    assert result.returncode == 0 and result.stdout == "returned\n"
    assert wait_for(lambda: lab.boot_id("h4") != old_boot)
    assert wait_for(lambda: lab.ssh("h4", "true").returncode == 0)
    assert lab.ssh("h4", "cat /proc/sys/kernel/random/boot_id").stdout.strip() == lab.boot_id("h4") != old_boot


def test_hard_reboot_installer_reboots_the_host(lab: Lab) -> None:
    old_boot = lab.boot_id("h5")
    result = lab.ssh("h5", f"DEPOT_RESULT_FILE=/root/rc {HOST_INSTALLERS}/hard-reboot /opt/hard && cat /root/rc")
    assert result.stdout.splitlines()[-1] == "1641"
    assert wait_for(lambda: lab.boot_id("h5") != old_boot)
    assert wait_for(lambda: lab.ssh("h5", "test -e /opt/hard").returncode == 0)


def test_installers_report_their_codes(lab: Lab) -> None:
    expected = {  # installer: (code, marker made)
        "ok": (0, True), "soft-reboot": (3010, True), "fail": (1603, False), "lie": (0, False),
    }
    for installer, (code, made) in expected.items():
        marker = f"/opt/installers/{installer}"
        run = f"DEPOT_RESULT_FILE=/tmp/rc {HOST_INSTALLERS}/{installer} {marker} >/dev/null 2>&1; cat /tmp/rc"
        assert lab.ssh("h6", run).stdout.strip() == str(code), installer
        assert lab.host_path("h6", marker).exists() == made, installer
        # without a result file, the exit status is the code modulo 256
        assert lab.ssh("h7", f"{HOST_INSTALLERS}/{installer} {marker}").returncode == code % 256, installer
    busy = [lab.ssh("h6", f"{HOST_INSTALLERS}/busy-then-ok /opt/busy 2").returncode for _ in range(3)]
    assert busy == [1618 % 256, 1618 % 256, 0]
    assert [lab.ssh("h6", f"{HOST_INSTALLERS}/uninstall /opt/busy").returncode for _ in range(2)] == [0, 1605 % 256]


def test_fail_until_reboot_and_hang(lab: Lab) -> None:
    assert lab.ssh("h8", f"{HOST_INSTALLERS}/fail-until-reboot /opt/fur").returncode == 1603 % 256
    assert lab.ssh("h8", f"{HOST_INSTALLERS}/fail-until-reboot /opt/fur").returncode == 1603 % 256
    assert lab.ssh("h8", f"setsid {HOST_INSTALLERS}/hang /opt/hang </dev/null >/dev/null 2>&1 &").returncode == 0
    assert wait_for(lambda: lab.host_path("h8", "/opt/hang.pids").exists())
    hang_pids = {int(pid) for pid in lab.host_path("h8", "/opt/hang.pids").read_text().split()}
    assert hang_pids <= netns_pids(lab, "h8")
    lab.reboot("h8", delay=0)
    assert not hang_pids & netns_pids(lab, "h8")
    assert lab.ssh("h8", f"{HOST_INSTALLERS}/fail-until-reboot /opt/fur").returncode == 0
    assert lab.host_path("h8", "/opt/fur").exists()


def test_offline_host_is_unreachable_until_online(lab: Lab) -> None:
    lab.offline("h2")
    try:
        assert lab.ssh("h2", "true").returncode == 255
    finally:
        lab.online("h2")
    assert wait_for(lambda: lab.ssh("h2", "true").returncode == 0)


def test_inventory_has_each_hosts_mac(lab: Lab, lab_inventory: Path) -> None:
    result = subprocess.run([str(REPO / ".venv/bin/ansible-inventory"), "-i", str(lab_inventory), "--list"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    hostvars = json.loads(result.stdout)["_meta"]["hostvars"]
    macs = [hostvars[host.name]["depot_mac"] for host in lab.hosts]
    assert len(set(macs)) == len(macs)
    for host, mac in zip(lab.hosts, macs):
        assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac) and int(mac[:2], 16) & 1 == 0, mac  # unicast
        link = lab.exec(host, ["ip", "-o", "link", "show", "eth0"]).stdout
        assert re.search(r"link/ether (\S+)", link).group(1) == mac == host.mac, link


def test_offline_host_hears_broadcasts_only(lab: Lab) -> None:
    """Like a powered-off machine's Wake-on-LAN card: broadcasts arrive, unicast does not."""
    with lab.wol_listener("h4", port=40009) as listener, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        assert lab.ssh("h4", "true").returncode == 0  # the machine knows h4's MAC: the unicast is sent, then lost
        lab.offline("h4")
        try:
            assert not lab.is_online("h4")
            sock.sendto(b"unicast", (lab.host("h4").address, 40009))
            sock.sendto(b"broadcast", (lab.broadcast, 40009))
            assert listener.wait(1) == [b"broadcast"]
        finally:
            lab.online("h4")
        assert lab.is_online("h4")
        sock.sendto(b"unicast again", (lab.host("h4").address, 40009))
        assert listener.wait(2) == [b"broadcast", b"unicast again"]
    assert wait_for(lambda: lab.ssh("h4", "true").returncode == 0)


def test_commands_records_each_remote_command_once(lab: Lab) -> None:
    lab.reset_commands("h1")
    assert subprocess.run(lab.ssh_argv("h1") + ["true"], stdin=subprocess.DEVNULL).returncode == 0
    assert lab.commands("h1") == ["true"]
    multiline = "echo one\necho two\n"
    assert lab.ssh("h1", multiline).stdout == "one\ntwo\n"
    assert lab.commands("h1") == ["true", multiline]
    lab.reset_commands("h1")
    assert lab.commands("h1") == []


def test_logged_in_user_shows_in_who(lab: Lab) -> None:
    lab.add_user("h2", "alice")
    assert lab.ssh("h3", "id alice").returncode == 1  # users are private to their host
    lab.login("h2", "alice")
    try:
        assert lab.exec("h2", ["who"]).stdout.split()[0] == "alice"
        assert lab.ssh("h2", "users").stdout.split() == ["alice"]
        assert lab.ssh("h2", "id -un", user="alice").stdout == "alice\n"
    finally:
        lab.logout("h2", "alice")
    assert lab.exec("h2", ["who"]).stdout == ""


def test_hosts_fetch_from_serve(lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "payload.txt").write_text("content\n")
    url = lab.serve(tmp_path)
    fetch = f"python3 -c 'import urllib.request; print(urllib.request.urlopen(\"{url}/payload.txt\").read().decode(), end=\"\")'"
    assert lab.ssh("h7", fetch).stdout == "content\n"


def test_cli_status(lab: Lab) -> None:
    result = subprocess.run([sys.executable, "-m", "tests.lab", "status", "--workdir", str(lab.workdir)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    hosts = json.loads(result.stdout)["hosts"]
    assert sorted(hosts) == sorted(h.name for h in lab.hosts)
    assert all(h["sshd"] and h["online"] and h["keeper"] for h in hosts.values())


def test_a_lab_in_use_is_not_torn_down_by_another_up(lab: Lab) -> None:
    """A second process (here: object) asking for the same prefix is refused, not obeyed."""
    with pytest.raises(LabError, match="is in use by process"):
        Lab(prefix=lab.prefix, hosts=2, workdir=lab.workdir, subnet=str(lab.subnet)).up()
    assert lab.ssh("h1", "true").returncode == 0


def test_down_after_a_crash_leaves_nothing_behind(lab: Lab) -> None:
    """A second, small lab is abandoned with a stray process (a crashed test); ``down()`` cleans it all."""
    workdir = Path("/var/tmp/depot-lab-selftest")
    crashed = Lab(prefix="dlabx", hosts=2, workdir=workdir, subnet="10.213.47.192/26").up()
    stray = subprocess.Popen(crashed._enter(crashed.host("h1")) + ["sleep", "1000"], start_new_session=True)
    assert crashed.ssh("h2", "true").returncode == 0
    crashed._release()  # what the crash of its process does to the lab's lock

    survivor = Lab(prefix="dlabx", hosts=2, workdir=workdir, subnet="10.213.47.192/26")
    survivor.down()
    survivor.down()  # idempotent

    assert stray.wait(timeout=10) != 0
    assert "dlabx-" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "dlabx-" not in subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert str(workdir) not in Path("/proc/self/mountinfo").read_text()
    assert not (workdir / "hosts").exists()
    assert lab.ssh("h1", "true").returncode == 0  # the other lab is untouched
