"""The canary: secrets given to the controller show up nowhere but where they are needed.

A real deployment through `depot serve` (debug logging) on the lab, whose hosts are reached with
an ssh_key credential, whose first step runs as a named user from a run_as credential, whose second
step tries an ssh_password credential (the lab's sshd refuses passwords: it fails Unreachable, so
the password went to ssh), with a webhook subscription whose signing secret is a canary too (its
delivery to a closed port fails and is logged). Then every place a secret could leak is searched
for every canary: each file of the data directory (database and its WAL raw, runs, artifacts and
ansible-runner's job events), the controller's log, every file the lab hosts wrote (module
arguments travel to them), /dev/shm, and the response to every GET route of the API's own route
table. Zero hits.
"""

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

pytestmark = pytest.mark.lab
DEPOT = str(Path(sys.executable).with_name("depot"))
TAG = uuid.uuid4().hex[:10]
RUN_AS_PASSWORD = f"canary-RunAs-{TAG}"
SSH_PASSWORD = f"canary-SshPw-{TAG}"
WEBHOOK_SECRET = f"canary-Hook-{TAG}"
RUN_AS_USER = "depotcanary"


def ok(response):
    assert response.status_code < 300, (response.request.url, response.status_code, response.text)
    return response.json()


@pytest.fixture
def keyless_inventory(lab, tmp_path):
    inventory = yaml.safe_load(Path(lab.inventory).read_text())
    variables = inventory["all"]["children"]["lab"]["vars"]
    del variables["ansible_ssh_private_key_file"], variables["ansible_user"]
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


