"""The hosts × steps grid (GET /deployments/{id}/grid): a page of hosts by name, each with its status
in every step (null where the host is not a target of the step), filters by status and by name,
counts per step and in all."""

import pytest
from sqlalchemy import select

from depot.database.core import transaction
from depot.deployments.models import HostResult
from depot.orchestration.service import set_host_status
from depot.orchestration.states import HostStatus


@pytest.fixture
def deployment(started, app):
    """Step 1 on web1, web2, db1, lone; step 2 on web1, web2. web1 succeeded step 1 and is active in
    step 2; web2 failed step 1 (rc 1603)."""
    d = started
    with transaction(app.state.sessionmaker) as session:
        rows = {(r.host, r.position): r for r in session.scalars(select(HostResult))}
        set_host_status(session, [rows["web1", 1], rows["web2", 1]], HostStatus.ACTIVE, cause="t", actor="t")
        set_host_status(session, [rows["web1", 1]], HostStatus.SUCCESS, cause="t", actor="t", rc=0,
                        attempts=[{"rc": 0}])
        set_host_status(session, [rows["web2", 1]], HostStatus.FAILED, cause="t", actor="t", rc=1603,
                        outcome="failure", reason="installer failed", attempts=[{"rc": 1618}, {"rc": 1603}])
        set_host_status(session, [rows["web1", 2]], HostStatus.ACTIVE, cause="t", actor="t")
    return d


def grid(client, deployment, **params):
    r = client.get(f"/api/v1/deployments/{deployment['id']}/grid", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def cells(page):
    return {row["host"]: [c and c["status"] for c in row["cells"]] for row in page["items"]}


def test_hosts_by_name_with_a_cell_per_step(client, deployment):
    page = grid(client, deployment)
    assert [(s["position"], s["name"]) for s in page["steps"]] == [(1, "install"), (2, "configure")]
    assert page["steps"][0]["counts"] == {"success": 1, "failed": 1, "ready": 2}
    assert page["steps"][1]["counts"] == {"active": 1, "ready": 1}
    assert page["counts"] == {"success": 1, "failed": 1, "ready": 3, "active": 1}
    assert page["total"] == 4 and [row["host"] for row in page["items"]] == ["db1", "lone", "web1", "web2"]
    assert cells(page) == {"db1": ["ready", None], "lone": ["ready", None], "web1": ["success", "active"],
                           "web2": ["failed", "ready"]}
    web2 = page["items"][3]["cells"][0]
    assert (web2["rc"], web2["outcome"], web2["reason"], web2["attempts"]) == (1603, "failure", "installer failed", 2)


def test_filters_and_pages(client, deployment):
    assert cells(grid(client, deployment, status="failed")) == {"web2": ["failed", "ready"]}
    # A host is in when any of its steps is in one of the statuses.
    assert list(cells(grid(client, deployment, status=["active", "failed"]))) == ["web1", "web2"]
    assert list(cells(grid(client, deployment, host="WEB"))) == ["web1", "web2"]
    assert grid(client, deployment, host="%")["total"] == 0          # no wildcards: the name contains it
    assert grid(client, deployment, host="_")["total"] == 0
    page = grid(client, deployment, page=2, page_size=3)
    assert (page["total"], [row["host"] for row in page["items"]]) == (4, ["web2"])
    assert grid(client, deployment, page=3, page_size=3)["items"] == []


def test_a_draft_has_steps_and_no_hosts_and_a_missing_one_is_404(client, inventory):
    web = client.post("/api/v1/targets", json={"name": "web", "kind": "group", "group": "web",
                                               "inventory": str(inventory)}).json()["id"]
    d = client.post("/api/v1/deployments", json={"name": "d", "steps": [
        {"action": "script", "script": "x", "target_ids": [web]}]}).json()
    page = grid(client, d)
    assert (len(page["steps"]), page["items"], page["total"], page["counts"]) == (1, [], 0, {})
    assert client.get("/api/v1/deployments/999999/grid").status_code == 404
    assert client.get(f"/api/v1/deployments/{d['id']}/grid", params={"status": "nope"}).status_code == 422
