"""Benchmark 7, content: one large package (100 MB of random bytes; --quick: 10 MB) to 20 lab hosts
(--quick: 4).

Depot: the content is uploaded to a running `depot serve` (its own data directory, bound to the
lab bridge), and ``depot.software.package`` gets the controller's short-lived signed content URL
(GET /packages/{id}/content-source) with the sha256: every host pulls it over HTTP into its
hash-addressed cache (/var/cache/depot/sha256/...), all hosts at once (forks = hosts).
Peer: ``ansible.builtin.copy`` pushes the same file to the same hosts (forks = hosts), then the same
install command runs (``command`` with ``creates``).

The "installer" is the same on both sides: it checks the file is there and writes a marker, which
is also Depot's detection rule. Figures:
- first transfer: nothing on the hosts (cache, pushed copy and markers removed, untimed);
- re-run, installed: both change nothing (Depot: detection satisfied, content not looked at;
  copy: remote checksum, no transfer, command skipped by ``creates``);
- re-run, cached: the marker removed, content still on the hosts (Depot: the hash cache is
  verified and reused; copy: remote checksum, no transfer, the command runs again).
Bytes: every byte the machine sent to each host (the host-side veth's tx_bytes, ssh and HTTP
alike), and what the module itself reports (content.bytes_downloaded, content.cached).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from bench.common import VENV_BIN, Row, alternate, lab, median, wait_healthy
from bench.idempotent import run_playbook

BENCH = "7. Content"
CACHE = "/var/cache/depot"
DEPOT_MARKER = "/opt/depot-bench-content/depot.installed"
PEER_MARKER = "/opt/depot-bench-content/peer.installed"
PEER_DEST = "/var/tmp/depot-bench-payload.bin"   # an existing directory: no extra task for the peer
FILENAME = "payload.bin"


def install_argv(installer: str, marker: str) -> list[str]:
    """The install command, the same on both sides: the content must be there, then the marker."""
    return ["/bin/sh", "-c", 'test -s "$1" && mkdir -p "$(dirname "$2")" && echo "$1" >"$2"', "install",
            installer, marker]


def write_payload(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 1024 * 1024))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return digest.hexdigest()


def sent_to_hosts(bench_lab) -> dict[str, int]:
    """Bytes the machine has sent to each host (its bridge port's veth, host side)."""
    return {h.name: int(Path(f"/sys/class/net/{h.netns}/statistics/tx_bytes").read_text()) for h in bench_lab.hosts}


class Controller:
    """`depot serve` on the lab bridge with a data directory of its own."""

    def __init__(self, bench_lab, workdir: Path):
        import httpx

        self.port = 14000 + os.getpid() % 1000
        self.url = f"http://{bench_lab.bridge_address}:{self.port}"
        depot = str(VENV_BIN / "depot")
        env = dict(os.environ, DEPOT_DATA_DIR=str(workdir / "data"), DEPOT_PUBLIC_URL=self.url)
        env.pop("DEPOT_DATABASE_URL", None)
        token = subprocess.run([depot, "admin", "create", "bench"], env=env, capture_output=True, text=True,
                               check=True).stdout.strip()
        self.log_path = workdir / "serve.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen([depot, "serve", "--host", bench_lab.bridge_address, "--port", str(self.port)],
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.api = httpx.Client(base_url=self.url + "/api/v1", timeout=600,
                                headers={"Authorization": f"Bearer {token}"})
        try:
            wait_healthy(self.api, self.process, self.log_path)
        except RuntimeError:
            self.close()
            raise

    def package(self, payload: Path) -> dict:
        """Create the package, upload its content, return {src, checksum} (the signed URL)."""
        created = self._ok(self.api.post("/packages", json=dict(
            name="bench-payload", version="1.0", platform="linux", installer_type="script")))
        with payload.open("rb") as f:
            self._ok(self.api.post(f"/packages/{created['id']}/content", files={"file": (FILENAME, f)}))
        return self._ok(self.api.get(f"/packages/{created['id']}/content-source"))

    @staticmethod
    def _ok(response):
        if response.status_code >= 300:
            raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")
        return response.json()

    def close(self) -> None:
        self.api.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def run(runs: int, quick: bool) -> list[Row]:
    hosts, size = (4, 10 * 1024 ** 2) if quick else (20, 100 * 1024 ** 2)
    mb = size // 1024 ** 2
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="depot-bench-content-") as tmp, lab(hosts) as bench_lab:
        workdir = Path(tmp)
        payload = workdir / FILENAME
        sha256 = write_payload(payload, size)
        controller = Controller(bench_lab, workdir)
        try:
            source = controller.package(payload)
            if source["checksum"] != sha256:
                raise RuntimeError(f"the controller stored {source['checksum']}, the file is {sha256}")
            url = source["src"]
            depot_book = workdir / "depot.yml"
            depot_book.write_text(yaml.safe_dump([dict(
                name="Install the package pulled from the controller", hosts="lab", gather_facts=False, tasks=[dict(
                    name="Install bench-payload", **{"depot.software.package": dict(
                        name="bench-payload", installer_type="script", src=url, checksum=sha256,
                        install_command=install_argv("{installer}", DEPOT_MARKER),
                        detection=dict(rules=[dict(type="file", path=DEPOT_MARKER)]))})])], sort_keys=False))
            peer_book = workdir / "peer.yml"
            peer_book.write_text(yaml.safe_dump([dict(
                name="Push the package with copy, then install it", hosts="lab", gather_facts=False, tasks=[
                    dict(name="Push bench-payload", **{"ansible.builtin.copy": dict(
                        src=str(payload), dest=PEER_DEST, mode="0755")}),
                    dict(name="Install bench-payload", **{"ansible.builtin.command": dict(
                        argv=install_argv(PEER_DEST, PEER_MARKER), creates=PEER_MARKER)}),
                ])], sort_keys=False))
            books = {"depot": depot_book, "peer": peer_book}
            sent: dict[str, dict[str, list[int]]] = {}
            downloads: dict[str, list[int]] = {}   # what the Depot module reports, summed over the hosts

            def remove(side: str, *paths: str) -> None:
                for h in bench_lab.hosts:
                    for path in paths:
                        target = bench_lab.host_path(h, path)
                        if target.is_dir():
                            shutil.rmtree(target)
                        elif target.exists():
                            target.unlink()

            def play(phase: str, side: str, want_changed: bool) -> float:
                before = sent_to_hosts(bench_lab)
                seconds, data = run_playbook(books[side], bench_lab.inventory, {}, workdir, side, forks=hosts)
                after = sent_to_hosts(bench_lab)
                sent.setdefault(phase, {}).setdefault(side, []).append(sum(after[h] - before[h] for h in after))
                changed = sum(1 for s in data["stats"].values() if s.get("changed"))
                if changed != (hosts if want_changed else 0):
                    raise RuntimeError(f"{phase} {side}: {changed} of {hosts} hosts changed")
                if side == "depot":
                    results = [r for task in data["plays"][0]["tasks"] for r in task["hosts"].values()]
                    downloads.setdefault(phase, []).append(
                        sum((r.get("content") or {}).get("bytes_downloaded", 0) for r in results))
                    if phase == "cached" and not all((r.get("content") or {}).get("cached") for r in results):
                        raise RuntimeError("cached re-run: the module did not take the content from its cache")
                for h in bench_lab.hosts:
                    if not bench_lab.host_path(h, DEPOT_MARKER if side == "depot" else PEER_MARKER).exists():
                        raise RuntimeError(f"{phase} {side}: not installed on {h.name}")
                return seconds

            def first(side: str) -> float:
                if side == "depot":
                    remove(side, CACHE, DEPOT_MARKER)
                else:
                    remove(side, PEER_DEST, PEER_MARKER)
                return play("first", side, True)

            def cached(side: str) -> float:
                remove(side, DEPOT_MARKER if side == "depot" else PEER_MARKER)
                return play("cached", side, True)

            # One untimed round first: ssh ControlPersist masters of each side, the page cache.
            first("depot"), first("peer")
            first_depot, first_peer = alternate(runs, lambda: first("depot"), lambda: first("peer"))
            rerun_depot, rerun_peer = alternate(runs, lambda: play("rerun", "depot", False),
                                                lambda: play("rerun", "peer", False))
            cached_depot, cached_peer = alternate(runs, lambda: cached("depot"), lambda: cached("peer"))
        finally:
            controller.close()
    total = time.perf_counter() - began

    def per_host_mb(phase: str, side: str) -> float:
        return median(sent[phase][side][-runs:]) / hosts / 1024 ** 2

    ratio = median(first_depot) / median(first_peer)
    peer = "ansible.builtin.copy push + command"
    where = f"{mb} MB, {hosts} hosts, forks {hosts}"
    return [
        Row(BENCH, f"first transfer wall time, {where}", median(first_depot), "s", peer, median(first_peer),
            "≤ 0.2× (≥ 5× faster)", ratio <= 0.2, first_depot, first_peer,
            note=(f"Depot: signed URL of `depot serve` on the lab bridge, hosts pull in parallel into the hash cache; "
                  f"copy over ssh (ansible's default ssh_args, -C included), pipelining on; whole benchmark "
                  f"{total:.0f} s; shared 2-core machine, noisy")),
        Row(BENCH, f"re-run wall time, installed, {where}", median(rerun_depot), "s", peer, median(rerun_peer),
            samples=rerun_depot, peer_samples=rerun_peer,
            note="Depot: detection satisfied, content not touched; copy: remote checksum, no transfer, command skipped"),
        Row(BENCH, f"re-run wall time, marker removed, content kept, {where}", median(cached_depot), "s", peer,
            median(cached_peer), samples=cached_depot, peer_samples=cached_peer,
            note="Depot: cache hit (sha256 re-verified on the host), installer runs; copy: remote checksum, no "
                 "transfer, command runs"),
        Row(BENCH, "content bytes downloaded on re-runs (module's content.bytes_downloaded, all hosts)",
            float(max(downloads.get("rerun", [0]) + downloads["cached"])), "B", target="0",
            met=max(downloads.get("rerun", [0]) + downloads["cached"]) == 0,
            note=f"first transfer: {median(downloads['first']) / hosts / 1024 ** 2:.1f} MB per host"),
        Row(BENCH, "MB sent to each host, first transfer (veth tx bytes)", per_host_mb("first", "depot"), "MB", peer,
            per_host_mb("first", "peer"), note="everything the machine sent the host: HTTP or ssh, module payloads"),
        Row(BENCH, "MB sent to each host, re-run installed (veth tx bytes)", per_host_mb("rerun", "depot"), "MB", peer,
            per_host_mb("rerun", "peer"), target=f"≪ {mb} MB (no content)",
            met=per_host_mb("rerun", "depot") < mb / 10),
        Row(BENCH, "MB sent to each host, re-run from cache (veth tx bytes)", per_host_mb("cached", "depot"), "MB",
            peer, per_host_mb("cached", "peer"), target=f"≪ {mb} MB (no content)",
            met=per_host_mb("cached", "depot") < mb / 10),
    ]
