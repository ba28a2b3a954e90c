"""Schemathesis against the controller's own OpenAPI spec (issue #5, item 5): every operation of
/openapi.json gets generated requests — valid ones and, fewer, invalid ones — and no response may be
a 5xx, break its declared schema, or carry an undeclared content type. At least MIN_REQUESTS
requests are made per database, counted here, so the test fails if generation silently shrinks.

The requests go in-process to the ASGI app (schemathesis's ASGI transport) over a migrated database
seeded with a few objects of every kind, and integer ids in paths are drawn from 1..3 half of the
time, so operations on ids reach existing objects as well as missing ones; explicit examples add the
successful answers generation rarely reaches. Operations run in a fixed order with the destructive
ones (deletes, cancel, archive, revoke) last, so the seeded objects live through most of the run.
Hypothesis is derandomized: every run sends the same requests.

It found, and no longer finds: ids and pages beyond the database's integers answered 500 (now
422), a null in a subscription PATCH answered 500, the report's CSV/JSON exports and the naive
local times of schedules and windows were not what the spec said. ``DEPOT_SCHEMATHESIS_VERBOSE=1``
(with -s) prints the status codes per operation.

Every request (seeding and fuzzing) carries the ``headers`` fixture: the one place where the
admin's ``Authorization: Bearer <token>`` is added. Operations that declare a header of their own
(the host check-in's ``authorization``: a host's check-in token, not a user's) send the generated
value instead.
"""

from __future__ import annotations

import os
import time
import traceback
from collections import Counter
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, example, given, reject, settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

MIN_REQUESTS = 1000
# Examples per operation and generation mode. Operations with a small input space (no parameters:
# /health) use fewer than this; the total is asserted below.
EXAMPLES = {GenerationMode.POSITIVE: 18, GenerationMode.NEGATIVE: 6}
SEEDED_IDS = st.integers(min_value=1, max_value=3)
SEEDED_HOSTS = st.sampled_from(["web1", "db1", "lone"])
SCHEDULE = {"rrule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "timezone": "Europe/Berlin", "start": "2030-03-01T00:00:00"}
WINDOW = {"kind": "recurring", "rrule": "FREQ=WEEKLY;BYDAY=SA;BYHOUR=1", "timezone": "Europe/Berlin",
          "start": "2030-01-01T00:00:00", "duration_seconds": 4 * 3600}

# status_code_conformance is not run: the spec documents only the success code and 422 per
# operation (FastAPI's default), so every 404 for a missing id and every 409 for a wrong state —
# correct, tested answers — would be reported as undocumented.
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]

REQUESTS = {"count": 0}
STATUSES: Counter = Counter()      # (operation, status code) of every response, printed at the end

INT32, INT64 = 2 ** 31, 2 ** 63


def _integers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _integers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _integers(item)


@pytest.fixture
def headers(app) -> dict[str, str]:
    """Headers added to every request (seeding and fuzzing): an admin's token (user 1, token 1)."""
    from tests.controller.auth import bearer

    return bearer(app)


