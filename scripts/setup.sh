#!/usr/bin/env bash
# Idempotent set-up of everything Depot needs on a fresh Debian machine (run as root):
# system packages for the lab (sshd, iproute2) and the dashboard's browser tests (chromium), a
# virtualenv with the Python dependencies, and a collections path through which Ansible finds this
# checkout as depot.software.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

need_apt=()
for pair in sshd:openssh-server ssh:openssh-client ip:iproute2 rpm:rpm pkill:procps chromium:chromium; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need_apt+=("${pair#*:}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# Reinstall when requirements.txt or pyproject.toml changed since the last install.
stamp=.venv/.depot-requirements
wanted=$(cat requirements.txt pyproject.toml | sha256sum)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  .venv/bin/pip install -q --disable-pip-version-check -e .   # the controller and its `depot` command
  echo "$wanted" > "$stamp"
fi

# Ansible finds collections as <path>/ansible_collections/<namespace>/<name>.
mkdir -p .collections/ansible_collections/depot
ln -sfn "$root" .collections/ansible_collections/depot/software
