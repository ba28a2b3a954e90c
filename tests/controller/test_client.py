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
