"""Policies through the API: CRUD, what each category needs, run-as credentials, the publish gate."""

import pytest


@pytest.fixture
def package(client):
    r = client.post("/api/v1/packages", json={"name": "acme", "version": "1", "platform": "linux",
                                              "installer_type": "deb", "product_id": "acme"})
    return r.json()


@pytest.fixture
def run_as_credential(client):
    return client.post("/api/v1/credentials", json={"name": "svc", "kind": "run_as", "username": "svc",
                                                     "secret": "s3cret-canary"}).json()


def create(client, **fields):
    r = client.post("/api/v1/policies", json=fields)
    assert r.status_code == 201, r.text
    return r.json()


def test_crud_and_publish(client, package):
    policy = create(client, name="acme install", category="software", package_id=package["id"], retries=3,
                    retry_interval=30, network_condition="lan_only", options={"reboot": "never"})
    assert (policy["state"], policy["operation"], policy["run_as"], policy["retries"]) == ("draft", "install", "system", 3)
    assert client.get(f"/api/v1/policies/{policy['id']}").json() == policy

    published = client.post(f"/api/v1/policies/{policy['id']}/publish")
    assert published.status_code == 200 and published.json()["state"] == "published"
    again = client.post(f"/api/v1/policies/{policy['id']}/publish")
    assert again.status_code == 409 and "already published" in again.json()["detail"]
    assert client.get("/api/v1/policies", params={"state": "published"}).json()["total"] == 1

    edited = client.patch(f"/api/v1/policies/{policy['id']}", json={"operation": "uninstall"})
    assert edited.status_code == 200
    assert (edited.json()["operation"], edited.json()["state"]) == ("uninstall", "draft")   # publish again to deploy

    assert client.delete(f"/api/v1/policies/{policy['id']}").status_code == 204
    assert client.get(f"/api/v1/policies/{policy['id']}").status_code == 404


def test_script_policy_and_category_change(client, package):
    policy = create(client, name="hello", category="script", script="echo hello", operation="uninstall",
                    options={"interpreter": ["/bin/bash"]})
    assert policy["package_id"] is None
    r = client.patch(f"/api/v1/policies/{policy['id']}", json={"category": "software", "package_id": package["id"]})
    assert r.status_code == 200, r.text
    assert (r.json()["script"], r.json()["options"]) == (None, {})


def test_run_as_user_needs_a_run_as_credential(client, run_as_credential):
    base = {"name": "p", "category": "script", "script": "id", "run_as": "user"}
    r = client.post("/api/v1/policies", json=base)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "run_as_credential_id"]
    policy = create(client, **base, run_as_credential_id=run_as_credential["id"])
    assert policy["run_as_credential_id"] == run_as_credential["id"]
    r = client.patch(f"/api/v1/policies/{policy['id']}", json={"run_as": "system"})
    assert r.json()["run_as_credential_id"] is None
    assert "s3cret-canary" not in r.text


@pytest.mark.parametrize("fields, loc, message", [
    ({"category": "software"}, ["body", "package_id"], "package_id is required"),
    ({"category": "script"}, ["body", "script"], "script is required"),
    ({"category": "script", "script": "x", "package_id": 1}, ["body", "package_id"], "no package_id"),
    ({"category": "script", "script": "x", "options": {"install_command": "x"}}, ["body", "options"], "install_command"),
    ({"category": "software", "package_id": 999}, ["body", "package_id"], "package 999 does not exist"),
    ({"category": "script", "script": "x", "run_as": "user", "run_as_credential_id": 999},
     ["body", "run_as_credential_id"], "credential 999 does not exist"),
    ({"category": "script", "script": "x", "network_condition": "wifi"}, ["body", "network_condition"], "Input should be"),
    ({"category": "script", "script": "x", "retries": -1}, ["body", "retries"], "greater than or equal"),
])
def test_invalid_policies_name_the_field(client, table_counts, fields, loc, message):
    before = table_counts()
    r = client.post("/api/v1/policies", json={"name": "p", **fields})
    assert r.status_code == 422, r.text
    error = r.json()["detail"][0]
    assert error["loc"] == loc and message in error["msg"]
    assert table_counts() == before


def test_credential_of_another_kind_is_refused(client):
    ssh = client.post("/api/v1/credentials", json={"name": "ssh", "kind": "ssh_key", "username": "u", "secret": "k"}).json()
    r = client.post("/api/v1/policies", json={"name": "p", "category": "script", "script": "x", "run_as": "user",
                                              "run_as_credential_id": ssh["id"]})
    assert r.status_code == 422 and "not run_as" in r.json()["detail"][0]["msg"]


def test_detection_rules_are_checked_for_the_packages_platform(client, package):
    r = client.post("/api/v1/policies", json={"name": "p", "category": "software", "package_id": package["id"],
                                              "options": {"detection": {"rules": [{"type": "registry", "key": "HKLM"}]}}})
    assert r.status_code == 422 and "cannot be evaluated on a POSIX host" in r.json()["detail"][0]["msg"]
