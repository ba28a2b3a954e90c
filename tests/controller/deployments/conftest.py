"""Shared by the report and grid tests."""

import pytest


@pytest.fixture
def started(client, inventory):
    """A started two-step deployment: step 1 "install" on web1, web2, db1, lone (target "all");
    step 2 "configure" on web1, web2 (target "web"); every host result Ready."""
    everything = client.post("/api/v1/targets", json={"name": "all", "kind": "group", "group": "all",
                                                      "inventory": str(inventory)}).json()["id"]
    web = client.post("/api/v1/targets", json={"name": "web", "kind": "group", "group": "web",
                                               "inventory": str(inventory)}).json()["id"]
    d = client.post("/api/v1/deployments", json={"name": "d", "steps": [
        {"action": "script", "script": "install", "target_ids": [everything], "name": "install"},
        {"action": "script", "script": "configure", "target_ids": [web], "name": "configure"}]}).json()
    client.post(f"/api/v1/deployments/{d['id']}/ready")
    assert client.post(f"/api/v1/deployments/{d['id']}/start").json()["host_results"] == 6
    return d
