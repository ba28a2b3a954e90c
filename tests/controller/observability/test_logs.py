"""Log lines: text or JSON, each carrying the request id (X-Request-ID, honoured when sane) or the
run id (log_context) it was written for, and never a secret a request carried."""

import io
import json
import logging
import re
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from depot import cli
from depot.observability import log_context
from depot.observability.logs import (ContextFilter, JsonFormatter, TextFormatter, configure_logging, make_handler,
                                      request_id_var)

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_log():
    """Every record of every logger, at DEBUG, as JSON lines (as `DEPOT_LOG_FORMAT=json depot serve
    --log-level debug` writes them); returns a function giving the lines parsed so far. The test
    client's own loggers (httpx, httpcore: the calling side, which logs URLs) are set to WARNING,
    as cli.main does for every command."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore")}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@contextmanager
def bare_root():
    """The root logger without handlers, for configure_logging; pytest's (added for each test
    phase, so this is entered inside the test) are put back afterwards."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers = []
    try:
        yield root
    finally:
        root.handlers = saved
        root.setLevel(level)


def test_a_sane_request_id_is_kept_and_returned_others_are_replaced(client):
    for given in ("trace-123", "Root=1-5f84c7a5-aaa;Parent=53995c3f", "0af7651916cd43dd8448eb211c80319c"):
        assert client.get("/api/v1/health", headers={"X-Request-ID": given}).headers["x-request-id"] == given
    for insane in ("two words", "x" * 129, "<script>", "-leading-dash", ""):
        returned = client.get("/api/v1/health", headers={"X-Request-ID": insane}).headers["x-request-id"]
        assert GENERATED.fullmatch(returned), insane
    first, second = (client.get("/api/v1/health").headers["x-request-id"] for _ in range(2))
    assert GENERATED.fullmatch(first) and first != second
    # also on what the middlewares and the error handlers answer
    r = client.get("/api/v1/deployments/999", headers={"X-Request-ID": "lookup-1"})
    assert (r.status_code, r.headers["x-request-id"]) == (404, "lookup-1")


def test_every_record_logged_while_handling_a_request_carries_its_id(app, client, json_log):
    seen = []

    def noisy() -> dict:   # a sync view: it runs in a worker thread of the thread pool
        logging.getLogger("depot.test.view").warning("inside the view")
        seen.append(request_id_var.get())
        return {}

    app.add_api_route("/api/v1/test-noisy", noisy, methods=["GET"])
    client.get("/api/v1/test-noisy", headers={"X-Request-ID": "req-a"})
    client.get("/api/v1/test-noisy", headers={"X-Request-ID": "req-b"})
    lines = json_log()
    view = [line for line in lines if line["logger"] == "depot.test.view"]
    assert [line["request_id"] for line in view] == ["req-a", "req-b"] == seen
    access = [line for line in lines if line["logger"] == "depot.access" and line["path"] == "/api/v1/test-noisy"]
    assert [(a["request_id"], a["method"], a["status"], a["level"]) for a in access] == [
        ("req-a", "GET", 200, "INFO"), ("req-b", "GET", 200, "INFO")]
    assert request_id_var.get() is None   # nothing left behind outside the request
    logging.getLogger("depot.test").warning("outside")
    assert "request_id" not in json_log()[-1]


