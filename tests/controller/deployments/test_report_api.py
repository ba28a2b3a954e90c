"""The per-step per-host report (filters, pages, CSV and JSON export), and runs with their logs."""

import csv
import io

import pytest
from sqlalchemy import select

from depot.database.core import transaction
from depot.deployments.models import HostResult, Run
from depot.orchestration.service import set_host_status
from depot.orchestration.states import HostStatus


@pytest.fixture
def deployment(started, app):
    """Started: step 1 on web1, web2, db1, lone; step 2 on web1, web2. Then step 1 finished as
    web1 success (rc 0), web2 failed (rc 1603), db1 unreachable; lone is still ready."""
    d = started
    with transaction(app.state.sessionmaker) as session:
        rows = {r.host: r for r in session.scalars(select(HostResult).where(HostResult.position == 1))}
        set_host_status(session, [rows["web1"], rows["web2"], rows["db1"]], HostStatus.ACTIVE, cause="t", actor="worker:w")
        set_host_status(session, [rows["web1"]], HostStatus.SUCCESS, cause="t", actor="worker:w", rc=0, outcome="success",
                        attempts=[{"rc": 0, "class": "success"}], log_tail="installed")
        set_host_status(session, [rows["web2"]], HostStatus.FAILED, cause="t", actor="worker:w", rc=1603,
                        outcome="failure", attempts=[{"rc": 1618}, {"rc": 1603}], log_tail='line 1\nerror, "quoted"')
        set_host_status(session, [rows["db1"]], HostStatus.UNREACHABLE, cause="t", actor="worker:w",
                        reason="no contact within 600s")
        session.get(HostResult, rows["lone"].id).queued_behind = 7
    return d


def report(client, deployment, **params):
    r = client.get(f"/api/v1/deployments/{deployment['id']}/report", params=params)
    assert r.status_code == 200, r.text
    return r


def test_report_rows_and_counts(client, deployment):
    page = report(client, deployment).json()
    assert page["total"] == 6
    assert page["counts"] == {"success": 1, "failed": 1, "unreachable": 1, "ready": 3}
    assert [(i["position"], i["host"], i["status"]) for i in page["items"]] == [
        (1, "db1", "unreachable"), (1, "lone", "ready"), (1, "web1", "success"), (1, "web2", "failed"),
        (2, "web1", "ready"), (2, "web2", "ready")]
    web2 = page["items"][3]
    assert (web2["step_name"], web2["rc"], web2["outcome"], len(web2["attempts"])) == ("install", 1603, "failure", 2)
    assert web2["started_at"] and web2["finished_at"] and web2["log_tail"].startswith("line 1")
    assert page["items"][0]["reason"] == "no contact within 600s"
    assert page["items"][1]["queued_behind"] == 7


def test_report_filters_and_pages(client, deployment):
    assert [i["host"] for i in report(client, deployment, status="ready").json()["items"]] == ["lone", "web1", "web2"]
    both = report(client, deployment, status=["failed", "unreachable"]).json()
    assert [i["host"] for i in both["items"]] == ["db1", "web2"]
    assert report(client, deployment, step=2).json()["total"] == 2
    assert [(i["position"]) for i in report(client, deployment, host="web1").json()["items"]] == [1, 2]
    assert report(client, deployment, host="web1", step=1, status="success").json()["total"] == 1

    first = report(client, deployment, page=1, page_size=4).json()
    second = report(client, deployment, page=2, page_size=4).json()
    assert (first["total"], len(first["items"]), len(second["items"])) == (6, 4, 2)
    assert second["items"][0]["host"] == "web1" and second["items"][0]["position"] == 2
    r = client.get(f"/api/v1/deployments/{deployment['id']}/report", params={"status": "sleeping"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "status", 0]
    assert client.get("/api/v1/deployments/999/report").status_code == 404


def test_csv_export(client, deployment):
    r = report(client, deployment, format="csv", status=["failed", "success"])
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["host"], row["status"], row["rc"], row["attempts"]) for row in rows] == [
        ("web1", "success", "0", "1"), ("web2", "failed", "1603", "2")]
    assert rows[1]["log_tail"] == 'line 1\nerror, "quoted"'
    assert rows[0]["deployment_id"] == str(deployment["id"]) and rows[0]["step_name"] == "install"


def test_json_export_ignores_paging(client, deployment):
    r = report(client, deployment, format="json", page_size=1)
    rows = r.json()
    assert len(rows) == 6 and rows[0]["deployment_id"] == deployment["id"]
    assert {row["status"] for row in rows} == {"success", "failed", "unreachable", "ready"}


def test_runs_and_their_logs(client, deployment, app, tmp_path):
    artifacts = tmp_path / "artifacts" / "run-1"
    artifacts.mkdir(parents=True)
    (artifacts / "stdout").write_text("PLAY [Deploy software steps]\nok: [web1]\n")
    with transaction(app.state.sessionmaker) as session:
        step_id = session.scalars(select(HostResult.step_id).where(HostResult.position == 1)).first()
        with_log = Run(deployment_id=deployment["id"], step_id=step_id, worker="w", status="successful",
                       hosts=["web1"], artifact_dir=str(artifacts), events=12)
        without = Run(deployment_id=deployment["id"], step_id=step_id, worker="w", hosts=["web2"])
        session.add_all([with_log, without])
        session.flush()
        ids = with_log.id, without.id

    page = client.get(f"/api/v1/deployments/{deployment['id']}/runs").json()
    assert [(r["id"], r["status"], r["hosts"]) for r in page["items"]] == [(ids[0], "successful", ["web1"]),
                                                                         (ids[1], "starting", ["web2"])]
    assert client.get(f"/api/v1/runs/{ids[0]}").json()["events"] == 12
    log = client.get(f"/api/v1/runs/{ids[0]}/log")
    assert log.status_code == 200 and log.headers["content-type"].startswith("text/plain")
    assert log.text == "PLAY [Deploy software steps]\nok: [web1]\n"
    r = client.get(f"/api/v1/runs/{ids[1]}/log")
    assert r.status_code == 404 and "no log" in r.json()["detail"]
    assert client.get("/api/v1/runs/999/log").status_code == 404