@pytest.fixture
def seeded(app, inventory, headers, tmp_path):
    """Objects of every kind, ids 1..3 where they can be: users and tokens, targets, credentials,
    packages (one with content), policies, deployments (1: a draft with steps; 2: active, with host
    results and two runs, 1 with a log; 3: scheduled, with a window), subscriptions and a delivery."""
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from depot.database.core import transaction
    from depot.deployments.models import HostResult, Run

    # (a copy: TestClient adds its user-agent to the dict it is given)
    with TestClient(app, headers=dict(headers)) as client:
        def post(path, body=None, **kwargs):
            r = client.post(f"/api/v1{path}", json=body, **kwargs)
            assert r.status_code in (200, 201), (path, r.status_code, r.text)
            return r.json()

        # Users 2 and 3 (the admin of ``headers`` is 1), a token each (2, 3).
        for role in ("operator", "viewer"):
            user = post("/users", {"name": f"{role}-user", "role": role})["id"]
            post(f"/users/{user}/tokens", {"name": "ci"})
        own_token = client.get("/api/v1/tokens").json()["items"][0]
        assert headers["Authorization"].removeprefix("Bearer ").startswith(own_token["prefix"])
        checkin_tokens = {host: client.get(f"/api/v1/hosts/{host}/checkin-token").json()["token"]
                          for host in ("web1", "db1")}

        inv = str(inventory)
        web = post("/targets", {"name": "web", "kind": "group", "group": "web", "inventory": inv})["id"]
        db = post("/targets", {"name": "db1", "kind": "host", "hosts": ["db1"], "inventory": inv})["id"]
        post("/targets", {"name": "debian", "kind": "dynamic", "inventory": inv,
                          "filters": [{"var": "os_family", "op": "eq", "value": "Debian"}], "windows": [WINDOW]})

        post("/credentials", {"name": "winrm", "kind": "winrm", "username": "DEPOT\\deployer", "secret": "s3cret",
                              "options": {"transport": "kerberos", "port": 5986}})
        post("/credentials", {"name": "ssh", "kind": "ssh_password", "username": "root", "secret": "s3cret"})
        post("/credentials", {"name": "runas", "kind": "run_as", "username": "svc", "secret": "s3cret"})

        msi = post("/packages", {"name": "7-Zip", "version": "23.01", "platform": "windows", "installer_type": "msi",
                                 "product_id": "{23170F69-40C1-2702-2301-000001000000}"})["id"]
        post(f"/packages/{msi}/content", files={"file": ("setup.msi", b"MSI content")})
        post("/packages", {"name": "7-Zip", "version": "24.01", "platform": "windows", "installer_type": "msi",
                           "product_id": "{23170F69-40C1-2702-2401-000001000000}"})
        post("/packages", {"name": "agent", "version": "2.1.0", "platform": "linux", "installer_type": "deb",
                           "content_url": "https://repo.example.com/agent_2.1.0_amd64.deb",
                           "content_sha256": "0" * 64})

        script = post("/policies", {"name": "hello", "category": "script", "script": "echo hello"})["id"]
        post(f"/policies/{script}/publish")
        software = post("/policies", {"name": "7-Zip", "category": "software", "package_id": msi})["id"]
        post(f"/policies/{software}/publish")
        post("/policies", {"name": "draft", "category": "script", "script": "true"})

        draft = post("/deployments", {"name": "draft", "steps": [
            {"action": "script", "script": "true", "target_ids": [web], "name": "first"},
            {"policy_id": software, "target_ids": [web, db], "name": "install"}]})["id"]
        post(f"/deployments/{draft}/steps", {"policy_id": script, "target_ids": [db], "name": "last"})
        active = post("/deployments", {"name": "active", "steps": [
            {"action": "script", "script": "true", "target_ids": [web, db], "name": "only"}]})["id"]
        post(f"/deployments/{active}/ready")
        post(f"/deployments/{active}/start")
        post("/deployments", {"name": "scheduled", "schedule": SCHEDULE, "windows": [WINDOW]})

        post("/notifications/subscriptions", {"name": "hook", "channel": "webhook", "secret": "whsec",
                                              "address": "https://hooks.example.com/depot",
                                              "events": ["deployment.failed"], "deployment_id": active})
        mail = post("/notifications/subscriptions", {"name": "mail", "channel": "email", "address": "ops@example.com",
                                                     "events": ["deployment.completed"]})["id"]
        post(f"/notifications/subscriptions/{mail}/test")

        # A signed download URL of the uploaded content, for an explicit example of GET /content/...
        src = urlsplit(client.get(f"/api/v1/packages/{msi}/content-source").json()["src"])
        _, sha256, filename = src.path.rsplit("/", 2)
        content = {"path_parameters": {"sha256": sha256, "filename": filename}, "query": dict(parse_qsl(src.query))}

    artifacts = tmp_path / "artifacts" / "run-1"
    artifacts.mkdir(parents=True)
    (artifacts / "stdout").write_text("PLAY [Deploy software steps]\nok: [web1]\n")
    with transaction(app.state.sessionmaker) as session:
        step_id = session.scalars(select(HostResult.step_id).where(HostResult.deployment_id == active)).first()
        session.add_all([Run(deployment_id=active, step_id=step_id, worker="w", status="successful", hosts=["web1"],
                             artifact_dir=str(artifacts), events=3),
                         Run(deployment_id=active, step_id=step_id, worker="w", hosts=["db1"])])
    return SimpleNamespace(app=app, inventory=inv, own_token_id=own_token["id"], checkin_tokens=checkin_tokens,
                           content=content)


