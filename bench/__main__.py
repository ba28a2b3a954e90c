"""Run the benchmarks and write bench/results.md: `python -m bench [NAME ...] [--runs N] [--quick]`.

Each benchmark is a module of this package with ``run(runs, quick) -> list[Row]``; its rows go
to bench/results/NAME.json as soon as it ends, and the table is rebuilt from every result file
there, so one benchmark can be run again alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import traceback

from bench.common import RESULTS, ROOT, save, table

ORDER = ["overhead", "idempotent", "latency", "events", "scheduler", "api", "content", "scaleout"]


def machine() -> str:
    with open("/proc/meminfo") as f:
        memory = int(f.readline().split()[1]) / 1024 ** 2
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, "
            f"Python {platform.python_version()}")


def write_table() -> str:
    rows = []
    for name in ORDER:
        path = RESULTS / f"{name}.json"
        if path.exists():
            rows += json.loads(path.read_text())
    text = (f"# Benchmark results\n\n{dt.date.today().isoformat()}, {machine()}. Medians of repeated runs; every "
            "ratio is Depot over its peer measured in the same run (lower is better for times, higher for "
            "rates).\n\n" + table(rows))
    (ROOT / "bench" / "results.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"some of {', '.join(ORDER)} (default: all)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions per figure (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, to try a benchmark out")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in ORDER]
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}: choose from {', '.join(ORDER)}")
    failed = []
    for name in args.names or ORDER:
        print(f"== {name}", flush=True)
        try:
            rows = importlib.import_module(f"bench.{name}").run(args.runs, args.quick)
        except Exception:  # noqa: BLE001 - one broken benchmark must not lose the others' figures
            traceback.print_exc()
            failed.append(name)
            continue
        if not args.quick:
            save(name, rows)
        print(table([dict(r.__dict__, ratio=r.ratio) for r in rows]), flush=True)
    if not args.quick:
        print(write_table())
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
