"""Deployments through the API: CRUD with ordered steps, the state actions (ready, start, cancel,
archive) through the orchestration service, and edits returning a ready deployment to draft."""

import pytest
from sqlalchemy import select

from depot.database.core import transaction
from depot.deployments.models import HostResult
from depot.orchestration.models import Transition
from depot.orchestration.service import set_host_status
from depot.orchestration.states import HostStatus


@pytest.fixture
def world(client, inventory):
    """A package, a published and a draft policy, and targets web (web1, web2), db (db1), empty."""
    package = client.post("/api/v1/packages", json={"name": "acme", "version": "1", "platform": "linux",
                                                    "installer_type": "deb", "product_id": "acme"}).json()
    published = client.post("/api/v1/policies", json={"name": "acme", "category": "software",
                                                      "package_id": package["id"]}).json()
    client.post(f"/api/v1/policies/{published['id']}/publish")
    draft = client.post("/api/v1/policies", json={"name": "draft", "category": "script", "script": "true"}).json()
    targets = {}
    for name, group in (("web", "web"), ("db", "db"), ("empty", "empty")):
        targets[name] = client.post("/api/v1/targets", json={"name": name, "kind": "group", "group": group,
                                                             "inventory": str(inventory)}).json()["id"]
    return dict(package=package["id"], published=published["id"], draft=draft["id"], **targets)


def two_steps(world):
    return [
        {"policy_id": world["published"], "target_ids": [world["web"], world["db"]], "machine_contact_timeout": 600},
        {"action": "script", "script": "echo configured", "target_ids": [world["web"]], "name": "configure",
         "valid_exit_codes": [0, 3010], "only_run_further_steps_if_successful": False, "options": {"reboot": "never"}},
    ]


def create(client, world, **fields):
    r = client.post("/api/v1/deployments", json={"name": "rollout", "steps": two_steps(world), **fields})
    assert r.status_code == 201, r.text
    return r.json()


def transitions(app, deployment_id):
    with transaction(app.state.sessionmaker) as session:
        return [(t.from_state, t.to_state, t.cause, t.actor) for t in session.scalars(
            select(Transition).where(Transition.entity == "deployment", Transition.entity_id == deployment_id)
            .order_by(Transition.id))]


def test_crud_with_steps(client, world):
    deployment = create(client, world, pipelined=True, max_concurrent_hosts=5)
    assert (deployment["state"], deployment["pipelined"], deployment["max_concurrent_hosts"]) == ("draft", True, 5)
    first, second = deployment["steps"]
    assert (first["position"], first["name"], first["machine_contact_timeout"]) == (1, "acme", 600)
    assert (second["position"], second["name"], second["action"], second["valid_exit_codes"]) == (2, "configure", "script", [0, 3010])
    assert second["only_run_further_steps_if_successful"] is False and first["fail_deployment_if_unsuccessful"] is True
    assert client.get(f"/api/v1/deployments/{deployment['id']}").json() == deployment
    assert client.get("/api/v1/deployments", params={"state": "draft"}).json()["total"] == 1

    r = client.patch(f"/api/v1/deployments/{deployment['id']}", json={"name": "renamed", "max_concurrent_hosts": None})
    assert (r.json()["name"], r.json()["max_concurrent_hosts"], len(r.json()["steps"])) == ("renamed", None, 2)
    r = client.patch(f"/api/v1/deployments/{deployment['id']}", json={"steps": two_steps(world)[1:]})
    assert [(s["position"], s["name"]) for s in r.json()["steps"]] == [(1, "configure")]

    assert client.delete(f"/api/v1/deployments/{deployment['id']}").status_code == 204
    assert client.get(f"/api/v1/deployments/{deployment['id']}").status_code == 404