def _order(operation) -> tuple:
    """Deletes, cancel, archive and token revocation last (so the seeded objects live, in their
    states, through the other operations), else in spec order."""
    return (operation.method.upper() == "DELETE" or operation.path.endswith(("/revoke", "/cancel", "/archive")),)


def _has_inputs(operation) -> bool:
    return any(len(container) for container in (operation.path_parameters, operation.query, operation.headers,
                                                operation.cookies, operation.body))


def explicit_examples(seeded) -> dict[str, list[dict]]:
    """Requests made besides the generated ones (operation.Case arguments): the successful answers
    that generation alone rarely reaches — bodies valid for the services' own checks (an existing
    inventory, a consistent package), the exports, a run's log, a signed download."""
    inv = seeded.inventory
    script_step = {"action": "script", "script": "true", "target_ids": [1]}
    return {
        "POST /api/v1/packages": [{"body": {"name": "curl", "version": "8.5.0", "platform": "linux",
                                            "installer_type": "deb", "content_url": "https://repo.example.com/curl.deb",
                                            "content_sha256": "1" * 64}}],
        "POST /api/v1/targets": [{"body": {"name": "all", "kind": "group", "group": "all", "inventory": inv}}],
        "POST /api/v1/targets/resolve": [{"body": {"kind": "dynamic", "inventory": inv, "group": "linux",
                                                   "filters": [{"var": "site", "op": "eq", "value": "lan"}]}}],
        "POST /api/v1/policies": [{"body": {"name": "echo", "category": "script", "script": "echo"}}],
        "POST /api/v1/deployments": [{"body": {"name": "nightly", "steps": [script_step], "schedule": SCHEDULE}}],
        "POST /api/v1/deployments/{deployment_id}/steps": [{"path_parameters": {"deployment_id": 1},
                                                            "body": script_step}],
        "POST /api/v1/deployments/{deployment_id}/ready": [{"path_parameters": {"deployment_id": 1}}],
        "POST /api/v1/deployments/{deployment_id}/pause": [{"path_parameters": {"deployment_id": 2}}],
        "POST /api/v1/deployments/{deployment_id}/resume": [{"path_parameters": {"deployment_id": 2}}],
        "GET /api/v1/deployments/{deployment_id}/schedule/preview": [{"path_parameters": {"deployment_id": 3}}],
        "GET /api/v1/deployments/{deployment_id}/report": [
            {"path_parameters": {"deployment_id": 2}},
            {"path_parameters": {"deployment_id": 2}, "query": {"format": "csv"}},
            {"path_parameters": {"deployment_id": 2}, "query": {"format": "json"}}],
        "GET /api/v1/runs/{run_id}/log": [{"path_parameters": {"run_id": 1}}, {"path_parameters": {"run_id": 2}}],
        "POST /api/v1/schedules/preview": [{"body": {"schedule": SCHEDULE, "count": 3}}],
        "POST /api/v1/notifications/subscriptions": [{"body": {
            "name": "ops", "channel": "email", "address": "ops@example.com", "events": ["deployment.failed"]}}],
        "GET /api/v1/packages/{package_id}/content-source": [{"path_parameters": {"package_id": 1}},
                                                             {"path_parameters": {"package_id": 3}}],
        "GET /api/v1/content/{sha256}/{filename}": [seeded.content],
    }


def _run_operation(operation, mode, send, examples=()):
    @hypothesis_settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,                 # the same requests on every run
        deadline=None,
        database=None,                    # no example database: nothing carried between runs
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        send(case)

    for kwargs in examples:
        run = example(case=operation.Case(**kwargs))(run)
    run()


