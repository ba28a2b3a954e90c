# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is the package database busy? The POSIX counterpart of the Windows ``_MSIExecute`` mutex,
used by ``preflight`` (installer_busy) and by ``package`` before a deb or rpm attempt."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import sys
import time

DEFAULT_LOCK_FILES = [
    "/var/lib/dpkg/lock-frontend",
    "/var/lib/dpkg/lock",
    "/var/lib/rpm/.rpm.lock",
    "/usr/lib/sysimage/rpm/.rpm.lock",
]
LOCK_FILES = {
    "deb": DEFAULT_LOCK_FILES[:2],
    "rpm": DEFAULT_LOCK_FILES[2:],
}

# struct flock: Linux (all glibc ABIs with 64-bit off_t, as CPython uses) / BSD and macOS.
if sys.platform.startswith("linux"):
    _FLOCK_FMT = "@hhqqi"
    _FLOCK_FIELDS = ("l_type", "l_whence", "l_start", "l_len", "l_pid")
else:
    _FLOCK_FMT = "@qqihh"
    _FLOCK_FIELDS = ("l_start", "l_len", "l_pid", "l_type", "l_whence")
_FLOCK_BUFSIZE = 64  # larger than any struct flock; the kernel writes only its own size


def probe_lock(path):
    """Ask the kernel whether someone holds a POSIX (fcntl/lockf) lock on ``path``.

    Returns ``(held, pid, error)``: held is True/False, or None when the file cannot be tested
    (error then says why). pid is the holder's pid when the kernel reports it (None for a lock
    held from another PID namespace or an open file description lock).

    The probe uses F_GETLK, so it never takes the lock: a running dpkg or rpm is not disturbed.
    POSIX locks are per process, so a lock held by the calling process itself is not seen (and
    closing our descriptor would drop it): probe from another process.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
    except (IOError, OSError) as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return False, None, None
        return None, None, "cannot open %s: %s" % (path, e.strerror)
    try:
        values = dict.fromkeys(_FLOCK_FIELDS, 0)
        values["l_type"] = fcntl.F_WRLCK
        values["l_whence"] = os.SEEK_SET
        request = struct.pack(_FLOCK_FMT, *[values[k] for k in _FLOCK_FIELDS])
        request += b"\0" * (_FLOCK_BUFSIZE - len(request))
        try:
            answer = fcntl.fcntl(fd, fcntl.F_GETLK, request)
        except (IOError, OSError) as e:
            return _probe_lock_lockf(path, e)
        got = dict(zip(_FLOCK_FIELDS, struct.unpack_from(_FLOCK_FMT, answer)))
        if got["l_type"] == fcntl.F_UNLCK:
            return False, None, None
        pid = got["l_pid"]
        return True, (pid if pid > 0 else None), None
    finally:
        os.close(fd)


def _probe_lock_lockf(path, getlk_error):
    """Fallback when F_GETLK is unusable: try a non-blocking lock and release it at once."""
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
    except (IOError, OSError) as e:
        return None, None, "cannot test %s (F_GETLK: %s; open: %s)" % (path, getlk_error, e.strerror)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError) as e:
            if e.errno in (errno.EACCES, errno.EAGAIN):
                return True, None, None
            return None, None, "cannot test %s: %s" % (path, e.strerror)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False, None, None
    finally:
        os.close(fd)


def package_db_busy(installer_type, lock_files=None):
    """A description of the holder of the package database lock, or None when it is free."""
    for path in lock_files or LOCK_FILES.get(installer_type, ()):
        held, pid = probe_lock(path)[:2]
        if held:
            return "%s is held by pid %s" % (path, pid if pid else "(unknown)")
    return None


ATTEMPT_LOCK = "/run/depot/attempt.lock"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    return True


class AttemptLock(object):
    """One Depot attempt at a time on a host: an exclusive flock on ``/run/depot/attempt.lock``
    (gone with a reboot, like any installer it guarded), taken before the command runs and
    inherited by it. The lock belongs to the open file, which the installer shares: when the
    module dies with its ssh session and the installer goes on (it runs in a session of its own),
    the installer still holds it. A second attempt - the controller re-verifying a host whose
    result was lost - waits for it instead of installing alongside, then detects again.

    The file records the pid that matters (the module's, then the installer's). A lock whose
    recorded process has ended is held only by what that installer left running (a daemon that
    inherited the descriptor): the file is replaced, and the next attempt locks the new one.
    """

    def __init__(self, path=ATTEMPT_LOCK):
        self.path = path
        self.fd = None
        self.holder = None     # what held it when we had to wait (or still holds it)
        self.waited = 0.0
        self.unavailable = None

    def acquire(self, timeout, what, poll=1.0):
        """Take the lock, waiting up to ``timeout`` seconds (0: no limit). True when taken, or when
        this account cannot make the lock file (no root: then ``unavailable`` says why)."""
        self.holder, self.waited = None, 0.0
        start = time.monotonic()
        while True:
            try:
                directory = os.path.dirname(self.path)
                if not os.path.isdir(directory):
                    os.makedirs(directory, 0o755)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            except (IOError, OSError) as e:
                if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise
                self.unavailable = "cannot lock %s: %s" % (self.path, e.strerror)
                return True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except (IOError, OSError) as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise
                self.holder = self._read(fd)
                pid = self.holder.split(" ", 1)[0]
                stale = pid.isdigit() and not _alive(int(pid))
                if stale and os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    os.unlink(self.path)
                os.close(fd)
                if stale:
                    continue
                self.waited = time.monotonic() - start
                if timeout and self.waited >= timeout:
                    return False
                time.sleep(poll)
                continue
            try:
                current = os.stat(self.path).st_ino
            except OSError:
                current = None
            if current != os.fstat(fd).st_ino:   # replaced while we waited for it: lock the new one
                os.close(fd)
                continue
            self.fd = fd
            self.waited = time.monotonic() - start
            self.record(os.getpid(), what)
            return True

    @staticmethod
    def _read(fd):
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            return os.read(fd, 512).decode("utf-8", "replace").strip() or "(unknown)"
        except OSError:
            return "(unknown)"

    @property
    def fds(self):
        """The descriptors the command inherits: the lock's, if one is held."""
        return [] if self.fd is None else [self.fd]

    def record(self, pid, what):
        """Say who holds the lock now (the installer, once it runs)."""
        if self.fd is None:
            return
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        os.write(self.fd, ("%d %s" % (pid, what)).encode("utf-8"))

    def release(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)   # for every process sharing the open file
            os.close(self.fd)
            self.fd = None