def test_step_endpoints_keep_positions_dense(client, world):
    deployment = create(client, world)
    url = f"/api/v1/deployments/{deployment['id']}/steps"
    inserted = client.post(url, json={"action": "package", "package_id": world["package"], "target_ids": [world["db"]],
                                      "position": 1, "options": {"state": "absent"}})
    assert inserted.status_code == 201, inserted.text
    assert (inserted.json()["position"], inserted.json()["name"]) == (1, "acme 1")
    assert [s["name"] for s in client.get(url).json()] == ["acme 1", "acme", "configure"]

    moved = client.patch(f"{url}/{inserted.json()['id']}", json={"position": 3, "execution_timeout": 60})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["position"], moved.json()["execution_timeout"]) == (3, 60)
    assert [(s["position"], s["name"]) for s in client.get(url).json()] == [(1, "acme"), (2, "configure"), (3, "acme 1")]

    first = client.get(url).json()[0]
    assert client.delete(f"{url}/{first['id']}").status_code == 204
    assert [(s["position"], s["name"]) for s in client.get(url).json()] == [(1, "configure"), (2, "acme 1")]
    assert client.get(f"{url}/{first['id']}").status_code == 404

    # replacing what a step does: a policy step becomes a script step
    step = client.get(url).json()[1]
    r = client.patch(f"{url}/{step['id']}", json={"action": "script", "script": "true", "options": {}})
    assert (r.json()["action"], r.json()["package_id"], r.json()["script"]) == ("script", None, "true")


@pytest.mark.parametrize("step, loc, message", [
    ({"target_ids": []}, ["body", "steps", 0, "action"], "either policy_id or an inline action"),
    ({"policy_id": 1, "action": "script", "script": "x"}, ["body", "steps", 0, "action"], "not both"),
    ({"action": "package"}, ["body", "steps", 0, "package_id"], "package_id is required"),
    ({"action": "script", "script": " "}, ["body", "steps", 0, "script"], "script is required"),
    ({"action": "script", "script": "x", "options": {"install_command": "y"}}, ["body", "steps", 0, "options"], "install_command"),
    ({"action": "script", "script": "x", "machine_contact_timeout": -1}, ["body", "steps", 0, "machine_contact_timeout"], "greater"),
    ({"action": "script", "script": "x", "target_ids": [998, 999]}, ["body", "steps", 0, "target_ids", 0], "target 998 does not exist"),
    ({"policy_id": 999}, ["body", "steps", 0, "policy_id"], "policy 999 does not exist"),
])
def test_invalid_steps_name_the_field_and_write_nothing(client, world, table_counts, step, loc, message):
    before = table_counts()
    r = client.post("/api/v1/deployments", json={"name": "d", "steps": [step]})
    assert r.status_code == 422, r.text
    error = r.json()["detail"][0]
    assert error["loc"] == loc and message in error["msg"]
    assert table_counts() == before


def test_ready_names_every_problem(client, world, app, table_counts):
    empty = client.post("/api/v1/deployments", json={"name": "nothing"}).json()
    r = client.post(f"/api/v1/deployments/{empty['id']}/ready")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["steps"]

    deployment = client.post("/api/v1/deployments", json={"name": "d", "steps": [
        {"policy_id": world["draft"], "target_ids": [world["web"]]},
        {"action": "script", "script": "x", "target_ids": [world["empty"]]},
        {"action": "script", "script": "x"},
    ]}).json()
    before = table_counts()
    r = client.post(f"/api/v1/deployments/{deployment['id']}/ready")
    assert r.status_code == 422
    errors = {tuple(e["loc"]): e["msg"] for e in r.json()["detail"]}
    assert set(errors) == {("steps", 0, "policy_id"), ("steps", 1, "target_ids"), ("steps", 2, "target_ids")}
    assert "step 1 (draft): policy" in errors[("steps", 0, "policy_id")] and "publish" not in errors[("steps", 1, "target_ids")]
    assert "only published policies deploy" in errors[("steps", 0, "policy_id")]
    assert "resolve to no hosts" in errors[("steps", 1, "target_ids")]
    assert "no targets" in errors[("steps", 2, "target_ids")]
    assert table_counts() == before
    assert client.get(f"/api/v1/deployments/{deployment['id']}").json()["state"] == "draft"


