"""Running a module of the collection for real on this machine with the `ansible` command."""

import json
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
ANSIBLE = os.path.join(ROOT, ".venv", "bin", "ansible")
if not os.path.exists(ANSIBLE):
    ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")


def run_module(name, args, check=False, env=None):
    """Run module ``name`` on localhost; return (ansible's rc, the task's result dict)."""
    full_env = dict(os.environ)
    full_env.update({
        "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
    })
    full_env.update(env or {})
    cmd = [ANSIBLE, "localhost", "-m", name]
    if args:  # an empty "{}" would be taken as raw params
        cmd += ["-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("no JSON from ansible (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr))
    return proc.returncode, data["plays"][0]["tasks"][0]["hosts"]["localhost"]
