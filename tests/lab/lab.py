"""The Depot test lab: real Linux hosts on one machine (DESIGN §4). See tests/lab/README.md.

Every host is a network namespace (a veth on the lab bridge, an address of its own), a UTS
namespace (its hostname) and a mount namespace whose root is an overlay of ``/`` with fresh
``/proc``, ``/run`` and ``/tmp``, a boot id of its own and its own sshd. The host's whole tree is
also mounted on the controller side under ``WORKDIR/hosts/NAME/root``, which is what
:meth:`Lab.host_path` returns paths into.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import boot

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
INSTALLERS = HERE / "installers"
# Where every host finds the installers: a copy inside the host, since the checkout may live
# under a directory the host does not see (its /tmp is private).
HOST_INSTALLERS = "/usr/local/lib/depot-lab/installers"
SSHD = "/usr/sbin/sshd"
TOOLS = ("ip", "nsenter", "unshare", "mount", "umount", "pivot_root", "setpriv", "ssh", "ssh-keygen")
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}
SSH_OPTIONS = (
    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=3"
    " -o ServerAliveInterval=3 -o ServerAliveCountMax=3 -o LogLevel=ERROR"
)
COMMAND_LOG = "/var/log/depot-lab/commands.log"
REBOOT_COMMAND = "/usr/local/sbin/lab-reboot"
BOOT_TIME_COMMAND = "cat /proc/sys/kernel/random/boot_id"

# struct utmp of glibc on x86_64: type, (pad), pid, line, id, user, host, exit, session, tv, addr, (reserved)
UTMP = struct.Struct("<hxxi32s4s32s256shhiii4i20x")
USER_PROCESS = 7

SSHD_CONFIG = """\
# sshd of lab host {name} (written by tests.lab)
ListenAddress {address}:22
HostKey /etc/depot-lab/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile /etc/depot-lab/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 100
MaxSessions 100
AcceptEnv LANG LC_*
ForceCommand /usr/local/sbin/lab-command
Subsystem sftp /usr/lib/openssh/sftp-server
"""

LAB_COMMAND = """\
#!/bin/sh
# ForceCommand of the lab's sshd: record the remote command, then run it.
# One line per command in {log}: "<epoch seconds> <base64 of the command>".
if [ -z "${{SSH_ORIGINAL_COMMAND+set}}" ]; then
    exec "${{SHELL:-/bin/sh}}" -l    # interactive login: nothing to record
fi
printf '%s %s\\n' "$(date +%s.%N)" "$(printf '%s' "$SSH_ORIGINAL_COMMAND" | base64 -w0)" >>{log}
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
""".format(log=COMMAND_LOG)

# Runs inside a host (lab.wol_listener): one line per datagram received on UDP 0.0.0.0:PORT, in hex,
# after a first line saying it listens.
WOL_LISTENER = """\
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
os.write(1, b"# listening on 0.0.0.0:%s\\n" % sys.argv[1].encode())
while True:
    os.write(1, s.recv(65535).hex().encode() + b"\\n")
