#!/usr/bin/env bash
# The main job, on the embedded default (SQLite, one process): set everything up, bring up four
# lab hosts, start the controller (`depot serve`: API + worker), then with the `depot` client
# upload a demo package and create, start and follow a two-step deployment, and print its
# per-host report. Everything is torn down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

prefix=ddemo workdir=/var/tmp/depot-demo subnet=10.213.46.0/24 bridge=10.213.46.1 port=8089
data=$(mktemp -d /var/tmp/depot-demo-data.XXXXXX)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  .venv/bin/python -m tests.lab down --prefix "$prefix" --workdir "$workdir" >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap cleanup EXIT

echo "demo: bringing up 4 lab hosts"
inventory=$(.venv/bin/python -m tests.lab up --hosts 4 --prefix "$prefix" --workdir "$workdir" --subnet "$subnet" | tail -n 1)

# The controller listens on the lab bridge, where the hosts pull package content from it.
export DEPOT_DATA_DIR="$data" DEPOT_PUBLIC_URL="http://$bridge:$port" DEPOT_URL="http://$bridge:$port"
export DEPOT_DEMO_INVENTORY="$inventory"
# The first admin and its API token (shown once): the client commands below use it.
DEPOT_TOKEN=$(.venv/bin/depot admin create demo)
export DEPOT_TOKEN
.venv/bin/depot serve --host "$bridge" --port "$port" > "$data/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  .venv/bin/python -c "import httpx,sys; sys.exit(httpx.get('$DEPOT_URL/api/v1/health').status_code != 200)" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$data/serve.log"; exit 1; }
  sleep 0.2
done
echo "demo: controller up at $DEPOT_URL (API docs at $DEPOT_URL/docs)"

echo "demo: depot deploy playbooks/examples/demo/deployment.yml"
set +e
.venv/bin/depot deploy playbooks/examples/demo/deployment.yml --timeout 600
rc=$?
set -e
id=$(.venv/bin/python -c "import httpx, os; print(httpx.get('$DEPOT_URL/api/v1/deployments', headers={'Authorization': 'Bearer ' + os.environ['DEPOT_TOKEN']}).json()['items'][-1]['id'])")
echo
echo "demo: per-host report of deployment $id (also GET /api/v1/deployments/$id/report?format=csv|json)"
.venv/bin/python - "$DEPOT_URL" "$id" <<'PY'
import os, sys, httpx
url, ident = sys.argv[1], sys.argv[2]
auth = {"Authorization": f"Bearer {os.environ['DEPOT_TOKEN']}"}
for row in httpx.get(f"{url}/api/v1/deployments/{ident}/report", params={"page_size": 500}, headers=auth).json()["items"]:
    print(f"  {row['host']:4} step {row['position']} {row['status']:24} outcome={row['outcome'] or '-':12} rc={row['rc']} "
          f"attempts={len(row['attempts'])} {row['reason'] or ''}")
PY
exit $rc
