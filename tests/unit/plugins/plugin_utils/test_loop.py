"""The attempt loop, driven by replaying module results (the shape package.py/package.ps1 return)."""

import datetime

from ansible_collections.depot.software.plugins.plugin_utils._exit_codes import Classifier
from ansible_collections.depot.software.plugins.plugin_utils._loop import AttemptLoop, Host, HostUnreachable, RebootFailed


def executed(rc, before=False, after=True, boot="boot-1"):
    return dict(status="executed", rc=rc, changed=True, detected_before=before, detected_after=after,
                boot_id=boot, duration=1.0, stdout_tail=["out"], stderr_tail=[])


def detection(present, boot="boot-2"):
    return dict(status="satisfied" if present else "would_change", rc=None, changed=False,
                detected_before=present, detected_after=None, boot_id=boot)


class ReplayHost(Host):
    """Answers attempts from a script of results or exceptions and records every call."""

    def __init__(self, *answers, boots=("boot-2", "boot-3")):
        self.answers = list(answers)
        self.calls = []
        self.boots = list(boots)

    def attempt(self, detect_only=False):
        self.calls.append(("detect" if detect_only else "attempt",))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def reboot(self, previous_boot_id):
        self.calls.append(("reboot", previous_boot_id))
        return self.boots.pop(0)

    def wait_for_boot(self, previous_boot_id):
        self.calls.append(("wait", previous_boot_id))
        answer = self.boots.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sleep(self, seconds):
        self.calls.append(("sleep", seconds))


def run(host, **kw):
    state = kw.pop("state", "present")
    overrides = kw.pop("exit_codes", None)
    return AttemptLoop(host, Classifier(overrides, state=state), want_present=state == "present", **kw).run()


def test_success_one_attempt():
    host = ReplayHost(executed(0))
    r = run(host)
    assert (r["outcome"], r["failed"], r["changed"], r["rc"]) == ("success", False, True, 0)
    assert r["attempts"] == [dict(rc=0, status="executed", duration=1.0, detected_before=False, detected_after=True, **{"class": "success"})]
    assert host.calls == [("attempt",)]


def test_already_satisfied_is_one_round_trip_and_unchanged():
    host = ReplayHost(detection(True, boot="boot-1"))
    r = run(host)
    assert (r["outcome"], r["changed"], r["failed"], r["detected_after"]) == ("already", False, False, True)
    assert host.calls == [("attempt",)]


def test_1618_is_retried_then_success():
    host = ReplayHost(executed(1618, after=False), executed(1618, after=False), executed(0))
    r = run(host, retries=3, retry_interval=7)
    assert r["outcome"] == "success"
    assert [a["class"] for a in r["attempts"]] == ["retry", "retry", "success"]
    assert host.calls == [("attempt",), ("sleep", 7), ("attempt",), ("sleep", 7), ("attempt",)]


def test_retries_exhausted():
    host = ReplayHost(executed(1618, after=False), executed(1618, after=False))
    r = run(host, retries=1, retry_interval=0)
    assert (r["outcome"], r["failed"]) == ("retry", True)
    assert "after 1 retries" in r["msg"]


def test_busy_status_is_retried():
    busy = dict(status="busy", rc=1618, changed=False, detected_before=False, detected_after=None, boot_id="b")
    host = ReplayHost(busy, executed(0))
    r = run(host, retries=1, retry_interval=0)
    assert r["outcome"] == "success"
    assert [a["status"] for a in r["attempts"]] == ["busy", "executed"]


def test_failure_class():
    r = run(ReplayHost(executed(1603, after=False)))
    assert (r["outcome"], r["failed"], r["rc"]) == ("failure", True, 1603)


def test_success_but_not_detected():
    r = run(ReplayHost(executed(0, after=False)))
    assert (r["outcome"], r["failed"]) == ("not_detected", True)
    assert "not detected after the attempt" in r["msg"]


def test_uninstall_success_but_still_detected():
    r = run(ReplayHost(executed(0, before=True, after=True)), state="absent")
    assert r["outcome"] == "not_detected"
    assert "still detected" in r["msg"]


