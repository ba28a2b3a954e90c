import pytest

from depot.execution.events import step_result
from depot.orchestration.states import HostStatus


def event(kind, res, action="depot.software.step", host="h1"):
    return {"event": kind, "event_data": {"host": host, "task_action": action, "res": res}}


@pytest.mark.parametrize("outcome, reboot_required, expected", [
    ("success", False, HostStatus.SUCCESS),
    ("already", False, HostStatus.SUCCESS),
    ("hard_reboot", False, HostStatus.SUCCESS),
    ("soft_reboot", False, HostStatus.SUCCESS),
    ("soft_reboot", True, HostStatus.SUCCESS_REBOOT_PENDING),
    ("would_change", False, HostStatus.SUCCESS),
])
def test_ok_outcomes(outcome, reboot_required, expected):
    r = step_result(event("runner_on_ok", {"outcome": outcome, "rc": 0, "reboot_required": reboot_required}))
    assert (r.host, r.status, r.outcome) == ("h1", expected, outcome)


@pytest.mark.parametrize("outcome", ["failure", "not_detected", "timeout", "retry", "reboot_timeout", "invalid"])
def test_failed_outcomes(outcome):
    r = step_result(event("runner_on_failed", {"outcome": outcome, "rc": 1603, "msg": "boom",
                                               "attempts": [{"rc": 1603, "class": "failure", "status": "executed", "duration": 1.5, "stdout_tail": ["x"]}]}))
    assert (r.status, r.rc, r.reason) == (HostStatus.FAILED, 1603, "boom")
    assert r.attempts == [{"rc": 1603, "class": "failure", "status": "executed", "duration": 1.5}]


def test_no_user_session_is_deferred():
    r = step_result(event("runner_on_skipped", {"outcome": "no_user_session", "skipped": True, "msg": "no user is logged in"}))
    assert (r.status, r.reason) == (HostStatus.DEFERRED, "no user is logged in")


def test_a_step_skipped_by_a_condition_has_no_result():
    assert step_result(event("runner_on_skipped", {"skipped": True, "false_condition": "not depot_halted"})) is None


def test_unreachable_at_any_task():
    r = step_result(event("runner_on_unreachable", {"msg": "ssh: connect to host: Connection timed out", "unreachable": True},
                          action="ansible.builtin.set_fact"))
    assert (r.status, r.outcome) == (HostStatus.UNREACHABLE, "unreachable")
    assert "timed out" in r.reason


def test_unreachable_outcome_of_the_step():
    r = step_result(event("runner_on_unreachable", {"outcome": "unreachable", "unreachable": True, "msg": "x"}))
    assert r.status is HostStatus.UNREACHABLE


def test_unreachable_step_keeps_its_attempts_and_boot_id():
    # The step lost the host mid-attempt after an earlier attempt (busy, retried): the record keeps both.
    r = step_result(event("runner_on_unreachable", {
        "outcome": "unreachable", "unreachable": True, "boot_id": "b-1",
        "msg": "connection lost during the attempt (Broken pipe) and the host did not answer again: ...",
        "attempts": [{"rc": 1618, "class": "retry", "status": "executed", "duration": 2.0, "stdout_tail": ["x"]}]}))
    assert (r.status, r.outcome, r.boot_id) == (HostStatus.UNREACHABLE, "unreachable", "b-1")
    assert r.reason.startswith("connection lost during the attempt")
    assert r.attempts == [{"rc": 1618, "class": "retry", "status": "executed", "duration": 2.0}]
    # Another task's unreachable result carries no step record.
    other = step_result(event("runner_on_unreachable", {"msg": "x", "unreachable": True, "boot_id": "b-2",
                                                        "attempts": [{"rc": 1}]}, action="ansible.builtin.set_fact"))
    assert (other.attempts, other.boot_id) == ([], None)


def test_other_tasks_and_events_are_ignored():
    assert step_result(event("runner_on_ok", {"changed": False}, action="ansible.builtin.set_fact")) is None
    assert step_result({"event": "playbook_on_task_start", "event_data": {}}) is None
    assert step_result({"event": "verbose", "stdout": "x"}) is None


def test_uninterpretable_results_are_unknown_not_guessed():
    r = step_result(event("runner_on_ok", {"outcome": "weird"}))
    assert r.status is HostStatus.UNKNOWN and "cannot be interpreted" in r.reason
    r = step_result(event("runner_on_failed", {"outcome": "success"}))
    assert r.status is HostStatus.UNKNOWN
    r = step_result(event("runner_on_ok", {}))
    assert r.status is HostStatus.UNKNOWN


def test_a_step_begins_with_runner_on_start_and_a_skip_without_outcome_means_it_never_began():
    from depot.execution.events import step_started
    assert step_started(event("runner_on_start", {})) == ("h1", True)
    assert step_started(event("runner_on_skipped", {"skipped": True, "false_condition": "x"})) == ("h1", False)
    assert step_started(event("runner_on_skipped", {"outcome": "no_user_session"})) == (None, False)
    assert step_started(event("runner_on_start", {}, action="ansible.builtin.set_fact")) == (None, False)
    assert step_started(event("runner_on_ok", {"outcome": "success"})) == (None, False)
