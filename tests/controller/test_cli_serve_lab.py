"""`depot serve` end to end on the lab, through the API only: upload a package, create a
two-step deployment over eight real hosts, start it and read the per-host report. One host is
offline (Unreachable after its contact timeout), one host's installer fails (Failed, and its
later step Cancelled), one asks for a reboot with 3010 (rebooted and resumed), the rest succeed."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.lab import HOST_INSTALLERS

pytestmark = pytest.mark.lab
DEPOT = str(Path(sys.executable).with_name("depot"))


@pytest.fixture
def controller(lab, tmp_path):
    """`depot serve` on the lab bridge (hosts pull content from it), its own data directory."""
    port = 18000 + os.getpid() % 1000
    url = f"http://{lab.bridge_address}:{port}"
    env = dict(os.environ, DEPOT_DATA_DIR=str(tmp_path / "data"), DEPOT_PUBLIC_URL=url,
               DEPOT_WORKER_POLL_INTERVAL="0.3", DEPOT_EVENT_BATCH_SECONDS="0.2")
    env.pop("DEPOT_DATABASE_URL", None)
    # The first admin, as an operator sets one up: its token is printed once.
    token = subprocess.run([DEPOT, "admin", "create", "e2e"], env=env, capture_output=True, text=True,
                           check=True).stdout.strip()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([DEPOT, "serve", "--host", lab.bridge_address, "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=url + "/api/v1", timeout=30, headers={"Authorization": f"Bearer {token}"})
    try:
        for _ in range(150):
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        yield client
    finally:
        server.terminate()
        server.wait(timeout=120)
        log.close()


def ok(response):
    assert response.status_code < 300, (response.status_code, response.text)
    return response.json()


def test_two_step_deployment_to_eight_hosts_through_the_api(controller, lab, lab_inventory):
    api = controller
    marker = "/opt/depot-e2e/agent"
    installer = (
        "#!/bin/sh\n"
        "case $(hostname) in\n"
        f"  h3) exec {HOST_INSTALLERS}/fail \"$1\" ;;\n"
        f"  h4) exec {HOST_INSTALLERS}/soft-reboot \"$1\" ;;\n"
        f"  *) exec {HOST_INSTALLERS}/ok \"$1\" ;;\n"
        "esac\n")
    target = ok(api.post("/targets", json=dict(name="lab", kind="group", inventory=str(lab_inventory), group="lab")))
    package = ok(api.post("/packages", json=dict(
        name="agent", version="1.0", platform="linux", installer_type="script",
        options=dict(install_command=["{installer}", marker], detection=dict(rules=[dict(type="file", path=marker)])))))
    ok(api.post(f"/packages/{package['id']}/content", files={"file": ("agent-setup", installer.encode())}))
    deployment = ok(api.post("/deployments", json=dict(name="e2e", steps=[
        dict(name="agent", action="package", package_id=package["id"], target_ids=[target["id"]],
             machine_contact_timeout=10),
        dict(name="configure", action="script", target_ids=[target["id"]], machine_contact_timeout=10,
             script="mkdir -p /opt/depot-e2e && hostname > /opt/depot-e2e/configured"),
    ])))
    ok(api.post(f"/deployments/{deployment['id']}/ready"))
    boot_h4 = lab.boot_id("h4")
    lab.offline("h8")
    try:
        started = ok(api.post(f"/deployments/{deployment['id']}/start"))
        assert started["host_results"] == 16
        deadline = time.monotonic() + 400
        while ok(api.get(f"/deployments/{deployment['id']}"))["state"] != "completed":
            assert time.monotonic() < deadline, "the deployment did not complete"
            time.sleep(1)
    finally:
        lab.online("h8")

    final = ok(api.get(f"/deployments/{deployment['id']}"))
    assert final["outcome"] == "failed"
    report = ok(api.get(f"/deployments/{deployment['id']}/report", params=dict(page_size=100)))
    rows = {(r["host"], r["position"]): r for r in report["items"]}
    assert len(rows) == 16
    for host in ("h1", "h2", "h5", "h6", "h7"):
        assert (rows[(host, 1)]["status"], rows[(host, 2)]["status"]) == ("success", "success"), rows[(host, 1)]
        assert lab.host_path(host, "/opt/depot-e2e/configured").read_text().strip() == host
    assert (rows[("h3", 1)]["status"], rows[("h3", 1)]["rc"]) == ("failed", 1603)
    assert rows[("h3", 2)]["status"] == "cancelled"
    assert not lab.host_path("h3", "/opt/depot-e2e/configured").exists()
    assert (rows[("h4", 1)]["status"], rows[("h4", 1)]["outcome"], rows[("h4", 1)]["rc"]) == ("success", "soft_reboot", 3010)
    assert rows[("h4", 2)]["status"] == "success" and lab.boot_id("h4") != boot_h4
    assert rows[("h8", 1)]["status"] == "unreachable" and "contact timeout" in rows[("h8", 1)]["reason"]
    assert rows[("h8", 2)]["status"] == "cancelled"
    # The per-step log of a run is served, and the CSV export has every row.
    runs = ok(api.get(f"/deployments/{deployment['id']}/runs"))["items"]
    assert runs and "PLAY RECAP" in api.get(f"/runs/{runs[0]['id']}/log").text
    csv = api.get(f"/deployments/{deployment['id']}/report", params=dict(format="csv")).text
    assert csv.count("\n") >= 17
