"""The client commands of `depot` against the real API (its HTTP client is the app's TestClient):
deployment actions, schedule previews, hosts and check-ins, --json output, and errors as one line
on stderr with exit status 2."""

import json

import pytest

from depot import cli, client as depot_client


@pytest.fixture
def depot(client, monkeypatch, capsys):
    """Run `depot ARGS...`; returns (exit status, stdout, stderr)."""
    def init(self, url, timeout=30.0):
        self.http = client
        client.base_url = "http://testserver/api/v1"

    monkeypatch.setattr(depot_client.Client, "__init__", init)

    def run(*argv):
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def started(client, inventory):
    web = client.post("/api/v1/targets", json={"name": "web", "kind": "group", "group": "web",
                                               "inventory": str(inventory)}).json()["id"]
    d = client.post("/api/v1/deployments", json={"name": "d", "steps": [
        {"action": "script", "script": "true", "target_ids": [web]}]}).json()
    client.post(f"/api/v1/deployments/{d['id']}/ready")
    client.post(f"/api/v1/deployments/{d['id']}/start")
    return d["id"]


def test_pause_resume_cancel(depot, started):
    status, out, err = depot("pause", str(started))
    assert (status, out.strip(), err.strip()) == (0, f"deployment {started}: paused", "paused by user:admin")
    status, out, _ = depot("resume", str(started), "--json")
    assert status == 0 and json.loads(out)["state"] == "active"
    status, out, _ = depot("cancel", str(started))
    assert out.strip() == f"deployment {started}: completed"


def test_an_action_the_state_forbids_is_one_line_on_stderr_and_exit_2(depot, started):
    status, out, err = depot("resume", str(started))
    assert (status, out) == (2, "")
    assert err.startswith("depot: POST /api/v1/deployments/") and "only a paused deployment" in err


def test_schedule_preview_of_an_unsaved_schedule(depot):
    status, out, _ = depot("schedule", "--rrule", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "--timezone", "Europe/Berlin",
                           "--start", "2030-03-30T00:00:00", "--count", "2", "--json")
    occurrences = json.loads(out)["occurrences"]
    assert status == 0 and [o["adjustment"] for o in occurrences] == [None, "gap"]   # 31 March: 02:30 does not exist
    status, out, _ = depot("schedule", "--rrule", "FREQ=DAILY", "--timezone", "Europe/Berlin",
                           "--start", "2030-03-30T00:00:00", "--count", "2")
    assert status == 0 and "2030-03-30T00:00:00+01:00" in out


def test_host_token_and_checkin(depot, started):
    status, token, _ = depot("checkin-token", "web1")
    assert status == 0
    status, out, _ = depot("checkin", "web1", "--token", token.strip())
    assert (status, out.strip()) == (0, "web1: 1 pending step(s), 0 made due now")
    status, out, _ = depot("host", "web1", "--json")
    assert json.loads(out)["checkins"] == 1 and json.loads(out)["pending"][0]["deployment_id"] == started
    status, _, err = depot("checkin", "web1", "--token", "forged.0")
    assert status == 2 and "401" in err


def test_subscribe_takes_the_webhook_secret_from_the_environment_only(depot, monkeypatch):
    status, _, err = depot("subscribe", "ops", "--channel", "webhook", "--address", "http://127.0.0.1:9/hook",
                           "--events", "deployment.failed", "--secret-env", "OPS_HOOK_SECRET")
    assert status == 2 and "OPS_HOOK_SECRET" in err
    monkeypatch.setenv("OPS_HOOK_SECRET", "s3cret-canary")
    status, out, _ = depot("subscribe", "ops", "--channel", "webhook", "--address", "http://127.0.0.1:9/hook",
                           "--events", "deployment.failed", "deployment.paused", "--secret-env", "OPS_HOOK_SECRET")
    assert (status, out.strip()) == (0, "subscription 1 created: ops")
    status, out, _ = depot("subscriptions", "--json")
    [item] = json.loads(out)
    assert item["has_secret"] and item["events"] == ["deployment.failed", "deployment.paused"]
    assert "s3cret-canary" not in out


def _json_commands() -> set[str]:
    """The subcommands of `depot` that take --json."""
    import argparse

    [sub] = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return {name for name, parser in sub.choices.items() if "--json" in parser._option_string_actions}


def test_every_client_command_prints_one_json_document_and_nothing_else_with_json(depot, client, inventory, tmp_path):
    """With --json, stdout is exactly one JSON document (tables and messages go to stderr), also when
    `status --watch`/`deploy` give up waiting (--timeout)."""
    spec = tmp_path / "deployment.yml"
    spec.write_text(f"""
name: from a file
targets: [{{name: web, kind: group, group: web, inventory: {inventory}}}]
steps: [{{name: hello, action: script, script: "true", targets: [web]}}]
""")
    ran = {}

    def run(*argv, status=0):
        code, out, err = depot(*argv, "--json")
        assert code == status, (argv, err)
        ran[argv[0]] = json.loads(out)   # fails on anything else on stdout, before or after the document
        return ran[argv[0]]

    draft = run("deploy", str(spec), "--no-start")
    assert draft["state"] == "draft"
    assert run("ready", str(draft["id"]))["state"] == "ready"
    assert run("start", str(draft["id"]))["state"] == "active"
    assert run("pause", str(draft["id"]))["state"] == "paused"
    assert run("resume", str(draft["id"]))["state"] == "active"
    snapshot = run("status", str(draft["id"]))
    assert snapshot["deployment"]["id"] == draft["id"] and {h["host"] for h in snapshot["hosts"]} == {"web1", "web2"}
    # no worker runs here: the deployment stays active, and following it gives up at once
    gave_up = run("status", str(draft["id"]), "--watch", "--timeout", "0.01", "--interval", "0.01", status=2)
    assert gave_up["deployment"]["state"] == "active"
    followed = run("deploy", str(spec), "--timeout", "0.01", "--interval", "0.01", status=2)
    assert followed["deployment"]["state"] == "active"
    run("deploy", str(spec), "--no-wait")
    assert run("cancel", str(draft["id"]))["state"] == "completed"
    assert run("archive", str(draft["id"]))["state"] == "archived"
    assert run("schedule", "--rrule", "FREQ=DAILY", "--timezone", "UTC", "--start", "2030-01-01T00:00:00",
               "--count", "1")["occurrences"][0]["at"].startswith("2030-01-01")
    token = run("checkin-token", "web1")["token"]
    assert run("checkin", "web1", "--token", token)["host"] == "web1"
    assert run("host", "web1")["checkins"] == 1
    assert run("subscribe", "ops", "--channel", "email", "--address", "ops@example.com",
               "--events", "deployment.failed")["name"] == "ops"
    assert [s["name"] for s in run("subscriptions")] == ["ops"]
    assert set(ran) == _json_commands() - {"settings"}   # every client command (settings: tests/controller/test_cli.py)


def test_an_error_with_json_leaves_stdout_empty(depot):
    status, out, err = depot("status", "999", "--json")
    assert (status, out) == (2, "") and "404" in err
