"""The audit trail: every change through the API is recorded with its user, in the transaction
that makes it (a refused or failed change leaves no record), with the objects it created; only
admins read it. (A run's use of a credential is checked on the lab: execution/
test_connection_credentials_lab.py.)"""

from fastapi.testclient import TestClient

from tests.controller.auth import bearer


def trail(client, **filters):
    r = client.get("/api/v1/audit", params=filters)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_changes_are_recorded_with_their_user_and_created_objects(app, client, inventory):
    target = client.post("/api/v1/targets", json={"name": "web", "kind": "group", "group": "web",
                                                  "inventory": str(inventory)}).json()
    d = client.post("/api/v1/deployments", json={"name": "d", "steps": [
        {"action": "script", "script": "true", "target_ids": [target["id"]]}]}).json()
    client.post(f"/api/v1/deployments/{d['id']}/ready")
    client.post(f"/api/v1/deployments/{d['id']}/start")
    client.get(f"/api/v1/deployments/{d['id']}")                      # reads are not recorded
    events = trail(client)
    assert [(e["actor"], e["action"], e["object_type"], e["object_id"]) for e in events] == [
        ("user:admin", "start_deployment", "deployments", str(d["id"])),
        ("user:admin", "ready_deployment", "deployments", str(d["id"])),
        ("user:admin", "create_deployment", "deployments", str(d["id"])),
        ("user:admin", "create_target", "targets", str(target["id"])),
    ]
    assert f"deployments:{d['id']}" in events[2]["detail"]["created"]
    assert trail(client, action="create_target")[0]["object_id"] == str(target["id"])


def test_a_refused_or_failed_change_leaves_no_record(app, client):
    with TestClient(app, headers=bearer(app, "viewer")) as viewer:
        assert viewer.post("/api/v1/targets", json={}).status_code == 403
    assert client.post("/api/v1/targets", json={"name": "x"}).status_code == 422
    assert client.post("/api/v1/deployments/999/start").status_code == 404
    assert trail(client) == []


def test_credentials_are_audited_without_their_secret(app, client):
    r = client.post("/api/v1/credentials", json={"name": "svc", "kind": "ssh_password", "username": "u",
                                                 "secret": "canary-audit-5ecret"})
    assert r.status_code == 201, r.text
    [event] = trail(client)
    assert (event["action"], event["object_id"]) == ("create_credential", str(r.json()["id"]))
    assert "canary-audit-5ecret" not in str(trail(client))


def test_only_admins_read_the_trail(app):
    for role in ("viewer", "operator", "privileged"):
        with TestClient(app, headers=bearer(app, role)) as c:
            assert c.get("/api/v1/audit").status_code == 403