def test_uninstall_1605_is_already():
    r = run(ReplayHost(executed(1605, before=True, after=False)), state="absent")
    assert (r["outcome"], r["failed"]) == ("already", False)


def test_soft_reboot_deferred_reports_reboot_required():
    host = ReplayHost(executed(3010))
    r = run(host)
    assert (r["outcome"], r["reboot_required"], r["rebooted"], r["failed"]) == ("soft_reboot", True, False, False)
    assert host.calls == [("attempt",)]


def test_soft_reboot_never():
    r = run(ReplayHost(executed(3010)), reboot="never", reboot_timing="immediate")
    assert (r["outcome"], r["reboot_required"], r["rebooted"]) == ("soft_reboot", True, False)


def test_soft_reboot_immediate_reboots_and_verifies():
    host = ReplayHost(executed(3010, boot="boot-1"), detection(True))
    r = run(host, reboot_timing="immediate")
    assert (r["outcome"], r["reboot_required"], r["rebooted"], r["detected_after"]) == ("soft_reboot", False, True, True)
    assert host.calls == [("attempt",), ("reboot", "boot-1"), ("detect",)]


def test_force_reboots_after_plain_success():
    host = ReplayHost(executed(0), detection(True))
    r = run(host, reboot="force", reboot_timing="immediate")
    assert (r["outcome"], r["rebooted"]) == ("success", True)


def test_hard_reboot_waits_for_new_boot_then_verifies():
    host = ReplayHost(executed(1641, after=None, boot="boot-1"), detection(True))
    r = run(host)
    assert (r["outcome"], r["rebooted"], r["failed"], r["detected_after"]) == ("hard_reboot", True, False, True)
    assert host.calls == [("attempt",), ("wait", "boot-1"), ("detect",)]


def test_hard_reboot_not_detected_after_reboot():
    r = run(ReplayHost(executed(1641, after=None), detection(False)))
    assert (r["outcome"], r["failed"]) == ("not_detected", True)
    assert "after the reboot" in r["msg"]


def test_hard_reboot_host_never_returns():
    host = ReplayHost(executed(1641, after=None), boots=[RebootFailed("the host did not come back within reboot_timeout (5s)")])
    r = run(host)
    assert (r["outcome"], r["failed"]) == ("reboot_timeout", True)
    assert "did not come back" in r["msg"]


def test_retry_after_reboot():
    host = ReplayHost(executed(1603, after=False, boot="boot-1"), executed(0, boot="boot-2"))
    r = run(host, retry_after_reboot=True)
    assert (r["outcome"], r["rebooted"]) == ("success", True)
    assert host.calls == [("attempt",), ("reboot", "boot-1"), ("attempt",)]


def test_retry_after_reboot_only_once():
    host = ReplayHost(executed(1603, after=False), executed(1603, after=False))
    r = run(host, retry_after_reboot=True)
    assert (r["outcome"], r["failed"]) == ("failure", True)
    assert len(r["attempts"]) == 2


def test_timeout():
    timed_out = dict(executed(None, after=False), status="timeout", rc=-9)
    r = run(ReplayHost(timed_out))
    assert (r["outcome"], r["failed"]) == ("timeout", True)


def test_no_user_session_is_skipped_not_failed():
    r = run(ReplayHost(dict(status="no_user_session", rc=None, msg="no user is logged in", detected_before=False)))
    assert (r["outcome"], r["failed"], r["skipped"]) == ("no_user_session", False, True)


def test_module_error_fails_without_retry():
    host = ReplayHost(dict(failed=True, msg="checksum mismatch for x"))
    r = run(host, retries=3)
    assert (r["outcome"], r["failed"], r["msg"]) == ("failure", True, "checksum mismatch for x")
    assert host.calls == [("attempt",)]


def test_unreachable_at_first_contact():
    r = run(ReplayHost(HostUnreachable("ssh: connect to host 10.0.0.9 port 22: Connection timed out")))
    assert (r["outcome"], r["failed"], r["unreachable"]) == ("unreachable", False, True)


