"""Workers' presence on their node: a worker that dies is noticed at once by the others of its
node (see Presence), and what it left in RAM - run secrets directories - is swept by pid.
Workers elsewhere are left to their leases."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)
SHM = "/dev/shm"


class Presence:
    """Workers' presence on this node: one file per worker name in a private directory, which
    the live worker of that name holds an exclusive flock on (released by the kernel when the
    process dies, a kill -9 included). The directory is node-local (RAM-backed /dev/shm where
    there is one) and per user, so only workers that share it - the same node and namespace -
    see each other; for the others nothing is known here and their leases decide."""

    def __init__(self, base: str | os.PathLike | None = None):
        base = base or (SHM if os.path.isdir(SHM) else tempfile.gettempdir())
        self.dir = Path(base) / f"depot-workers-{os.geteuid()}"
        self.fd: int | None = None

    def path(self, name: str) -> Path:
        return self.dir / hashlib.sha256(name.encode()).hexdigest()[:32]

    def _private_dir(self) -> bool:
        try:
            self.dir.mkdir(mode=0o700, exist_ok=True)
            st = os.lstat(self.dir)
        except OSError as e:
            log.warning("no worker presence directory %s: %s", self.dir, e)
            return False
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            log.warning("worker presence directory %s is not a private directory of this user: not used", self.dir)
            return False
        return True

    def register(self, name: str, wait: float = 2.0) -> bool:
        """Mark ``name`` alive for as long as this process lives. False when a live process of this
        node already holds that name (or presence is unavailable here)."""
        if not self._private_dir():
            return False
        fd = os.open(self.path(name), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + wait   # a peer testing the lock holds it for an instant
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    log.error("another live worker on this node is named %s: give each worker its own "
                              "DEPOT_WORKER_NAME", name)
                    return False
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, name.encode())
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def gone(self, name: str) -> bool:
        """Whether a worker of that name was present on this node and its process has ended. False
        when nothing is known here (another node, never registered) or it is alive."""
        try:
            fd = os.open(self.path(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)   # and with it our lock

    def names(self) -> dict[str, Path]:
        """Every registered name of this node (live or not), with its file."""
        found = {}
        try:
            entries = list(self.dir.iterdir())
        except OSError:
            return found
        for path in entries:
            try:
                found[path.read_text(encoding="utf-8")] = path
            except (OSError, UnicodeDecodeError):
                continue
        return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    try:   # a zombie has ended
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def sweep_secrets(base: str = SHM) -> list[str]:
    """Remove the run secrets directories (runner.SecretsFile) that processes of this node left
    when they died: names ``depot-secrets-<pid>-...`` whose pid no longer runs. A name without a
    pid is left alone (its owner cannot be told)."""
    removed = []
    try:
        entries = list(Path(base).glob("depot-secrets-*"))
    except OSError:
        return removed
    for path in entries:
        pid = path.name[len("depot-secrets-"):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        try:
            if path.is_symlink() or not path.is_dir() or path.lstat().st_uid != os.geteuid():
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
    return removed
