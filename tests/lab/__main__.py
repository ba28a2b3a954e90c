"""Command line of the lab: ``python -m tests.lab {up,down,status,reboot,offline,online,exec,inventory}``.

Run it from the repository root, as root. See tests/lab/README.md. The defaults of --workdir,
--prefix and --subnet come from DEPOT_LAB_WORKDIR, DEPOT_LAB_PREFIX and DEPOT_LAB_SUBNET if set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from .lab import Lab, LabError

DEFAULT_WORKDIR = Path(os.environ.get("DEPOT_LAB_WORKDIR", "/var/tmp/depot-lab"))
DEFAULT_PREFIX = os.environ.get("DEPOT_LAB_PREFIX", "dlab")
DEFAULT_SUBNET = os.environ.get("DEPOT_LAB_SUBNET", "10.213.47.0/24")


def main(argv: list[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="lab state (default %(default)s)")
    common.add_argument("--prefix", default=DEFAULT_PREFIX, help="names of namespaces and interfaces (default %(default)s)")
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("up", parents=[common], help="(re)create the lab; prints the inventory path")
    up.add_argument("--hosts", type=int, default=8)
    up.add_argument("--subnet", default=DEFAULT_SUBNET)
    sub.add_parser("down", parents=[common], help="remove the lab and any leftovers of a crashed one")
    sub.add_parser("status", parents=[common], help="print the state of every host (JSON)")
    reboot = sub.add_parser("reboot", parents=[common], help="reboot a host; returns when sshd is back")
    reboot.add_argument("host")
    reboot.add_argument("--delay", type=float, default=2.0)
    for name in ("offline", "online"):
        sub.add_parser(name, parents=[common], help=f"take a host {name}").add_argument("host")
    run = sub.add_parser("exec", parents=[common], help="run a command inside a host: exec H -- CMD...")
    run.add_argument("host")
    run.add_argument("command", nargs=argparse.REMAINDER)
    inventory = sub.add_parser("inventory", parents=[common], help="Ansible inventory script (--list, --host)")
    inventory.add_argument("--list", action="store_true")
    inventory.add_argument("--host", dest="inventory_host")
    args = parser.parse_args(argv)

    state = args.workdir / "lab.json"
    try:
        if args.action == "up":
            lab = Lab(args.prefix, args.hosts, args.workdir, args.subnet).up()
            print(lab.inventory)
            return 0
        if args.action == "down":
            if state.exists():
                Lab.load(args.workdir).down()
            Lab(args.prefix, 1, args.workdir).down()
            return 0
        if args.action == "inventory":
            if args.inventory_host:
                print("{}")
            elif state.exists():
                print(json.dumps(Lab.load(args.workdir).inventory_data(), indent=2))
            else:
                print(json.dumps({"_meta": {"hostvars": {}}}))
            return 0
        if not state.exists():
            print(f"no lab is up in {args.workdir}", file=sys.stderr)
            return 1
        lab = Lab.load(args.workdir)
        if args.action == "status":
            print(json.dumps({"prefix": lab.prefix, "inventory": str(lab.inventory), "hosts": lab.status()}, indent=2))
        elif args.action == "reboot":
            lab.reboot(args.host, delay=args.delay)
        elif args.action == "offline":
            lab.offline(args.host)
        elif args.action == "online":
            lab.online(args.host)
        elif args.action == "exec":
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not command:
                parser.error("exec needs a command: exec H -- CMD...")
            return lab.exec(args.host, command, stdout=None, stderr=None, timeout=None).returncode
        return 0
    except (LabError, subprocess.SubprocessError, OSError) as e:
        print(f"lab: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
