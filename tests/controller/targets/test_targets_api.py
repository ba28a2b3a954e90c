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
