"""Tests of depot.software.preflight (POSIX) and the utmp reader it shares with `package`.

Function-level tests import the module; the end-to-end tests run it for real on this machine
through `ansible localhost -m depot.software.preflight`.
"""

import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
if os.path.join(ROOT, ".collections") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.depot.software.plugins.module_utils import _utmp  # noqa: E402
from ansible_collections.depot.software.plugins.modules import preflight  # noqa: E402

from tests.unit.plugins.modules.localhost import run_module  # noqa: E402


# ------------------------------------------------------------------------------------------------
# helpers


class Failed(Exception):
    pass


class FakeModule:
    """Enough of AnsibleModule for the check functions: scripted commands, recorded warnings."""

    def __init__(self, bins=None, commands=None):
        self.bins = bins or {}
        self.commands = commands or {}
        self.ran = []
        self.warnings = []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return self.bins.get(name)

    def run_command(self, args, **kwargs):
        assert isinstance(args, list), "commands must be argv lists"
        self.ran.append(args)
        for key, answer in self.commands.items():
            if tuple(args[: len(key)]) == key:
                return answer
        raise AssertionError("unexpected command %r" % (args,))

    def warn(self, msg):
        self.warnings.append(msg)

    def fail_json(self, **kwargs):
        raise Failed(kwargs)


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


