"""Telling an unreachable database from a bad request, and riding it out: the retry helper, the
background loops' log lines, and a run's event sink keeping its results until they are written."""

import logging

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from depot.database.core import is_disconnect, log_failure, retry_while_unreachable
from depot.execution.events import StepResult
from depot.execution.runner import EventSink
from depot.orchestration.states import HostStatus

DOWN = OperationalError("SELECT 1", {}, Exception("connection refused\nis the server running?"))


def test_what_counts_as_unreachable():
    assert is_disconnect(DOWN) and is_disconnect(PoolTimeout("no connection"))
    assert not is_disconnect(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_disconnect(ValueError("bad"))


def test_retry_while_unreachable_backs_off_then_gives_up():
    now, sleeps, calls = [0.0], [], []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise DOWN
        return "written"

    assert retry_while_unreachable(flaky, 60, "x", sleep=sleep, clock=lambda: now[0]) == "written"
    assert sleeps == [0.5, 1.0, 2.0]
    with pytest.raises(OperationalError):
        retry_while_unreachable(lambda: (_ for _ in ()).throw(DOWN), 3, "x", sleep=sleep, clock=lambda: now[0])
    with pytest.raises(ValueError):   # not a database outage: raised at once
        retry_while_unreachable(lambda: (_ for _ in ()).throw(ValueError("bad")), 60, "x", sleep=sleep,
                                clock=lambda: now[0])


def test_background_loops_log_an_outage_in_one_line(caplog):
    log = logging.getLogger("depot.test")
    with caplog.at_level(logging.WARNING):
        log_failure(log, "worker tick", DOWN)
        log_failure(log, "worker tick", KeyError("bug"))
    outage, bug = caplog.records
    assert outage.levelno == logging.WARNING and outage.exc_info is None
    assert outage.getMessage() == "worker tick failed: the database is unreachable ((builtins.Exception) connection refused)"
    assert bug.levelno == logging.ERROR and bug.exc_info is not None


def test_the_sink_keeps_results_until_they_are_written(monkeypatch):
    now = [0.0]
    sink = EventSink(factory=None, run_id=1, deployment_id=1, actor="w", batch_size=1, batch_seconds=0.5,
                     clock=lambda: now[0], sleep=lambda s: None)
    written, fail = [], [True]

    def write():
        if fail[0]:
            raise DOWN
        written.extend(sink.pending)
        sink.pending.clear()

    monkeypatch.setattr(sink, "_write", write)
    result = StepResult("h1", HostStatus.SUCCESS, outcome="success")
    sink.pending.append(result)
    assert sink.flush() is False and sink.pending == [result]   # kept for a later flush
    assert sink.retry_at == 1.0                                  # backing off
    sink.poll()                                                  # not due yet: no write tried
    fail[0] = False
    now[0] = 1.0
    sink.poll()
    assert written == [result] and sink.pending == [] and sink.retry_at is None
    fail[0] = True
    sink.pending.append(result)
    with pytest.raises(OperationalError):                        # the run's end waits, then gives up
        sink.flush(wait=3)
