"""depot.software.preflight with ansible-playbook on the lab's real hosts: every expectation is
set up inside one host (a lock holder, a logged-in user, a reboot flag) and checked against
another host that has none of it, so a check that reads the machine instead of the host fails."""

import os
import time

import pytest

pytestmark = pytest.mark.lab

LOCK = "/var/lib/dpkg/lock-frontend"
READY = "/opt/depot-test/helper-preflight/lock-held"

# Holds the dpkg frontend lock the way dpkg does (a POSIX record lock on the whole file), says
# so in a file, and lets go after at most 300 s even when the test cannot stop it.
HOLDER = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o640)\n"
    "fcntl.lockf(fd, fcntl.LOCK_EX)\n"
    "os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)\n"
    "open(sys.argv[2], 'w').write(str(os.getpid()))\n"
    "time.sleep(300)\n"
)


def preflight(**args):
    return {"depot.software.preflight": args, "register": "r"}


def ok(result):
    return not result.get("failed", False) and not result.get("unreachable", False)


@pytest.fixture
def lock_holder(lab):
    """Start a process inside h5 that holds the dpkg frontend lock; yields its pid; ends it."""
    host = "h5"
    lab.exec(host, ["rm", "-f", READY])
    started = lab.exec(host, ["/bin/sh", "-c", 'nohup python3 -c "$1" "$2" "$3" >/dev/null 2>&1 </dev/null & echo $!',
                              "sh", HOLDER, LOCK, READY])
    pid = int(started.stdout.strip())
    try:
        for _ in range(200):  # bounded wait for the lock to be taken (not a timing assertion)
            done = lab.exec(host, ["cat", READY])
            if done.returncode == 0 and done.stdout.strip():
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the lock holder did not start")
        assert int(done.stdout.strip()) == pid
        yield pid
    finally:
        lab.exec(host, ["kill", str(pid)])  # only the process this fixture started
        for _ in range(200):
            if lab.exec(host, ["kill", "-0", str(pid)]).returncode != 0:
                break
            time.sleep(0.05)
        lab.exec(host, ["rm", "-f", READY])


def test_installer_busy_while_the_dpkg_lock_is_held_inside_that_host(lab, play, lock_holder):
    results = play([preflight(checks=["installer_busy"])], "h5,h6")
    busy, idle = results.last("h5"), results.last("h6")
    assert ok(busy) and ok(idle)
    assert busy["preflight"]["installer_busy"] == {
        "value": True, "holder": {"pid": lock_holder, "name": "python3", "lock": LOCK}}
    assert (busy["passed"], busy["failed_checks"]) == (False, ["installer_busy"])
    # The lock is h5's own: h6 sees a free package database.
    assert idle["preflight"]["installer_busy"] == {"value": False, "holder": None}
    assert (idle["passed"], idle["failed_checks"]) == (True, [])

    # Required: the task fails, naming the check, the lock and the holder.
    required = play([preflight(checks=["installer_busy"], require=["installer_busy"])], "h5").last("h5")
    assert required.get("failed", False)
    assert required["msg"].startswith("required preflight check(s) failed: installer_busy: ")
    assert LOCK in required["msg"] and str(lock_holder) in required["msg"]


def test_installer_busy_is_false_once_the_holder_is_gone(lab, play):
    # The preflight probe must not have taken or left a lock: nothing holds it now.
    result = play([preflight(checks=["installer_busy"], require=["installer_busy"])], "h5").last("h5")
    assert ok(result), result.get("msg")
    assert result["preflight"]["installer_busy"] == {"value": False, "holder": None}


def ensure_user(lab, host, name):
    if lab.exec(host, ["id", "-u", name]).returncode != 0:
        lab.add_user(host, name)


def test_logged_on_users_follow_lab_logins(lab, play):
    host, other, user = "h6", "h5", "dhlpsession"
    ensure_user(lab, host, user)
    before = play([preflight(checks=["logged_on_users"])], host).last(host)
    assert ok(before) and before["preflight"]["logged_on_users"] == []
    assert before["passed"] is True

    pid = lab.login(host, user)
    try:
        results = play([preflight(checks=["logged_on_users"])], "%s,%s" % (host, other))
        during, elsewhere = results.last(host), results.last(other)
    finally:
        lab.logout(host, user)
    assert ok(during), during.get("msg")
    sessions = during["preflight"]["logged_on_users"]
    assert [s["user"] for s in sessions] == [user], sessions
    session = sessions[0]
    assert session["tty"] and session["tty"].startswith("tty")
    assert (session["remote"], session["remote_host"]) == (False, None)
    assert session["since"] and session["since"].endswith("Z")
    assert (during["passed"], during["failed_checks"]) == (False, ["logged_on_users"])
    # Nobody logged in on the other host: the session is h6's own.
    assert elsewhere["preflight"]["logged_on_users"] == []
    assert lab.exec(host, ["kill", "-0", str(pid)]).returncode != 0

    after = play([preflight(checks=["logged_on_users"])], host).last(host)
    assert ok(after) and after["preflight"]["logged_on_users"] == []


