"""3. Latency-bound rollout: installers that take 3 s, 50 hosts, forks 25; the wall time against
the ideal, ceil(hosts / forks) × install time + connection set-up.

Depot: ``depot serve`` with worker_forks 25 (the default; otherwise default settings), one
package step whose installer is the lab's ``slow MARKER 3`` (file detection of the marker,
removed on every host before every run); wall time from ``POST start`` to the first ``GET`` that
says completed (bench/overhead.py's ``Controller``).

Ideal (the peer): ceil(hosts / forks) × 3 s + the connection set-up measured in the same round:
the wall time of ``ansible-playbook`` of a one-task playbook (``raw: "true"``, no facts) over the
first ``forks`` hosts with ``--forks forks``, the runner's environment and a fresh ssh ControlPath
directory: interpreter start-up, inventory, one ssh connection per host and one round trip.

For reference, a second row compares Depot with a raw ``ansible-playbook`` of the same playbook,
vars (the depot-vars.yml the controller wrote), forks and hosts (no target: what Ansible itself
achieves over the ideal).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

from bench.common import ROOT, Row, alternate, lab, median
from bench.overhead import Controller, check, clear, raw_playbook

FORKS = 25
SECONDS = 3
MARKER = "/opt/depot-bench-latency/agent"
NOOP = """- name: Connection set-up
  hosts: all
  gather_facts: false
  tasks:
    - name: One round trip
      ansible.builtin.raw: "true"
      changed_when: false
"""


def run(runs: int, quick: bool) -> list[Row]:
    from tests.lab import INSTALLERS

    size, forks = (8, 4) if quick else (50, FORKS)
    batches = math.ceil(size / forks)
    work = Path(tempfile.mkdtemp(prefix="depot-bench-latency-"))
    content = (INSTALLERS / "slow").read_bytes()
    noop = work / "noop.yml"
    noop.write_text(NOOP)
    vars_file = work / "depot-vars.yml"
    playbook = ROOT / "playbooks" / "deploy.yml"
    setups: list[float] = []
    raws: list[float] = []
    splits: list[dict] = []
    try:
        with lab(size) as bench_lab, Controller(bench_lab, forks, work) as controller:
            names = [h.name for h in bench_lab.hosts]
            url = bench_lab.serve(INSTALLERS) + "/slow"
            # A command-line string: in list form the digits-only argument "3" reaches the action plugin
            # as an integer and is rejected ("install_command must be a non-empty list of strings").
            package = controller.script_package("bench-slow", url, content, f"{{installer}} {MARKER} {SECONDS}", MARKER)
            target = controller.target("all", None)
            count = [0]

            def depot() -> float:
                count[0] += 1
                deployment = controller.ready_deployment(f"latency #{count[0]}", package, target)
                clear(bench_lab, names, MARKER)
                wall, split = controller.run(deployment)
                check(bench_lab, names, MARKER)
                splits.append(split)
                if not vars_file.exists():
                    shutil.copy(controller.vars_file(split["runs"][0]), vars_file)
                return wall

            def setup() -> float:
                return raw_playbook(bench_lab.inventory, noop, None, forks, names[:forks], work / "noop.log")

            def raw() -> float:
                clear(bench_lab, names, MARKER)
                wall = raw_playbook(bench_lab.inventory, playbook, vars_file, forks, names, work / "raw.log")
                check(bench_lab, names, MARKER)
                return wall

            def ideal() -> float:
                setups.append(setup())
                raws.append(raw())
                return batches * SECONDS + setups[-1]

            depot()   # warm-up (and the vars file for the raw run), not counted
            setup()
            raw()
            splits.clear()
            ours, ideals = alternate(runs, depot, ideal)
            print(f"  depot {[round(x, 2) for x in ours]}, ideal {[round(x, 2) for x in ideals]} "
                  f"(set-up {[round(x, 2) for x in setups]}), raw {[round(x, 2) for x in raws]}; "
                  f"depot runs {[s['run_seconds'] for s in splits]}, gaps {[s['gaps'] for s in splits]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    claim = median([s["claim"] for s in splits])
    gaps = [g for s in splits for g in s["gaps"]]
    run_lengths = [x for s in splits for x in s["run_seconds"]]
    row = Row("3. Latency-bound rollout", f"wall time, {size} hosts, forks {forks}, {SECONDS} s installers",
              median(ours), "s", peer="ideal", peer_value=median(ideals), target="≤ 1.15×", samples=ours,
              peer_samples=ideals)
    row.met = row.ratio <= 1.15
    row.note = (f"ideal = ceil({size}/{forks}) × {SECONDS} s + connection set-up = {batches * SECONDS} s + median "
                f"{median(setups):.2f} s, the set-up being the wall time of ansible-playbook running one `raw: true` "
                f"task (no facts) on {forks} hosts with forks {forks}, the runner's env and a fresh ControlPath, "
                f"measured in each round. Depot: `depot serve`, worker_forks {forks}, otherwise defaults "
                f"(worker_hosts_per_fork 4), POST start → GET says completed; it ran "
                f"{median([len(s['runs']) for s in splits]):.0f} ansible-runner run(s) of {forks} forks "
                f"(median run {median(run_lengths):.2f} s; POST start answered in "
                f"{median([s['start_request'] for s in splits]):.2f} s (ansible-inventory of the target); "
                f"start→first claim {claim:.2f} s; "
                f"run end→next run claimed {median(gaps) if gaps else 0:.2f} s). Medians of {len(ours)}; shared "
                f"2-core machine: noisy.")
    reference = Row("3. Latency-bound rollout", f"same, against raw ansible-playbook (reference, {size} hosts)",
                    median(ours), "s", peer="raw ansible-playbook", peer_value=median(raws), samples=ours,
                    peer_samples=raws)
    reference.note = (f"raw ansible-playbook deploy.yml, same vars, forks {forks} (strategy free: a fork takes the "
                      f"next host as soon as one ends): {median(raws):.2f} s = {median(raws) / median(ideals):.2f}× "
                      f"the ideal.")
    return [row, reference]