def test_a_step_whose_targets_connect_with_different_credentials_is_not_ready(client, world, inventory):
    ids = [client.post("/api/v1/credentials", json={"name": f"ssh{i}", "kind": "ssh_key", "username": "root",
                                                     "secret": "key"}).json()["id"] for i in (1, 2)]
    client.patch(f"/api/v1/targets/{world['web']}", json={"credential_id": ids[0]})
    client.patch(f"/api/v1/targets/{world['db']}", json={"credential_id": ids[1]})
    deployment = client.post("/api/v1/deployments", json={"name": "d", "steps": [
        {"action": "script", "script": "x", "target_ids": [world["web"]]},
        {"action": "script", "script": "x", "target_ids": [world["web"], world["db"]]},
    ]}).json()
    r = client.post(f"/api/v1/deployments/{deployment['id']}/ready")
    assert r.status_code == 422
    errors = {tuple(e["loc"]): e["msg"] for e in r.json()["detail"]}
    assert list(errors) == [("steps", 1, "target_ids")]
    assert "different credentials" in errors[("steps", 1, "target_ids")]
    assert f"target {world['db']}: credential {ids[1]}" in errors[("steps", 1, "target_ids")]

    # a target without a credential next to one with it is a difference too
    client.patch(f"/api/v1/targets/{world['db']}", json={"credential_id": None})
    r = client.post(f"/api/v1/deployments/{deployment['id']}/ready")
    assert r.status_code == 422 and f"target {world['db']}: no credential" in r.json()["detail"][0]["msg"]

    client.patch(f"/api/v1/targets/{world['db']}", json={"credential_id": ids[0]})
    r = client.post(f"/api/v1/deployments/{deployment['id']}/ready")
    assert r.status_code == 200, r.text


def test_edit_of_a_ready_deployment_returns_it_to_draft(client, world, app):
    deployment = create(client, world)
    url = f"/api/v1/deployments/{deployment['id']}"
    assert client.post(f"{url}/ready").json()["state"] == "ready"
    assert client.post(f"{url}/ready").status_code == 409

    assert client.patch(url, json={"pipelined": True}).json()["state"] == "draft"
    assert transitions(app, deployment["id"]) == [("draft", "ready", "ready", "user:admin"), ("ready", "draft", "edited", "user:admin")]

    client.post(f"{url}/ready")
    step = deployment["steps"][0]
    assert client.patch(f"{url}/steps/{step['id']}", json={"execution_timeout": 5}).status_code == 200
    assert client.get(url).json()["state"] == "draft"
    client.post(f"{url}/ready")
    assert client.post(f"{url}/steps", json={"action": "script", "script": "x", "target_ids": [world["db"]]}).status_code == 201
    assert client.get(url).json()["state"] == "draft"
    client.post(f"{url}/ready")
    assert client.delete(f"{url}/steps/{step['id']}").status_code == 204
    assert client.get(url).json()["state"] == "draft"


def test_a_rejected_edit_of_a_ready_deployment_leaves_it_ready(client, world, app, table_counts):
    deployment = create(client, world)
    url = f"/api/v1/deployments/{deployment['id']}"
    client.post(f"{url}/ready")
    before = table_counts()
    r = client.patch(url, json={"steps": [{"action": "script", "script": "x", "target_ids": [999]}]})
    assert r.status_code == 422
    assert table_counts() == before
    assert client.get(url).json()["state"] == "ready"
    assert client.get(url).json()["steps"] == deployment["steps"]


def test_draft_never_starts(client, world, table_counts):
    deployment = create(client, world)
    before = table_counts()
    r = client.post(f"/api/v1/deployments/{deployment['id']}/start")
    assert r.status_code == 409 and "draft never runs" in r.json()["detail"]
    assert table_counts() == before


def test_start_creates_one_ready_host_result_per_step_and_host(client, world, app):
    deployment = create(client, world)
    url = f"/api/v1/deployments/{deployment['id']}"
    client.post(f"{url}/ready")
    r = client.post(f"{url}/start")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["host_results"], body["deployment"]["state"]) == (5, "active")
    assert body["deployment"]["started_at"] is not None
    first, second = deployment["steps"]
    with transaction(app.state.sessionmaker) as session:
        rows = session.scalars(select(HostResult).where(HostResult.deployment_id == deployment["id"])).all()
        assert sorted((r.step_id, r.position, r.host, r.status) for r in rows) == sorted([
            (first["id"], 1, "web1", HostStatus.READY), (first["id"], 1, "web2", HostStatus.READY),
            (first["id"], 1, "db1", HostStatus.READY),
            (second["id"], 2, "web1", HostStatus.READY), (second["id"], 2, "web2", HostStatus.READY)])
    assert transitions(app, deployment["id"])[-1] == ("ready", "active", "started", "user:admin")

    # active: no edits, no second start, no delete
    assert client.patch(url, json={"name": "x"}).status_code == 409
    assert client.post(f"{url}/steps", json={"action": "script", "script": "x"}).status_code == 409
    assert client.post(f"{url}/start").status_code == 409
    assert client.delete(url).status_code == 409
    assert client.post(f"{url}/archive").status_code == 409


