#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: preflight
short_description: Check whether a host is ready for a software deployment
version_added: 0.1.0
description:
  - Reads, without changing anything, the conditions endpoint-management suites check before they
    install software, in one round trip - a pending reboot, a busy installer, free disk space,
    logged-on users, the network type and the power source.
  - Each check reports what it observed and whether it I(passed). Checks named in O(require) must
    pass, otherwise the task fails with a message naming the check and the observed value; the
    other checks only inform (they are listed in RV(failed_checks)).
  - One module name works on every platform. This file is the POSIX implementation and the
    documentation of both; C(preflight.ps1) is the Windows implementation, picked by Ansible when
    the connection's shell is PowerShell. Both take the same options and return the same keys.
  - "What passing means, per check: C(pending_reboot) - no reboot is pending;
    C(installer_busy) - no installer holds the package manager lock (an unreadable lock counts as
    busy); C(free_disk) - at least O(min_free_mb) MB are free at O(path);
    C(logged_on_users) - nobody is logged on; C(network) - there is a default route and the
    connection is not known to be metered; C(power) - the host runs on AC power."
  - "B(POSIX): C(pending_reboot) reads C(/var/run/reboot-required) (Debian/Ubuntu), with the packages
    in C(/var/run/reboot-required.pkgs) as reasons, and runs C(needs-restarting -r) where it is
    installed (RHEL/Fedora/SUSE with yum-utils or dnf-utils). C(installer_busy) asks the kernel
    (C(fcntl F_GETLK)) whether the dpkg or rpm lock is held, without taking it, so a running
    apt/dpkg/rpm is never disturbed. C(free_disk) uses C(statvfs) (space available to
    unprivileged users). C(logged_on_users) asks systemd-logind (C(loginctl)) and falls back to
    the utmp records in C(/run/utmp) when logind does not answer. C(network) follows the default
    route to its interface and reads its type from C(/sys/class/net); C(metered) comes from
    NetworkManager (C(nmcli)) when present. C(power) reads C(/sys/class/power_supply); a host with
    no power supply entries (servers, virtual machines) is on AC."
  - "B(Windows): C(pending_reboot) reads the usual registry indicators (Component Based Servicing
    C(RebootPending), Windows Update C(RebootRequired), C(PendingFileRenameOperations), a pending
    computer rename, the ConfigMgr client's reboot state when present), each one a reason.
    C(installer_busy) tests the C(Global\\_MSIExecute) mutex (the condition behind MSI error 1618);
    C(holder) is filled when C(msiexec) holding it can be identified. C(free_disk) defaults to the
    system drive. C(logged_on_users) lists the interactive and remote desktop sessions (as
    C(quser) shows them). C(network) uses the connection profile of the default route's
    interface (Ethernet, Wi-Fi, mobile broadband) and its Windows cost (metered) setting.
    C(power) uses C(Win32_Battery); no battery means on AC."
author:
  - Depot developers (!UNKNOWN)
options:
  checks:
    description:
      - The checks to run. Only these appear in RV(preflight).
    type: list
    elements: str
    choices: [pending_reboot, installer_busy, free_disk, logged_on_users, network, power]
    default: [pending_reboot, installer_busy, free_disk, logged_on_users, network, power]
  path:
    description:
      - Where C(free_disk) measures free space - a directory (or a file) on the file system the
        software goes to. It need not exist yet; its nearest existing parent is measured.
      - Must be absolute. Default C(/) on POSIX and the system drive (C($env:SystemDrive\)) on
        Windows.
    type: path
  min_free_mb:
    description:
      - C(free_disk) passes when at least this many megabytes (MiB) are free at O(path).
      - The default C(0) makes the check informative only; set it when you O(require) C(free_disk).
    type: int
    default: 0
  require:
    description:
      - "Checks that must pass. When one of them does not pass, the task fails; C(msg) names each
        failing check with the value observed (for example C(free_disk: 812 MB free on /,
        below min_free_mb 2048)). Every name must also be in O(checks)."
      - The failed result still carries RV(preflight), RV(passed), RV(failed_checks) and RV(boot_id).
    type: list
    elements: str
    choices: [pending_reboot, installer_busy, free_disk, logged_on_users, network, power]
    default: []
  lock_files:
    description:
      - POSIX only (the Windows implementation accepts and ignores it).
      - Lock files C(installer_busy) probes, in order; the first one found held is RV(preflight.installer_busy.holder).
        A missing file counts as not held.
      - The default covers dpkg/apt (C(/var/lib/dpkg/lock-frontend), C(/var/lib/dpkg/lock)) and rpm
        (C(/var/lib/rpm/.rpm.lock), C(/usr/lib/sysimage/rpm/.rpm.lock)).
    type: list
    elements: path
