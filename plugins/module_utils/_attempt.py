# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One attempt on a POSIX host, shared by the package and script modules (DESIGN §2.1):
detection, then the command, then detection again, in one remote execution."""

from __future__ import annotations

import os

from ansible_collections.depot.software.plugins.module_utils import _content, _locks, _process, _runas
from ansible_collections.depot.software.plugins.module_utils._detection import Detector, DetectionError

MASK = "********"


def read_boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def mask(lines, secrets):
    secrets = sorted((str(s) for s in secrets if s), key=len, reverse=True)
    out = []
    for line in lines:
        for s in secrets:
            line = line.replace(s, MASK)
        out.append(line)
    return out


class Attempt(object):
    """Subclasses say what runs (:meth:`command`) and how presence is detected."""

    want_present = True

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.detector = Detector(module)
        self.result = dict(changed=False, rc=None, status=None, detected_before=None, detected_after=None,
                           duration=0.0, stdout_tail=[], stderr_tail=[], log_tail=[])

    # hooks -------------------------------------------------------------------------------
    def detection_spec(self):
        """The detection spec, or None when the action always runs (a script without rules)."""
        return self.params["detection"]

    def command(self, user):
        """Return ``(argv, cwd)`` for the attempt; may fetch content."""
        raise NotImplementedError

    def busy(self):
        """A description of whoever holds the installer lock, or None."""
        return None

    def environment(self):
        return dict(self.params["environment"])

    def secrets(self):
        return list(self.params["environment"].values()) + [self.params.get("run_as_password")]

    def log_path(self):
        return None

    # the attempt -----------------------------------------------------------------------------
    def detect(self):
        spec = self.detection_spec()
        return None if spec is None else self.detector.evaluate(spec)[0]

    def run(self):
        p, r = self.params, self.result
        r["detected_before"] = self.detect()
        satisfied = r["detected_before"] is not None and r["detected_before"] == self.want_present
        if satisfied:
            r["status"] = "satisfied"
            return r
        if p["detect_only"] or self.module.check_mode:
            r.update(status="would_change", changed=not p["detect_only"])
            return r
        # Only now is a session needed: an installed package needs no logged-in user.
        user, r["run_as"] = _runas.resolve(self.module, p["run_as"], p["run_as_user"])
        argv, cwd = self.command(user)
        lock = _locks.AttemptLock()
        what = "depot %s %s" % (self.module._name.rsplit(".", 1)[-1], p.get("name") or "")
        # An orphaned installer has no one to enforce its time limit: wait an hour at most.
        if not lock.acquire(p["timeout"] or 3600, what.strip()):
            r.update(status="busy", rc=1618, msg="another Depot attempt is still running here (%s) after %ds"
                     % (lock.holder, int(lock.waited)))
            return r
        try:
            if lock.holder is not None:
                # An earlier attempt (one whose result was lost) ran meanwhile: what did it leave?
                r["waited_for"] = dict(holder=lock.holder, seconds=round(lock.waited, 1))
                r["detected_before"] = self.detect()
                if r["detected_before"] is not None and r["detected_before"] == self.want_present:
                    r["status"] = "satisfied"
                    return r
            return self._execute(argv, cwd, user, lock)
        finally:
            lock.release()

    def _execute(self, argv, cwd, user, lock):
        p, r = self.params, self.result
        holder = self.busy()
        if holder is not None:
            r.update(status="busy", rc=1618, msg="installer busy: %s" % holder)
            return r
        env = dict(os.environ, **self.environment())
        done = _process.run(argv, timeout=p["timeout"], user=user, env=env, cwd=cwd, tail_lines=p["tail_lines"],
                            pass_fds=lock.fds, started=lambda pid: lock.record(pid, "installer of %s" % argv[0]))
        secrets = self.secrets()
        r.update(changed=True, cmd=mask(argv, secrets), rc=done.rc, duration=done.duration,
                 stdout_tail=mask(done.stdout, secrets), stderr_tail=mask(done.stderr, secrets),
                 status="timeout" if done.timed_out else "executed")
        if self.log_path():
            r["log_tail"] = mask(_process.tail(self.log_path(), p["tail_lines"]), secrets)
        r["detected_after"] = self.detect()
        return r

    def main(self):
        """Run the attempt and exit the module with its result."""
        try:
            result = self.run()
        except _runas.NoUserSession as e:
            result = dict(self.result, status="no_user_session", msg=str(e))
        except (_runas.RunAsError, _content.ContentError, DetectionError, ValueError) as e:
            self.module.fail_json(msg=str(e), boot_id=read_boot_id(), **self.result)
        result["boot_id"] = read_boot_id()
        self.module.exit_json(**result)
