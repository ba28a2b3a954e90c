# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one installer or script process: no shell, a time limit that ends the whole process
tree, output captured to files (a grandchild holding a pipe open cannot hang us) and tailed."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time

RESULT_FILE_ENV = "DEPOT_RESULT_FILE"


def to_int32(value):
    """Normalise an exit code to a signed 32-bit integer (MSI codes arrive unsigned from some APIs)."""
    value = int(value)
    return ((value + 2 ** 31) % 2 ** 32) - 2 ** 31


def tail(path, lines):
    """The last ``lines`` lines of a text file (read from the end, so a huge log costs little)."""
    if not path or lines <= 0 or not os.path.isfile(path):
        return []
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        block, data = 8192, b""
        while size > 0 and data.count(b"\n") <= lines:
            step = min(block, size)
            size -= step
            f.seek(size)
            data = f.read(step) + data
    text = data.decode("utf-8", errors="replace").splitlines()
    return text[-lines:]


def _descendants(root_pid):
    """Pids of every live descendant of ``root_pid`` (children that left the process group too)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found


def _become_subreaper():
    """Make orphans of our children our children (PR_SET_CHILD_SUBREAPER), so an installer that
    double-forks a helper cannot leave our process tree and escape its timeout."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass  # not Linux: we can still end the process group and the visible tree


def _kill_tree(proc):
    # Everything under us: the installer's tree plus orphans re-parented to us as subreaper.
    pids = [p for p in _descendants(os.getpid()) if p != proc.pid]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for target in [proc.pid] + pids:
            try:
                os.kill(target, sig)
            except ProcessLookupError:
                pass
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        if _wait_gone(proc, pids, 5.0):
            return


def _wait_gone(proc, pids, seconds):
    """Wait until the installer and every other pid has ended (reaping the ones that are our
    children); True when they all did within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        proc.poll()
        for pid in pids:
            try:
                os.waitpid(pid, os.WNOHANG)   # orphans re-parented to us are ours to reap
            except ChildProcessError:
                pass
        if proc.returncode is not None and not any(_alive(p) for p in pids):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Outcome(object):
    def __init__(self, rc, timed_out, duration, stdout, stderr):
        self.rc = rc
        self.timed_out = timed_out
        self.duration = duration
        self.stdout = stdout
        self.stderr = stderr


def run(argv, timeout=0, user=None, env=None, cwd=None, tail_lines=40, stdin_data=None, pass_fds=(), started=None):
    """Run ``argv`` (a list, never a shell string) and return an :class:`Outcome`.

    ``user`` is a ``pwd.struct_passwd`` to run as (the caller is root), or None for ourselves.
    ``timeout`` 0 means no limit. A code written to ``$DEPOT_RESULT_FILE`` overrides the exit
    status, since POSIX statuses are 8-bit and Windows-style result codes are not.
    ``pass_fds`` are inherited by the process (the attempt lock); ``started(pid)`` is called
    once it runs.
    """
    workdir = tempfile.mkdtemp(prefix="depot-run-")
    if user is not None:
        os.chown(workdir, user.pw_uid, user.pw_gid)
    out_path = os.path.join(workdir, "stdout")
    err_path = os.path.join(workdir, "stderr")
    result_path = os.path.join(workdir, "result")
    full_env = dict(env or os.environ)
    full_env[RESULT_FILE_ENV] = result_path
    kwargs = {}
    if user is not None and user.pw_uid != os.geteuid():
        kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=_groups_of(user))
        full_env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name, SHELL=user.pw_shell or "/bin/sh")
    _become_subreaper()
    start = time.monotonic()
    timed_out = False
    try:
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            if user is not None:
                for f in (out, err):
                    os.fchown(f.fileno(), user.pw_uid, user.pw_gid)
            proc = subprocess.Popen(
                argv, stdout=out, stderr=err,
                stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                env=full_env, cwd=cwd or workdir, start_new_session=True, close_fds=True, pass_fds=tuple(pass_fds),
                **kwargs)
            if started is not None:
                started(proc.pid)
            if stdin_data is not None:
                proc.stdin.write(stdin_data.encode("utf-8"))
                proc.stdin.close()
            try:
                rc = proc.wait(timeout=timeout or None)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_tree(proc)
                rc = proc.returncode
        duration = time.monotonic() - start
        rc = to_int32(rc) if rc is not None else None
        if not timed_out and os.path.isfile(result_path):
            with open(result_path) as f:
                text = f.read().strip()
            if text.lstrip("-").isdigit():
                rc = to_int32(text)
        return Outcome(rc, timed_out, round(duration, 3), tail(out_path, tail_lines), tail(err_path, tail_lines))
    finally:
        for path in (out_path, err_path, result_path):
            if os.path.exists(path):
                os.unlink(path)
        os.rmdir(workdir)


def _groups_of(user):
    import grp
    groups = [g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem]
    return groups or [user.pw_gid]
