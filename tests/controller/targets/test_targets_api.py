"""Targets through the API: CRUD, validation by kind, and resolution."""

import pytest


def create(client, inventory, **fields):
    r = client.post("/api/v1/targets", json={"inventory": str(inventory), **fields})
    assert r.status_code == 201, r.text
    return r.json()


def test_crud_and_hosts(client, inventory):
    web = create(client, inventory, name="web", kind="group", group="web")
    assert web["inventory"] == str(inventory.resolve()) and web["hosts"] == [] and web["filters"] == []
    assert client.get(f"/api/v1/targets/{web['id']}/hosts").json() == {"hosts": ["web1", "web2"], "count": 2}

    debian = create(client, inventory, name="debian", kind="dynamic", group="linux",
                    filters=[{"var": "os_family", "op": "eq", "value": "Debian"}])
    assert client.get(f"/api/v1/targets/{debian['id']}/hosts").json()["hosts"] == ["web1", "db1"]

    single = create(client, inventory, name="lone", kind="host", hosts=["lone"])
    assert client.get(f"/api/v1/targets/{single['id']}/hosts").json()["hosts"] == ["lone"]

    assert client.get("/api/v1/targets").json()["total"] == 3
    assert client.get("/api/v1/targets", params={"kind": "dynamic"}).json()["items"][0]["name"] == "debian"

    r = client.patch(f"/api/v1/targets/{web['id']}", json={"group": "db"})
    assert r.status_code == 200 and r.json()["group"] == "db"
    assert client.get(f"/api/v1/targets/{web['id']}/hosts").json()["hosts"] == ["db1"]
    r = client.patch(f"/api/v1/targets/{web['id']}", json={"kind": "host", "hosts": ["web2"]})
    assert (r.json()["kind"], r.json()["group"], r.json()["hosts"]) == ("host", None, ["web2"])

    assert client.delete(f"/api/v1/targets/{web['id']}").status_code == 204
    assert client.get(f"/api/v1/targets/{web['id']}").status_code == 404


@pytest.mark.parametrize("fields, loc, message", [
    ({"kind": "group"}, ["body", "group"], "group is required"),
    ({"kind": "host"}, ["body", "hosts"], "at least one host"),
    ({"kind": "group", "group": "web", "hosts": ["web1"]}, ["body", "hosts"], "hosts must be empty"),
    ({"kind": "dynamic"}, ["body", "filters"], "at least one filter"),
    ({"kind": "dynamic", "filters": [{"var": "x", "op": "in", "value": "a"}]}, ["body", "filters", 0], "must be a list"),
    ({"kind": "dynamic", "filters": [{"var": "x", "op": "like", "value": "a"}]}, ["body", "filters", 0, "op"], "Input should be"),
    ({"kind": "dynamic", "filters": [{"var": "x", "op": "eq"}]}, ["body", "filters", 0], "value is required"),
    ({"kind": "group", "group": "web", "inventory": "/nonexistent/inventory.yml"}, ["body", "inventory"], "does not exist"),
])
def test_invalid_targets_name_the_field(client, inventory, table_counts, fields, loc, message):
    before = table_counts()
    r = client.post("/api/v1/targets", json={"name": "t", "inventory": str(inventory), **fields})
    assert r.status_code == 422, r.text
    error = r.json()["detail"][0]
    assert error["loc"] == loc and message in error["msg"]
    assert table_counts() == before


def test_resolution_problems_are_422_naming_the_inventory(client, inventory):
    ghost = create(client, inventory, name="ghost", kind="host", hosts=["ghost"])
    r = client.get(f"/api/v1/targets/{ghost['id']}/hosts")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["inventory"] and "ghost" in r.json()["detail"][0]["msg"]


def test_preview_without_saving(client, inventory, table_counts):
    before = table_counts()
    r = client.post("/api/v1/targets/resolve", json={"inventory": str(inventory), "kind": "dynamic",
                                                      "filters": [{"var": "services", "op": "contains", "value": "nginx"}]})
    assert r.json() == {"hosts": ["web1", "web2"], "count": 2}
    assert table_counts() == before


def test_duplicate_name_is_a_conflict(client, inventory):
    create(client, inventory, name="web", kind="group", group="web")
    r = client.post("/api/v1/targets", json={"name": "web", "kind": "group", "group": "db", "inventory": str(inventory)})
    assert r.status_code == 409


def credential(client, kind, name=None):
    r = client.post("/api/v1/credentials", json={"name": name or kind, "kind": kind, "username": "u",
                                                  "secret": "s3cret"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_a_target_connects_with_a_credential(client, inventory):
    ssh, winrm = credential(client, "ssh_key"), credential(client, "winrm")
    web = create(client, inventory, name="web", kind="group", group="web", credential_id=ssh)
    assert web["credential_id"] == ssh
    assert client.get(f"/api/v1/targets/{web['id']}").json()["credential_id"] == ssh
    plain = create(client, inventory, name="plain", kind="group", group="db")
    assert plain["credential_id"] is None

    r = client.patch(f"/api/v1/targets/{web['id']}", json={"group": "db"})   # other edits keep it
    assert r.json()["credential_id"] == ssh
    r = client.patch(f"/api/v1/targets/{web['id']}", json={"credential_id": winrm})
    assert r.status_code == 200 and r.json()["credential_id"] == winrm
    r = client.patch(f"/api/v1/targets/{web['id']}", json={"credential_id": None})
    assert r.status_code == 200 and r.json()["credential_id"] is None


@pytest.mark.parametrize("kind", ["run_as", "share", None])
def test_the_credential_must_exist_and_be_a_connection(client, inventory, table_counts, kind):
    credential_id = credential(client, kind) if kind else 999
    before = table_counts()
    r = client.post("/api/v1/targets", json={"name": "t", "kind": "group", "group": "web", "inventory": str(inventory),
                                              "credential_id": credential_id})
    assert r.status_code == 422, r.text
    error = r.json()["detail"][0]
    assert error["loc"] == ["body", "credential_id"]
    assert (f"of kind {kind}, not a connection kind" if kind else "credential 999 does not exist") in error["msg"]
    assert table_counts() == before

    target = create(client, inventory, name="web", kind="group", group="web")
    r = client.patch(f"/api/v1/targets/{target['id']}", json={"credential_id": credential_id})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "credential_id"]
    assert client.get(f"/api/v1/targets/{target['id']}").json()["credential_id"] is None


def test_a_credential_in_use_by_a_target_cannot_be_deleted_nor_leave_the_connection_kinds(client, inventory):
    ssh = credential(client, "ssh_password")
    target = create(client, inventory, name="web", kind="group", group="web", credential_id=ssh)
    r = client.delete(f"/api/v1/credentials/{ssh}")
    assert r.status_code == 409 and f"target {target['id']}" in r.json()["detail"]
    r = client.patch(f"/api/v1/credentials/{ssh}", json={"kind": "run_as"})
    assert r.status_code == 409 and "not a connection kind" in r.json()["detail"]
    assert client.patch(f"/api/v1/credentials/{ssh}", json={"kind": "ssh_key"}).status_code == 200

    client.patch(f"/api/v1/targets/{target['id']}", json={"credential_id": None})
    assert client.delete(f"/api/v1/credentials/{ssh}").status_code == 204
