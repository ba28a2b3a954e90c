# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attempt loop of DESIGN §2.5, independent of Ansible so it can be tested by replaying
recorded module results:

attempt → classify → retry: wait, attempt again → soft_reboot: reboot now or report it →
hard_reboot: wait for the host, verify with detection → failure: optionally reboot once and try
again (retry_after_reboot). A connection lost in the middle of an attempt is resolved by waiting
for the host and asking detection, never by blindly running the installer again; a host that does
not answer again within the reboot timeout is unreachable (the attempt's result is unknown).

A reboot the loop would start itself is held back when ``reboot_not_after`` (an aware datetime:
the end of the maintenance window) is less than ``reboot_duration`` seconds (the reboot timeout)
away by the injected ``clock``. A reboot the installer started (hard_reboot) is waited for as ever.
"""

from __future__ import annotations

import datetime

from ansible_collections.depot.software.plugins.plugin_utils._exit_codes import FAILURE, to_int32

TAIL_KEYS = ("stdout_tail", "stderr_tail", "log_tail", "cmd", "content", "run_as", "duration", "boot_id")


class HostUnreachable(Exception):
    """The connection failed. ``at_connect`` is True when no session was ever established."""

    def __init__(self, msg, at_connect=True):
        super(HostUnreachable, self).__init__(msg)
        self.at_connect = at_connect


class RebootFailed(Exception):
    """The host did not come back (or never went down) within the reboot timeout."""


class Host(object):
    """What the loop needs from a host; the action plugin implements it over a connection."""

    def attempt(self, detect_only=False):
        """Run the module once and return its result dict; raise HostUnreachable."""
        raise NotImplementedError

    def reboot(self, previous_boot_id):
        """Reboot the host and wait until it is back and ready; raise RebootFailed."""
        raise NotImplementedError

    def wait_for_boot(self, previous_boot_id):
        """Wait until the host answers with a boot id other than ``previous_boot_id`` (any
        answer when it is None) and is ready; return the new boot id; raise RebootFailed."""
        raise NotImplementedError

    def sleep(self, seconds):
        raise NotImplementedError


class AttemptLoop(object):
    def __init__(self, host, classifier, want_present=True, retries=0, retry_interval=30,
                 retry_after_reboot=False, reboot="if_required", reboot_timing="deferred",
                 reboot_not_after=None, reboot_duration=0, clock=None):
        self.host = host
        self.classifier = classifier
        self.want_present = want_present
        self.retries = retries
        self.retry_interval = retry_interval
        self.retry_after_reboot = retry_after_reboot
        self.reboot_policy = reboot
        self.reboot_timing = reboot_timing
        self.reboot_not_after = reboot_not_after
        self.reboot_duration = reboot_duration
        self.clock = clock or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.attempts = []
        self.rebooted = False
        self.last = {}
        self.boot_id = None
        self.reboot_unknown = False   # a session broke before we knew the boot id: rebooted or not?

    # -- helpers -------------------------------------------------------------------------------
    def _record(self, result, klass):
        if isinstance(result.get("rc"), int):
            result = dict(result, rc=to_int32(result["rc"]))
        self.last = result
        self.boot_id = result.get("boot_id") or self.boot_id
        entry = dict(rc=result.get("rc"), status=result.get("status"), duration=result.get("duration", 0.0),
                     detected_before=result.get("detected_before"), detected_after=result.get("detected_after"))
        entry["class"] = klass
        if result.get("waited_for"):   # an earlier attempt's installer still ran here: waited for it
            entry["waited_for"] = result["waited_for"]
        self.attempts.append(entry)

    def _detected_ok(self, detected):
        """Detection agrees with the desired state (None: no detection configured)."""
        return detected is None or detected == self.want_present

    def _finish(self, outcome, failed=False, msg=None, reboot_required=False, **extra):
        first = self.attempts[0] if self.attempts else {}
        detected_after = self.last.get("detected_after")
        if detected_after is None and self.last.get("status") == "satisfied":
            detected_after = self.last.get("detected_before")
        result = dict(
            outcome=outcome,
            failed=failed,
            # 'already' (1605/1614 on uninstall) is success, not a change.
            changed=any(a["status"] in ("executed", "timeout", "connection_lost") and a["class"] != "already"
                        for a in self.attempts) or self.rebooted or self.last.get("status") == "would_change",
            rc=self.last.get("rc"),
            status=self.last.get("status"),
            reboot_required=reboot_required,
            rebooted=None if self.reboot_unknown and not self.rebooted else self.rebooted,
            attempts=self.attempts,
            detected_before=first.get("detected_before"),
            detected_after=detected_after,
        )
        for key in TAIL_KEYS:
            if key in self.last:
                result[key] = self.last[key]
        if self.boot_id:
            result["boot_id"] = self.boot_id  # the latest known, also after a reboot or a module failure
        msg = msg or self.last.get("msg")
        if msg:
            result["msg"] = msg
        result.update(extra)
        return result

    def _attempt(self, detect_only=False):
        """One module call; a connection lost mid-way becomes a result decided by detection."""
        try:
            return self.host.attempt(detect_only=detect_only)
        except HostUnreachable as e:
            if e.at_connect and not self.attempts:
                raise
            return self._recover(str(e))

    def _recover(self, reason):
        """The session broke mid-attempt (often: the installer rebooted the host). Wait for the host,
        then let detection say what happened. A host that does not answer again within the reboot
        timeout leaves the attempt's result unknown: that is unreachable (the controller contacts it
        again later, and detection decides), not a failure and not a reboot that timed out."""
        previous = self.boot_id
        try:
            self.boot_id = self.host.wait_for_boot(None)
        except RebootFailed as e:
            raise HostUnreachable("connection lost during the attempt (%s) and the host did not answer again: %s; "
                                  "the attempt's result is unknown" % (reason, e), at_connect=False)
        if previous is None:
            self.reboot_unknown = True
        elif self.boot_id != previous:
            self.rebooted = True
        verify = self.host.attempt(detect_only=True)
        detected = verify.get("detected_before")
        self.boot_id = verify.get("boot_id") or self.boot_id
        return dict(verify, status="connection_lost", rc=None, detected_before=None, detected_after=detected,
                    msg="connection lost during the attempt (%s); detection afterwards says %s"
                    % (reason, "present" if detected else "absent"))

    def _reboot_held_back(self):
        """The message saying why our own reboot may not start now, or None when it may."""
        if self.reboot_not_after is None:
            return None
        if self.clock() + datetime.timedelta(seconds=self.reboot_duration) < self.reboot_not_after:
            return None
        return ("the reboot was held back because the maintenance window closes at %s (a reboot may take up to %ss)"
                % (self.reboot_not_after.isoformat(), self.reboot_duration))

    def _reboot(self, wait_only=False):
        before = self.boot_id
        if wait_only:
            self.boot_id = self.host.wait_for_boot(before)
        else:
            self.boot_id = self.host.reboot(before) or self.boot_id
        self.rebooted = True

    def _reboot_and_verify(self, wait_only=False):
        """Reboot (or wait for the installer's reboot), then ask detection; returns its answer."""
        self._reboot(wait_only)
        verify = self.host.attempt(detect_only=True)
        self.boot_id = verify.get("boot_id") or self.boot_id
        detected = verify.get("detected_before")
        self.last = dict(self.last, detected_after=detected, boot_id=self.boot_id)
        if self.attempts:
            self.attempts[-1]["detected_after"] = detected
        return detected

    # -- the loop ------------------------------------------------------------------------------
    def run(self):
        try:
            return self._run()
        except HostUnreachable as e:
            # Not "failed": Ansible counts a result that is both as a failure, not as unreachable.
            return self._finish("unreachable", msg=str(e), unreachable=True)
        except RebootFailed as e:
            return self._finish("reboot_timeout", failed=True, msg=str(e))

    def _run(self):
        retries_left = self.retries
        reboot_retry_left = 1 if self.retry_after_reboot else 0
        while True:
            result = self._attempt()
            if result.get("failed"):
                self._record(result, None)
                return self._finish(FAILURE, failed=True, msg=result.get("msg"))
            status = result.get("status")
            klass = self.classifier.classify(result.get("rc")) if status in ("executed", "busy") else None
            if status == "connection_lost":
                detected = result.get("detected_after")
                klass = "success" if detected is not None and self._detected_ok(detected) else FAILURE
            self._record(result, klass)

            if status == "satisfied":
                # Satisfied on a later attempt (after a reboot): an earlier attempt did the work.
                return self._finish("already" if len(self.attempts) == 1 else "success")
            if status == "would_change":
                return self._finish("would_change")
            if status == "no_user_session":
                return self._finish("no_user_session", skipped=True, msg=result.get("msg") or "no user is logged in")

            if klass == "retry":
                if retries_left > 0:
                    retries_left -= 1
                    self.host.sleep(self.retry_interval)
                    continue
                return self._finish("retry", failed=True, msg="still busy (rc %s) after %d retries" % (result.get("rc"), self.retries))

            if status == "timeout" or klass == FAILURE:
                held_back = self._reboot_held_back() if reboot_retry_left > 0 else None
                if reboot_retry_left > 0 and not held_back:
                    reboot_retry_left -= 1
                    self._reboot()  # the next attempt detects first, so no separate verification
                    continue
                if status == "timeout":
                    outcome, msg = "timeout", "the attempt was ended after its timeout"
                else:
                    outcome, msg = FAILURE, result.get("msg") or "exit code %s is a failure" % result.get("rc")
                return self._finish(outcome, failed=True, msg="%s; %s" % (msg, held_back) if held_back else msg)

            if klass == "hard_reboot":
                detected = self._reboot_and_verify(wait_only=True)
                if not self._detected_ok(detected):
                    return self._finish("not_detected", failed=True, msg=self._not_detected_msg(after_reboot=True))
                return self._finish("hard_reboot")

            # success, soft_reboot, already
            if not self._detected_ok(result.get("detected_after")):
                return self._finish("not_detected", failed=True, msg=self._not_detected_msg())
            wants_reboot = klass == "soft_reboot" or (self.reboot_policy == "force" and result.get("changed"))
            if not wants_reboot or self.reboot_policy == "never":
                return self._finish(klass, reboot_required=wants_reboot and klass == "soft_reboot")
            if self.reboot_timing == "deferred":
                return self._finish(klass, reboot_required=True)
            held_back = self._reboot_held_back()
            if held_back:
                return self._finish(klass, reboot_required=True, msg=held_back)
            detected = self._reboot_and_verify()
            if not self._detected_ok(detected):
                return self._finish("not_detected", failed=True, msg=self._not_detected_msg(after_reboot=True))
            return self._finish(klass)

    def _not_detected_msg(self, after_reboot=False):
        when = "after the reboot" if after_reboot else "after the attempt"
        if self.want_present:
            return "the installer reported success (rc %s) but the software is not detected %s" % (self.last.get("rc"), when)
        return "the uninstaller reported success (rc %s) but the software is still detected %s" % (self.last.get("rc"), when)