@pytest.fixture
def serve(lab, tmp_path):
    port = 16000 + os.getpid() % 1000
    url = f"http://{lab.bridge_address}:{port}"
    env = dict(os.environ, DEPOT_DATA_DIR=str(tmp_path / "data"), DEPOT_PUBLIC_URL=url, DEPOT_LOG_LEVEL="debug",
               DEPOT_WORKER_POLL_INTERVAL="0.3", DEPOT_EVENT_BATCH_SECONDS="0.2", DEPOT_NOTIFICATION_INTERVAL="0.5")
    for name in ("DEPOT_DATABASE_URL", "DEPOT_SECRET_KEY"):
        env.pop(name, None)
    token = subprocess.run([DEPOT, "admin", "create", "canary"], env=env, capture_output=True, text=True,
                           check=True).stdout.strip()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen([DEPOT, "serve", "--host", lab.bridge_address, "--port", str(port)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    api = httpx.Client(base_url=url + "/api/v1", timeout=30, headers={"Authorization": f"Bearer {token}"})
    try:
        for _ in range(150):
            try:
                if api.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log_path.read_text()
            time.sleep(0.2)
        yield api, tmp_path / "data", log_path
    finally:
        server.terminate()
        server.wait(timeout=120)
        api.close()


def test_no_secret_is_found_anywhere(serve, lab, keyless_inventory):
    api, data_dir, log_path = serve
    key = Path(lab.key).read_text()
    key_line = key.strip().splitlines()[2]                   # base64 that occurs nowhere else
    canaries = {name: value.encode() for name, value in dict(
        run_as_password=RUN_AS_PASSWORD, ssh_password=SSH_PASSWORD, webhook_secret=WEBHOOK_SECRET,
        ssh_key=key_line).items()}
    assert len(canaries["ssh_key"]) > 40
    run_on, refused_on = ["h1", "h2", "h3"], "h4"
    for host in run_on:
        if lab.exec(host, ["id", RUN_AS_USER]).returncode != 0:
            lab.add_user(host, RUN_AS_USER)
    responses = []

    def call(method, path, **kw):
        response = api.request(method, path, **kw)
        responses.append(response)
        return ok(response)

    ssh_key = call("POST", "/credentials", json=dict(name="lab-key", kind="ssh_key", username="root", secret=key))
    password = call("POST", "/credentials", json=dict(name="pw", kind="ssh_password", username="root",
                                                       secret=SSH_PASSWORD))
    run_as = call("POST", "/credentials", json=dict(name="svc", kind="run_as", username=RUN_AS_USER,
                                                     secret=RUN_AS_PASSWORD))
    keyed = call("POST", "/targets", json=dict(name="keyed", kind="host", hosts=run_on, inventory=str(keyless_inventory),
                                               credential_id=ssh_key["id"]))
    refused = call("POST", "/targets", json=dict(name="refused", kind="host", hosts=[refused_on],
                                                 inventory=str(keyless_inventory), credential_id=password["id"]))
    package = call("POST", "/packages", json=dict(name="listed", version="1", platform="linux", installer_type="deb",
                                                  product_id="listed"))
    call("POST", f"/packages/{package['id']}/content", files={"file": ("listed.deb", b"not really a deb")})
    whoami = "/var/tmp/depot-canary-whoami"
    policy = call("POST", "/policies", json=dict(name="as-user", category="script", script=f"id -un > {whoami}",
                                                 run_as="user", run_as_credential_id=run_as["id"]))
    call("POST", f"/policies/{policy['id']}/publish")
    deployment = call("POST", "/deployments", json=dict(name="canary", steps=[
        dict(name="as user", policy_id=policy["id"], target_ids=[keyed["id"]], machine_contact_timeout=10),
        dict(name="by password", action="script", script="true", target_ids=[refused["id"]],
             machine_contact_timeout=3)]))
    call("POST", "/notifications/subscriptions", json=dict(
        name="hook", channel="webhook", address="http://127.0.0.1:9/depot", secret=WEBHOOK_SECRET,
        events=["deployment.completed"], deployment_id=deployment["id"]))
    call("POST", f"/deployments/{deployment['id']}/ready")
    call("POST", f"/deployments/{deployment['id']}/start")
    deadline = time.monotonic() + 300
    while call("GET", f"/deployments/{deployment['id']}")["state"] != "completed":
        assert time.monotonic() < deadline, "the deployment did not complete"
        time.sleep(1)
    # The webhook was attempted (and failed: nothing listens on port 9), so its secret was used.
    while not [d for d in call("GET", "/notifications/deliveries")["items"] if d["attempts"] >= 1]:
        assert time.monotonic() < deadline + 60, "the webhook was never attempted"
        time.sleep(0.5)

    report = {(r["host"], r["position"]): r for r in
              call("GET", f"/deployments/{deployment['id']}/report", params=dict(page_size=100))["items"]}
    for host in run_on:
        assert report[(host, 1)]["status"] == "success", report[(host, 1)]
        assert lab.host_path(host, whoami).read_text().strip() == RUN_AS_USER
    assert report[(refused_on, 2)]["status"] == "unreachable"
    assert "Permission denied" in report[(refused_on, 2)]["reason"]

    # Every GET route of the API, with every id this test made.
    ids = dict(
        deployment_id=[deployment["id"]], package_id=[package["id"]], target_id=[keyed["id"], refused["id"]],
        policy_id=[policy["id"]], credential_id=[ssh_key["id"], password["id"], run_as["id"]],
        subscription_id=[s["id"] for s in call("GET", "/notifications/subscriptions")["items"]],
        user_id=[u["id"] for u in call("GET", "/users")["items"]],
        run_id=[r["id"] for r in call("GET", f"/deployments/{deployment['id']}/runs")["items"]],
        step_id=[s["id"] for s in call("GET", f"/deployments/{deployment['id']}/steps")],
        name=run_on + [refused_on])
    spec = call("GET", str(api.base_url.copy_with(path="/openapi.json")))
    walked = set()
    for template, operations in spec["paths"].items():
        if "get" not in operations or "{sha256}" in template:
            continue   # content is the package's own bytes, served by signed URL
        names = re.findall(r"{(\w+)}", template)
        combos = [{}]
        for name in names:
            combos = [dict(c, **{name: value}) for c in combos for value in ids[name]]
        for combo in combos:
            path = template.removeprefix("/api/v1").format(**combo)
            queries = [dict(page_size=500)] + ([dict(format="csv")] if path.endswith("/report") else [])
            for query in queries:
                response = api.get(path, params=query)
                responses.append(response)
                # 404: a route with nothing to show here (this deployment has no schedule to preview)
                assert response.status_code in (200, 404), (path, response.status_code, response.text)
                walked.add(template)
    assert len(walked) == sum(1 for t, o in spec["paths"].items() if "get" in o and "{sha256}" not in t)

    # Search every place.
    api.close()
    places: dict[str, list[tuple[str, bytes]]] = {
        "data directory (database raw, runs, artifacts, job events)":
            [(str(p), p.read_bytes()) for p in data_dir.rglob("*") if p.is_file() and p.name != "secret.key"],
        "controller log": [(str(log_path), log_path.read_bytes())],
        "API responses": [(f"{r.request.method} {r.request.url}", r.content) for r in responses],
        "lab hosts' written files": [(str(p), p.read_bytes()) for host in run_on + [refused_on]
                                     for p in (lab.workdir / "hosts" / host / "upper").rglob("*")
                                     if p.is_file() and not p.is_symlink()],
        "/dev/shm": [(str(p), p.read_bytes()) for p in Path("/dev/shm").rglob("*") if p.is_file()],
    }
    assert any(name.endswith("depot.db") for name, _ in places["data directory (database raw, runs, artifacts, job events)"])
    assert any("job_events" in name for name, _ in places["data directory (database raw, runs, artifacts, job events)"])
    hits = [(place, canary, name) for place, items in places.items() for name, content in items
            for canary, value in canaries.items() if value in content]
    counts = {place: (len(items), sum(len(c) for _, c in items)) for place, items in places.items()}
    print(f"\ncanary search: {len(responses)} API responses, {len(walked)} GET routes; "
          + "; ".join(f"{place}: {n} files/items, {size} bytes" for place, (n, size) in counts.items())
          + f"; hits: {len(hits)}")
    assert hits == []
