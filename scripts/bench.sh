#!/usr/bin/env bash
# The benchmarks: sets everything up (idempotent), then runs bench/ on a lab of its own and
# writes bench/results.md. Needs root (the lab). Arguments go to `python -m bench`
# (e.g. `bash scripts/bench.sh events --runs 5`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
exec .venv/bin/python -m bench "$@"