def test_required_free_disk_with_an_impossible_minimum_fails_naming_free_disk(lab, play):
    host = "h6"
    impossible = 1 << 40  # MiB, an exbibyte: more than any disk here
    result = play([preflight(min_free_mb=impossible, require=["free_disk"])], host).last(host)
    assert result.get("failed", False)
    assert result["msg"].startswith("required preflight check(s) failed: free_disk: "), result["msg"]
    assert "below min_free_mb %d" % impossible in result["msg"]
    # Only the required check is named, although others (network: the lab has no default route) fail too.
    assert "network" not in result["msg"] and "power" not in result["msg"]
    disk = result["preflight"]["free_disk"]
    assert (disk["path"], disk["passed"]) == ("/", False)
    assert "free_disk" in result["failed_checks"] and result["passed"] is False
    assert result["boot_id"] == lab.boot_id(host)
    # The value is the host's own root file system, as the machine sees it through host_path.
    st = os.statvfs(str(lab.host_path(host, "/")))
    assert abs(disk["free_mb"] - st.f_bavail * st.f_frsize // (1024 * 1024)) < 256

    # A reachable minimum passes, and the host is untouched by either run.
    fine = play([preflight(checks=["free_disk"], min_free_mb=1, require=["free_disk"])], host).last(host)
    assert ok(fine) and fine["preflight"]["free_disk"]["passed"] is True


def test_pending_reboot_reads_the_hosts_own_flag(lab, play):
    host, other = "h5", "h6"
    machine_flag = os.path.exists("/run/reboot-required")
    # /var/run -> /run, which is private to each host: write the flag from inside the host.
    lab.exec(host, "printf 'dhlp-kernel\\ndhlp-libc\\n' > /var/run/reboot-required.pkgs && touch /var/run/reboot-required")
    try:
        assert lab.exec(host, ["test", "-e", "/run/reboot-required"]).returncode == 0
        assert os.path.exists("/run/reboot-required") == machine_flag  # not the machine's /run
        results = play([preflight(checks=["pending_reboot"])], "%s,%s" % (host, other))
        flagged, clean = results.last(host), results.last(other)
        assert ok(flagged) and ok(clean)
        assert flagged["preflight"]["pending_reboot"] == {"value": True, "reasons": ["dhlp-kernel", "dhlp-libc"]}
        assert flagged["failed_checks"] == ["pending_reboot"]
        assert clean["preflight"]["pending_reboot"] == {"value": False, "reasons": []}

        # Without the package list the flag file itself is the reason.
        lab.exec(host, ["rm", "-f", "/run/reboot-required.pkgs"])
        bare = play([preflight(checks=["pending_reboot"])], host).last(host)
        assert bare["preflight"]["pending_reboot"] == {"value": True, "reasons": ["/var/run/reboot-required"]}
    finally:
        lab.exec(host, ["rm", "-f", "/run/reboot-required", "/run/reboot-required.pkgs"])
    cleared = play([preflight(checks=["pending_reboot"], require=["pending_reboot"])], host).last(host)
    assert ok(cleared) and cleared["preflight"]["pending_reboot"]["value"] is False


def test_boot_id_is_the_hosts_own_and_only_requested_checks_appear(lab, play):
    results = play([preflight(checks=["free_disk", "free_disk", "power"])], "h5,h6")
    ids = set()
    for host in ("h5", "h6"):
        result = results.last(host)
        assert ok(result), result.get("msg")
        assert result["boot_id"] == lab.boot_id(host)
        assert lab.exec(host, ["cat", "/proc/sys/kernel/random/boot_id"]).stdout.strip() == result["boot_id"]
        assert sorted(result["preflight"]) == ["free_disk", "power"]
        assert result["changed"] is False
        ids.add(result["boot_id"])
    assert len(ids) == 2


def test_network_reports_no_default_route_in_the_lab(lab, play):
    """The lab hosts have no default route (traffic stays in the lab): type none, check fails."""
    result = play([preflight(checks=["network"])], "h6").last("h6")
    assert ok(result)
    assert lab.exec("h6", ["ip", "route", "show", "default"]).stdout.strip() == ""
    assert result["preflight"]["network"] == {"type": "none", "metered": None, "interface": None}
    assert result["failed_checks"] == ["network"]
