"""Client commands of `depot`: talk to a controller's API (DEPOT_URL, default
http://127.0.0.1:8080, with the API token DEPOT_TOKEN) to create and start deployments and follow
them live."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import httpx
import shtab
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

API = "/api/v1"
DEFAULT_URL = "http://127.0.0.1:8080"
STATUS_STYLE = {
    "ready": "dim", "active": "bold cyan", "success": "green", "success_reboot_pending": "yellow",
    "failed": "bold red", "unreachable": "magenta", "inconclusive": "yellow", "deferred": "blue",
    "cancelled": "dim", "unknown": "bold red",
}
FINAL_STATES = ("completed", "archived")


class ApiError(RuntimeError):
    pass


class Client:
    def __init__(self, url: str, timeout: float = 30.0):
        token = os.environ.get("DEPOT_TOKEN")
        self.http = httpx.Client(base_url=url.rstrip("/") + API, timeout=timeout,
                                 headers={"Authorization": f"Bearer {token}"} if token else {})

    def request(self, method: str, path: str, **kw):
        response = self.http.request(method, path, **kw)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text
            raise ApiError(f"{method} {API}{path}: {response.status_code} {json.dumps(detail) if not isinstance(detail, str) else detail}")
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def all(self, path: str, **params) -> list[dict]:
        items, page = [], 1
        while True:
            data = self.request("GET", path, params=dict(params, page=page, page_size=500))
            items += data["items"]
            if len(items) >= data["total"] or not data["items"]:
                return items
            page += 1

    def find(self, path: str, **match) -> dict | None:
        for item in self.all(path, **{k: v for k, v in match.items() if k in ("name",)}):
            if all(item.get(k) == v for k, v in match.items()):
                return item
        return None


# -- depot deploy FILE ------------------------------------------------------------------------

def _ensure_target(client: Client, spec: dict) -> int:
    existing = client.find("/targets", name=spec["name"])
    if existing:
        return existing["id"]
    return client.request("POST", "/targets", json=spec)["id"]


def _ensure_package(client: Client, spec: dict, base: Path) -> int:
    spec = dict(spec)
    content = spec.pop("file", None)
    existing = client.find("/packages", name=spec["name"], version=spec["version"], platform=spec["platform"])
    package = existing or client.request("POST", "/packages", json=spec)
    if content and not package.get("content_sha256"):
        path = (base / content).resolve()
        with path.open("rb") as f:
            package = client.request("POST", f"/packages/{package['id']}/content", files={"file": (path.name, f)})
    return package["id"]


def create_from_file(client: Client, path: Path) -> dict:
    """Targets and packages of the file are created (or reused by name); then the deployment."""
    spec = yaml.safe_load(os.path.expandvars(path.read_text()))  # ${VAR}s of the caller's environment
    base = path.parent
    targets = {t["name"]: _ensure_target(client, t) for t in spec.get("targets", [])}
    packages = {p["name"]: _ensure_package(client, p, base) for p in spec.get("packages", [])}
    steps = []
    for step in spec["steps"]:
        step = dict(step)
        if "package" in step:
            step["package_id"] = packages[step.pop("package")]
        if "targets" in step:
            step["target_ids"] = [targets[name] for name in step.pop("targets")]
        steps.append(step)
    body = {k: v for k, v in spec.items() if k not in ("targets", "packages", "steps")}
    return client.request("POST", "/deployments", json=dict(body, steps=steps))


def _deploy(args: argparse.Namespace) -> int:
    client = Client(args.url)
    deployment = create_from_file(client, Path(args.file))
    print(f"deployment {deployment['id']} created: {deployment['name']}", file=sys.stderr)
    if args.no_start:
        return _emit(args, deployment)
    deployment = client.request("POST", f"/deployments/{deployment['id']}/ready")
    if deployment["schedule"]:   # the scheduler starts it
        print(f"deployment {deployment['id']} is ready; its schedule starts it at "
              f"{deployment['schedule']['next_run_at']} (UTC)", file=sys.stderr)
        return _emit(args, deployment)
    client.request("POST", f"/deployments/{deployment['id']}/start")
    if args.no_wait:
        return _emit(args, client.request("GET", f"/deployments/{deployment['id']}"))
    return _follow(client, deployment["id"], args)


# -- depot status ID --------------------------------------------------------------------------

def snapshot(client: Client, deployment_id: int) -> tuple[dict, list[dict]]:
    deployment = client.request("GET", f"/deployments/{deployment_id}")
    rows = client.all(f"/deployments/{deployment_id}/report")
    return deployment, rows


def render(deployment: dict, rows: list[dict]) -> Table:
    steps = sorted({(r["position"], r["step_name"]) for r in rows})
    title = f"deployment {deployment['id']} {deployment['name']!r}: {deployment['state']}"
    if deployment.get("outcome"):
        title += f" ({deployment['outcome']})"
    table = Table(title=title, title_justify="left")
    table.add_column("host")
    for position, name in steps:
        table.add_column(f"{position}. {name}")
    by_host: dict[str, dict[int, dict]] = {}
    for r in rows:
        by_host.setdefault(r["host"], {})[r["position"]] = r
    for host in sorted(by_host):
        cells = []
        for position, _ in steps:
            r = by_host[host].get(position)
            if r is None:
                cells.append("")
                continue
            text = r["status"]
            if r.get("rc") is not None:
                text += f" rc {r['rc']}"
            if r.get("queued_behind"):
                text += f" (behind {r['queued_behind']})"
            cells.append(f"[{STATUS_STYLE.get(r['status'], '')}]{text}[/]")
        table.add_row(host, *cells)
    return table


def _follow(client: Client, deployment_id: int, args: argparse.Namespace) -> int:
    console = Console(stderr=args.json)
    deadline = time.monotonic() + args.timeout if args.timeout else None
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while True:
            deployment, rows = snapshot(client, deployment_id)
            live.update(render(deployment, rows), refresh=True)
            if deployment["state"] in FINAL_STATES or not args.watch:
                break
            if deadline and time.monotonic() > deadline:
                console.print(f"[red]still {deployment['state']} after {args.timeout}s[/]")
                break
            time.sleep(args.interval)
    if args.json:   # the last snapshot, also when giving up waiting
        print(json.dumps(dict(deployment=deployment, hosts=rows), indent=2))
    if deployment["state"] not in FINAL_STATES and args.watch:
        return 2   # --timeout ran out
    if deployment["state"] in FINAL_STATES:
        return 0 if deployment.get("outcome") == "success" else 1
    return 0


def _status(args: argparse.Namespace) -> int:
    return _follow(Client(args.url), args.deployment, args)


def _emit(args: argparse.Namespace, data: dict) -> int:
    print(json.dumps(data, indent=2) if args.json else f"deployment {data['id']}: {data['state']}")
    return 0


# -- depot ready|start|pause|resume|cancel|archive ID --------------------------------------------

ACTIONS = {
    "ready": "draft → ready (checks it can run)",
    "start": "ready → active",
    "pause": "active → paused: no host starts a step until resumed",
    "resume": "paused → active (acknowledges the failures so far)",
    "cancel": "cancel waiting hosts; running ones finish their step",
    "archive": "completed → archived",
}


def _action(args: argparse.Namespace) -> int:
    result = Client(args.url).request("POST", f"/deployments/{args.deployment}/{args.action}")
    deployment = result.get("deployment", result)   # start answers {deployment, host_results}
    if not args.json and deployment.get("pause_reason"):
        print(deployment["pause_reason"], file=sys.stderr)
    return _emit(args, deployment)


# -- depot schedule ---------------------------------------------------------------------------

def _schedule(args: argparse.Namespace) -> int:
    client = Client(args.url)
    if args.deployment is not None:
        preview = client.request("GET", f"/deployments/{args.deployment}/schedule/preview",
                                 params={"count": args.count})
    else:
        if not (args.rrule and args.timezone and args.start):
            raise ApiError("give a deployment id, or --rrule, --timezone and --start")
        preview = client.request("POST", "/schedules/preview", json={
            "schedule": {"rrule": args.rrule, "timezone": args.timezone, "start": args.start}, "count": args.count})
    if args.json:
        print(json.dumps(preview, indent=2))
        return 0
    table = Table(title=f"{preview['rrule']} in {preview['timezone']}")
    for column in ("local time", "UTC", "DST", "window open"):
        table.add_column(column)
    for o in preview["occurrences"]:
        table.add_row(o["local"], o["at"], o["adjustment"] or "", "yes" if o["in_window"] else "no")
    Console().print(table)
    return 0


# -- depot subscribe / subscriptions ----------------------------------------------------------

def _subscribe(args: argparse.Namespace) -> int:
    body = {"name": args.name, "channel": args.channel, "address": args.address, "events": args.events,
            "deployment_id": args.deployment, "policy_id": args.policy, "threshold_percent": args.threshold,
            "min_sample": args.min_sample}
    if args.secret_env:   # never on the command line, where ps and shell history would show it
        secret = os.environ.get(args.secret_env)
        if not secret:
            raise ApiError(f"the environment variable {args.secret_env} (--secret-env) is not set")
        body["secret"] = secret
    result = Client(args.url).request("POST", "/notifications/subscriptions", json=body)
    print(json.dumps(result, indent=2) if args.json else f"subscription {result['id']} created: {result['name']}")
    return 0


def _subscriptions(args: argparse.Namespace) -> int:
    items = Client(args.url).all("/notifications/subscriptions")
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    table = Table(title="notification subscriptions")
    for column in ("id", "name", "channel", "address", "events", "scope"):
        table.add_column(column)
    for i in items:
        scope = (f"deployment {i['deployment_id']}" if i["deployment_id"] else
                 f"policy {i['policy_id']}" if i["policy_id"] else "all")
        table.add_row(str(i["id"]), i["name"], i["channel"], i["address"], ", ".join(i["events"]), scope)
    Console().print(table)
    return 0


# -- depot host NAME / checkin ----------------------------------------------------------------

def _host(args: argparse.Namespace) -> int:
    host = Client(args.url).request("GET", f"/hosts/{args.name}")
    if args.json:
        print(json.dumps(host, indent=2))
        return 0
    print(f"{host['name']}: {host['checkins']} check-in(s), last {host['last_checkin_at'] or 'never'}"
          f"{' from ' + host['last_address'] if host['last_address'] else ''}")
    table = Table(title="pending steps")
    for column in ("deployment", "step", "status", "next window", "reason"):
        table.add_column(column)
    for p in host["pending"]:
        window = "open now" if p["window_open_now"] else (p["next_window_at"] or "none within a year")
        table.add_row(str(p["deployment_id"]), str(p["position"]), p["status"], window, p["reason"] or "")
    Console().print(table)
    return 0


def _checkin_token(args: argparse.Namespace) -> int:
    token = Client(args.url).request("GET", f"/hosts/{args.name}/checkin-token")
    print(json.dumps(token, indent=2) if args.json else token["token"])
    return 0


def _checkin(args: argparse.Namespace) -> int:
    if not args.token:
        raise ApiError("no check-in token: give --token or set DEPOT_CHECKIN_TOKEN")
    result = Client(args.url).request("POST", f"/hosts/{args.name}/checkin",
                                      headers={"Authorization": f"Bearer {args.token}"})
    print(json.dumps(result, indent=2) if args.json else
          f"{result['host']}: {result['pending']} pending step(s), {result['started_now']} made due now")
    return 0


def add_commands(sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("DEPOT_URL", DEFAULT_URL), help="controller URL (DEPOT_URL)")
    common.add_argument("--json", action="store_true", help="print the result as JSON")

    deploy = sub.add_parser("deploy", parents=[common], help="create a deployment from a YAML file, start it, follow it")
    deploy.add_argument("file").complete = shtab.FILE   # `depot completion`: complete file names
    deploy.add_argument("--no-start", action="store_true", help="only create it (Draft)")
    deploy.add_argument("--no-wait", action="store_true", help="start it and return")
    deploy.add_argument("--interval", type=float, default=1.0)
    deploy.add_argument("--timeout", type=float, default=0, help="give up waiting after this many seconds (0: never)")
    deploy.set_defaults(func=_deploy, watch=True)

    status = sub.add_parser("status", parents=[common], help="a deployment's per-host status, live with --watch")
    status.add_argument("deployment", type=int)
    status.add_argument("--watch", action="store_true", help="refresh until the deployment completes")
    status.add_argument("--interval", type=float, default=1.0)
    status.add_argument("--timeout", type=float, default=0)
    status.set_defaults(func=_status)

    for action, summary in ACTIONS.items():
        parser = sub.add_parser(action, parents=[common], help=f"deployment: {summary}")
        parser.add_argument("deployment", type=int)
        parser.set_defaults(func=_action, action=action)

    schedule = sub.add_parser("schedule", parents=[common], help=(
        "next occurrences of a deployment's schedule, or of an unsaved one (--rrule --timezone --start)"))
    schedule.add_argument("deployment", type=int, nargs="?")
    schedule.add_argument("--rrule", help="e.g. FREQ=WEEKLY;BYDAY=SA;BYHOUR=2")
    schedule.add_argument("--timezone", help="IANA zone, e.g. Europe/Berlin")
    schedule.add_argument("--start", help="first local wall time, e.g. 2026-12-01T00:00:00")
    schedule.add_argument("--count", type=int, default=10)
    schedule.set_defaults(func=_schedule)

    subscribe = sub.add_parser("subscribe", parents=[common], help="notify by email or webhook on deployment events")
    subscribe.add_argument("name")
    subscribe.add_argument("--channel", choices=["email", "webhook"], required=True)
    subscribe.add_argument("--address", required=True, help="email address(es), comma-separated, or the webhook URL")
    subscribe.add_argument("--events", nargs="+", required=True, metavar="EVENT", help=(
        "deployment.completed|succeeded|failed|cancelled|paused|threshold"))
    scope = subscribe.add_mutually_exclusive_group()
    scope.add_argument("--deployment", type=int, help="only this deployment")
    scope.add_argument("--policy", type=int, help="only deployments of this policy")
    subscribe.add_argument("--threshold", type=int, help="deployment.threshold: failure rate in percent")
    subscribe.add_argument("--min-sample", type=int, default=5)
    subscribe.add_argument("--secret-env", metavar="VAR", help="webhook: the environment variable holding its secret")
    subscribe.set_defaults(func=_subscribe)

    subscriptions = sub.add_parser("subscriptions", parents=[common], help="list notification subscriptions")
    subscriptions.set_defaults(func=_subscriptions)

    host = sub.add_parser("host", parents=[common], help="a host's check-ins and pending steps, with its next window")
    host.add_argument("name")
    host.set_defaults(func=_host)

    token = sub.add_parser("checkin-token", parents=[common], help="the token a host checks in with")
    token.add_argument("name")
    token.set_defaults(func=_checkin_token)

    checkin = sub.add_parser("checkin", parents=[common], help="check a host in: its pending work starts at once")
    checkin.add_argument("name")
    checkin.add_argument("--token", default=os.environ.get("DEPOT_CHECKIN_TOKEN"), help="(DEPOT_CHECKIN_TOKEN)")
    checkin.set_defaults(func=_checkin)