attributes:
  check_mode:
    support: full
    description: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  platform:
    support: full
    platforms: [posix, windows]
    description: Linux (POSIX, this file) and Windows (C(preflight.ps1)).
notes:
  - The module never changes the host, and C(installer_busy) never takes the lock it tests.
  - A check that cannot be evaluated (for example a lock file the remote user may not read) does
    not pass, and a warning says why. Run with C(become) for exact results.
  - The utmp fallback of C(logged_on_users) reads glibc's x86_64 record layout (also used by
    i386 and aarch64); it skips records whose process no longer exists.
seealso:
  - module: depot.software.software_facts
  - module: ansible.builtin.reboot
"""

EXAMPLES = r"""
- name: Gather every preflight fact
  depot.software.preflight:
  register: pre

- name: Install only on AC power with 2 GB free, no pending reboot and an idle package manager
  depot.software.preflight:
    path: /opt
    min_free_mb: 2048
    require: [power, free_disk, pending_reboot, installer_busy]

- name: Defer when somebody is logged on (the play goes on; the result decides)
  depot.software.preflight:
    checks: [logged_on_users]
  register: users

- name: Skip hosts on a metered connection
  ansible.builtin.meta: end_host
  when: pre.preflight.network.metered | default(false)

- name: Windows - wait for a free MSI service
  depot.software.preflight:
    checks: [installer_busy, pending_reboot]
    require: [installer_busy]
  register: msi
  retries: 10
  delay: 30
  until: msi is succeeded
