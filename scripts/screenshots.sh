#!/usr/bin/env bash
# Screenshots of the Dagster UI for the README (docs/img/*.png), taken with Debian's headless
# Chromium on the instance `make demo` filled. Refresh them after a UI-visible change:
#   make demo && make screenshots
# Needs /usr/bin/chromium (`apt-get install chromium`). Starts its own dagster-webserver on a free
# port (read-only, no daemon) and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=docs/img
BROWSER=${CHROMIUM:-/usr/bin/chromium}
PORT=${SCREENSHOT_PORT:-3311}
: "${DAGSTER_HOME:?set DAGSTER_HOME to the instance make demo used}"
command -v "$BROWSER" >/dev/null || { echo "screenshots: $BROWSER not found (apt-get install chromium)" >&2; exit 2; }
mkdir -p "$OUT"
log=$(mktemp)
$BIN/dagster-webserver -w workspace.yaml -h 127.0.0.1 -p "$PORT" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$PORT/server_info" >/dev/null && break
  sleep 1
done
# the community sign-up dialog, once per instance, would cover every page
curl -fs -H 'Content-Type: application/json' -d '{"query": "mutation { setNuxSeen }"}' \
  "http://127.0.0.1:$PORT/graphql" >/dev/null
shot() {  # shot NAME PATH [WIDTH,HEIGHT]: one page, after the UI has fetched and drawn it
  "$BROWSER" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="${3:-1600,1000}" \
    --virtual-time-budget=25000 --screenshot="$OUT/$1.png" "http://127.0.0.1:$PORT$2" >/dev/null 2>&1
  echo "$OUT/$1.png  ← $2"
}
shot lineage "/assets/observations?view=lineage&lineageScope=downstream&lineageDepth=3"
shot model-gates "/assets/xgboost_model?view=checks"
shot promotion-history "/assets/xgboost_promotion" 1600,1500
