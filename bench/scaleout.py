"""8. Scale-out: one vs two `depot worker` processes on the same PostgreSQL database, with
latency-bound jobs (issue 6: ≥ 1.8× the throughput, nothing run twice).

A deployment of HOSTS lab hosts, one package step whose installer sleeps SLEEP seconds (as
tests/lab/installers/slow does) and writes one "start"/"done" line per run to a log on its host.
Each worker runs FORKS hosts at once (DEPOT_WORKER_FORKS), so one worker is the bottleneck: the
hosts go through in HOSTS/FORKS waves with one worker, half as many with two. Each round is a new
package (a new marker and log path on the hosts) and a new deployment, and its own fresh worker
processes, started and idle before the deployment starts; the API is `depot serve --no-worker`.
A round's time is the deployment's started_at → finished_at (from the database); throughput is
hosts / time. Rounds alternate (1 then 2 workers, then 2 then 1, ...) and the medians are compared.
Runs per host are counted from the hosts' own logs ("start" lines) over every round.

Then the memory a worker needs per fork: one worker with forks = F on a deployment of F hosts
(one batch, every host in its installer for MEM_SLEEP seconds); the proportional set size (PSS,
shared pages split between the processes sharing them, so forked ansible processes are not
counted N times) and the RSS of the worker process and everything it started is sampled from
/proc every half second, and the peak is reported. "Everything it started" is its process tree
plus the ssh ControlPersist masters, which detach from the tree (daemon()): they are found by
their control path, under the worker's own TMPDIR. docs/scale-out.md uses these figures.

The machine has 2 cores shared with the lab hosts (and with other benchmarks): the jobs are
sleeps so that the controller's CPU, not the hosts, is what two workers share.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import VENV_BIN, Row, alternate, lab, median, wait_healthy

BENCHMARK = "8. Scale-out"
DEPOT = str(VENV_BIN / "depot")
PG_ADMIN_URL = os.environ.get("DEPOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BASE = "/opt/depot-scaleout"
# tests/lab/installers/slow, plus a line per run in a log next to the marker (runs are counted
# there). The seconds are written into the script, not passed as an argument: an install_command
# element of digits only ("10") reaches the action plugin as an integer and is refused
# ("install_command must be a non-empty list of strings or a command-line string").
INSTALLER = """#!/bin/sh
set -eu
marker=${1:?usage: MARKER}
dir=$(dirname "$marker")
mkdir -p "$dir"
echo "start $$" >> "$dir/log"
sleep SECONDS
echo "installed by $0" > "$marker"
echo "done $$" >> "$dir/log"
"""


def _sizes(quick: bool) -> dict:
    if quick:
        return dict(hosts=20, forks=5, sleep=6, mem_forks=[1, 5], mem_sleep=10)
    return dict(hosts=40, forks=5, sleep=15, mem_forks=[1, 5, 10], mem_sleep=15)


# -- /proc -----------------------------------------------------------------------------------------

def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (ppid, comm, cmdline) of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        table[int(entry)] = (int(stat.rpartition(")")[2].split()[1]), comm, cmdline)
    return table


def _tree(root: int, marker: str) -> dict[int, str]:
    """The process ``root``, its descendants, and the processes (with theirs) whose command line
    names ``marker`` (the worker's TMPDIR: detached ssh ControlPersist masters): pid -> kind."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    todo = [root] + [pid for pid, (_, _, cmd) in table.items() if marker in cmd]
    found: dict[int, str] = {}
    while todo:
        pid = todo.pop()
        if pid in found or pid not in table:
            continue
        _, comm, cmd = table[pid]
        found[pid] = ("worker" if pid == root else "ssh" if comm == "ssh" else
                      "ansible-playbook" if "ansible-playbook" in cmd or comm.startswith("ansible-playboo") else comm)
        todo += children.get(pid, [])
    return found


def _memory(pid: int) -> tuple[float, float]:
    """(PSS, RSS) of a process in MB, (0, 0) if it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0, 0.0
    values = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("Pss:", "Rss:"):
            values[parts[0]] = int(parts[1]) / 1024
    return values.get("Pss:", 0.0), values.get("Rss:", 0.0)


def _sample(root: int, marker: str) -> dict:
    """One sample of the worker's tree: total PSS and RSS (MB), and PSS and count per kind."""
    tree = _tree(root, marker)
    pss = rss = 0.0
    kinds: dict[str, list[float]] = {}
    for pid, kind in tree.items():
        p, r = _memory(pid)
        pss, rss = pss + p, rss + r
        kinds.setdefault(kind, []).append(p)
    return dict(pss=pss, rss=rss, kinds={k: (len(v), sum(v)) for k, v in kinds.items()})


# -- the controller --------------------------------------------------------------------------------

class Controller:
    """A fresh PostgreSQL database, `depot serve --no-worker` on the lab bridge, and workers
    started and stopped on demand; everything removed by close()."""

    def __init__(self, bench_lab, workdir: Path):
        import httpx
        from cryptography.fernet import Fernet
        from sqlalchemy import create_engine, text

        self.lab, self.workdir = bench_lab, workdir
        self.database = f"depot_scaleout_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.database}"'))
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.database
        self.engine = create_engine(self.url)
        port = 12000 + os.getpid() % 1000
        public = f"http://{bench_lab.bridge_address}:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
        # What every process of a scaled-out controller shares: the database and the keys.
        self.env = dict(env, DEPOT_DATABASE_URL=self.url, DEPOT_SECRET_KEY=Fernet.generate_key().decode(),
                        DEPOT_PUBLIC_URL=public)
        self.processes: list[tuple[subprocess.Popen, object]] = []
        token = subprocess.run([DEPOT, "admin", "create", "scaleout"], env=self._env("api"), capture_output=True,
                               text=True, check=True).stdout.strip()   # migrates the fresh database too
        self.api_proc = self._start("api", [DEPOT, "serve", "--no-worker", "--host", bench_lab.bridge_address,
                                            "--port", str(port)], self._env("api"))
        self.api = httpx.Client(base_url=public + "/api/v1", timeout=60, headers={"Authorization": f"Bearer {token}"})
        wait_healthy(self.api, self.api_proc, workdir / "api.log")
        self.target = self.ok(self.api.post("/targets", json=dict(
            name="scaleout", kind="host", inventory=str(bench_lab.inventory), hosts=[h.name for h in bench_lab.hosts])))
        self.rounds = 0

    def _env(self, name: str, **extra) -> dict:
        """A process's environment: its own data directory (as on a machine of its own)."""
        return dict(self.env, DEPOT_DATA_DIR=str(self.workdir / name / "data"), **extra)

    def _start(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("a")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append((proc, log))
        return proc

    @staticmethod
    def ok(response):
        if response.status_code >= 300:
            raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} "
                               f"{response.text[:500]}")
        return response.json()

    def query(self, sql: str, **params) -> list[dict]:
        from sqlalchemy import text

        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(text(sql), params)]

    # -- workers ---------------------------------------------------------------------------------
    def start_workers(self, count: int, forks: int) -> list[tuple[str, subprocess.Popen, Path]]:
        workers = []
        for k in range(count):
            name = f"bs{os.getpid()}-{self.rounds}-w{k}"
            tmp = Path(tempfile.mkdtemp(prefix=f"dbs{k}-", dir="/tmp"))   # short: it holds ssh control sockets
            proc = self._start(name, [DEPOT, "worker"], self._env(
                name, DEPOT_WORKER_NAME=name, DEPOT_WORKER_FORKS=str(forks), TMPDIR=str(tmp)))
            workers.append((name, proc, tmp))
        deadline = time.monotonic() + 60
        for name, proc, _ in workers:
            while "started" not in (self.workdir / f"{name}.log").read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {name} did not start: "
                                       + (self.workdir / f"{name}.log").read_text()[-3000:])
                time.sleep(0.1)
        time.sleep(1.5)   # its start-up recovery and first (empty) claim pass are done
        return workers

    def stop_workers(self, workers) -> float:
        """Stop them (SIGTERM: they finish what they run) and return the CPU seconds they and the
        children they waited for used."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for _, proc, _ in workers:
            proc.send_signal(signal.SIGTERM)
        for _, proc, tmp in workers:
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            shutil.rmtree(tmp, ignore_errors=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    # -- one deployment --------------------------------------------------------------------------
    def deployment(self, hosts: list[str], sleep: float) -> tuple[int, str]:
        """A new package (its own marker and log on the hosts) and a ready deployment of it on
        ``hosts``; returns its id and the directory of the marker and the log."""
        self.rounds += 1
        directory = f"{BASE}/{os.getpid()}-{self.rounds}"
        for host in self.lab.hosts:
            shutil.rmtree(self.lab.host_path(host, directory), ignore_errors=True)
        package = self.ok(self.api.post("/packages", json=dict(
            name=f"scaleout-{self.rounds}", version="1.0", platform="linux", installer_type="script",
            options=dict(install_command=["{installer}", f"{directory}/agent"],
                         detection=dict(rules=[dict(type="file", path=f"{directory}/agent")])))))
        self.ok(self.api.post(f"/packages/{package['id']}/content",
                              files={"file": ("scaleout-setup", INSTALLER.replace("SECONDS", f"{sleep:g}").encode())}))
        target = self.target
        if len(hosts) != len(self.lab.hosts):
            target = self.ok(self.api.post("/targets", json=dict(
                name=f"scaleout-{self.rounds}", kind="host", inventory=str(self.lab.inventory), hosts=hosts)))
        deployment = self.ok(self.api.post("/deployments", json=dict(name=f"scaleout-{self.rounds}", steps=[
            dict(name="agent", action="package", package_id=package["id"], target_ids=[target["id"]],
                 machine_contact_timeout=60, execution_timeout=600)])))
        self.ok(self.api.post(f"/deployments/{deployment['id']}/ready"))
        return deployment["id"], directory

    def wait_completed(self, deployment_id: int, timeout: float, during=None) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            state = self.query("SELECT state, outcome, started_at, finished_at FROM deployments WHERE id = :d",
                               d=deployment_id)[0]
            if str(state["state"]).lower().endswith("completed"):
                return state
            if time.monotonic() > deadline:
                raise RuntimeError(f"deployment {deployment_id} not completed after {timeout} s: {state}")
            if during is not None:
                during()
            time.sleep(0.5)

    def runs_on_hosts(self, directory: str, hosts: list[str]) -> dict[str, tuple[int, int]]:
        """host -> (installer starts, installer ends) from its log."""
        counts = {}
        for host in hosts:
            path = self.lab.host_path(host, f"{directory}/log")
            words = [line.split()[0] for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
            counts[host] = (words.count("start"), words.count("done"))
        return counts

    def close(self) -> None:
        from sqlalchemy import text

        try:
            self.api.close()
        except Exception:  # noqa: BLE001 - closing what is left; nothing to report
            pass
        for proc, log in self.processes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
        self.engine.dispose()
        with self.admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        self.admin.dispose()


# -- the two measurements --------------------------------------------------------------------------

def _round(ctl: Controller, workers: int, size: dict) -> dict:
    hosts = [h.name for h in ctl.lab.hosts][:size["hosts"]]
    deployment_id, directory = ctl.deployment(hosts, size["sleep"])
    running = ctl.start_workers(workers, size["forks"])
    try:
        ctl.ok(ctl.api.post(f"/deployments/{deployment_id}/start"))
        connections = [0]

        def count_connections():   # the API's, the workers' and this benchmark's (1)
            connections[0] = max(connections[0], ctl.query(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = :d", d=ctl.database)[0]["n"])
        state = ctl.wait_completed(deployment_id, timeout=60 + 4 * size["hosts"] * size["sleep"] / size["forks"],
                                   during=count_connections)
    finally:
        cpu = ctl.stop_workers(running)
    seconds = (state["finished_at"] - state["started_at"]).total_seconds()
    outcome = str(state["outcome"]).lower()
    results = ctl.query("SELECT status, count(*) AS n FROM host_results WHERE deployment_id = :d GROUP BY status",
                        d=deployment_id)
    per_worker = ctl.query("SELECT worker, count(*) AS runs, sum(json_array_length(hosts::json)) AS hosts "
                           "FROM runs WHERE deployment_id = :d GROUP BY worker ORDER BY worker", d=deployment_id)
    counts = ctl.runs_on_hosts(directory, hosts)
    reasons = ctl.query("SELECT DISTINCT status, reason FROM host_results WHERE deployment_id = :d AND status <> 'success' "
                        "LIMIT 3", d=deployment_id)
    if reasons:
        print(f"  not successful: {reasons}", flush=True)
    result = dict(workers=workers, seconds=seconds, throughput=len(hosts) / seconds, cpu=cpu, outcome=outcome,
                  statuses={str(r["status"]).lower(): r["n"] for r in results},
                  split=[int(r["hosts"]) for r in per_worker], counts=counts, connections=connections[0])
    print(f"  {workers} worker(s): {seconds:.1f} s, {result['throughput']:.3f} hosts/s, {outcome}, hosts per worker "
          f"{result['split']}, CPU {cpu:.0f} s, {connections[0]} database connections, starts per host {sorted({c[0] for c in counts.values()})}, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    return result


def _memory_round(ctl: Controller, forks: int, sleep: float) -> dict:
    hosts = [h.name for h in ctl.lab.hosts][:forks]
    deployment_id, directory = ctl.deployment(hosts, sleep)
    [(name, proc, tmp)] = ctl.start_workers(1, forks)
    try:
        idle_samples = []
        for _ in range(5):
            idle_samples.append(_sample(proc.pid, str(tmp))["pss"])
            time.sleep(0.2)
        idle = median(idle_samples)
        ctl.ok(ctl.api.post(f"/deployments/{deployment_id}/start"))
        peak: dict = {"pss": 0.0}

        def sample():
            now = _sample(proc.pid, str(tmp))
            if now["pss"] > peak["pss"]:
                peak.clear()
                peak.update(now)
        ctl.wait_completed(deployment_id, timeout=120 + 4 * sleep, during=sample)
    finally:
        ctl.stop_workers([(name, proc, tmp)])
    counts = ctl.runs_on_hosts(directory, hosts)
    print(f"  forks={forks}: idle {idle:.0f} MB PSS, peak {peak['pss']:.0f} MB PSS / {peak.get('rss', 0):.0f} MB RSS, "
          f"{ {k: (n, round(v)) for k, (n, v) in peak.get('kinds', {}).items()} }, starts {sorted(counts.values())}",
          flush=True)
    return dict(forks=forks, idle=idle, **peak)


def run(runs: int, quick: bool) -> list[Row]:
    size = _sizes(quick)
    hosts_needed = max([size["hosts"], *size["mem_forks"]])
    workdir = Path(tempfile.mkdtemp(prefix="depot-bench-scaleout-"))
    started = time.monotonic()
    with lab(hosts_needed) as bench_lab:
        ctl = Controller(bench_lab, workdir)
        try:
            two, one = alternate(runs, lambda: _round(ctl, 2, size), lambda: _round(ctl, 1, size))
            memory = [_memory_round(ctl, forks, size["mem_sleep"]) for forks in size["mem_forks"]]
        finally:
            ctl.close()
            for host in bench_lab.hosts:
                shutil.rmtree(bench_lab.host_path(host, BASE), ignore_errors=True)
    elapsed = time.monotonic() - started
    shutil.rmtree(workdir, ignore_errors=True)

    what = f"{size['hosts']} hosts, {size['forks']} forks per worker, {size['sleep']} s installer"
    t1, t2 = [r["throughput"] for r in one], [r["throughput"] for r in two]
    everything = one + two
    starts = [c[0] for r in everything for c in r["counts"].values()]
    dones = [c[1] for r in everything for c in r["counts"].values()]
    failed = [r for r in everything if r["outcome"] != "success" or set(r["statuses"]) != {"success"}]
    cpu1, cpu2 = median([r["cpu"] for r in one]), median([r["cpu"] for r in two])
    ratio = median(t2) / median(t1)
    rows = [
        Row(BENCHMARK, f"throughput, 1 worker ({what})", median(t1), "hosts/s", samples=t1,
            note=f"median {median([r['seconds'] for r in one]):.1f} s start→completed; worker CPU "
                 f"{cpu1:.0f} s per round; at most {max(r['connections'] for r in one)} database connections "
                 "(API, worker, benchmark)"),
        Row(BENCHMARK, f"throughput, 2 workers ({what})", median(t2), "hosts/s", peer="1 worker",
            peer_value=median(t1), target="≥ 1.8×", met=ratio >= 1.8, samples=t2, peer_samples=t1,
            note=f"median {median([r['seconds'] for r in two]):.1f} s start→completed; hosts per worker "
                 f"{[r['split'] for r in two]}; worker CPU {cpu2:.0f} s per round (both); at most "
                 f"{max(r['connections'] for r in two)} database connections; 2 shared cores, "
                 "other benchmarks running: noisy"),
        Row(BENCHMARK, "installer runs per host (host logs, every round)", max(starts), "runs",
            target="= 1 on every host", met=min(starts) == max(starts) == 1 and min(dones) == max(dones) == 1
            and not failed,
            note=f"{len(starts)} host-rounds: starts {min(starts)}–{max(starts)}, ends {min(dones)}–{max(dones)}; "
                 f"{len(failed)} round(s) not all success; {elapsed / 60:.1f} min for the whole benchmark"),
    ]
    for m in memory:
        kinds = ", ".join(f"{k} {n}×{v / max(n, 1):.0f}" for k, (n, v) in sorted(m.get("kinds", {}).items()))
        rows.append(Row(BENCHMARK, f"memory (PSS) of a worker and its children, forks={m['forks']}", m["pss"], "MB",
                        note=f"RSS sum {m.get('rss', 0):.0f} MB; idle worker {m['idle']:.0f} MB; at the peak: {kinds}"))
    if len(memory) >= 2:
        low, high = memory[0], memory[-1]
        per_fork = (high["pss"] - low["pss"]) / (high["forks"] - low["forks"])
        rows.append(Row(BENCHMARK, f"memory per fork (PSS, forks {low['forks']}→{high['forks']})", per_fork, "MB",
                        note=f"base: idle worker {low['idle']:.0f} MB; forks=1 run {low['pss']:.0f} MB"))
    return rows
