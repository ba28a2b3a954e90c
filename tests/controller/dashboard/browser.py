"""Helpers of the browser tests: `depot serve` for a test, signing in, where screenshots go."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO / "tests" / "artifacts" / "screenshots"
DOCS_SCREENSHOT = REPO / "docs" / "dashboard.png"
DEPOT = str(Path(sys.executable).with_name("depot"))
TIMEOUT_MS = 60_000        # Playwright's auto-waiting: generous, never a timing assertion


def unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium; scripts/setup.sh does)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is missing (pip install -r requirements.txt)"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Served:
    url: str           # http://host:port (the dashboard is url + "/ui/")
    token: str         # the first admin's, as `depot admin create` printed it
    api: httpx.Client  # the API as that admin
    data_dir: Path
    log: Path

    def ok(self, response: httpx.Response):
        assert response.status_code < 300, (response.request.method, response.request.url, response.status_code,
                                            response.text)
        return response.json() if response.content else None

    def token_for(self, name: str, role: str) -> str:
        """A new user with ``role`` and a token of theirs."""
        user = self.ok(self.api.post("/users", json={"name": name, "role": role}))
        return self.ok(self.api.post(f"/users/{user['id']}/tokens", json={"name": "browser"}))["token"]


def serve(tmp_path: Path, host: str, port: int, *, no_worker: bool, env: dict | None = None):
    """`depot serve` on host:port with its own data directory (SQLite); a generator: yields Served,
    stops the server after."""
    data = tmp_path / "data"
    environment = dict(os.environ, DEPOT_DATA_DIR=str(data), DEPOT_PUBLIC_URL=f"http://{host}:{port}",
                       **(env or {}))
    environment.pop("DEPOT_DATABASE_URL", None)
    token = subprocess.run([DEPOT, "admin", "create", "e2e"], env=environment, capture_output=True, text=True,
                           check=True).stdout.strip()
    log = tmp_path / "serve.log"
    argv = [DEPOT, "serve", "--host", host, "--port", str(port)] + (["--no-worker"] if no_worker else [])
    with log.open("w") as out:
        server = subprocess.Popen(argv, env=environment, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://{host}:{port}"
    client = httpx.Client(base_url=url + "/api/v1", timeout=60, headers={"Authorization": f"Bearer {token}"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"depot serve did not answer: {log.read_text()}"
            time.sleep(0.2)
        yield Served(url=url, token=token, api=client, data_dir=data, log=log)
    finally:
        client.close()
        server.terminate()
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def sign_in(page, served: Served, token: str | None = None) -> None:
    """Open the dashboard and sign in with ``token`` (default: the admin's)."""
    from playwright.sync_api import expect

    page.goto(served.url + "/")
    page.get_by_label("API token").fill(token or served.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
