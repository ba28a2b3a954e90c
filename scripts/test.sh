#!/usr/bin/env bash
# The test command: sets everything up (idempotent), then runs the whole suite: unit tests,
# the PowerShell parse and contract tests, the collection build and sanity checks, and the
# integration tests on the lab of real Linux hosts (needs root). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
exit "$rc"
