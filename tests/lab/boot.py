"""The boot cycle of a lab host, shared by the controller side and the host itself.

Standard library only: the lab imports it as ``tests.lab.boot``, and every host gets a copy at
``/usr/local/lib/depot-lab/boot.py`` that ``/usr/local/sbin/lab-reboot`` runs with the host's own
``/usr/bin/python3``.

A host's life is all of its processes: every process whose network, mount or UTS namespace is the
host's. A reboot ends all of them, empties ``/run`` and ``/tmp``, writes a new boot id and starts
sshd again after a delay.

Entry points (``python3 boot.py ...``):

``keep -- ARGV...``
    The host's keeper, running on the controller side (outside the host). It is a child subreaper:
    it starts ARGV (the host's sshd) now and again on every SIGUSR1, and reaps every orphan of the
    host, so killed host processes never linger as zombies. SIGTERM ends it.
``reboot [DELAY]``
    Run inside a host: return at once; about one second later, in a detached process, reboot
    this host (its sshd comes back DELAY seconds, default 2, after the processes are gone).
"""

from __future__ import annotations

import ctypes
import grp
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

SSHD_CONFIG = "/etc/depot-lab/sshd_config"
SSHD_LOG = "/var/log/depot-lab/sshd.log"
SSHD = ["/usr/sbin/sshd", "-f", SSHD_CONFIG, "-E", SSHD_LOG]
BOOT_ID = "proc/sys/kernel/random/boot_id"  # relative to the host's root
NS_KINDS = ("net", "mnt", "uts")


def ns_id(path: str | os.PathLike) -> tuple[int, int]:
    """Identity of a namespace file (/proc/PID/ns/KIND or a file the namespace is bound to)."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def own_namespaces(pid: int | str = "self") -> set[tuple[int, int]]:
    return {ns_id(f"/proc/{pid}/ns/{kind}") for kind in NS_KINDS}


def machine_namespaces() -> set[tuple[int, int]]:
    """The machine's own namespaces: kthreadd's (pid 2), or init's when there is no kthreadd."""
    try:
        if Path("/proc/2/comm").read_text().strip() == "kthreadd":
            return own_namespaces(2)
    except OSError:
        pass
    return own_namespaces(1)


def pids_in(namespaces: set[tuple[int, int]], exclude: set[int] = frozenset()) -> list[int]:
    """Every process whose net, mnt or uts namespace is one of ``namespaces``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in exclude:
            continue
        for kind in NS_KINDS:
            try:
                if ns_id(f"/proc/{entry}/ns/{kind}") in namespaces:
                    found.append(int(entry))
                    break
            except OSError:  # gone, or a zombie (no namespaces any more)
                break
    return found


def kill_all(namespaces: set[tuple[int, int]], exclude: set[int] = frozenset(), timeout: float = 10.0) -> None:
    """SIGKILL every process of these namespaces until none is left (bounded by ``timeout``)."""
    if namespaces & machine_namespaces():
        raise RuntimeError("refusing to kill the processes of the machine's own namespaces")
    deadline = time.monotonic() + timeout
    while pids := pids_in(namespaces, exclude):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes still alive after {timeout}s: {pids}")
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


def new_boot(root: Path, boot_id: str | None = None) -> str:
    """The part of a boot that leaves state behind: fresh /run and /tmp, a new boot id."""
    for name in ("run", "tmp"):
        for entry in (root / name).iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    run = root / "run"
    for name, mode in (("sshd", 0o755), ("lock", 0o1777), ("depot-lab", 0o755)):
        (run / name).mkdir()
        os.chmod(run / name, mode)
    utmp = run / "utmp"
    utmp.touch()
    os.chown(utmp, 0, grp.getgrnam("utmp").gr_gid)
    os.chmod(utmp, 0o664)
    boot_id = boot_id or str(uuid.uuid4())
    with open(root / BOOT_ID, "w") as f:  # in place: the file is bind-mounted
        f.write(boot_id + "\n")
    return boot_id


def keep(argv: list[str]) -> None:
    """The keeper loop: start ``argv`` now and on SIGUSR1, reap every orphan, end on SIGTERM."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    wanted = {signal.SIGCHLD, signal.SIGUSR1, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)

    def start() -> None:
        try:
            os.posix_spawn(argv[0], argv, os.environ, setsid=True, setsigmask=(), setsigdef=wanted)
        except OSError as e:
            print(f"keeper: cannot start {argv}: {e}", file=sys.stderr, flush=True)

    start()
    while True:
        info = signal.sigtimedwait(wanted, 5.0)
        while True:  # reap everything that has ended
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if info is None:
            continue
        if info.si_signo == signal.SIGUSR1:
            start()
        elif info.si_signo != signal.SIGCHLD:
            return


def reboot_from_inside(delay: float, after: float = 1.0) -> None:
    """``lab-reboot``: detach, wait ``after`` seconds, then reboot the host this runs in."""
    # Ignore the end of the caller's session *before* forking: the caller's ssh channel may close
    # (and its processes get SIGHUP/SIGPIPE) between the first fork and setsid().
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    if os.fork():
        os._exit(0)  # the caller gets its answer at once
    os.setsid()  # no longer part of the caller's session: its end does not end us
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # let the caller's ssh channel close
        os.dup2(devnull, fd)
    os.closerange(3, 1024)
    os.chdir("/")
    time.sleep(after)
    kill_all(own_namespaces(), exclude={os.getpid()})
    new_boot(Path("/"))
    time.sleep(delay)
    subprocess.run(SSHD, check=False)  # sshd daemonises; our keeper (an ancestor) adopts it
    os._exit(0)


def main(argv: list[str]) -> int:
    if argv[:1] == ["keep"] and "--" in argv:
        keep(argv[argv.index("--") + 1:])
        return 0
    if argv[:1] == ["reboot"] and len(argv) <= 2:
        reboot_from_inside(float(argv[1]) if len(argv) == 2 else 2.0)
        return 0
    print("usage: boot.py keep -- ARGV... | boot.py reboot [DELAY]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