class LockHolder:
    """A separate process holding an fcntl (lockf) lock, as dpkg/apt do.

    POSIX locks belong to a process and a probe from the same process neither sees its own lock
    nor may close a descriptor of the file without dropping it, so the holder is a child.
    """

    def __init__(self, path, shared=False):
        code = textwrap.dedent("""
            import fcntl, os, sys
            fd = os.open(sys.argv[1], os.O_RDWR)
            if sys.argv[2] == "shared":
                fcntl.fcntl(fd, fcntl.F_SETLK, __import__("struct").pack("hhqqi4x", fcntl.F_RDLCK, 0, 0, 0, 0))
            else:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            print("locked", flush=True)
            sys.stdin.read()
        """)
        self.proc = subprocess.Popen([sys.executable, "-c", code, path, "shared" if shared else "exclusive"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "locked"
        self.pid = self.proc.pid

    def release(self):
        self.proc.stdin.close()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


# ------------------------------------------------------------------------------------------------
# utmp reader (module_utils/_utmp.py)


def write_utmp(path, records):
    with open(path, "wb") as f:
        for rec in records:
            f.write(_utmp.pack_utmp_record(**rec))


def test_utmp_record_is_glibc_x86_64_size():
    assert _utmp.RECORD_SIZE == 384


@pytest.mark.skipif(not shutil.which("cc"), reason="no C compiler to ask glibc for its layout")
def test_utmp_layout_matches_glibc(tmp_path):
    src = tmp_path / "layout.c"
    src.write_text(textwrap.dedent("""
        #include <utmp.h>
        #include <stdio.h>
        #include <stddef.h>
        int main(void) {
            printf("%zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu\\n", sizeof(struct utmp),
                   offsetof(struct utmp, ut_type), offsetof(struct utmp, ut_pid),
                   offsetof(struct utmp, ut_line), offsetof(struct utmp, ut_id),
                   offsetof(struct utmp, ut_user), offsetof(struct utmp, ut_host),
                   offsetof(struct utmp, ut_exit), offsetof(struct utmp, ut_session),
                   offsetof(struct utmp, ut_tv), offsetof(struct utmp, ut_addr_v6));
            return 0;
        }
    """))
    exe = tmp_path / "layout"
    subprocess.run(["cc", "-o", str(exe), str(src)], check=True)
    glibc = [int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    # offsets implied by our struct format
    ours = [_utmp.RECORD_SIZE, 0, 4, 8, 40, 44, 76, 332, 336, 340, 348]
    assert glibc == ours
    # and the format really puts the fields there
    raw = _utmp.pack_utmp_record(type=7, pid=0x01020304, line="L", id="I", user="U", host="H",
                                 session=0x0A0B0C0D, tv_sec=0x11223344, addr="10.1.2.3")
    assert struct.unpack_from("<h", raw, 0)[0] == 7
    assert struct.unpack_from("<i", raw, 4)[0] == 0x01020304
    assert raw[8:9] == b"L" and raw[40:41] == b"I" and raw[44:45] == b"U" and raw[76:77] == b"H"
    assert struct.unpack_from("<i", raw, 336)[0] == 0x0A0B0C0D
    assert struct.unpack_from("<i", raw, 340)[0] == 0x11223344
    assert raw[348:352] == socket.inet_aton("10.1.2.3")


def test_utmp_parse_written_file(tmp_path):
    path = str(tmp_path / "utmp")
    me, gone = os.getpid(), dead_pid()
    write_utmp(path, [
        dict(type=_utmp.BOOT_TIME, line="~", user="reboot", tv_sec=1700000000),
        dict(type=_utmp.LOGIN_PROCESS, pid=me, line="tty1", id="tty1", user="LOGIN"),
        dict(type=_utmp.USER_PROCESS, pid=me, line="pts/0", id="ts/0", user="alice",
             host="192.0.2.10", addr="192.0.2.10", session=77, tv_sec=1767168000, tv_usec=5),
        dict(type=_utmp.USER_PROCESS, pid=me, line="tty7", id="tty7", user="bob", host=":0", tv_sec=1767168060),
        dict(type=_utmp.USER_PROCESS, pid=gone, line="pts/1", id="ts/1", user="carol",
             host="2001:db8::5", addr="2001:db8::5"),
        dict(type=_utmp.DEAD_PROCESS, pid=me, line="pts/2", id="ts/2", user="dave"),
        dict(type=_utmp.USER_PROCESS, pid=me, line="pts/3", id="ts/3", user="alice"),
    ])
    with open(path, "ab") as f:
        f.write(b"\x07\x00partial")  # a torn trailing record is ignored

    records = _utmp.read_utmp(path)
    assert len(records) == 7
    alice = records[2]
    assert alice.type == _utmp.USER_PROCESS and alice.user == "alice" and alice.line == "pts/0"
    assert alice.id == "ts/0" and alice.host == "192.0.2.10" and alice.addr == "192.0.2.10"
    assert alice.session == 77 and alice.tv_sec == 1767168000 and alice.tv_usec == 5 and alice.pid == me
    assert records[4].addr == "2001:db8::5"
    assert records[0].addr is None and records[0].type == _utmp.BOOT_TIME

    live = _utmp.user_sessions(path)
    assert [(r.user, r.line) for r in live] == [("alice", "pts/0"), ("bob", "tty7"), ("alice", "pts/3")]
    everyone = _utmp.user_sessions(path, alive_only=False)
    assert [r.user for r in everyone] == ["alice", "bob", "carol", "alice"]
    assert _utmp.logged_in_users(path) == ["alice", "bob"]
    assert _utmp.logged_in_users(path, alive_only=False) == ["alice", "bob", "carol"]

    sessions = preflight.utmp_sessions(path)
    assert sessions[0] == {"user": "alice", "session": None, "tty": "pts/0", "state": None, "remote": True,
                           "remote_host": "192.0.2.10", "since": "2025-12-31T08:00:00Z"}
    assert sessions[1]["remote"] is False and sessions[1]["remote_host"] is None  # X display, not a host
    assert sessions[2]["since"] is None


def test_utmp_missing_file_means_nobody(tmp_path):
    assert _utmp.read_utmp(str(tmp_path / "nope")) == []
    assert _utmp.logged_in_users(str(tmp_path / "nope")) == []


def test_utmp_long_fields_are_truncated_not_overflowing():
    raw = _utmp.pack_utmp_record(user="u" * 100, host="h" * 300, line="l" * 40)
    assert len(raw) == 384
    rec = _utmp.parse_utmp(raw)[0]
    assert rec.user == "u" * 32 and rec.host == "h" * 256 and rec.line == "l" * 32


# ------------------------------------------------------------------------------------------------
# installer_busy


def test_probe_lock_free_missing_and_held(tmp_path):
    lock = tmp_path / "lock-frontend"
    lock.write_bytes(b"")
    assert preflight.probe_lock(str(tmp_path / "absent")) == (False, None, None)
    assert preflight.probe_lock(str(lock)) == (False, None, None)
    with LockHolder(str(lock)) as holder:
        assert preflight.probe_lock(str(lock)) == (True, holder.pid, None)
    assert preflight.probe_lock(str(lock)) == (False, None, None)  # the probe never kept it


def test_probe_lock_sees_shared_locks_too(tmp_path):
    lock = tmp_path / "lock"
    lock.write_bytes(b"")
    with LockHolder(str(lock), shared=True) as holder:
        assert preflight.probe_lock(str(lock)) == (True, holder.pid, None)


def test_installer_busy_reports_first_held_lock(tmp_path):
    free, held = tmp_path / "free", tmp_path / "held"
    free.write_bytes(b"")
    held.write_bytes(b"")
    module = FakeModule()
    with LockHolder(str(held)) as holder:
        result = preflight.check_installer_busy(module, [str(tmp_path / "missing"), str(free), str(held)])
        assert result["value"] is True
        assert result["holder"]["pid"] == holder.pid
        assert result["holder"]["lock"] == str(held)
        assert result["holder"]["name"].startswith("python")
        ok, observed = preflight.evaluate("installer_busy", result)
        assert not ok and str(held) in observed and str(holder.pid) in observed
    assert preflight.check_installer_busy(module, [str(free), str(held)]) == {"value": False, "holder": None}


def test_installer_busy_unknown_when_lock_cannot_be_opened(tmp_path, monkeypatch):
    def deny(path, flags, *a):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(preflight.os, "open", deny)
    module = FakeModule()
    result = preflight.check_installer_busy(module, ["/var/lib/dpkg/lock-frontend"])
    assert result == {"value": None, "holder": None}
    assert "Permission denied" in module.warnings[0]
    assert preflight.evaluate("installer_busy", result)[0] is False


def test_default_lock_files_cover_dpkg_and_rpm():
    assert preflight.DEFAULT_LOCK_FILES[:2] == ["/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"]
    assert "/var/lib/rpm/.rpm.lock" in preflight.DEFAULT_LOCK_FILES


# ------------------------------------------------------------------------------------------------
# pending_reboot


def test_pending_reboot_debian_flag_with_packages(tmp_path):
    flag, pkgs = tmp_path / "reboot-required", tmp_path / "reboot-required.pkgs"
    module = FakeModule()
    assert preflight.check_pending_reboot(module, str(flag), str(pkgs)) == {"value": False, "reasons": []}
    flag.write_text("*** System restart required ***\n")
    assert preflight.check_pending_reboot(module, str(flag), str(pkgs)) == {"value": True, "reasons": [str(flag)]}
    pkgs.write_text("linux-image-6.1.0-27-amd64\nlibc6\nlibc6\n")
    result = preflight.check_pending_reboot(module, str(flag), str(pkgs))
    assert result == {"value": True, "reasons": ["linux-image-6.1.0-27-amd64", "libc6"]}
    ok, observed = preflight.evaluate("pending_reboot", result)
    assert not ok and "libc6" in observed


def test_pending_reboot_needs_restarting(tmp_path):
    out = ("Core libraries or services have been updated since boot-up:\n  * kernel\n  * systemd\n\n"
           "Reboot is required to fully utilize these updates.\n"
           "More information: https://access.redhat.com/solutions/27943\n")
    module = FakeModule(bins={"needs-restarting": "/usr/bin/needs-restarting"},
                        commands={("/usr/bin/needs-restarting", "-r"): (1, out, "")})
    result = preflight.check_pending_reboot(module, str(tmp_path / "f"), str(tmp_path / "p"))
    assert result == {"value": True, "reasons": ["kernel", "systemd"]}
    assert module.ran == [["/usr/bin/needs-restarting", "-r"]]

    module = FakeModule(bins={"needs-restarting": "/usr/bin/needs-restarting"},
                        commands={("/usr/bin/needs-restarting",): (0, "No core libraries or services have been updated.\n", "")})
    assert preflight.check_pending_reboot(module, str(tmp_path / "f"), str(tmp_path / "p"))["value"] is False

    module = FakeModule(bins={"needs-restarting": "/usr/bin/needs-restarting"},
                        commands={("/usr/bin/needs-restarting",): (2, "", "no such option: -r")})
    assert preflight.check_pending_reboot(module, str(tmp_path / "f"), str(tmp_path / "p"))["value"] is False
    assert "no such option" in module.warnings[0]


# ------------------------------------------------------------------------------------------------
# free_disk


def test_free_disk_threshold(tmp_path):
    st = os.statvfs(str(tmp_path))
    free_mb = st.f_bavail * st.f_frsize // (1024 * 1024)
    result = preflight.check_free_disk(str(tmp_path), 0)
    assert result["path"] == str(tmp_path) and result["passed"] is True
    assert abs(result["free_mb"] - free_mb) < 1024  # other writers may change it a little
    huge = free_mb + 10 ** 9
    result = preflight.check_free_disk(str(tmp_path), huge)
    assert result["passed"] is False
    ok, observed = preflight.evaluate("free_disk", result, huge)
    assert not ok
    assert observed == "%d MB free on %s, below min_free_mb %d" % (result["free_mb"], tmp_path, huge)


def test_free_disk_of_a_path_not_created_yet(tmp_path):
    result = preflight.check_free_disk(str(tmp_path / "opt" / "app" / "1.0"), 0)
    assert result["path"] == str(tmp_path / "opt" / "app" / "1.0") and result["passed"] is True


# ------------------------------------------------------------------------------------------------
# logged_on_users


LOGINCTL_SHOW = """Id=3
Name=alice
TTY=pts/0
Remote=yes
RemoteHost=192.0.2.10
State=active
Class=user
TimestampMonotonic=5000000

Id=c1
Name=gdm
TTY=tty1
Remote=no
State=online
Class=greeter
TimestampMonotonic=1000000

Id=5
Name=bob
Display=:0
TTY=
Remote=no
RemoteHost=
State=online
Class=user
TimestampMonotonic=0

Id=6
Name=alice
TTY=
Remote=no
State=active
Class=manager
TimestampMonotonic=4000000

Id=7
Name=carol
TTY=pts/4
Remote=yes
RemoteHost=198.51.100.7
State=closing
Class=user
TimestampMonotonic=6000000
"""


def test_parse_loginctl_show():
    sessions = preflight.parse_loginctl_show(LOGINCTL_SHOW, now=1767168010.0, monotonic_now=15.0)
    assert sessions == [
        {"user": "alice", "session": "3", "tty": "pts/0", "state": "active", "remote": True,
         "remote_host": "192.0.2.10", "since": "2025-12-31T08:00:00Z"},
        {"user": "bob", "session": "5", "tty": ":0", "state": "online", "remote": False,
         "remote_host": None, "since": None},
    ]


def test_loginctl_answers():
    module = FakeModule(bins={"loginctl": "/usr/bin/loginctl"}, commands={
        ("/usr/bin/loginctl", "list-sessions"): (0, "      3 1000 alice        pts/0\n      5 1001 bob   seat0 tty2\n", ""),
        ("/usr/bin/loginctl", "show-session"): (0, LOGINCTL_SHOW, ""),
    })
    sessions = preflight.check_logged_on_users(module)
    assert [s["user"] for s in sessions] == ["alice", "bob"]
    show = module.ran[1]
    assert show[-2:] == ["3", "5"] and "-p" in show


def test_loginctl_without_sessions_means_nobody():
    module = FakeModule(bins={"loginctl": "/usr/bin/loginctl"},
                        commands={("/usr/bin/loginctl", "list-sessions"): (0, "", "")})
    assert preflight.check_logged_on_users(module) == []
    assert preflight.evaluate("logged_on_users", [])[0] is True


def test_logind_not_answering_falls_back_to_utmp(tmp_path, monkeypatch):
    path = str(tmp_path / "utmp")
    write_utmp(path, [dict(type=_utmp.USER_PROCESS, pid=os.getpid(), line="pts/9", user="erin", host="203.0.113.4")])
    monkeypatch.setattr(preflight, "UTMP_PATH", path)
    module = FakeModule(bins={"loginctl": "/usr/bin/loginctl"}, commands={
        ("/usr/bin/loginctl",): (1, "", "System has not been booted with systemd as init system (PID 1). Can't operate.\n"),
    })
    sessions = preflight.check_logged_on_users(module)
    assert [(s["user"], s["tty"], s["remote_host"]) for s in sessions] == [("erin", "pts/9", "203.0.113.4")]
    ok, observed = preflight.evaluate("logged_on_users", sessions)
    assert not ok and observed == "1 user session(s): erin (pts/9)"
    # no loginctl at all: utmp too
    assert preflight.check_logged_on_users(FakeModule())[0]["user"] == "erin"


# ------------------------------------------------------------------------------------------------
# network


ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlan0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
"""
IPV6_ROUTE = (
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fe800000000000000000000000000001 00000400 00000001 00000000 00000003   wwan0\n"
)


def test_default_route_interface(tmp_path):
    route, route6, empty = tmp_path / "route", tmp_path / "ipv6_route", tmp_path / "empty"
    route.write_text(ROUTE)
    route6.write_text(IPV6_ROUTE)
    empty.write_text(ROUTE.splitlines()[0] + "\n")
    assert preflight.default_route_interface(str(route), str(route6)) == "eth0"  # lowest metric
    assert preflight.default_route_interface(str(empty), str(route6)) == "wwan0"  # IPv6 only; lo reject ignored
    assert preflight.default_route_interface(str(empty), str(empty)) is None


def make_iface(root, name, arphrd=1, devtype=None, wireless=False):
    d = root / name
    d.mkdir(parents=True)
    (d / "type").write_text("%d\n" % arphrd)
    (d / "uevent").write_text("INTERFACE=%s\n%s" % (name, "DEVTYPE=%s\n" % devtype if devtype else ""))
    if wireless:
        (d / "wireless").mkdir()


def test_interface_type(tmp_path):
    make_iface(tmp_path, "eth0")
    make_iface(tmp_path, "wlp2s0", wireless=True)
    make_iface(tmp_path, "wlan1", devtype="wlan")
    make_iface(tmp_path, "wwan0", arphrd=519)
    make_iface(tmp_path, "wwp0", devtype="wwan")
    make_iface(tmp_path, "wg0", arphrd=65534)
    make_iface(tmp_path, "ppp0", arphrd=512)
    got = {n: preflight.interface_type(n, str(tmp_path)) for n in
           ("eth0", "wlp2s0", "wlan1", "wwan0", "wwp0", "wg0", "ppp0", "missing")}
    assert got == {"eth0": "ethernet", "wlp2s0": "wifi", "wlan1": "wifi", "wwan0": "cellular",
                   "wwp0": "cellular", "wg0": "tunnel", "ppp0": "other", "missing": "other"}


@pytest.mark.parametrize("answer, expected", [
    ((0, "GENERAL.METERED:yes\n", ""), True),
    ((0, "GENERAL.METERED:yes (guessed)\n", ""), True),
    ((0, "GENERAL.METERED:no (guessed)\n", ""), False),
    ((0, "GENERAL.METERED:unknown\n", ""), None),
    ((8, "", "Error: NetworkManager is not running.\n"), None),
])
def test_nmcli_metered(answer, expected):
    module = FakeModule(bins={"nmcli": "/usr/bin/nmcli"}, commands={("/usr/bin/nmcli",): answer})
    assert preflight.nmcli_metered(module, "wlan0") is expected
    assert module.ran == [["/usr/bin/nmcli", "-t", "-f", "GENERAL.METERED", "device", "show", "wlan0"]]
    assert preflight.nmcli_metered(FakeModule(), "wlan0") is None  # no NetworkManager


def test_network_evaluation():
    assert preflight.evaluate("network", {"type": "none", "metered": None, "interface": None})[0] is False
    assert preflight.evaluate("network", {"type": "wifi", "metered": True, "interface": "wlan0"}) == (
        False, "wifi connection on wlan0 is metered")
    assert preflight.evaluate("network", {"type": "ethernet", "metered": None, "interface": "eth0"})[0] is True


# ------------------------------------------------------------------------------------------------
# power


def supply(root, name, **files):
    d = root / name
    d.mkdir(parents=True)
    for key, value in files.items():
        (d / key).write_text("%s\n" % value)


def test_power_no_supply_is_ac(tmp_path):
    assert preflight.check_power(str(tmp_path / "none")) == {"on_ac": True, "battery_percent": None}
    (tmp_path / "empty").mkdir()
    assert preflight.check_power(str(tmp_path / "empty")) == {"on_ac": True, "battery_percent": None}


def test_power_laptop(tmp_path):
    supply(tmp_path, "AC", type="Mains", online=0)
    supply(tmp_path, "BAT0", type="Battery", status="Discharging", capacity=41, present=1)
    supply(tmp_path, "hidpp_battery_0", type="Battery", scope="Device", status="Discharging", capacity=5)
    result = preflight.check_power(str(tmp_path))
    assert result == {"on_ac": False, "battery_percent": 41}
    assert preflight.evaluate("power", result) == (False, "on battery (41%)")
    (tmp_path / "AC" / "online").write_text("1\n")
    assert preflight.check_power(str(tmp_path)) == {"on_ac": True, "battery_percent": 41}


def test_power_two_batteries_by_energy(tmp_path):
    supply(tmp_path, "BAT0", type="Battery", status="Discharging", energy_now=30000000, energy_full=50000000, capacity=60)
    supply(tmp_path, "BAT1", type="Battery", status="Discharging", energy_now=10000000, energy_full=50000000, capacity=20)
    assert preflight.check_power(str(tmp_path)) == {"on_ac": False, "battery_percent": 40}


def test_power_battery_only_charging_counts_as_ac(tmp_path):
    supply(tmp_path, "BAT0", type="Battery", status="Charging", capacity=80)
    assert preflight.check_power(str(tmp_path)) == {"on_ac": True, "battery_percent": 80}


# ------------------------------------------------------------------------------------------------
# for real, through ansible


def read_boot_id():
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def test_ansible_all_checks_on_this_machine():
    rc, result = run_module("depot.software.preflight", {})
    assert rc == 0, result
    assert result["changed"] is False
    assert set(result["preflight"]) == set(preflight.ALL_CHECKS)
    assert result["boot_id"] == read_boot_id()
    assert result["passed"] is (result["failed_checks"] == [])
    p = result["preflight"]
    assert set(p["pending_reboot"]) == {"value", "reasons"}
    assert set(p["installer_busy"]) == {"value", "holder"}
    assert set(p["free_disk"]) == {"path", "free_mb", "passed"} and p["free_disk"]["path"] == "/"
    assert isinstance(p["logged_on_users"], list)
    assert {"type", "metered"} <= set(p["network"])
    assert set(p["power"]) == {"on_ac", "battery_percent"}


def test_ansible_check_mode_and_subset():
    rc, result = run_module("depot.software.preflight", {"checks": ["power", "free_disk"]}, check=True)
    assert rc == 0, result
    assert set(result["preflight"]) == {"power", "free_disk"}


def test_ansible_installer_busy_while_a_lock_is_held(tmp_path):
    lock = tmp_path / "lock-frontend"
    lock.write_bytes(b"")
    args = {"checks": ["installer_busy"], "lock_files": [str(tmp_path / "lock"), str(lock)]}

    rc, result = run_module("depot.software.preflight", args)
    assert rc == 0, result
    assert result["preflight"]["installer_busy"] == {"value": False, "holder": None}

    fd = os.open(str(lock), os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by this test process, as dpkg would
        rc, result = run_module("depot.software.preflight", args)
        assert rc == 0, result
        busy = result["preflight"]["installer_busy"]
        assert busy["value"] is True
        assert busy["holder"]["pid"] == os.getpid()
        assert busy["holder"]["lock"] == str(lock)
        assert result["failed_checks"] == ["installer_busy"] and result["passed"] is False

        rc, result = run_module("depot.software.preflight", dict(args, require=["installer_busy"]))
        assert rc != 0 and result["failed"] is True
        assert result["msg"].startswith("required preflight check(s) failed: installer_busy:")
        assert str(lock) in result["msg"] and "pid %d" % os.getpid() in result["msg"]
        assert result["preflight"]["installer_busy"]["value"] is True  # facts still returned
    finally:
        os.close(fd)

    # the probe never kept the lock: we can take it again and it is free for the next one
    rc, result = run_module("depot.software.preflight", args)
    assert result["preflight"]["installer_busy"]["value"] is False


def test_ansible_free_disk_threshold_fails_clearly():
    rc, result = run_module("depot.software.preflight",
                            {"checks": ["free_disk", "power"], "min_free_mb": 10 ** 12, "require": ["free_disk"]})
    assert rc != 0 and result["failed"] is True
    free = result["preflight"]["free_disk"]
    assert free["passed"] is False
    assert result["msg"] == ("required preflight check(s) failed: free_disk: %d MB free on /, below min_free_mb %d"
                             % (free["free_mb"], 10 ** 12))
    assert result["failed_checks"] == ["free_disk"] and result["boot_id"] == read_boot_id()


def test_ansible_failing_check_that_is_not_required_only_informs():
    rc, result = run_module("depot.software.preflight", {"checks": ["free_disk"], "min_free_mb": 10 ** 12})
    assert rc == 0 and not result.get("failed")
    assert result["passed"] is False and result["failed_checks"] == ["free_disk"]


def test_ansible_require_of_a_failing_check(tmp_path):
    # of two required checks, free_disk (on a directory that does not exist yet) cannot pass
    rc, result = run_module("depot.software.preflight", {
        "checks": ["free_disk", "network"], "path": str(tmp_path / "not" / "yet"),
        "min_free_mb": 10 ** 12, "require": ["network", "free_disk"]})
    assert rc != 0
    assert "free_disk: " in result["msg"] and str(tmp_path / "not" / "yet") in result["msg"]


@pytest.mark.parametrize("args, option", [
    ({"min_free_mb": -1}, "min_free_mb"),
    ({"checks": ["power"], "require": ["network"]}, "require"),
    ({"checks": ["power", "bogus"]}, "checks"),
    ({"require": ["bogus"]}, "require"),
    ({"path": "relative/dir"}, "path"),
])
def test_ansible_bad_input_names_the_option(args, option):
    rc, result = run_module("depot.software.preflight", args)
    assert rc != 0 and result["failed"] is True
    assert option in result["msg"]
