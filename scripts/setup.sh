#!/usr/bin/env bash
# Installs everything vNext Compute needs on a fresh Debian 12 machine:
# the wasm32-wasip2 Rust target, Redis (for the Redis key-value backend tests),
# wrk (for the benchmark), Node.js with Dredd (scripts/dredd.sh replays
# apiary.apib against a live host), and OpenStack Keystone in a Python venv
# (target/keystone-venv; the Keystone verifier's tests start one), and
# libvirt's C library (libvirt-dev, from bookworm-backports, which this
# script adds) that the host links for its libvirt driver. Running real
# guests needs more: scripts/setup-libvirt.sh. Safe to run again: every step
# is idempotent and says nothing when there is nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

log "rust target wasm32-wasip2"
rustup target add wasm32-wasip2 >/dev/null

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v wrk >/dev/null || need+=(wrk)
command -v sqlite3 >/dev/null || need+=(sqlite3)
# Debian's nodejs (18 on Debian 12) runs Dredd 14; a Node.js already on the
# machine (e.g. a newer one that bundles npm) is used as it is.
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
if [ ${#need[@]} -gt 0 ]; then
  log "apt packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# libvirt 11 and QEMU 10 come from bookworm-backports: the image's
# qemu-utils is the backports one, so bookworm's own QEMU will not install
# beside it, and libvirt-dev must match the libvirt the daemon runs.
if ! dpkg -s libvirt-dev >/dev/null 2>&1; then
  bash scripts/backports.sh
  log "apt packages (bookworm-backports): libvirt-dev"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports libvirt-dev >/dev/null
fi

# Dredd, at the version pinned in tests/dredd/package.json (exact, with the
# lock file), installed into tests/dredd/node_modules.
# Its hooks validate answers with Ajv (also pinned there): both versions must match.
wanted=$(node -p "const d = require('./tests/dredd/package.json').dependencies; d.dredd + ' ' + d.ajv")
installed=$(node -p "try { ['dredd', 'ajv'].map((p) => require('./tests/dredd/node_modules/' + p + '/package.json').version).join(' ') } catch (_) { '' }")
if [ "$installed" != "$wanted" ] || [ ! -x tests/dredd/node_modules/.bin/dredd ]; then
  log "dredd and ajv $wanted (npm ci in tests/dredd)"
  (cd tests/dredd && npm ci --no-audit --no-fund --loglevel=error)
  tests/dredd/node_modules/.bin/dredd --version >/dev/null
fi
# Keystone (OpenStack Identity) for the Keystone verifier's tests, pinned.
KEYSTONE_VENV=target/keystone-venv
KEYSTONE_PINS=("keystone==30.0.0" "gunicorn==27.0.1")
if ! "$KEYSTONE_VENV/bin/python" -c 'import keystone, gunicorn' 2>/dev/null; then
  log "${KEYSTONE_PINS[*]} (pip, into $KEYSTONE_VENV)"
  python3 -m venv "$KEYSTONE_VENV"
  "$KEYSTONE_VENV/bin/pip" install -q --disable-pip-version-check "${KEYSTONE_PINS[@]}"
fi
log "done"