"""

LAB_REBOOT = """\
#!/bin/sh
# lab-reboot [DELAY]: reboot this lab host. Returns at once; about 1 s later every process of the
# host ends, /run and /tmp are emptied, the boot id changes, and sshd is back DELAY s (default 2) later.
exec /usr/bin/python3 /usr/local/lib/depot-lab/boot.py reboot "$@"
"""


class LabError(RuntimeError):
    pass


@dataclass(frozen=True)
class Host:
    name: str  # h1, h2, ...: the inventory name and the hostname
    address: str
    netns: str  # network namespace name (ip netns), also the host-side veth's name
    mac: str = ""  # MAC address of eth0 inside the host (what a Wake-on-LAN packet names)

    def __str__(self) -> str:
        return self.name


def _run(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    result = subprocess.run(argv, check=False, **kw)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({result.returncode}): {(result.stderr or '').strip()}")
    return result


def _mount_points() -> list[str]:
    """Mount points of this mount namespace, in mount order."""
    unescape = functools.partial(re.sub, r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)))
    with open("/proc/self/mountinfo") as f:
        return [unescape(line.split()[4]) for line in f]


def _umount(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(path.encode(), 2) != 0:  # MNT_DETACH
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)


class WolListener:
    """The datagrams a :meth:`Lab.wol_listener` received (also readable after the block)."""

    def __init__(self, path: Path):
        self.path = path

    def packets(self) -> list[bytes]:
        """Every datagram received so far, in order."""
        lines = self.path.read_text().split("\n")[:-1]  # a line is complete once its newline is there
        return [bytes.fromhex(line) for line in lines if not line.startswith("#")]

    def wait(self, count: int, timeout: float = 10.0) -> list[bytes]:
        """The datagrams received once there are at least ``count``, or after ``timeout`` s those there are."""
        deadline = time.monotonic() + timeout
        while len(packets := self.packets()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return packets


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class Lab:
    """A set of lab hosts. ``up()`` makes them, ``down()`` removes every trace (also of a crashed lab)."""

    def __init__(self, prefix: str = "dlab", hosts: int = 8, workdir: Path | str = Path("/var/tmp/depot-lab"),
                 subnet: str = "10.213.47.0/24"):
        if not re.fullmatch(r"[a-z][a-z0-9]*", prefix):
            raise LabError(f"prefix {prefix!r}: lower-case letters and digits only (it starts every lab name)")
        self.prefix = prefix
        self.workdir = Path(workdir).absolute()
        self.subnet = ipaddress.ip_network(subnet)
        self.bridge = f"{prefix}-br"
        self.bridge_address = str(self.subnet[1])
        self.broadcast = str(self.subnet.broadcast_address)  # the lab's broadcast address (Wake-on-LAN goes there)
        if hosts < 1 or 10 + hosts >= self.subnet.num_addresses - 1:
            raise LabError(f"{hosts} hosts do not fit in {subnet} (hosts start at .11)")
        self.hosts = []
        for i in range(1, hosts + 1):
            address = self.subnet[10 + i]
            # eth0's MAC: 52:54 (locally administered, unicast), then the host's IPv4 address
            mac = ":".join(f"{b:02x}" for b in bytes([0x52, 0x54]) + address.packed)
            self.hosts.append(Host(f"h{i}", str(address), f"{prefix}-h{i}", mac))
        if len(self.hosts[-1].netns) > 15:
            raise LabError(f"prefix {prefix!r} too long: interface names have at most 15 characters")
        self.key = self.workdir / "id_ed25519"
        self.inventory = self.workdir / "inventory.yml"
        self._state = self.workdir / "lab.json"
        self._servers: list[ThreadingHTTPServer] = []
        self._keepers: dict[str, subprocess.Popen] = {}
        self._sessions: dict[int, subprocess.Popen] = {}

    # ----------------------------------------------------------------------------- life cycle
    @staticmethod
    def missing_requirements() -> list[str]:
        """What this machine lacks to run a lab (empty when it can)."""
        missing = [] if os.geteuid() == 0 else ["root"]
        missing += [tool for tool in TOOLS if not shutil.which(tool, path=CLEAN_ENV["PATH"])]
        missing += [] if os.access(SSHD, os.X_OK) else [SSHD]
        return missing

    @classmethod
    def from_environment(cls, hosts: int = 8) -> Lab:
        """A lab named by DEPOT_LAB_PREFIX, DEPOT_LAB_WORKDIR and DEPOT_LAB_SUBNET (each optional).

        Two labs may run at once when they differ in all three (e.g. subnets 10.213.47.0/25 and
        10.213.47.128/25).
        """
        return cls(os.environ.get("DEPOT_LAB_PREFIX", "dlab"), hosts,
                   os.environ.get("DEPOT_LAB_WORKDIR", "/var/tmp/depot-lab"),
                   os.environ.get("DEPOT_LAB_SUBNET", "10.213.47.0/24"))

    @classmethod
    def load(cls, workdir: Path | str = Path("/var/tmp/depot-lab")) -> Lab:
        """The lab whose ``up()`` ran with this workdir (e.g. in another process)."""
        state = json.loads((Path(workdir) / "lab.json").read_text())
        return cls(state["prefix"], state["hosts"], state["workdir"], state["subnet"])

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    def up(self) -> Lab:
        """Create the lab from scratch (cleaning whatever an earlier lab left) and wait for every sshd."""
        if missing := self.missing_requirements():
            raise LabError(f"the lab needs {', '.join(missing)}")
        self._claim()
        self._teardown()
        try:
            self._up()
        except BaseException:
            self.down()
            raise
        return self

    def _up(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # The workdir becomes a private mount: nothing mounted under it propagates elsewhere, and
        # unshare can bind namespace files into it.
        _run("mount", "--bind", str(self.workdir), str(self.workdir))
        _run("mount", "--make-rprivate", str(self.workdir))
        for name in ("hosts", "ns"):
            (self.workdir / name).mkdir()
        self._state.write_text(json.dumps({"prefix": self.prefix, "hosts": len(self.hosts),
                                           "workdir": str(self.workdir), "subnet": str(self.subnet)}))
        if not self.key.exists():
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "depot-lab", "-f", str(self.key))
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.bridge_address}/{self.subnet.prefixlen}", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        # Lab traffic stays in the lab: the machine never routes what arrives on the bridge.
        Path(f"/proc/sys/net/ipv4/conf/{self.bridge}/forwarding").write_text("0\n")
        with ThreadPoolExecutor(len(self.hosts)) as pool:
            list(pool.map(self._create_host, self.hosts))
        self.write_inventory(self.inventory)
        self.wait_ssh()

    def _claim(self) -> None:
        """Hold the prefix's lock for as long as this object owns the lab: another process's up()
        with the same prefix fails instead of tearing down a lab that is in use."""
        if getattr(self, "_lock", None) is not None:
            return
        path = Path(f"/run/depot-lab-{self.prefix}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode().strip() or "?"
            os.close(fd)
            raise LabError(f"lab {self.prefix!r} is in use by process {holder}; choose another "
                           "DEPOT_LAB_PREFIX, DEPOT_LAB_WORKDIR and DEPOT_LAB_SUBNET") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock = fd

    def _release(self) -> None:
        fd = getattr(self, "_lock", None)
        if fd is not None:
            os.close(fd)   # closing drops the flock
            self._lock = None

    def down(self) -> None:
        """Remove the lab and anything a crashed lab with the same prefix and workdir left. Idempotent.
        Refused (LabError) while another process owns a lab of this prefix."""
        self._claim()
        try:
            self._teardown()
        finally:
            self._release()

    def _teardown(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
        hosts_dir, ns_dir = self.workdir / "hosts", self.workdir / "ns"
        # 1. every process of every host (their keepers reap them), then the keepers
        netns = [line.split()[0] for line in _run("ip", "netns", "list").stdout.splitlines()
                 if line.startswith(f"{self.prefix}-")]
        namespaces = set()
        for path in [f"/run/netns/{name}" for name in netns] + sorted(ns_dir.glob("*")):
            try:
                namespaces.add(boot.ns_id(path))
            except OSError:
                pass
        namespaces -= boot.own_namespaces("self")
        errors = []
        try:
            boot.kill_all(namespaces)
        except RuntimeError as e:
            errors.append(str(e))
        for pidfile in hosts_dir.glob("*/keeper.pid"):
            self._stop_keeper(pidfile)
        for session in self._sessions.values():
            session.kill()
            session.wait()
        self._sessions.clear()
        # 2. every mount under the workdir, deepest first (lazily: a detached tree goes when unused)
        root = str(self.workdir)
        for _ in range(20):
            inside = [p for p in _mount_points() if p == root or p.startswith(root + "/")]
            if not inside:
                break
            for path in sorted(set(inside), key=lambda p: p.count("/"), reverse=True):
                try:
                    _umount(path)
                except OSError:
                    pass
        else:
            errors.append(f"cannot unmount everything under {root}")
        # 3. the network: host-side veths (the kernel frees a namespace late), bridge, namespaces
        links = [line.split(":")[1].strip().split("@")[0] for line in _run("ip", "-o", "link", "show").stdout.splitlines()]
        for link in sorted(name for name in links if name.startswith(f"{self.prefix}-")):
            _run("ip", "link", "del", link, check=False)
        for name in netns:
            _run("ip", "netns", "del", name, check=False)
        # 4. the hosts' files (the lab key stays: it is made once), never while anything is mounted there
        if errors:
            raise LabError("the lab could not be removed completely: " + "; ".join(errors))
        existing = [str(p) for p in (hosts_dir, ns_dir) if p.exists()]
        if existing:
            _run("rm", "-rf", "--one-file-system", *existing)
        for path in (self._state, self.inventory):
            path.unlink(missing_ok=True)

    def _create_host(self, host: Host) -> None:
        d = self.workdir / "hosts" / host.name
        root = d / "root"
        for sub in ("upper", "work", "root"):
            (d / sub).mkdir(parents=True)
        try:
            _run("mount", "-t", "overlay", "overlay", "-o", f"lowerdir=/,upperdir={d}/upper,workdir={d}/work", str(root))
        except LabError:  # e.g. / is itself an overlay (a container): keep the upper layer in memory
            (d / "rw").mkdir()
            _run("mount", "-t", "tmpfs", "tmpfs", str(d / "rw"))
            for sub in ("upper", "work"):
                (d / "rw" / sub).mkdir()
            _run("mount", "-t", "overlay", "overlay", "-o", f"lowerdir=/,upperdir={d}/rw/upper,workdir={d}/rw/work", str(root))
        (d / "boot_id").write_text("\n")
        _run("mount", "-t", "proc", "proc", str(root / "proc"))
        _run("mount", "--bind", str(d / "boot_id"), str(root / boot.BOOT_ID))
        _run("mount", "--rbind", "/dev", str(root / "dev"))
        _run("mount", "--make-rprivate", str(root / "dev"))
        _run("mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", str(root / "dev/shm"))
        _run("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", str(root / "run"))
        _run("mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", str(root / "tmp"))
        if os.stat(REPO).st_dev != os.stat("/").st_dev:  # the hosts must see the repository (installers)
            (root / REPO.relative_to("/")).mkdir(parents=True, exist_ok=True)
            _run("mount", "--rbind", str(REPO), str(root / REPO.relative_to("/")))
        boot.new_boot(root)
        self._install_files(host, root)

        ns = host.netns
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", ns, "type", "veth", "peer", "name", "eth0", "address", host.mac, "netns", ns)
        _run("ip", "link", "set", ns, "master", self.bridge, "up")
        _run("ip", "-n", ns, "addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0")
        _run("ip", "-n", ns, "link", "set", "eth0", "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")

        # The host's mount and UTS namespaces, kept alive by files: sysfs of its own network
        # namespace, then its tree becomes its root.
        mnt, uts = self._nsfile(host, "mnt"), self._nsfile(host, "uts")
        mnt.touch()
        uts.touch()
        setup = ('hostname "$1" && mount -t sysfs sysfs "$2/sys" && cd "$2" && mkdir .oldroot'
                 ' && pivot_root . .oldroot && umount -l /.oldroot && rmdir /.oldroot')
        _run("nsenter", f"--net=/run/netns/{ns}", "unshare", f"--mount={mnt}", f"--uts={uts}",
             "--propagation=private", "/bin/sh", "-c", setup, "setup", host.name, str(root), env=CLEAN_ENV)
        self._start_keeper(host)

    def _install_files(self, host: Host, root: Path) -> None:
        def write(path: str, text: str, mode: int = 0o644) -> None:
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            target.write_text(text)
            os.chmod(target, mode)

        write("/etc/hostname", f"{host.name}\n")
        write("/etc/hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
              + "".join(f"{h.address} {h.name}\n" for h in self.hosts))
        write("/etc/depot-lab/sshd_config", SSHD_CONFIG.format(name=host.name, address=host.address))
        write("/etc/depot-lab/authorized_keys", Path(f"{self.key}.pub").read_text())
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host.name}",
             "-f", str(root / "etc/depot-lab/ssh_host_ed25519_key"))
        write("/usr/local/sbin/lab-command", LAB_COMMAND, 0o755)
        write("/usr/local/sbin/lab-reboot", LAB_REBOOT, 0o755)
        write("/usr/local/lib/depot-lab/boot.py", Path(boot.__file__).read_text())
        for installer in sorted(INSTALLERS.iterdir()):
            write(f"{HOST_INSTALLERS}/{installer.name}", installer.read_text(), 0o755)
        write(COMMAND_LOG, "", 0o666)

    # ------------------------------------------------------------------------- sshd and keeper
    def _nsfile(self, host: Host, kind: str) -> Path:
        return self.workdir / "ns" / f"{host.name}.{kind}"

    def _enter(self, host: Host) -> list[str]:
        """argv prefix that runs a command inside the host."""
        return ["nsenter", f"--net=/run/netns/{host.netns}", f"--mount={self._nsfile(host, 'mnt')}",
                f"--uts={self._nsfile(host, 'uts')}", "--"]

    def _namespaces(self, host: Host) -> set[tuple[int, int]]:
        found = {boot.ns_id(f"/run/netns/{host.netns}"), boot.ns_id(self._nsfile(host, "mnt")),
                 boot.ns_id(self._nsfile(host, "uts"))}
        if found & boot.own_namespaces("self"):
            raise LabError(f"{host} shares a namespace with the controller")
        return found

    def _start_keeper(self, host: Host) -> None:
        d = self.workdir / "hosts" / host.name
        argv = [shutil.which("nsenter", path=CLEAN_ENV["PATH"]), *self._enter(host)[1:], *boot.SSHD]
        with open(d / "keeper.log", "ab") as log:
            keeper = subprocess.Popen([sys.executable, boot.__file__, "keep", "--", *argv], env=CLEAN_ENV,
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        (d / "keeper.pid").write_text(f"{keeper.pid}\n")
        self._keepers[host.name] = keeper

    def _keeper_pid(self, pidfile: Path) -> int | None:
        """The pid in ``pidfile`` if it is still a keeper process."""
        try:
            pid = int(pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if b"keep" in cmdline and any(arg.endswith(b"boot.py") for arg in cmdline) else None

    def _stop_keeper(self, pidfile: Path) -> None:
        if pid := self._keeper_pid(pidfile):
            os.kill(pid, signal.SIGTERM)
        keeper = self._keepers.pop(pidfile.parent.name, None)
        if keeper is not None:
            try:
                keeper.wait(timeout=10)
            except subprocess.TimeoutExpired:
                keeper.kill()
                keeper.wait()

    def _start_sshd(self, host: Host) -> None:
        """Ask the host's keeper to start sshd (a new keeper if it is gone: it starts sshd too)."""
        if pid := self._keeper_pid(self.workdir / "hosts" / host.name / "keeper.pid"):
            os.kill(pid, signal.SIGUSR1)
        else:
            self._start_keeper(host)

    def _sshd_answers(self, host: Host, timeout: float = 1.0) -> bool:
        try:
            with socket.create_connection((host.address, 22), timeout=timeout) as s:
                s.settimeout(timeout)
                return s.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    def _wait_sshd(self, host: Host, timeout: float = 20.0) -> None:
        """Wait until sshd answers (an offline host: until sshd has written its pid file)."""
        deadline = time.monotonic() + timeout
        pidfile = self.host_path(host, "/run/sshd.pid")
        while not (self._sshd_answers(host, timeout=0.5) if self.is_online(host) else pidfile.exists()):
            if time.monotonic() > deadline:
                log = self.host_path(host, "/var/log/depot-lab/sshd.log")
                tail = log.read_text()[-1000:] if log.exists() else "(no sshd log)"
                raise LabError(f"sshd of {host} did not answer within {timeout}s; sshd log:\n{tail}")
            time.sleep(0.05)

    # ----------------------------------------------------------------------------- the hosts
    def host(self, name: Host | str) -> Host:
        for host in self.hosts:
            if host.name == str(name):
                return host
        raise LabError(f"no lab host {name!r}")

    def host_path(self, host: Host | str, path: str | os.PathLike) -> Path:
        """Where the controller reads (or writes) the file that is ``path`` inside the host."""
        return self.workdir / "hosts" / self.host(host).name / "root" / str(path).lstrip("/")

    def exec(self, host: Host | str, argv: list[str] | str, *, cwd: str | None = None,
             **kw) -> subprocess.CompletedProcess:
        """Run ``argv`` (a list, or a string for /bin/sh -c) inside the host, as root.

        Keywords go to ``subprocess.run``; the defaults are ``capture_output=True, text=True,
        timeout=120`` and a clean environment. ``cwd`` is a directory inside the host.
        """
        argv = ["/bin/sh", "-c", argv] if isinstance(argv, str) else list(argv)
        if cwd is not None:
            argv = ["/bin/sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", cwd, *argv]
        if "stdout" not in kw and "stderr" not in kw:
            kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 120)
        kw.setdefault("env", CLEAN_ENV)
        return subprocess.run(self._enter(self.host(host)) + argv, **kw)

    def ssh_argv(self, host: Host | str, user: str = "root") -> list[str]:
        """argv prefix of an ssh client to the host (append the remote command)."""
        return ["ssh", "-F", "/dev/null", "-i", str(self.key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                *SSH_OPTIONS.split(), f"{user}@{self.host(host).address}"]

    def ssh(self, host: Host | str, command: str, user: str = "root", **kw) -> subprocess.CompletedProcess:
        """Run ``command`` on the host through its sshd (recorded in :meth:`commands`)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.ssh_argv(host, user) + [command], **kw)

    def wait_ssh(self, timeout: float = 30.0) -> None:
        """Wait (bounded) until every online host runs ``ssh true``; then forget those commands."""
        def wait(host: Host) -> None:
            deadline = time.monotonic() + timeout
            while True:
                result = self.ssh(host, "true")
                if result.returncode == 0:
                    return
                if time.monotonic() > deadline:
                    raise LabError(f"ssh to {host} ({host.address}) fails: {result.stderr.strip()}")
                time.sleep(0.2)

        with ThreadPoolExecutor(len(self.hosts)) as pool:
            list(pool.map(wait, self.hosts))
        for host in self.hosts:
            self.reset_commands(host)

    def reboot(self, host: Host | str, delay: float = 2.0) -> None:
        """Reboot the host like a real machine and return once its sshd answers again.

        Every process of the host ends, /run and /tmp are emptied, the boot id changes, and sshd
        stays away ``delay`` seconds.
        """
        host = self.host(host)
        boot.kill_all(self._namespaces(host))
        for pid, session in list(self._sessions.items()):
            if session.poll() is not None:
                del self._sessions[pid]
        boot.new_boot(self.workdir / "hosts" / host.name / "root")
        time.sleep(delay)
        self._start_sshd(host)
        self._wait_sshd(host)

    def heal(self) -> None:
        """Undo what tests may have done to the hosts' reachability: every host online, every sshd up."""
        for host in self.hosts:
            self.online(host)
            if not self._sshd_answers(host):
                self._start_sshd(host)
                self._wait_sshd(host)

    def offline(self, host: Host | str) -> None:
        """Switch the host off, as the network sees it: connections to it time out until :meth:`online`.

        Like a powered-off machine whose network card waits for Wake-on-LAN: nothing the host sends
        leaves it, and only broadcasts reach it (its bridge port is locked, does not flood unknown
        unicast or multicast, and forgets the host's MAC). Its processes keep running.
        """
        port = self.host(host).netns
        _run("ip", "link", "set", port, "type", "bridge_slave", "locked", "on", "flood", "off", "mcast_flood", "off")
        _run("ip", "link", "set", port, "type", "bridge_slave", "fdb_flush")

    def online(self, host: Host | str) -> None:
        port = self.host(host).netns
        _run("ip", "link", "set", port, "type", "bridge_slave", "locked", "off", "flood", "on", "mcast_flood", "on")
        _run("ip", "link", "set", port, "up")

    def is_online(self, host: Host | str) -> bool:
        link = json.loads(_run("ip", "-d", "-j", "link", "show", self.host(host).netns).stdout)[0]
        return "UP" in link["flags"] and not link["linkinfo"]["info_slave_data"].get("locked", False)

    @contextlib.contextmanager
    def wol_listener(self, host: Host | str, port: int = 9):
        """Listen for Wake-on-LAN packets inside the host (offline or not) while the block runs.

        Starts a UDP listener on 0.0.0.0:``port`` in the host's namespaces and yields a
        :class:`WolListener` once it is bound; the listener is stopped at the end (a reboot ends it too).
        """
        host = self.host(host)
        fd, path = tempfile.mkstemp(prefix=f"wol-{port}-", suffix=".hex", dir=self.workdir / "hosts" / host.name)
        with os.fdopen(fd, "wb") as out:  # the listener writes to the machine's file, whatever its mount namespace
            process = subprocess.Popen(self._enter(host) + ["/usr/bin/python3", "-c", WOL_LISTENER, str(port)],
                                       env=CLEAN_ENV, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE,
                                       start_new_session=True)
        listener = WolListener(Path(path))
        try:
            deadline = time.monotonic() + 10
            while not Path(path).read_text().startswith("# listening"):
                if process.poll() is not None:
                    error = (process.stderr.read().decode().strip().splitlines() or ["no output"])[-1]
                    raise LabError(f"the Wake-on-LAN listener on {host} failed: {error}")
                if time.monotonic() > deadline:
                    raise LabError(f"the Wake-on-LAN listener on {host} did not start within 10s")
                time.sleep(0.02)
            yield listener
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stderr.close()

    def boot_id(self, host: Host | str) -> str:
        return (self.workdir / "hosts" / self.host(host).name / "boot_id").read_text().strip()

    def command_log(self, host: Host | str) -> list[tuple[float, str]]:
        """Every command run through the host's sshd since the last reset: (epoch time, command)."""
        import base64

        records = []
        for line in self.host_path(host, COMMAND_LOG).read_text().splitlines():
            stamp, _, encoded = line.partition(" ")
            records.append((float(stamp), base64.b64decode(encoded).decode(errors="replace")))
        return records

    def commands(self, host: Host | str) -> list[str]:
        return [command for _, command in self.command_log(host)]

    def reset_commands(self, host: Host | str) -> None:
        with open(self.host_path(host, COMMAND_LOG), "w"):
            pass

    # ------------------------------------------------------------------------------ users
    def add_user(self, host: Host | str, name: str, shell: str = "/bin/bash") -> None:
        """Add a user inside the host only (it can log in by ssh with the lab key)."""
        for argv in (["useradd", "--create-home", "--shell", shell, name], ["usermod", "--password", "*", name]):
            result = self.exec(host, argv)
            if result.returncode != 0:
                raise LabError(f"{' '.join(argv)} on {host}: {result.stderr.strip()}")

    def login(self, host: Host | str, user: str, line: str | None = None) -> int:
        """Log ``user`` in at a console of the host: a session process and its utmp record.

        Returns the session's pid. The session ends with :meth:`logout` or a reboot.
        """
        host = self.host(host)
        gid = self.exec(host, ["id", "-g", user])
        if gid.returncode != 0:
            raise LabError(f"no user {user!r} on {host}")
        session = subprocess.Popen(
            self._enter(host) + ["setpriv", f"--reuid={user}", f"--regid={gid.stdout.strip()}", "--init-groups",
                                 "sleep", "infinity"],
            env=CLEAN_ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
        self._sessions[session.pid] = session
        records = self._utmp(host)
        line = line or f"tty{len(records) + 1}"
        now = time.time()
        records.append(UTMP.pack(USER_PROCESS, session.pid, line.encode(), line[-4:].encode(), user.encode(),
                                 b"", 0, 0, session.pid, int(now), int(now % 1 * 1e6), 0, 0, 0, 0))
        self._write_utmp(host, records)
        return session.pid

    def logout(self, host: Host | str, user: str) -> None:
        """End ``user``'s sessions on the host and remove their utmp records."""
        host = self.host(host)
        keep = []
        for record in self._utmp(host):
            fields = UTMP.unpack(record)
            if fields[0] == USER_PROCESS and fields[4].rstrip(b"\0").decode() == user:
                session = self._sessions.pop(fields[1], None)
                if session is not None:
                    session.kill()
                    session.wait()
            else:
                keep.append(record)
        self._write_utmp(host, keep)

    def _utmp(self, host: Host) -> list[bytes]:
        data = self.host_path(host, "/run/utmp").read_bytes()
        return [data[i:i + UTMP.size] for i in range(0, len(data) - UTMP.size + 1, UTMP.size)]

    def _write_utmp(self, host: Host, records: list[bytes]) -> None:
        with open(self.host_path(host, "/run/utmp"), "r+b") as f:  # in place: owner and mode stay
            f.truncate()
            f.write(b"".join(records))

    # ------------------------------------------------------------------ inventory, content, status
    def write_inventory(self, path: Path | str) -> Path:
        """An Ansible YAML inventory of the lab: group ``lab`` with every host (and its ``depot_mac``)."""
        q = json.dumps  # a JSON string is a valid YAML scalar
        lines = [f"# The Depot lab {self.prefix!r} (written by tests.lab; valid while the lab is up)",
                 "all:", "  children:", "    lab:", "      hosts:"]
        for host in self.hosts:
            lines += [f"        {host.name}:", f"          ansible_host: {q(host.address)}",
                      f"          depot_mac: {q(host.mac)}"]
        variables = {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": SSH_OPTIONS,
            "ansible_python_interpreter": "/usr/bin/python3",
            "depot_reboot_command": REBOOT_COMMAND,
            "depot_boot_time_command": BOOT_TIME_COMMAND,
        }
        lines += ["      vars:"] + [f"        {k}: {q(v)}" for k, v in variables.items()]
        path = Path(path)
        path.write_text("\n".join(lines) + "\n")
        return path

    def inventory_data(self) -> dict:
        """The inventory as an Ansible inventory script prints it (``--list``)."""
        return {
            "lab": {"hosts": [h.name for h in self.hosts], "vars": {
                "ansible_user": "root", "ansible_ssh_private_key_file": str(self.key),
                "ansible_ssh_common_args": SSH_OPTIONS, "ansible_python_interpreter": "/usr/bin/python3",
                "depot_reboot_command": REBOOT_COMMAND, "depot_boot_time_command": BOOT_TIME_COMMAND}},
            "_meta": {"hostvars": {h.name: {"ansible_host": h.address, "depot_mac": h.mac} for h in self.hosts}},
        }

    def serve(self, directory: Path | str) -> str:
        """Serve ``directory`` over HTTP on the bridge address (hosts can fetch); stopped by ``down()``."""
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = ThreadingHTTPServer((self.bridge_address, 0), handler)
        threading.Thread(target=server.serve_forever, name=f"lab-http-{server.server_port}", daemon=True).start()
        self._servers.append(server)
        return f"http://{self.bridge_address}:{server.server_port}"

    def status(self) -> dict[str, dict]:
        """Per host: online (not :meth:`offline`), sshd answering, keeper alive, boot id."""
        report = {}
        for host in self.hosts:
            d = self.workdir / "hosts" / host.name
            exists = Path(f"/run/netns/{host.netns}").exists()
            report[host.name] = {
                "address": host.address,
                "exists": exists,
                "online": exists and self.is_online(host),
                "sshd": exists and self._sshd_answers(host, timeout=0.3),
                "keeper": self._keeper_pid(d / "keeper.pid") is not None,
                "boot_id": self.boot_id(host) if (d / "boot_id").exists() else None,
            }
        return report
