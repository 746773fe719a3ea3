#!/usr/bin/env bash
# Property-based fuzzing of a live host from its own OpenAPI document
# (GET /openapi.json) with Schemathesis (pinned below, from PyPI, in a
# virtualenv under target/). Every operation is tried with generated valid
# and invalid requests, as a member of one project, a member of another and
# an admin (development tokens), and every answer is checked: no 5xx, the
# status and media type documented for the operation, the body valid
# against its schema, invalid input refused with a 4xx, and so on
# (Schemathesis's checks, all of them: every check is on unless
# tests/fuzz/schemathesis.toml turns it off for an operation). Ends with the line
# "fuzz: N passed, M failed" (N: operations tried per caller that passed);
# target/fuzz-report/ keeps each caller's output and JUnit report.
#
#   scripts/fuzz.sh [EXAMPLES]   at most EXAMPLES cases per operation and
#                                phase (default 20: a few minutes in CI)
#
# The host is the one of scripts/dredd.sh: target/release/vnext, the test
# inventory with Dredd's instant driver.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[fuzz]\033[0m %s\n' "$*"; }
die() { printf '\033[1m[fuzz]\033[0m %s\n' "$*" >&2; exit 1; }

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${1:-20}
[[ $EXAMPLES =~ ^[1-9][0-9]*$ ]] || die "EXAMPLES must be a positive number, got '$EXAMPLES'"
# Fixed, so a failure seen in CI can be replayed here.
SEED=20261202
# Development tokens (the `dev` verifier): <user>:<project>[:admin].
MEMBER_A="aaaaaaaa-1111-4111-8111-111111111111:aaaaaaaa-2222-4222-8222-222222222222"
MEMBER_B="bbbbbbbb-1111-4111-8111-111111111111:bbbbbbbb-2222-4222-8222-222222222222"
ADMIN="cccccccc-1111-4111-8111-111111111111:cccccccc-2222-4222-8222-222222222222:admin"

venv=target/fuzz-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $venv (about a minute)"
  python3 -m venv "$venv" || die "python3 -m venv failed: install python3-venv (scripts/setup.sh does)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

work=$(mktemp -d)
trap 'declare -F stop_host >/dev/null && stop_host; rm -rf "$work"' EXIT
fixture=tests/fixtures/inventory.toml
{ sed '/^\[driver\]/,$d' "$fixture"; cat tests/dredd/driver.toml; } > "$work/inventory.toml"
inventory=$work/inventory.toml
# shellcheck source=scripts/lib/live-host.sh
. scripts/lib/live-host.sh

# What each run printed and its JUnit report, kept for reading afterwards.
report=target/fuzz-report
rm -rf "$report" && mkdir -p "$report"
start_host fuzz
passed=0
failed=0
for who in MEMBER_A MEMBER_B ADMIN; do
  log "as $who: $EXAMPLES examples per operation against $url"
  set +e
  # One worker: CPython 3.11 (Debian 12's) can fail compiling Schemathesis's
  # generated code from two threads at once ("AST constructor recursion
  # depth mismatch").
  token=${!who}
  project=${token#*:}
  VNEXT_TOKEN=$token VNEXT_PROJECT=${project%%:*} "$venv/bin/schemathesis" --no-color --config-file tests/fuzz/schemathesis.toml \
    run "$url/openapi.json" --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 \
    --request-timeout 30 --report junit --report-junit-path "$report/$who.xml" 2>&1 | tee "$report/$who.out"
  rc=${PIPESTATUS[0]}
  set -e
  # JUnit: one test case per operation; a failure or error element each.
  cases=$(grep -o '<testcase ' "$report/$who.xml" 2>/dev/null | wc -l || true)
  bad=$(grep -oE '<(failure|error)[ >]' "$report/$who.xml" 2>/dev/null | wc -l || true)
  if [ "$cases" -eq 0 ]; then
    bad=1
  elif [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
    bad=1
  fi
  passed=$((passed + cases - bad))
  failed=$((failed + bad))
done
stop_host
if [ "$failed" -gt 0 ]; then
  echo "host log (last lines):"; tail -30 "$work/host-fuzz.log"
fi
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