def test_a_start_that_cannot_resolve_writes_nothing(client, world, inventory, table_counts):
    deployment = create(client, world)
    url = f"/api/v1/deployments/{deployment['id']}"
    client.post(f"{url}/ready")
    inventory.write_text("all:\n  children:\n    web: {}\n    db: {}\n")   # the hosts are gone
    before = table_counts()
    r = client.post(f"{url}/start")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["steps", 0, "target_ids"]
    assert table_counts() == before
    assert client.get(url).json()["state"] == "ready"


def start(client, world, **fields):
    deployment = create(client, world, **fields)
    url = f"/api/v1/deployments/{deployment['id']}"
    client.post(f"{url}/ready")
    assert client.post(f"{url}/start").status_code == 200
    return deployment, url


def set_status(app, deployment_id, hosts, status, position=1, **fields):
    with transaction(app.state.sessionmaker) as session:
        rows = session.scalars(select(HostResult).where(
            HostResult.deployment_id == deployment_id, HostResult.position == position,
            HostResult.host.in_(hosts))).all()
        if status is not HostStatus.ACTIVE:
            set_host_status(session, rows, HostStatus.ACTIVE, cause="test", actor="worker:test")
        set_host_status(session, rows, status, cause="test", actor="worker:test", **fields)


def statuses(app, deployment_id):
    with transaction(app.state.sessionmaker) as session:
        return {(r.position, r.host): r.status.value for r in session.scalars(
            select(HostResult).where(HostResult.deployment_id == deployment_id))}


def test_cancel_lets_active_hosts_finish(client, world, app):
    deployment, url = start(client, world)
    set_status(app, deployment["id"], ["web1"], HostStatus.ACTIVE)
    set_status(app, deployment["id"], ["web2"], HostStatus.SUCCESS)
    r = client.post(f"{url}/cancel")
    assert r.status_code == 200
    assert (r.json()["state"], r.json()["cancel_requested"], r.json()["outcome"]) == ("active", True, None)
    assert statuses(app, deployment["id"]) == {
        (1, "web1"): "active", (1, "web2"): "success", (1, "db1"): "cancelled",
        (2, "web1"): "cancelled", (2, "web2"): "cancelled"}
    with transaction(app.state.sessionmaker) as session:
        row = session.scalars(select(HostResult).where(HostResult.host == "db1")).one()
        assert row.reason == "deployment cancelled by user:admin"
        causes = session.scalars(select(Transition.actor).where(Transition.entity == "host_result",
                                                                Transition.to_state == "cancelled")).all()
        assert causes == ["user:admin"] * 3


def test_cancel_with_nothing_active_completes_now(client, world, app):
    deployment, url = start(client, world)
    set_status(app, deployment["id"], ["db1"], HostStatus.INCONCLUSIVE)
    r = client.post(f"{url}/cancel")
    assert (r.json()["state"], r.json()["outcome"]) == ("completed", "cancelled")
    assert r.json()["finished_at"] is not None
    assert set(statuses(app, deployment["id"]).values()) == {"cancelled"}
    assert transitions(app, deployment["id"])[-1] == ("active", "completed", "cancelled", "user:admin")
    assert client.post(f"{url}/cancel").status_code == 409
    assert client.post(f"{url}/archive").json()["state"] == "archived"
    assert client.patch(url, json={"name": "x"}).status_code == 409
    assert client.delete(url).status_code == 204


def test_cancel_and_archive_need_the_right_state(client, world):
    deployment = create(client, world)
    url = f"/api/v1/deployments/{deployment['id']}"
    r = client.post(f"{url}/cancel")
    assert r.status_code == 409 and "only an active or paused deployment" in r.json()["detail"]
    r = client.post(f"{url}/archive")
    assert r.json()["state"] == "archived"
    r = client.post(f"{url}/ready")
    assert r.status_code == 409
    assert client.post(f"{url}/archive").status_code == 409


def test_in_use_objects_cannot_be_deleted(client, world):
    create(client, world)
    for path in (f"policies/{world['published']}", f"targets/{world['web']}"):
        r = client.delete(f"/api/v1/{path}")
        assert r.status_code == 409 and "deployment" in r.json()["detail"]