def test_every_operation_against_the_spec(seeded, headers, tmp_path, monkeypatch):
    # Generated inventory paths that happen to be relative ("0", ".") resolve in an empty directory,
    # not in the checkout.
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    schema = schemathesis.openapi.from_asgi("/openapi.json", seeded.app)
    checkin_tokens = seeded.checkin_tokens

    @schema.hook
    def flatmap_case(context, case):
        """A host check-in with the host's valid check-in token half of the time (else as generated)."""
        token = checkin_tokens.get((case.path_parameters or {}).get("name"))
        if context.operation.label != "POST /api/v1/hosts/{name}/checkin" or token is None:
            return st.just(case)

        def with_token(valid):
            if valid:
                case.headers = {**(case.headers or {}), "authorization": f"Bearer {token}"}
            return case
        return st.booleans().map(with_token)

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        """Half of the integer ids in paths are 1..3 (seeded objects), half as generated; host names
        likewise are seeded inventory hosts half of the time."""
        if not isinstance(path_parameters, dict):     # an operation without path parameters: None
            return st.just(path_parameters)
        drawn = {}
        for name, value in path_parameters.items():
            if isinstance(value, int) and not isinstance(value, bool):
                drawn[name] = st.one_of(st.just(value), SEEDED_IDS)
            elif name == "name" and context.operation.path.startswith("/api/v1/hosts/"):
                drawn[name] = st.one_of(st.just(value), SEEDED_HOSTS)
            else:
                drawn[name] = st.just(value)
        return st.fixed_dictionaries(drawn)

    def send(case):
        if case.operation.label == "POST /api/v1/tokens/{token_id}/revoke" \
                and (case.path_parameters or {}).get("token_id") == seeded.own_token_id:
            reject()      # not the token of ``headers``: every later request would be a 401
        declared = {parameter.name.lower() for parameter in case.operation.headers}
        extra = {name: value for name, value in headers.items() if name.lower() not in declared}
        try:
            response = case.call(headers=extra)
        except Exception as exc:
            # The ASGI transport re-raises what the app raised after its 500 answer: report it
            # with the server's traceback and the request.
            REQUESTS["count"] += 1
            raise AssertionError(
                f"server error on {case.operation.label}: {type(exc).__name__}: {exc}\n"
                f"request: {case.method} {case.formatted_path} query={case.query!r} body={case.body!r}\n"
                + "".join(traceback.format_exception(exc))) from None
        REQUESTS["count"] += 1
        STATUSES[case.operation.label, response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=extra)

    explicit = explicit_examples(seeded)
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_order)
    assert len(operations) >= 50, [op.label for op in operations]
    REQUESTS["count"] = 0
    STATUSES.clear()
    started = time.monotonic()
    failures, per_operation = [], {}
    for operation in operations:
        before = REQUESTS["count"]
        for mode in EXAMPLES:
            if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
                continue      # nothing to make invalid (GET /health): hypothesis would find no example
            try:
                _run_operation(operation, mode, send,
                               explicit.get(operation.label, []) if mode is GenerationMode.POSITIVE else [])
            # (schemathesis's FailureGroup is a BaseExceptionGroup, not an Exception)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - every operation runs, then all are reported
                failures.append(f"--- {operation.label} ({mode.value})\n{''.join(traceback.format_exception(exc))}")
        per_operation[operation.label] = REQUESTS["count"] - before

    elapsed = time.monotonic() - started
    by_status = Counter()
    for (_, status), n in STATUSES.items():
        by_status[status] += n
    print(f"\nschemathesis: {REQUESTS['count']} requests over {len(per_operation)} operations in {elapsed:.0f}s; "
          f"responses by status: {dict(sorted(by_status.items()))}")
    if os.environ.get("DEPOT_SCHEMATHESIS_VERBOSE"):
        for (label, status), n in sorted(STATUSES.items()):
            print(f"  {label}: {status} x{n}")
    assert not failures, "\n\n".join(failures)
    assert REQUESTS["count"] >= MIN_REQUESTS, per_operation