def test_connection_lost_mid_attempt_is_resolved_by_detection_not_rerun():
    # Windows: msiexec returned 1641 and the host went down before WinRM sent the result.
    host = ReplayHost(HostUnreachable("Connection aborted: RemoteDisconnected", at_connect=False), detection(True, boot="boot-9"),
                      boots=["boot-9"])
    r = run(host)
    assert (r["outcome"], r["failed"], r["detected_after"]) == ("success", False, True)
    assert host.calls == [("attempt",), ("wait", None), ("detect",)]
    assert "connection lost" in r["msg"]


def test_connection_lost_after_known_boot_marks_rebooted():
    host = ReplayHost(executed(1618, after=False, boot="boot-1"),
                      HostUnreachable("Connection to 10.0.0.5 closed by remote host.", at_connect=False),
                      detection(True, boot="boot-2"), boots=["boot-2"])
    r = run(host, retries=1, retry_interval=0)
    assert (r["outcome"], r["rebooted"]) == ("success", True)


def test_connection_lost_and_not_detected_is_failure():
    host = ReplayHost(HostUnreachable("Broken pipe", at_connect=False), detection(False), boots=["boot-1"])
    r = run(host)
    assert (r["outcome"], r["failed"]) == ("failure", True)


def test_connection_lost_and_host_never_back_is_unreachable_not_failed():
    # The session broke mid-install and the host did not answer again within reboot_timeout: the
    # installer may well have finished, so the result is unknown. Not "reboot_timeout" (failed):
    # unreachable, so the controller contacts it again and detection decides; nothing re-runs here.
    host = ReplayHost(HostUnreachable("Failed to connect to the host via ssh: Timeout, server 10.0.0.5 not responding.",
                                      at_connect=False),
                      boots=[RebootFailed("the host did not come back within reboot_timeout (15s): Connection timed out")])
    r = run(host)
    assert (r["outcome"], r["failed"], r["unreachable"]) == ("unreachable", False, True)
    assert "connection lost during the attempt (Failed to connect" in r["msg"]
    assert "did not come back within reboot_timeout (15s)" in r["msg"] and "result is unknown" in r["msg"]
    assert host.calls == [("attempt",), ("wait", None)]


def test_connection_lost_on_a_later_attempt_and_host_never_back_is_unreachable():
    host = ReplayHost(executed(1618, after=False, boot="boot-1"),
                      HostUnreachable("Connection to 10.0.0.5 closed by remote host.", at_connect=False),
                      boots=[RebootFailed("the host did not come back within reboot_timeout (5s)")])
    r = run(host, retries=1, retry_interval=0)
    assert (r["outcome"], r["failed"], r["unreachable"], r["boot_id"]) == ("unreachable", False, True, "boot-1")
    assert [a["class"] for a in r["attempts"]] == ["retry"]


def test_check_mode_would_change():
    r = run(ReplayHost(dict(detection(False), changed=True)))
    assert (r["outcome"], r["changed"], r["failed"]) == ("would_change", True, False)


# -- reboot_not_after: the loop holds back a reboot of its own that could outlast the window --------

NOW = datetime.datetime(2026, 5, 1, 5, 0, 0, tzinfo=datetime.timezone.utc)


def window(minutes_left, reboot_duration=600, **kw):
    """Loop options for a maintenance window that closes ``minutes_left`` after NOW (fixed clock)."""
    return dict(reboot_not_after=NOW + datetime.timedelta(minutes=minutes_left), reboot_duration=reboot_duration,
                clock=lambda: NOW, **kw)


def test_soft_reboot_past_the_window_is_not_rebooted_and_left_owed():
    host = ReplayHost(executed(3010, boot="boot-1"))
    r = run(host, reboot_timing="immediate", **window(-30))
    assert (r["outcome"], r["failed"], r["reboot_required"], r["rebooted"]) == ("soft_reboot", False, True, False)
    assert r["msg"].startswith("the reboot was held back because the maintenance window closes at 2026-05-01T04:30:00+00:00")
    assert r["boot_id"] == "boot-1"
    assert host.calls == [("attempt",)]


