"""Benchmark 6, the API: reads of a 10,000-host deployment's report at a fixed 200 requests/s
(--quick: 1,000 hosts, 5 s).

Set-up: a data dir of its own with the embedded SQLite database, an Active deployment of 2 steps x
10,000 hosts (20,000 host results in mixed statuses: success, failed with rc/outcome/attempts and
a log tail, active, ready, deferred with a reason, success_reboot_pending; a Run per 25 hosts) and an
admin token from `depot admin create`. Then `depot serve --no-worker` (one process, as shipped) on
127.0.0.1:13000 + pid % 1000.

Open-loop load: requests are scheduled at fixed times (every 5 ms for ~20 s) whatever the answers
do, sent over 50 keep-alive connections (the first free one takes the next due request); a
request's latency runs from its scheduled time to its answer, so queueing for a connection or in
the server counts. Depot's load is
GET /api/v1/deployments/{id}/report?page=N&page_size=100 (N over every page) with every 10th
request GET /api/v1/deployments/{id} (the summary); the peer, in the same run, is GET /api/v1/health
(the framework and one database round trip: the floor) at the same rate. Errors are non-200 answers
and failed requests. The server's resident memory is sampled every 50 ms from /proc/PID/status
(VmRSS; VmHWM at the end as well). The load generator runs on the same 2 cores as the server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from bench.common import VENV_BIN, Row, alternate, median

RATE = 200
CLIENTS = 50   # concurrent connections of the load generator
STEPS = 2
FORKS = 25
PAGE_SIZE = 100


def _status_of(i: int, step: int) -> tuple[str, dict]:
    k = (i * 7 + step * 3) % 100
    if k < 70:
        return "success", dict(rc=0, outcome="success", attempts=[{"rc": 0, "class": "success", "status": "executed",
                                                                    "duration": 12.5}],
                               log_tail="changed: [host]\nInstalling acme-agent 2.1.0\ndone")
    if k < 75:
        return "failed", dict(rc=1603, outcome="failure", reason="the installer failed (rc 1603, class failure)",
                              attempts=[{"rc": 1603, "class": "failure", "status": "executed", "duration": 30.1}],
                              log_tail="fatal: [host]: FAILED! => {\"msg\": \"the installer failed\"}\n...ignoring")
    if k < 80:
        return "success_reboot_pending", dict(rc=3010, outcome="soft_reboot", attempts=[
            {"rc": 3010, "class": "soft_reboot", "status": "executed", "duration": 20.0}])
    if k < 88:
        return "active", dict(claimed_by="worker-a")
    if k < 92:
        return "deferred", dict(reason="no maintenance window is open; next one at 2030-03-02 22:00 UTC")
    return "ready", {}


def setup(data_dir: str, hosts: int) -> tuple[int, str]:
    """The database with the deployment; returns (deployment id, admin token)."""
    from sqlalchemy import insert

    from depot.database.core import make_engine, make_sessionmaker, transaction, utcnow
    from depot.database.migrate import upgrade
    from depot.deployments.models import Deployment, HostResult, Run, Step
    from depot.orchestration.states import DeploymentState, HostStatus

    url = f"sqlite:///{data_dir}/depot.db"
    upgrade(url)
    engine = make_engine(url)
    now = utcnow()
    with transaction(make_sessionmaker(engine)) as session:
        deployment = Deployment(name="bench api", state=DeploymentState.ACTIVE, started_at=now)
        session.add(deployment)
        session.flush()
        for position in range(1, STEPS + 1):
            step = Step(deployment_id=deployment.id, position=position, name=f"step {position}", action="script",
                        script="true", target_ids=[1])
            session.add(step)
            session.flush()
            run_ids = []
            for start in range(0, hosts, FORKS):
                run = Run(deployment_id=deployment.id, step_id=step.id, worker="worker-a", status="successful",
                          hosts=[f"host{i:05d}" for i in range(start, min(hosts, start + FORKS))], events=900)
                session.add(run)
                session.flush()
                run_ids.append(run.id)
            rows = []
            for i in range(hosts):
                status, fields = _status_of(i, position)
                done = status not in ("active", "ready", "deferred")
                rows.append(dict(deployment_id=deployment.id, step_id=step.id, position=position, host=f"host{i:05d}",
                                 status=HostStatus(status), targets=[1], address=f"10.1.{i // 250}.{i % 250}",
                                 started_at=now if status != "ready" else None, finished_at=now if done else None,
                                 run_id=run_ids[i // FORKS] if status != "ready" else None, **fields))
            session.execute(insert(HostResult), rows)
        deployment_id = deployment.id
    engine.dispose()
    env = dict(os.environ, DEPOT_DATA_DIR=data_dir)
    token = subprocess.run([str(VENV_BIN / "depot"), "admin", "create", "bench"], env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    return deployment_id, token


class Server:
    def __init__(self, data_dir: str):
        self.port = 13000 + os.getpid() % 1000
        self.log = open(os.path.join(data_dir, "serve.log"), "w")
        env = dict(os.environ, DEPOT_DATA_DIR=data_dir, DEPOT_LOG_LEVEL="warning")
        self.proc = subprocess.Popen([str(VENV_BIN / "depot"), "serve", "--no-worker", "--host", "127.0.0.1",
                                      "--port", str(self.port)], env=env, stdout=self.log, stderr=self.log)
        self.url = f"http://127.0.0.1:{self.port}"
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"depot serve did not come up; see {self.log.name}")
            time.sleep(0.2)

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MB."""
        values = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    values[key] = int(value.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def _load(base: str, token: str, paths: list[str], seconds: float) -> tuple[list[float], int]:
    """Open loop over ``CLIENTS`` keep-alive connections: request i is due at start + i / RATE; the
    first free connection takes the earliest due request (waiting for its time if early), and its
    latency runs from when it was due, so time spent waiting for a free connection counts.
    (One client with a pool of a thousand connections spends its time in the pool's bookkeeping
    once requests queue - httpcore scans every queued request for every connection - and then
    measures itself, not the server.)"""
    import httpx

    latencies: list[float] = []
    errors = 0
    count = int(seconds * RATE)
    start = time.perf_counter() + 0.2
    due = iter(range(count))
    headers = {"Authorization": f"Bearer {token}"}

    async def connection() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30,
                                     limits=httpx.Limits(max_connections=1)) as client:
            for i in due:   # one shared iterator: each request is taken by exactly one connection
                at = start + i / RATE
                delay = at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    r = await client.get(paths[i % len(paths)])
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - at)
                errors += not ok

    await asyncio.gather(*(connection() for _ in range(CLIENTS)))
    return latencies, errors