def test_secrets_of_a_request_never_reach_the_log(client, json_log, table_counts):
    canaries = {"secret": "cAnArY-secret-71", "password": "cAnArY-password-72", "token": "dpt_cAnArYtoken73",
                "query": "cAnArY-query-74", "header": "cAnArY-header-75"}
    created = client.post("/api/v1/credentials", headers={"X-Api-Key": canaries["header"]}, json={
        "name": "svc", "kind": "ssh_password", "username": "root", "secret": canaries["secret"]})
    assert created.status_code == 201
    refused = [
        client.post("/api/v1/credentials", json={"name": "svc2", "kind": "ssh_password", "username": "root",
                                                 "secret": canaries["secret"], "password": canaries["password"]}),
        client.post("/api/v1/packages", json={"name": "p", "version": "1", "platform": "linux", "installer_type": "deb",
                                              "run_as_password": canaries["password"],
                                              "options": {"password": canaries["password"]}}),
        client.get("/api/v1/credentials", headers={"Authorization": f"Bearer {canaries['token']}"}),
        client.get(f"/api/v1/packages?password={canaries['query']}&page=0"),
    ]
    assert [r.status_code for r in refused] == [422, 422, 401, 422]
    client.post("/api/v1/credentials", content=b'{"secret": "' + canaries["secret"].encode() + b'", broken',
                headers={"content-type": "application/json"})
    admin_token = client.headers["authorization"].split()[1]
    lines = json_log()
    # one access line per request, with its id: the log was written, and it holds no secret
    assert len([line for line in lines if line["logger"] == "depot.access"]) == 6
    assert all(GENERATED.fullmatch(line["request_id"]) for line in lines if line["logger"] == "depot.access")
    text = "\n".join(json.dumps(line) for line in lines)
    for canary in [*canaries.values(), admin_token]:
        assert canary not in text
    assert "password=" not in text and "?" not in "".join(line.get("path", "") for line in lines)


def test_log_context_puts_the_run_id_on_records_of_its_block(json_log):
    log = logging.getLogger("depot.execution.test")
    with log_context(run_id=42):
        log.info("running")
        with log_context(run_id=43):
            log.info("nested")
        log.info("back")
    log.info("after")
    assert [(line["message"], line.get("run_id")) for line in json_log()[-4:]] == [
        ("running", 42), ("nested", 43), ("back", 42), ("after", None)]


def test_text_and_json_formats():
    record = logging.LogRecord("depot.x", logging.ERROR, __file__, 1, "boom %s", ("now",), None)
    ContextFilter().filter(record)
    assert TextFormatter().format(record).endswith(" ERROR depot.x: boom now")
    with log_context(run_id=7, request_id="r-1"):
        record = logging.LogRecord("depot.x", logging.ERROR, __file__, 1, "boom", (), None)
        try:
            raise ValueError("bad")
        except ValueError:
            import sys
            record.exc_info = sys.exc_info()
        ContextFilter().filter(record)
    record.password = "not-copied"   # attributes others attach (extra=) are not copied into JSON lines
    first, *traceback = TextFormatter().format(record).splitlines()
    assert first.endswith("boom [request_id=r-1 run_id=7]") and traceback[-1] == "ValueError: bad"
    entry = json.loads(JsonFormatter().format(record))
    assert set(entry) == {"time", "level", "logger", "pid", "thread", "message", "request_id", "run_id", "exception"}
    assert (entry["level"], entry["message"], entry["run_id"], entry["request_id"]) == ("ERROR", "boom", 7, "r-1")
    assert entry["exception"].endswith("ValueError: bad") and entry["time"].endswith("+00:00")


def test_configure_logging_writes_json_when_asked():
    stream = io.StringIO()
    with bare_root() as root:
        configure_logging("warning", "json", stream)
        with log_context(run_id=5):
            logging.getLogger("depot.y").warning("hello")
        logging.getLogger("depot.y").info("below the level")
        configure_logging("debug", "text", io.StringIO())   # like basicConfig: a configured root stays as it is
        assert len(root.handlers) == 1 and root.level == logging.WARNING
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["message"] == "hello" and json.loads(line)["run_id"] == 5


def test_the_cli_sets_up_logging_from_the_log_format_setting(monkeypatch, capsys):
    monkeypatch.setenv("DEPOT_LOG_FORMAT", "json")
    cli.get_settings.cache_clear()
    try:
        with bare_root():
            assert cli.main(["--log-level", "info", "settings"]) == 0
            logging.getLogger("depot.z").info("from a command")
    finally:
        cli.get_settings.cache_clear()
    err = capsys.readouterr().err.splitlines()
    assert json.loads(err[-1])["message"] == "from a command"


def test_a_bad_log_format_is_refused_by_name(monkeypatch):
    from pydantic import ValidationError

    from depot.config import Settings

    monkeypatch.setenv("DEPOT_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings()


def test_request_ids_of_a_fresh_app_without_auth(app):
    with TestClient(app) as anonymous:
        r = anonymous.get("/api/v1/packages", headers={"X-Request-ID": "anon-1"})
    assert (r.status_code, r.headers["x-request-id"]) == (401, "anon-1")