def test_soft_reboot_when_the_reboot_could_outlast_the_window_is_held_back():
    # 5 minutes left, but a reboot may take up to reboot_timeout (10 minutes).
    host = ReplayHost(executed(3010))
    r = run(host, reboot_timing="immediate", **window(5, reboot_duration=600))
    assert (r["outcome"], r["reboot_required"], r["rebooted"]) == ("soft_reboot", True, False)
    assert host.calls == [("attempt",)]


def test_the_deadline_is_not_after_minus_the_reboot_duration():
    at_deadline = run(ReplayHost(executed(3010)), reboot_timing="immediate", **window(10, reboot_duration=600))
    assert (at_deadline["rebooted"], at_deadline["reboot_required"]) == (False, True)
    just_before = ReplayHost(executed(3010, boot="boot-1"), detection(True))
    r = run(just_before, reboot_timing="immediate", **window(10, reboot_duration=599))
    assert (r["rebooted"], r["reboot_required"]) == (True, False)


def test_soft_reboot_with_the_window_far_away_reboots_as_before():
    host = ReplayHost(executed(3010, boot="boot-1"), detection(True))
    r = run(host, reboot_timing="immediate", **window(60))
    assert (r["outcome"], r["reboot_required"], r["rebooted"], r["detected_after"]) == ("soft_reboot", False, True, True)
    assert host.calls == [("attempt",), ("reboot", "boot-1"), ("detect",)]
    assert "msg" not in r


def test_forced_reboot_past_the_window_is_held_back_as_if_deferred():
    host = ReplayHost(executed(0))
    r = run(host, reboot="force", reboot_timing="immediate", **window(-1))
    assert (r["outcome"], r["reboot_required"], r["rebooted"], r["failed"]) == ("success", True, False, False)
    assert host.calls == [("attempt",)]


def test_installer_hard_reboot_is_waited_for_past_the_window():
    host = ReplayHost(executed(1641, after=None, boot="boot-1"), detection(True))
    r = run(host, reboot_timing="immediate", **window(-30))
    assert (r["outcome"], r["rebooted"], r["failed"]) == ("hard_reboot", True, False)
    assert host.calls == [("attempt",), ("wait", "boot-1"), ("detect",)]


def test_retry_after_reboot_past_the_window_fails_without_rebooting():
    host = ReplayHost(executed(1603, after=False))
    r = run(host, retry_after_reboot=True, **window(-30))
    assert (r["outcome"], r["failed"], r["rebooted"]) == ("failure", True, False)
    assert r["msg"] == ("exit code 1603 is a failure; the reboot was held back because the maintenance window closes "
                        "at 2026-05-01T04:30:00+00:00 (a reboot may take up to 600s)")
    assert host.calls == [("attempt",)]


def test_deferred_and_never_ignore_the_window():
    deferred = run(ReplayHost(executed(3010)), **window(-30))
    assert (deferred["outcome"], deferred["reboot_required"], deferred.get("msg")) == ("soft_reboot", True, None)
    never = run(ReplayHost(executed(3010)), reboot="never", reboot_timing="immediate", **window(-30))
    assert (never["reboot_required"], never.get("msg")) == (True, None)


def test_the_clock_is_only_read_when_a_reboot_is_due():
    def clock():
        raise AssertionError("the clock was read")
    r = run(ReplayHost(executed(0)), reboot_timing="immediate", reboot_not_after=NOW, clock=clock)
    assert r["outcome"] == "success"


# -- boot_id on every result ------------------------------------------------------------------------

def test_boot_id_is_the_latest_known_even_when_the_module_fails_after_a_reboot():
    host = ReplayHost(executed(1603, after=False, boot="boot-1"), dict(failed=True, msg="download failed"))
    r = run(host, retry_after_reboot=True)
    assert (r["outcome"], r["rebooted"], r["boot_id"]) == ("failure", True, "boot-2")


def test_no_boot_id_when_the_host_was_never_reached():
    r = run(ReplayHost(HostUnreachable("ssh: connect to host 10.0.0.9 port 22: Connection refused")))
    assert "boot_id" not in r