def load(server: Server, token: str, paths: list[str], seconds: float) -> dict:
    peak = [0.0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], server.rss_mb()[0])
            time.sleep(0.05)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        latencies, errors = asyncio.run(_load(server.url, token, paths, seconds))
    finally:
        stop.set()
        sampler.join()
    return {"p50": percentile(latencies, 50) * 1000, "p99": percentile(latencies, 99) * 1000,
            "errors": errors, "requests": len(latencies), "rss_peak": max(peak[0], server.rss_mb()[0]),
            "hwm": server.rss_mb()[1]}


def run(runs: int, quick: bool) -> list[Row]:
    hosts = 1_000 if quick else 10_000
    seconds = 5.0 if quick else 20.0
    data_dir = tempfile.mkdtemp(prefix="depot-bench-api-")
    try:
        started = time.monotonic()
        deployment_id, token = setup(data_dir, hosts)
        pages = -(-hosts * STEPS // PAGE_SIZE)
        report = [f"/api/v1/deployments/{deployment_id}/report?page={1 + (i * 37) % pages}&page_size={PAGE_SIZE}"
                  for i in range(pages)]
        paths = [f"/api/v1/deployments/{deployment_id}" if i % 10 == 9 else report[i % pages] for i in range(pages * 10)]
        server = Server(data_dir)
        print(f"  set-up {time.monotonic() - started:.0f} s; serving on {server.url}, pid {server.proc.pid}, "
              f"RSS {server.rss_mb()[0]:.0f} MB", flush=True)
        ours_all: list[dict] = []
        theirs_all: list[dict] = []
        try:
            def depot() -> float:
                result = load(server, token, paths, seconds)
                ours_all.append(result)
                print(f"  report+summary: {result}", flush=True)
                return result["p99"]

            def floor() -> float:
                result = load(server, token, ["/api/v1/health"], seconds)
                theirs_all.append(result)
                print(f"  health:         {result}", flush=True)
                return result["p99"]
            ours, theirs = alternate(runs, depot, floor)
            final_rss, hwm = server.rss_mb()
        finally:
            server.stop()
        p50 = median([r["p50"] for r in ours_all])
        errors = sum(r["errors"] for r in ours_all)
        requests = sum(r["requests"] for r in ours_all)
        peak = max(r["rss_peak"] for r in ours_all + theirs_all)
        p99 = median(ours)
        size = f"{hosts:,} hosts x {STEPS} steps"
        print(f"  total {time.monotonic() - started:.0f} s", flush=True)
        return [
            Row("6. API", f"p99 latency, report pages + summary at {RATE} req/s open loop, {size}", p99, "ms",
                peer=f"GET /api/v1/health at {RATE} req/s", peer_value=median(theirs), target="≤ 100 ms",
                met=p99 <= 100, samples=ours, peer_samples=theirs,
                note=(f"p50 {p50:.1f} ms (health: {median([r['p50'] for r in theirs_all]):.1f} ms); {runs} rounds of "
                      f"{seconds:g} s each side; SQLite, `depot serve --no-worker`; load generator on the same 2 cores")),
            Row("6. API", f"errors, {requests:,} report/summary requests", errors, "errors",
                peer="health", peer_value=sum(r["errors"] for r in theirs_all), target="0", met=errors == 0),
            Row("6. API", "controller resident memory, peak during the load", peak, "MB", target="≤ 250 MB",
                met=peak <= 250, note=f"VmHWM at the end {hwm:.0f} MB; VmRSS at the end {final_rss:.0f} MB"),
        ]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


