"""The attempt lock: one Depot attempt at a time on a host, held by the installer itself, so a
second attempt (a re-verification after a lost result) waits for an installer whose module died."""

import os
import signal
import subprocess
import sys
import textwrap

from ansible_collections.depot.software.plugins.module_utils._locks import AttemptLock

# A "module" that takes the lock, starts an installer (sleep) that inherits it in a session of its
# own, records the installer's pid - or, with DEAD, a pid that has ended - and dies without
# releasing anything: what a module killed with its ssh session leaves.
ORPHANING_MODULE = textwrap.dedent("""
    import os, subprocess, sys
    from ansible_collections.depot.software.plugins.module_utils._locks import AttemptLock
    lock = AttemptLock(sys.argv[1])
    assert lock.acquire(5, "depot package agent")
    child = subprocess.Popen(["sleep", "60"], pass_fds=lock.fds, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dead = subprocess.Popen(["true"]); dead.wait()
    lock.record(dead.pid if sys.argv[2] == "DEAD" else child.pid, "installer of agent-setup")
    print(child.pid, flush=True)
    os._exit(0)
""")


def orphan(path, which="ALIVE"):
    done = subprocess.run([sys.executable, "-c", ORPHANING_MODULE, str(path), which], capture_output=True, text=True,
                          check=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    return int(done.stdout.strip())


def test_taken_recorded_and_released(tmp_path):
    path = tmp_path / "run" / "depot" / "attempt.lock"
    lock = AttemptLock(str(path))
    assert lock.acquire(1, "depot package agent") and lock.holder is None
    assert path.read_text() == "%d depot package agent" % os.getpid()
    lock.record(os.getppid(), "installer of setup")      # a live process
    assert path.read_text() == "%d installer of setup" % os.getppid()
    other = AttemptLock(str(path))
    assert not other.acquire(0.3, "second", poll=0.1)
    assert other.holder == "%d installer of setup" % os.getppid() and other.waited >= 0.3
    lock.release()
    assert other.acquire(1, "second") and other.holder is None
    other.release()


def test_an_installer_whose_module_died_still_holds_it(tmp_path):
    path = tmp_path / "attempt.lock"
    installer = orphan(path)
    try:
        waiting = AttemptLock(str(path))
        assert not waiting.acquire(0.5, "re-verify", poll=0.1)
        assert waiting.holder == "%d installer of agent-setup" % installer
    finally:
        os.kill(installer, signal.SIGKILL)
    after = AttemptLock(str(path))
    assert after.acquire(10, "re-verify", poll=0.1)   # the installer's end released it
    after.release()


def test_a_lock_left_to_a_daemon_of_an_ended_installer_is_replaced(tmp_path):
    path = tmp_path / "attempt.lock"
    leftover = orphan(path, "DEAD")
    try:
        lock = AttemptLock(str(path))
        assert lock.acquire(5, "next attempt", poll=0.1)
        assert lock.holder.endswith("installer of agent-setup")    # it saw the stale holder
        assert path.read_text() == "%d next attempt" % os.getpid()
        lock.release()
    finally:
        os.kill(leftover, signal.SIGKILL)


def test_no_lock_where_the_account_cannot_make_one(tmp_path, monkeypatch):
    """An account that cannot write /run (no become) still runs its attempt, unlocked, and says so."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(os, "makedirs", refuse)
    lock = AttemptLock(str(tmp_path / "depot" / "attempt.lock"))
    assert lock.acquire(1, "x") and lock.fds == []
    assert lock.unavailable == "cannot lock %s: Permission denied" % (tmp_path / "depot" / "attempt.lock")
    lock.record(1, "nothing to record")
    lock.release()
