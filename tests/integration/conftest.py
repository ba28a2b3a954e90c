"""Running playbooks against the lab and reading their results."""

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.lab import HOST_INSTALLERS

ROOT = Path(__file__).resolve().parents[2]


class Play(object):
    """Runs ansible-playbook with the JSON callback and returns ``{host: [task results]}``."""

    def __init__(self, inventory, tmp_path):
        self.inventory = inventory
        self.tmp_path = tmp_path
        self.count = 0

    def __call__(self, tasks, hosts, extra_vars=None, check=False):
        self.count += 1
        book = self.tmp_path / ("play%d.yml" % self.count)
        play = [dict(hosts=hosts, gather_facts=False, tasks=tasks)]
        book.write_text(yaml.safe_dump(play, sort_keys=False))
        return self.run(book, extra_vars=extra_vars, check=check)

    def run(self, playbook, extra_vars=None, check=False):
        argv = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(self.inventory), str(playbook)]
        if extra_vars:
            vars_file = self.tmp_path / ("vars%d.json" % self.count)
            vars_file.write_text(json.dumps(extra_vars))
            argv += ["-e", "@%s" % vars_file]
        if check:
            argv.append("--check")
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                   ANSIBLE_SHOW_CUSTOM_STATS="true")
        done = subprocess.run(argv, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=900)
        try:
            data = json.loads(done.stdout[done.stdout.index("{"):])
        except ValueError:
            raise AssertionError("ansible-playbook printed no JSON (rc %d):\n%s\n%s" % (done.returncode, done.stdout[-3000:], done.stderr[-3000:]))
        return Results(data, done)


class Results(object):
    def __init__(self, data, process):
        self.data = data
        self.process = process
        self.by_host = {}
        for play in data["plays"]:
            for task in play["tasks"]:
                for host, result in task["hosts"].items():
                    result = dict(result, _task=task["task"]["name"])
                    self.by_host.setdefault(host, []).append(result)

    def __getitem__(self, host):
        """The results of ``host``'s tasks, in order."""
        return self.by_host[host]

    def last(self, host):
        return self.by_host[host][-1]

    def stats(self, host):
        return self.data["stats"][host]

    def custom(self, host):
        return self.data.get("custom_stats", {}).get(host, {})


@pytest.fixture
def play(lab_inventory, tmp_path):
    return Play(lab_inventory, tmp_path)


def installer(name):
    """Path of a lab test installer inside every lab host."""
    return "%s/%s" % (HOST_INSTALLERS, name)


def dedent(text):
    return textwrap.dedent(text).lstrip()
