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
    width = max([len(s) for s in steps] + [14]) + 2
    print("host".ljust(12) + "".join(s.ljust(width) for s in steps))
    for host in sorted(per_host):
        cells = {r["name"]: "%s (rc %s)" % (r["outcome"], r["rc"]) if r.get("rc") not in (None, "") else r["outcome"]
                 for r in per_host[host]}
        print(host.ljust(12) + "".join(cells.get(s, "-").ljust(width) for s in steps))


if __name__ == "__main__":
    main(sys.argv[1])
