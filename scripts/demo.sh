#!/usr/bin/env bash
# The main job: set everything up, bring up the lab of real Linux hosts, deploy two steps to
# every host with playbooks/deploy.yml, print each host's result per step, tear the lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
hosts=${DEPOT_DEMO_HOSTS:-4}
inventory=$(.venv/bin/python -m tests.lab up --hosts "$hosts" --prefix ddemo --workdir /var/tmp/depot-demo --subnet 10.213.46.0/24 | tail -n 1)
trap '.venv/bin/python -m tests.lab down --prefix ddemo --workdir /var/tmp/depot-demo >/dev/null' EXIT
out=$(mktemp -d)
run() {
  ANSIBLE_STDOUT_CALLBACK=ansible.posix.json ANSIBLE_SHOW_CUSTOM_STATS=true \
    .venv/bin/ansible-playbook -i "$inventory" playbooks/deploy.yml -e @playbooks/examples/demo-steps.yml \
    -e depot_demo_installers=/usr/local/lib/depot-lab/installers > "$out/$1.json" || true
  .venv/bin/python scripts/report.py "$out/$1.json"
}
echo "demo: deploying playbooks/examples/demo-steps.yml to $hosts lab hosts"
run first
echo
echo "demo: the same deployment again; detection finds everything in place, nothing runs"
run second
