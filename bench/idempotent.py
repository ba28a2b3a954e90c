"""Benchmark 2, idempotent re-run: packages already installed on many hosts,
``depot.software.package`` against a role built from stock modules (bench/idempotent/roles/
stock_install: stat, command with until/retries and failed_when, reboot, stat again).

Both sides: the same five packages (the lab's ``ok`` installer, a marker file each, detection by
that file), the same inventory, forks, ansible.cfg (pipelining) and ssh ControlPersist, each side
with its own ControlPath directory warmed by an untimed pass. Installed once first (not timed);
then re-runs are timed, alternating, and must change nothing. The remote commands of every re-run
are counted from the lab's command log (each host's sshd records every command it runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, VENV_BIN, Row, alternate, lab, median

HERE = ROOT / "bench" / "idempotent"
BENCH = "2. Idempotent re-run"
PACKAGES = 5
FORKS = 25
# Both sides: what ansible's ssh connection uses by default, with a ControlPersist long enough to
# outlive the other side's run in between.
SSH_ARGS = "-C -o ControlMaster=auto -o ControlPersist=900s"


class PlaybookFailed(RuntimeError):
    pass


def run_playbook(playbook: Path, inventory: Path, extra_vars: dict, workdir: Path, side: str,
                 forks: int = FORKS, timeout: int = 1800) -> tuple[float, dict]:
    """Run ``ansible-playbook`` (the repository's ansible.cfg, JSON callback) and return (wall
    seconds, the callback's JSON). ``side`` names the ssh ControlPath directory, one per side.
    Fails when a host failed or was unreachable."""
    vars_file = workdir / f"vars-{side}.json"
    vars_file.write_text(json.dumps(extra_vars))
    control = workdir / f"cp-{side}"
    control.mkdir(exist_ok=True)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_FORKS=str(forks), ANSIBLE_SSH_ARGS=SSH_ARGS, ANSIBLE_SSH_CONTROL_PATH_DIR=str(control),
               ANSIBLE_ROLES_PATH=str(HERE / "roles"), ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"))
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), "-e", f"@{vars_file}"]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    try:
        data = json.loads(done.stdout[done.stdout.index("{"):])
    except ValueError:
        raise PlaybookFailed(f"{playbook.name}: no JSON (rc {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    bad = {h: s for h, s in data["stats"].items() if s.get("failures") or s.get("unreachable")}
    if bad or done.returncode != 0:
        raise PlaybookFailed(f"{playbook.name} (rc {done.returncode}) failed on {sorted(bad)}: "
                             f"{first_failure(data)}\n{done.stderr[-2000:]}")
    return seconds, data


def first_failure(data: dict) -> str:
    for play in data["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("failed") or result.get("unreachable"):
                    return f"{host} / {task['task']['name']}: {json.dumps(result)[:1500]}"
    return "?"


def changed_hosts(data: dict) -> int:
    return sum(1 for s in data["stats"].values() if s.get("changed"))


def remote_commands(bench_lab, hosts) -> dict[str, list[str]]:
    return {h.name: bench_lab.commands(h) for h in hosts}


def run(runs: int, quick: bool) -> list[Row]:
    from tests.lab import HOST_INSTALLERS

    hosts = 5 if quick else 50
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="depot-bench-idem-") as tmp, lab(hosts) as bench_lab:
        workdir = Path(tmp)
        up = time.perf_counter() - began

        def packages(side: str) -> dict:
            return {"bench_packages": [
                {"name": f"bench-pkg{i}", "installer": f"{HOST_INSTALLERS}/ok",
                 "marker": f"/opt/depot-bench-idem/{side}/pkg{i}"} for i in range(1, PACKAGES + 1)]}

        sides = {"depot": (HERE / "depot.yml", packages("depot")), "stock": (HERE / "stock.yml", packages("stock"))}

        def play(side: str) -> tuple[float, dict]:
            book, extra = sides[side]
            return run_playbook(book, bench_lab.inventory, extra, workdir, side)

        # Install once (not timed): every host changes; then one untimed re-run each (warm
        # ControlPersist masters of that side) that must change nothing.
        installs = {}
        for side in sides:
            seconds, data = play(side)
            installs[side] = seconds
            if changed_hosts(data) != hosts:
                raise RuntimeError(f"{side}: the install changed {changed_hosts(data)} of {hosts} hosts")
            for h in bench_lab.hosts:
                for pkg in sides[side][1]["bench_packages"]:
                    if not bench_lab.host_path(h, pkg["marker"]).exists():
                        raise RuntimeError(f"{side}: {pkg['marker']} missing on {h.name} after the install")
            play(side)

        counts: dict[str, list[float]] = {"depot": [], "stock": []}
        spread: dict[str, set[int]] = {"depot": set(), "stock": set()}
        samples_cmd: dict[str, list[str]] = {}

        def rerun(side: str) -> float:
            for h in bench_lab.hosts:
                bench_lab.reset_commands(h)
            seconds, data = play(side)
            if changed_hosts(data):
                raise RuntimeError(f"{side}: the re-run changed {changed_hosts(data)} hosts")
            per_host = remote_commands(bench_lab, bench_lab.hosts)
            numbers = [len(c) for c in per_host.values()]
            spread[side].update(numbers)
            counts[side].append(sum(numbers) / (hosts * PACKAGES))
            samples_cmd[side] = per_host[bench_lab.hosts[0].name]
            return seconds

        ours, theirs = alternate(runs, lambda: rerun("depot"), lambda: rerun("stock"))
        total = time.perf_counter() - began

    depot_cmds, stock_cmds = median(counts["depot"]), median(counts["stock"])
    exact_one = spread["depot"] == {PACKAGES}
    kinds = {side: sorted({c.split()[0] + (" …" if " " in c else "") for c in cmds}) for side, cmds in samples_cmd.items()}
    ratio = median(ours) / median(theirs)
    return [
        Row(BENCH, f"wall time, {PACKAGES} packages installed, {hosts} hosts, forks {FORKS}", median(ours), "s",
            "stock-module role (stat/command/reboot)", median(theirs), "≤ 0.5×", ratio <= 0.5, ours, theirs,
            note=(f"ansible-playbook wall time of a re-run that changes nothing; warm ssh ControlPersist on both "
                  f"sides; untimed install: Depot {installs['depot']:.1f} s, stock {installs['stock']:.1f} s; "
                  f"lab up {up:.0f} s, whole benchmark {total:.0f} s; shared 2-core machine, noisy")),
        Row(BENCH, f"remote commands per package per host, re-run ({hosts} hosts)", depot_cmds, "",
            "stock-module role (stat/command/reboot)", stock_cmds, "= 1 (Depot)", exact_one,
            counts["depot"], counts["stock"],
            note=(f"from each host's sshd command log; commands per host seen: Depot {sorted(spread['depot'])}, "
                  f"stock {sorted(spread['stock'])} (for {PACKAGES} packages); commands on h1: Depot {kinds['depot']}, "
                  f"stock {kinds['stock']}")),
    ]
