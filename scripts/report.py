"""Print a host × step table from the JSON that ansible-playbook's ansible.posix.json callback
writes for playbooks/deploy.yml (the role publishes each host's step results with set_stats)."""

import json
import sys


def main(path):
    with open(path) as f:
        text = f.read()
    run = json.loads(text[text.index("{"):])
    per_host = {h: s.get("depot_results", []) for h, s in run.get("custom_stats", {}).items() if h != "_run"}
    for host, stats in sorted(run.get("stats", {}).items()):
        if host not in per_host and stats.get("unreachable"):
            per_host[host] = [dict(name="(all)", outcome="unreachable", rc=None, attempts=0)]
    steps = []
    for results in per_host.values():
        for r in results:
            if r["name"] not in steps:
                steps.append(r["name"])
    rows = {host: {r["name"]: cell(r) for r in results} for host, results in per_host.items()}
    width = max([len(s) for s in steps] + [len(c) for row in rows.values() for c in row.values()]) + 2
    print("host".ljust(12) + "".join(s.ljust(width) for s in steps))
    for host in sorted(rows):
        print(host.ljust(12) + "".join(rows[host].get(s, "-").ljust(width) for s in steps))


def cell(result):
    text = result["outcome"]
    if result.get("rc") not in (None, ""):
        text += " (rc %s)" % result["rc"]
    if result.get("rebooted") in (True, "True", "true"):
        text += ", rebooted"
    elif result.get("reboot_required") in (True, "True", "true"):
        text += ", reboot pending"
    return text


if __name__ == "__main__":
    main(sys.argv[1])
