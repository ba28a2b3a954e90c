"""What every benchmark shares: the lab it runs on, repeated timings reported as medians, and a
row of the results table (a figure, the peer it is compared with in the same run, the ratio and
the target).

These machines are shared and noisy: a figure is the median of ``runs`` repetitions, and the
ratio compares Depot with its peer measured in the same run, alternating between them so that a
slow minute hurts both. Nothing here asserts a time; the table says which targets were met.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VENV_BIN = ROOT / ".venv" / "bin"


@dataclasses.dataclass
class Row:
    benchmark: str            # "1. Controller overhead"
    figure: str               # what is measured, e.g. "wall time, 50 hosts"
    depot: float              # Depot's median
    unit: str                 # "s", "events/s", "ms", "MB"
    peer: str = ""            # what it is compared with ("raw ansible-playbook"), empty for none
    peer_value: float | None = None
    target: str = ""          # the target, e.g. "≤ 1.05×"
    met: bool | None = None   # whether the target was met (None: no target for this row)
    samples: list[float] = dataclasses.field(default_factory=list)
    peer_samples: list[float] = dataclasses.field(default_factory=list)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.peer_value in (None, 0):
            return None
        return self.depot / self.peer_value


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def alternate(runs: int, depot: Callable[[], float], peer: Callable[[], float]) -> tuple[list[float], list[float]]:
    """Run ``depot`` and ``peer`` ``runs`` times each, alternating (peer first on odd rounds), and
    return both lists of what they return (usually seconds)."""
    ours, theirs = [], []
    for i in range(runs):
        order = ((peer, theirs), (depot, ours)) if i % 2 else ((depot, ours), (peer, theirs))
        for fn, into in order:
            into.append(fn())
    return ours, theirs


@contextmanager
def lab(hosts: int):
    """A lab of ``hosts`` hosts of its own (prefix dbench, subnet 10.213.60.0/24 unless
    DEPOT_BENCH_LAB_PREFIX / _WORKDIR / _SUBNET say otherwise), removed afterwards."""
    from tests.lab import Lab

    bench_lab = Lab(os.environ.get("DEPOT_BENCH_LAB_PREFIX", "dbench"), hosts,
                    os.environ.get("DEPOT_BENCH_LAB_WORKDIR", "/var/tmp/depot-bench"),
                    os.environ.get("DEPOT_BENCH_LAB_SUBNET", "10.213.60.0/24"))
    bench_lab.up()
    try:
        bench_lab.wait_ssh(timeout=120)
        yield bench_lab
    finally:
        bench_lab.down()


def save(name: str, rows: list[Row]) -> Path:
    """Write one benchmark's rows to bench/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps([dataclasses.asdict(r) | {"ratio": r.ratio} for r in rows], indent=1))
    return path


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return f"{text} {unit}".strip()


def table(rows: list[dict]) -> str:
    """The results as a markdown table."""
    lines = ["| Benchmark | Figure | Depot | Peer (same run) | Peer | Ratio | Target | Met |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}×"
        lines.append(f"| {r['benchmark']} | {r['figure']} | {_fmt(r['depot'], r['unit'])} | {r['peer']} | "
                     f"{_fmt(r['peer_value'], r['unit']) if r['peer'] else ''} | {ratio} | {r['target']} | {met} |")
    notes = [f"- {r['benchmark']}, {r['figure']}: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def wait_healthy(api, process, log_path: Path, timeout: float = 60) -> None:
    """Wait until the API answers /health; raise with the end of its log if the process ends first
    or ``timeout`` passes."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if api.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"depot serve did not come up:\n{Path(log_path).read_text()[-3000:]}")
        time.sleep(0.2)
