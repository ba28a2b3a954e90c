"""The API under load while a real deployment runs (issue 5, item 10): `depot serve` on its
embedded SQLite database deploys a package to eight lab hosts while fifty concurrent API clients
read and write for as long as the deployment lasts. Not one request may fail (every response 2xx,
no transport error, no timeout), and the deployment's results must be complete and true: every
host Success, its installer run exactly once.

Figures (requests, requests/s, latency p50/p99) are printed, never asserted (DESIGN §5)."""

import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.lab import HOST_INSTALLERS

pytestmark = pytest.mark.lab
DEPOT = str(Path(sys.executable).with_name("depot"))
CLIENTS = 50
MARKER = "/opt/depot-load/agent"
COUNT = "/opt/depot-load/runs"      # one line per installer run, on each host
SLEEP = 15                          # seconds each installer takes: the deployment lasts ~25-40 s


@pytest.fixture
def controller(lab, tmp_path):
    """`depot serve` (SQLite, the embedded default) on the lab bridge; yields (url, token)."""
    port = 19000 + os.getpid() % 500
    url = f"http://{lab.bridge_address}:{port}"
    env = dict(os.environ, DEPOT_DATA_DIR=str(tmp_path / "data"), DEPOT_PUBLIC_URL=url,
               DEPOT_WORKER_POLL_INTERVAL="0.3", DEPOT_EVENT_BATCH_SECONDS="0.2")
    env.pop("DEPOT_DATABASE_URL", None)
    token = subprocess.run([DEPOT, "admin", "create", "load"], env=env, capture_output=True, text=True,
                           check=True).stdout.strip()
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    server = subprocess.Popen([DEPOT, "serve", "--host", lab.bridge_address, "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=url + "/api/v1", timeout=10) as probe:
            for _ in range(150):
                try:
                    if probe.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, log_path.read_text()
                time.sleep(0.2)
        yield url + "/api/v1", token
    finally:
        server.terminate()
        server.wait(timeout=120)
        log.close()
        print(f"\n--- serve.log (tail) ---\n{log_path.read_text()[-3000:]}")


def ok(response):
    assert response.status_code < 300, (response.status_code, response.text)
    return response.json()


class Load:
    """``CLIENTS`` concurrent clients, each looping over realistic reads and some writes until
    ``stop`` is set. Records every request's latency and every failure."""

    def __init__(self, base_url, token, deployment_id, target_id, package_id, inventory):
        self.base_url, self.token = base_url, token
        self.deployment, self.target, self.package, self.inventory = deployment_id, target_id, package_id, inventory
        self.latencies: list[float] = []
        self.by_route: dict[str, list[float]] = {}
        self.failures: list[str] = []
        self.created = 0
        self.in_flight = self.peak = 0

    async def request(self, client, method, path, **kwargs):
        started = time.perf_counter()
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.HTTPError as e:   # transport errors and timeouts alike
            self.failures.append(f"{method} {path}: {type(e).__name__}: {e}")
            return None
        finally:
            self.in_flight -= 1
            took = time.perf_counter() - started
            self.latencies.append(took)
            route = method + " " + re.sub(r"/(h?[0-9]+)(?=/|$)", "/{id}", path)
            self.by_route.setdefault(route, []).append(took)
        if not 200 <= response.status_code < 300:
            self.failures.append(f"{method} {path}: {response.status_code} {response.text[:300]}")
            return None
        return response

    async def client(self, number, client, stop):
        rng = random.Random(number)
        d, i = self.deployment, 0
        reads = [
            ("GET", f"/deployments/{d}"),                                       # status
            ("GET", f"/deployments/{d}/report", dict(params=dict(page_size=100))),   # the hosts' results
            ("GET", f"/deployments/{d}/report", dict(params=dict(status="active"))),
            ("GET", f"/deployments/{d}/runs"),
            ("GET", "/packages"),
            ("GET", f"/packages/{self.package}"),
            ("GET", "/deployments"),
            ("GET", f"/targets/{self.target}"),
        ]
        while not stop.is_set():
            i += 1
            roll = rng.random()
            if roll < 0.06:      # a package created and deleted again
                name = f"load-{number}-{i}"
                r = await self.request(client, "POST", "/packages", json=dict(
                    name=name, version="1.0", platform="linux", installer_type="script",
                    options=dict(install_command=["/bin/true"])))
                if r is not None:
                    self.created += 1
                    await self.request(client, "DELETE", f"/packages/{r.json()['id']}")
            elif roll < 0.08:    # a target created and deleted again
                r = await self.request(client, "POST", "/targets", json=dict(
                    name=f"load-{number}-{i}", kind="host", inventory=str(self.inventory),
                    hosts=[f"h{rng.randint(1, 8)}"]))
                if r is not None:
                    self.created += 1
                    await self.request(client, "DELETE", f"/targets/{r.json()['id']}")
            elif roll < 0.10:    # the host list of the lab's target (runs ansible-inventory: costly)
                await self.request(client, "GET", f"/targets/{self.target}/hosts")
            elif roll < 0.25:
                await self.request(client, "GET", f"/hosts/h{rng.randint(1, 8)}")
            else:
                method, path, *kwargs = rng.choice(reads)
                await self.request(client, method, path, **(kwargs[0] if kwargs else {}))

    async def run(self, until_complete, limit):
        """Load until the deployment completes (checked by a separate, unloaded client) or ``limit`` s."""
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=CLIENTS + 5, max_keepalive_connections=CLIENTS + 5)
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(base_url=self.base_url, headers=headers, limits=limits, timeout=60) as client:
            tasks = [asyncio.create_task(self.client(n, client, stop)) for n in range(CLIENTS)]
            started = time.monotonic()
            try:
                while time.monotonic() - started < limit:
                    if await until_complete(client):
                        break
                    await asyncio.sleep(1)
                else:
                    raise AssertionError(f"the deployment did not complete within {limit} s under load")
            finally:
                stop.set()
                await asyncio.gather(*tasks)
            return time.monotonic() - started


def test_fifty_api_clients_while_a_deployment_runs_on_eight_hosts(controller, lab, lab_inventory):
    base_url, token = controller
    api = httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"})
    installer = (f"#!/bin/sh\nmkdir -p /opt/depot-load && hostname >> {COUNT}\n"
                 f"exec {HOST_INSTALLERS}/slow \"$1\" {SLEEP}\n")
    for host in lab.hosts:
        lab.exec(host.name, ["rm", "-rf", "/opt/depot-load"], check=False)
    target = ok(api.post("/targets", json=dict(name="lab", kind="group", inventory=str(lab_inventory), group="lab")))
    package = ok(api.post("/packages", json=dict(
        name="agent", version="1.0", platform="linux", installer_type="script",
        options=dict(install_command=["{installer}", MARKER], detection=dict(rules=[dict(type="file", path=MARKER)])))))
    ok(api.post(f"/packages/{package['id']}/content", files={"file": ("agent-setup", installer.encode())}))
    deployment = ok(api.post("/deployments", json=dict(name="load", steps=[
        dict(name="agent", action="package", package_id=package["id"], target_ids=[target["id"]],
             machine_contact_timeout=10)])))
    d = deployment["id"]
    ok(api.post(f"/deployments/{d}/ready"))
    assert ok(api.post(f"/deployments/{d}/start"))["host_results"] == len(lab.hosts)

    async def complete(client):
        # Its own request, not counted in the load (it is the test's clock, not a client).
        response = await client.get(f"/deployments/{d}")
        return response.status_code == 200 and response.json()["state"] == "completed"

    load = Load(base_url, token, d, target["id"], package["id"], lab_inventory)
    elapsed = asyncio.run(load.run(complete, limit=150))

    lat = sorted(load.latencies)
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"\nload: {CLIENTS} clients, {len(lat)} requests in {elapsed:.1f} s = {len(lat) / elapsed:.0f} req/s, "
          f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms, "
          f"{load.created} objects created and deleted, {load.peak} in flight at most, "
          f"{len(load.failures)} failed, hosts {len(lab.hosts)}")
    for route, times in sorted(load.by_route.items()):
        print(f"  {route}: {len(times)} requests, p50 {statistics.median(times) * 1000:.0f} ms, "
              f"max {max(times) * 1000:.0f} ms")
    assert not load.failures, f"{len(load.failures)} of {len(lat)} requests failed: {load.failures[:10]}"
    assert load.peak == CLIENTS, f"at most {load.peak} requests were in flight at once, not {CLIENTS}"
    assert len(lat) >= CLIENTS * 3, "the clients hardly ran: the load did not happen"

    # The deployment's results are complete and true.
    final = ok(api.get(f"/deployments/{d}"))
    assert (final["state"], final["outcome"]) == ("completed", "success"), final
    rows = ok(api.get(f"/deployments/{d}/report", params=dict(page_size=100)))["items"]
    assert sorted(r["host"] for r in rows) == sorted(h.name for h in lab.hosts)
    for row in rows:
        assert (row["status"], row["rc"]) == ("success", 0), row
        assert lab.host_path(row["host"], COUNT).read_text().split() == [row["host"]], "installer ran more than once"
        assert lab.host_path(row["host"], MARKER).exists()
    deadline = time.monotonic() + 60   # each run records its own end just after its hosts' last results
    while not all(r["finished_at"] for r in ok(api.get(f"/deployments/{d}/runs"))["items"]):
        assert time.monotonic() < deadline, "a run did not record its end: it crashed in the controller"
        time.sleep(0.5)
    runs = ok(api.get(f"/deployments/{d}/runs"))["items"]
    assert runs and all(r["finished_at"] is not None and r["status"] == "successful" for r in runs), runs
    print(f"load: {len(runs)} run(s), {sum(r['events'] for r in runs)} events recorded")
    # The writes of the load left nothing behind (each create was followed by its delete).
    assert [p["name"] for p in ok(api.get("/packages", params=dict(page_size=100)))["items"]] == ["agent"]