"""

RETURN = r"""
preflight:
  description: What each check in O(checks) observed (a check not run has no key).
  returned: always
  type: dict
  contains:
    pending_reboot:
      description: Pending reboot.
      type: dict
      returned: when C(pending_reboot) is in O(checks)
      contains:
        value:
          description: True when a reboot is pending.
          type: bool
        reasons:
          description:
            - What says so. POSIX - the packages listed in C(/var/run/reboot-required.pkgs) (or
              the flag file's path when it names none) and the items C(needs-restarting -r)
              lists. Windows - the registry indicators found.
          type: list
          elements: str
      sample: {value: true, reasons: [linux-image-6.1.0-27-amd64, libc6]}
    installer_busy:
      description: Whether the package manager / Windows Installer is busy.
      type: dict
      returned: when C(installer_busy) is in O(checks)
      contains:
        value:
          description: True when a lock is held; null when it could not be tested.
          type: bool
        holder:
          description:
            - The lock holder, null when nobody holds it.
            - C(pid) and C(name) are null when the kernel does not say (lock held from
              another PID namespace, an open file description lock).
            - C(lock) is the lock file (POSIX) or the mutex name (Windows).
          type: dict
          sample: {pid: 4242, name: apt-get, lock: /var/lib/dpkg/lock-frontend}
    free_disk:
      description: Free space at O(path).
      type: dict
      returned: when C(free_disk) is in O(checks)
      contains:
        path:
          description: O(path) as given (or the default).
          type: str
        free_mb:
          description: Free megabytes (MiB) available to unprivileged users.
          type: int
        passed:
          description: C(free_mb >= min_free_mb).
          type: bool
      sample: {path: /, free_mb: 20480, passed: true}
    logged_on_users:
      description:
        - One entry per user session, empty when nobody is logged on.
        - C(user) user name; C(session) logind session id (POSIX, null from utmp) or session id
          (Windows); C(tty) terminal or display (C(pts/0), C(tty1), C(:0); Windows session
          name such as C(console) or C(rdp-tcp#0)); C(state) C(active), C(online) or
          C(disconnected) (null from utmp); C(remote) whether the session is remote (ssh, RDP);
          C(remote_host) where from, or null; C(since) login time, ISO 8601 UTC, or null.
        - Null when the sessions could not be read (no logind and an unreadable utmp file); the
          check then does not pass.
      type: list
      elements: dict
      returned: when C(logged_on_users) is in O(checks)
      sample:
        - {user: alice, session: "3", tty: pts/0, state: active, remote: true,
           remote_host: 192.0.2.10, since: "2026-01-31T08:15:02Z"}
    network:
      description: The connection the default route uses.
      type: dict
      returned: when C(network) is in O(checks)
      contains:
        type:
          description: C(ethernet), C(wifi), C(cellular), C(tunnel), C(other), or C(none) (no default route).
          type: str
        metered:
          description: True/false when NetworkManager (POSIX) or Windows says so, otherwise null.
          type: bool
        interface:
          description: The default route's interface name, null with type C(none).
          type: str
      sample: {type: ethernet, metered: null, interface: eth0}
    power:
      description: Power source.
      type: dict
      returned: when C(power) is in O(checks)
      contains:
        on_ac:
          description: True on mains power (also when the host has no power supply information).
          type: bool
        battery_percent:
          description: Charge of the system batteries in percent, null without a battery.
          type: int
      sample: {on_ac: false, battery_percent: 63}
passed:
  description: True when every check in O(checks) passed.
  returned: always
  type: bool
failed_checks:
  description: The checks that did not pass, in O(checks) order (whether required or not).
  returned: always
  type: list
  elements: str
  sample: [logged_on_users]
boot_id:
  description:
    - The host's current boot id, so the caller can tell a reboot happened without another round trip.
    - POSIX C(/proc/sys/kernel/random/boot_id); Windows the last boot time as a FILETIME string.
  returned: always
  type: str
  sample: 86343784-fc80-460f-a315-51707ede89ae
"""

import errno
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.depot.software.plugins.module_utils._locks import DEFAULT_LOCK_FILES, probe_lock
from ansible_collections.depot.software.plugins.module_utils._utmp import user_sessions

ALL_CHECKS = ["pending_reboot", "installer_busy", "free_disk", "logged_on_users", "network", "power"]

REBOOT_REQUIRED = "/var/run/reboot-required"
REBOOT_REQUIRED_PKGS = "/var/run/reboot-required.pkgs"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
PROC_ROUTE = "/proc/net/route"
PROC_IPV6_ROUTE = "/proc/net/ipv6_route"
SYS_NET = "/sys/class/net"
POWER_SUPPLY = "/sys/class/power_supply"
UTMP_PATH = None  # None = /run/utmp, else /var/run/utmp


# ---------------------------------------------------------------------------------------------
# helpers


def _read_text(path, default=None):
    try:
        with open(path, "r") as f:
            return f.read()
    except (IOError, OSError, UnicodeDecodeError):
        return default


def _read_value(path, default=None):
    text = _read_text(path)
    return default if text is None else text.strip()


def _iso_utc(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def read_boot_id(path=BOOT_ID):
    return _read_value(path, "") or ""


def _proc_name(pid):
    if not pid:
        return None
    return _read_value("/proc/%d/comm" % pid)


# ---------------------------------------------------------------------------------------------
# pending_reboot


def check_pending_reboot(module, flag_path=None, pkgs_path=None):
    flag_path = flag_path or REBOOT_REQUIRED
    pkgs_path = pkgs_path or REBOOT_REQUIRED_PKGS
    value = False
    reasons = []

    if os.path.exists(flag_path):
        value = True
        for line in (_read_text(pkgs_path) or "").splitlines():
            line = line.strip()
            if line and line not in reasons:
                reasons.append(line)
        if not reasons:
            reasons.append(flag_path)

    needs_restarting = module.get_bin_path("needs-restarting")
    if needs_restarting:
        rc, out, err = module.run_command([needs_restarting, "-r"])
        # rc 1: reboot required, 0: not required, anything else: could not tell (old yum-utils).
        if rc == 1:
            value = True
            items = [ln.strip()[2:].strip() for ln in out.splitlines() if ln.strip().startswith("* ")]
            if not items:
                items = ["needs-restarting -r"]
            for item in items:
                if item not in reasons:
                    reasons.append(item)
        elif rc != 0:
            module.warn("pending_reboot: 'needs-restarting -r' failed (rc %d): %s" % (rc, (err or out).strip()))

    return {"value": value, "reasons": reasons}


# ---------------------------------------------------------------------------------------------
# installer_busy


def check_installer_busy(module, lock_files=None):
    lock_files = DEFAULT_LOCK_FILES if lock_files is None else lock_files
    errors = []
    for path in lock_files:
        held, pid, error = probe_lock(path)
        if held:
            return {"value": True, "holder": {"pid": pid, "name": _proc_name(pid), "lock": path}}
        if held is None:
            errors.append(error)
    if errors:
        for error in errors:
            module.warn("installer_busy: %s" % error)
        return {"value": None, "holder": None}
    return {"value": False, "holder": None}


# ---------------------------------------------------------------------------------------------
# free_disk


def check_free_disk(path, min_free_mb):
    probe = path
    while True:
        try:
            st = os.statvfs(probe)
            break
        except (IOError, OSError) as e:
            parent = os.path.dirname(probe.rstrip("/")) or "/"
            if e.errno not in (errno.ENOENT, errno.ENOTDIR) or parent == probe:
                raise
            probe = parent
    free_mb = (st.f_bavail * st.f_frsize) // (1024 * 1024)
    return {"path": path, "free_mb": int(free_mb), "passed": free_mb >= min_free_mb}


# ---------------------------------------------------------------------------------------------
# logged_on_users


def parse_loginctl_show(text, now=None, monotonic_now=None):
    """Parse `loginctl show-session -p ... ID...` output (blocks separated by blank lines)."""
    now = time.time() if now is None else now
    monotonic_now = time.monotonic() if monotonic_now is None else monotonic_now
    sessions = []
    for block in text.split("\n\n"):
        props = {}
        for line in block.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props[key.strip()] = value.strip()
        if not props.get("Name"):
            continue
        session_class = props.get("Class", "user")
        if session_class and not session_class.startswith("user"):
            continue  # greeter, lock-screen, background, manager (user@.service)
        state = props.get("State") or None
        if state == "closing":
            continue  # logged out, processes linger
        since = None
        mono = props.get("TimestampMonotonic", "")
        if mono.isdigit() and int(mono) > 0:
            since = _iso_utc(now - (monotonic_now - int(mono) / 1e6))
        remote_host = props.get("RemoteHost") or None
        sessions.append({
            "user": props["Name"],
            "session": props.get("Id") or None,
            "tty": props.get("TTY") or props.get("Display") or None,
            "state": state,
            "remote": props.get("Remote") == "yes",
            "remote_host": remote_host,
            "since": since,
        })
    return sessions


def loginctl_sessions(module):
    """Sessions from systemd-logind, or None when logind does not answer."""
    loginctl = module.get_bin_path("loginctl")
    if not loginctl:
        return None
    rc, out, err = module.run_command([loginctl, "list-sessions", "--no-legend", "--no-pager"])
    if rc != 0:
        return None
    ids = []
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] not in ids and fields[0] != "No":
            ids.append(fields[0])
    if not ids:
        return []
    props = ["Id", "Name", "TTY", "Display", "State", "Remote", "RemoteHost", "Class", "TimestampMonotonic"]
    argv = [loginctl, "show-session", "--no-pager"]
    for p in props:
        argv += ["-p", p]
    rc, out, err = module.run_command(argv + ids)
    # rc != 0 when a session ended between the two calls: use what was printed.
    return parse_loginctl_show(out)


def utmp_sessions(path=None):
    sessions = []
    for rec in user_sessions(path if path is not None else UTMP_PATH):
        host = rec.host or None
        # a local X display (":0") in ut_host is not a remote host
        remote = bool(host) and not host.startswith(":")
        sessions.append({
            "user": rec.user,
            "session": None,
            "tty": rec.line or None,
            "state": None,
            "remote": remote,
            "remote_host": host if remote else None,
            "since": _iso_utc(rec.tv_sec) if rec.tv_sec > 0 else None,
        })
    return sessions


def check_logged_on_users(module):
    sessions = loginctl_sessions(module)
    if sessions is None:
        try:
            sessions = utmp_sessions()
        except (IOError, OSError) as e:
            module.warn("logged_on_users: cannot read utmp: %s" % e)
            return None
    return sessions


# ---------------------------------------------------------------------------------------------
# network


def default_route_interface(route_path=None, ipv6_route_path=None):
    """Interface of the IPv4 default route with the lowest metric, else of the IPv6 one."""
    best = None
    for line in (_read_text(route_path or PROC_ROUTE) or "").splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        try:
            flags, metric = int(f[3], 16), int(f[6])
        except ValueError:
            continue
        if f[1] == "00000000" and f[7] == "00000000" and flags & 0x1 and not flags & 0x200:
            if best is None or metric < best[0]:
                best = (metric, f[0])
    if best:
        return best[1]
    for line in (_read_text(ipv6_route_path or PROC_IPV6_ROUTE) or "").splitlines():
        f = line.split()
        if len(f) < 10:
            continue
        try:
            prefix, metric, flags = int(f[1], 16), int(f[5], 16), int(f[8], 16)
        except ValueError:
            continue
        if f[0] == "0" * 32 and prefix == 0 and flags & 0x1 and not flags & 0x200 and f[9] != "lo":
            if best is None or metric < best[0]:
                best = (metric, f[9])
    return best[1] if best else None


def interface_type(ifname, sys_net=None):
    base = os.path.join(sys_net or SYS_NET, ifname)
    if os.path.isdir(os.path.join(base, "wireless")) or os.path.exists(os.path.join(base, "phy80211")):
        return "wifi"
    devtype = None
    for line in (_read_text(os.path.join(base, "uevent")) or "").splitlines():
        if line.startswith("DEVTYPE="):
            devtype = line.split("=", 1)[1].strip()
    if devtype == "wlan":
        return "wifi"
    if devtype == "wwan":
        return "cellular"
    arphrd = _read_value(os.path.join(base, "type"))
    try:
        arphrd = int(arphrd)
    except (TypeError, ValueError):
        return "other"
    if arphrd == 1:  # ARPHRD_ETHER (also bridges, bonds, VLANs, veth)
        return "ethernet"
    if arphrd == 519:  # ARPHRD_RAWIP: qmi_wwan / mhi modems
        return "cellular"
    if arphrd in (65534, 768, 769, 776, 778, 823):  # none (tun, wireguard), tunnels, gre, ip6gre
        return "tunnel"
    return "other"


def nmcli_metered(module, ifname):
    nmcli = module.get_bin_path("nmcli")
    if not nmcli:
        return None
    rc, out, err = module.run_command([nmcli, "-t", "-f", "GENERAL.METERED", "device", "show", ifname])
    if rc != 0:
        return None
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "GENERAL.METERED":
            value = value.strip().lower()
            if value.startswith("yes"):
                return True
            if value.startswith("no"):
                return False
    return None


def check_network(module):
    ifname = default_route_interface()
    if not ifname:
        return {"type": "none", "metered": None, "interface": None}
    return {"type": interface_type(ifname), "metered": nmcli_metered(module, ifname), "interface": ifname}


# ---------------------------------------------------------------------------------------------
# power


def check_power(root=None):
    root = root or POWER_SUPPLY
    try:
        names = sorted(os.listdir(root))
    except (IOError, OSError):
        names = []
    mains_online = []
    batteries = []
    for name in names:
        base = os.path.join(root, name)
        kind = _read_value(os.path.join(base, "type"), "")
        if _read_value(os.path.join(base, "scope"), "") == "Device":
            continue  # a mouse's or headset's battery
        if kind in ("Mains", "USB", "USB_C", "USB_PD", "USB_PD_DRP", "Wireless"):
            online = _read_value(os.path.join(base, "online"))
            if online in ("0", "1"):
                mains_online.append(online == "1")
        elif kind == "Battery":
            if _read_value(os.path.join(base, "present"), "1") == "0":
                continue
            batteries.append(base)

    percent = None
    now_sum = full_sum = 0
    capacities = []
    statuses = []
    for base in batteries:
        statuses.append(_read_value(os.path.join(base, "status"), "Unknown"))
        got = False
        for now_f, full_f in (("energy_now", "energy_full"), ("charge_now", "charge_full")):
            try:
                now_v = int(_read_value(os.path.join(base, now_f)))
                full_v = int(_read_value(os.path.join(base, full_f)))
            except (TypeError, ValueError):
                continue
            if full_v > 0:
                now_sum += now_v
                full_sum += full_v
                got = True
                break
        if not got:
            try:
                capacities.append(int(_read_value(os.path.join(base, "capacity"))))
            except (TypeError, ValueError):
                pass
    if full_sum > 0 and not capacities:
        percent = int(round(100.0 * now_sum / full_sum))
    elif capacities or full_sum > 0:
        parts = capacities + ([100.0 * now_sum / full_sum] if full_sum > 0 else [])
        percent = int(round(sum(parts) / len(parts)))
    if percent is not None:
        percent = max(0, min(100, percent))

    if any(mains_online):
        on_ac = True
    elif mains_online:
        on_ac = False  # every mains/USB supply reports offline
    elif batteries:
        on_ac = "Discharging" not in statuses
    else:
        on_ac = True  # no power supply information: servers, virtual machines
    return {"on_ac": on_ac, "battery_percent": percent}


# ---------------------------------------------------------------------------------------------
# evaluation


def evaluate(name, result, min_free_mb=0):
    """Return (passed, observed) for one check's result; observed is a short text for messages."""
    if name == "pending_reboot":
        if result["value"]:
            return False, "a reboot is pending (%s)" % ", ".join(result["reasons"])
        return True, "no reboot pending"
    if name == "installer_busy":
        if result["value"] is None:
            return False, "could not be tested (lock files not readable)"
        if result["value"]:
            h = result["holder"] or {}
            who = "pid %s (%s)" % (h.get("pid"), h.get("name")) if h.get("pid") else "another process"
            return False, "%s is held by %s" % (h.get("lock"), who)
        return True, "no installer lock held"
    if name == "free_disk":
        text = "%d MB free on %s" % (result["free_mb"], result["path"])
        if not result["passed"]:
            return False, "%s, below min_free_mb %d" % (text, min_free_mb)
        return True, text
    if name == "logged_on_users":
        if result is None:
            return False, "could not be determined"
        if result:
            who = ", ".join("%s (%s)" % (s["user"], s["tty"] or s["session"] or "?") for s in result)
            return False, "%d user session(s): %s" % (len(result), who)
        return True, "nobody logged on"
    if name == "network":
        if result["type"] == "none":
            return False, "no default route (type none)"
        if result["metered"] is True:
            return False, "%s connection on %s is metered" % (result["type"], result["interface"])
        return True, "%s on %s" % (result["type"], result["interface"])
    if name == "power":
        if result["on_ac"] is not True:
            pct = result["battery_percent"]
            return False, "on battery (%s%%)" % ("?" if pct is None else pct)
        return True, "on AC power"
    raise ValueError(name)


def run_checks(module, checks, path, min_free_mb, lock_files):
    results = {}
    for name in checks:
        if name == "pending_reboot":
            results[name] = check_pending_reboot(module)
        elif name == "installer_busy":
            results[name] = check_installer_busy(module, lock_files)
        elif name == "free_disk":
            try:
                results[name] = check_free_disk(path, min_free_mb)
            except (IOError, OSError) as e:
                module.fail_json(msg="path %s: cannot measure free space: %s" % (path, e.strerror or e))
        elif name == "logged_on_users":
            results[name] = check_logged_on_users(module)
        elif name == "network":
            results[name] = check_network(module)
        elif name == "power":
            results[name] = check_power()
    return results


def main():
    module = AnsibleModule(
        argument_spec=dict(
            checks=dict(type="list", elements="str", choices=ALL_CHECKS, default=list(ALL_CHECKS)),
            path=dict(type="path"),
            min_free_mb=dict(type="int", default=0),
            require=dict(type="list", elements="str", choices=ALL_CHECKS, default=[]),
            lock_files=dict(type="list", elements="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    checks = []
    for name in p["checks"]:
        if name not in checks:
            checks.append(name)
    require = []
    for name in p["require"] or []:
        if name not in require:
            require.append(name)
    if p["min_free_mb"] < 0:
        module.fail_json(msg="min_free_mb must be 0 or more, got %d" % p["min_free_mb"])
    missing = [name for name in require if name not in checks]
    if missing:
        module.fail_json(msg="require names check(s) not in checks: %s (checks: %s)"
                         % (", ".join(missing), ", ".join(checks)))
    path = p["path"] or "/"
    if not os.path.isabs(path):
        module.fail_json(msg="path must be absolute, got %r" % path)

    try:
        results = run_checks(module, checks, path, p["min_free_mb"], p["lock_files"])
    except (IOError, OSError) as e:
        module.fail_json(msg="preflight failed: %s" % e)

    failed = []
    observed = {}
    for name in checks:
        ok, observed[name] = evaluate(name, results[name], p["min_free_mb"])
        if not ok:
            failed.append(name)

    out = dict(
        changed=False,
        preflight=results,
        passed=not failed,
        failed_checks=failed,
        boot_id=read_boot_id(),
    )
    failed_required = [name for name in require if name in failed]
    if failed_required:
        module.fail_json(
            msg="required preflight check(s) failed: %s"
            % "; ".join("%s: %s" % (name, observed[name]) for name in failed_required),
            **out
        )
    module.exit_json(**out)


if __name__ == "__main__":
    main()
