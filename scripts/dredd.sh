#!/usr/bin/env bash
# Runs Dredd (tests/dredd, pinned in its package.json) against a live host:
# every request/response pair of apiary.apib is one transaction, replayed in
# document order, with tests/dredd/hooks.js putting the ids created in this
# run into later requests. Exits non-zero if any transaction fails, and ends
# with the line "dredd: N passed, M failed".
#
#   scripts/dredd.sh             run Dredd against apiary.apib
#   scripts/dredd.sh --generate  regenerate apiary.apib (scripts/gen-apiary.py)
#                                from the same kind of host, then run Dredd
#
# The host is target/release/vnext (built by `cargo build --release` or
# `cargo test --release`) with the components of scripts/build-components.sh,
# on a free port, with a fresh state directory and the test inventory
# (tests/fixtures/inventory.toml) whose driver part is tests/dredd/driver.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[dredd]\033[0m %s\n' "$*"; }
die() { printf '\033[1m[dredd]\033[0m %s\n' "$*" >&2; exit 1; }

generate=0
case "${1:-}" in
  --generate) generate=1 ;;
  "") ;;
  *) die "unknown argument '$1' (usage: scripts/dredd.sh [--generate])" ;;
esac

DREDD=tests/dredd/node_modules/.bin/dredd
[ -x "$DREDD" ] || die "Dredd is not installed: run scripts/setup.sh"
work=$(mktemp -d)
trap 'declare -F stop_host >/dev/null && stop_host; rm -rf "$work"' EXIT

# The inventory: the fixture's placements and nodes, Dredd's driver.
fixture=tests/fixtures/inventory.toml
if sed -n '/^\[driver\]/,$p' "$fixture" | grep -q '^\[\[\(placement\|compute_node\)\]\]'; then
  die "$fixture: [driver] must be its last part (placements and compute nodes first)"
fi
{ sed '/^\[driver\]/,$d' "$fixture"; cat tests/dredd/driver.toml; } > "$work/inventory.toml"
inventory=$work/inventory.toml
# shellcheck source=scripts/lib/live-host.sh
. scripts/lib/live-host.sh

if [ "$generate" = 1 ]; then
  start_host generate
  log "generating apiary.apib from $url"
  python3 scripts/gen-apiary.py "$url" apiary.apib
  stop_host
fi

start_host dredd
log "dredd $("$DREDD" --version | awk '{print $2}') against $url"
out="$work/dredd.out"
set +e
# --no-warnings: Dredd 14's logger trips a Node warning on every run;
# head-requests.js: lets Dredd 14 send HEAD requests (see that file).
(cd tests/dredd && NODE_OPTIONS="--no-warnings --require=./head-requests.js" node_modules/.bin/dredd ../../apiary.apib "$url" \
  --hookfiles=hooks.js --language=nodejs --loglevel=warning --color=false) 2>&1 | tee "$out"
dredd_rc=${PIPESTATUS[0]}
set -e
stop_host

# Dredd's own summary: "complete: N passing, M failing, E errors, S skipped, T total".
summary=$(grep -o '[0-9]* passing, [0-9]* failing, [0-9]* errors, [0-9]* skipped, [0-9]* total' "$out" | tail -1 || true)
if [ -z "$summary" ]; then
  echo "host log:" >&2; tail -50 "$work/host-dredd.log" >&2
  echo "dredd: 0 passed, 1 failed"
  die "Dredd did not finish (exit $dredd_rc)"
fi
read -r passing _ failing _ errors _ skipped _ total _ <<< "${summary//,/}"
# A skipped or erroring transaction did not pass either.
failed=$((failing + errors + skipped))
if [ "$failed" -gt 0 ] || [ "$dredd_rc" -ne 0 ]; then
  echo "host log (last lines):"; tail -30 "$work/host-dredd.log"
fi
echo "dredd: $passing passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$dredd_rc" -eq 0 ] && [ "$total" -gt 0 ]
