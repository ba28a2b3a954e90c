"""Rollout controls through the API (issue 4): failure budget and rings, pause and resume,
controller-level retries, Wake-on-LAN and network condition on steps, and the 4xx for bad input
that stores nothing."""

import datetime as dt

import pytest

UTC = dt.timezone.utc


@pytest.fixture
def web(client, inventory):
    return client.post("/api/v1/targets", json={"name": "web", "kind": "group", "group": "web",
                                                "inventory": str(inventory)}).json()["id"]


def deployment(client, web, **fields):
    step = {"action": "script", "script": "true", "target_ids": [web], "execution_timeout": 3600,
            **fields.pop("step", {})}
    r = client.post("/api/v1/deployments", json={"name": "rollout", "steps": [step], **fields})
    assert r.status_code == 201, r.text
    return r.json()


def test_rollout_fields_round_trip(client, web):
    d = deployment(client, web, failure_budget={"max_failure_percent": 10, "min_sample": 20}, rings=["1", "25%"],
                   step={"retry_count": 2, "retry_interval": 900, "retry_after_reboot": True,
                         "network_condition": "lan_only", "wake_on_lan": {"broadcast": "10.213.47.255", "port": 7}})
    assert d["failure_budget"] == {"max_failure_percent": 10, "min_sample": 20} and d["rings"] == ["1", "25%"]
    step = d["steps"][0]
    assert (step["retry_count"], step["retry_interval"], step["retry_after_reboot"], step["network_condition"]) == \
        (2, 900, True, "lan_only")
    assert step["wake_on_lan"] == {"broadcast": "10.213.47.255", "port": 7, "boot_seconds": 120, "mac_var": "depot_mac"}
    r = client.patch(f"/api/v1/deployments/{d['id']}", json={"failure_budget": None, "rings": []})
    assert (r.json()["failure_budget"], r.json()["rings"]) == (None, [])


def test_pause_resume_and_cancel_follow_the_state_rules(client, web):
    d = deployment(client, web, failure_budget={"max_failure_percent": 50})
    url = f"/api/v1/deployments/{d['id']}"
    assert client.post(f"{url}/pause").status_code == 409          # a draft is not running
    client.post(f"{url}/ready")
    started = client.post(f"{url}/start").json()
    assert started["host_results"] == 2
    report = client.get(f"{url}/report").json()["items"]
    assert {(r["host"], r["ring"]) for r in report} == {("web1", 0), ("web2", 0)}
    paused = client.post(f"{url}/pause")
    assert (paused.json()["state"], paused.json()["pause_reason"]) == ("paused", "paused by user:admin")
    assert client.post(f"{url}/pause").status_code == 409
    resumed = client.post(f"{url}/resume").json()
    assert (resumed["state"], resumed["pause_reason"]) == ("active", None)
    assert client.post(f"{url}/resume").status_code == 409
    client.post(f"{url}/pause")
    cancelled = client.post(f"{url}/cancel").json()                 # a paused deployment can be cancelled
    assert (cancelled["state"], cancelled["outcome"]) == ("completed", "cancelled")


def test_rings_assign_hosts_in_order(client, web):
    d = deployment(client, web, rings=["1"])
    url = f"/api/v1/deployments/{d['id']}"
    client.post(f"{url}/ready")
    client.post(f"{url}/start")
    assert {r["host"]: r["ring"] for r in client.get(f"{url}/report").json()["items"]} == {"web1": 0, "web2": 1}


def one_off(start, hours):
    return {"kind": "one_off", "start": start.isoformat(), "end": (start + dt.timedelta(hours=hours)).isoformat()}


@pytest.mark.parametrize("body, loc", [
    ({"windows": [one_off(dt.datetime(2027, 1, 1, tzinfo=UTC), 0.5)]}, ["body", "windows", 0, "end"]),
    ({"windows": [{"kind": "recurring", "start": "2027-01-01T22:00:00", "rrule": "FREQ=DAILY", "timezone": "Europe/Berlin",
                   "duration_seconds": 1800}]}, ["body", "windows", 0, "duration_seconds"]),
    ({"rings": ["0"]}, ["body", "rings", 0]),
    ({"rings": ["150%"]}, ["body", "rings", 0]),
    ({"failure_budget": {"max_failure_percent": 120}}, ["body", "failure_budget", "max_failure_percent"]),
    ({"step": {"wake_on_lan": {"broadcast": "not-an-address"}}}, ["body", "steps", 0, "wake_on_lan", "broadcast"]),
    ({"step": {"network_condition": "wifi"}}, ["body", "steps", 0, "network_condition"]),
    ({"step": {"retry_count": -1}}, ["body", "steps", 0, "retry_count"]),
])
def test_bad_rollout_input_is_a_422_naming_the_field_and_stores_nothing(client, web, table_counts, body, loc):
    before = table_counts()
    body = dict(body)
    step = {"action": "script", "script": "true", "target_ids": [web], "execution_timeout": 3600, **body.pop("step", {})}
    r = client.post("/api/v1/deployments", json={"name": "bad", "steps": [step], **body})
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["detail"]], r.json()
    assert table_counts() == before


def test_a_window_too_short_for_an_edited_step_is_refused_at_ready(client, web):
    d = deployment(client, web, windows=[one_off(dt.datetime(2027, 1, 1, tzinfo=UTC), 2)])
    step = d["steps"][0]
    r = client.patch(f"/api/v1/deployments/{d['id']}/steps/{step['id']}", json={"execution_timeout": 3 * 3600})
    assert r.status_code == 200
    r = client.post(f"/api/v1/deployments/{d['id']}/ready")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["steps", 0, "execution_timeout"]
    assert "shorter than the step timeout" in r.json()["detail"][0]["msg"]


def test_a_wake_on_lan_host_whose_mac_variable_is_not_a_mac_is_refused_at_ready(client, tmp_path):
    inventory = tmp_path / "wol.yml"
    inventory.write_text("all:\n  hosts:\n    pc1: {depot_mac: '52:54:00:aa:bb:cc'}\n    pc2: {depot_mac: 'nope'}\n")
    target = client.post("/api/v1/targets", json={"name": "pcs", "kind": "group", "group": "all",
                                                  "inventory": str(inventory)}).json()["id"]
    d = deployment(client, target, step={"wake_on_lan": {}})
    r = client.post(f"/api/v1/deployments/{d['id']}/ready")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["steps", 0, "wake_on_lan"]
    assert "pc2" in r.json()["detail"][0]["msg"] and "not a MAC" in r.json()["detail"][0]["msg"]
