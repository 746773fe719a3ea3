#!/usr/bin/env bash
# Builds every wasm component of the workspace (components/*) and every test
# fixture component (tests/fixtures/*) for wasm32-wasip2, release, in ONE
# cargo invocation (one lock, one dependency graph), and lists the results.
#
#   scripts/build-components.sh            # everything
#   scripts/build-components.sh -p NAME    # extra cargo arguments are passed on
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[components]\033[0m %s\n' "$*"; }

rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || {
  log "adding rust target wasm32-wasip2"
  rustup target add wasm32-wasip2 >/dev/null
}

# Workspace members that live under components/ or tests/fixtures/.
mapfile -t dirs < <(sed -n '/^members *= *\[/,/^\]/p' Cargo.toml \
  | grep -oE '"(components|tests/fixtures)/[^"]+"' | tr -d '"')
pkgs=()
for d in "${dirs[@]}"; do
  [ -f "$d/Cargo.toml" ] || { log "warning: $d is a workspace member without Cargo.toml; skipped"; continue; }
  name=$(sed -n 's/^name *= *"\([^"]*\)".*/\1/p' "$d/Cargo.toml" | head -n1)
  [ -n "$name" ] && pkgs+=("$name")
done
if [ ${#pkgs[@]} -eq 0 ]; then
  log "no components found in the workspace members"
  exit 1
fi
log "building ${#pkgs[@]} components: ${pkgs[*]}"
args=()
for p in "${pkgs[@]}"; do args+=(-p "$p"); done
started=$(date +%s)
cargo build --target wasm32-wasip2 --release "${args[@]}" "$@"
log "built in $(( $(date +%s) - started )) s:"
for p in "${pkgs[@]}"; do
  f="target/wasm32-wasip2/release/${p//-/_}.wasm"
  if [ -f "$f" ]; then
    printf '  %-40s %8s bytes\n' "$f" "$(stat -c %s "$f")"
  else
    log "warning: $f was not produced (is $p a cdylib?)"
  fi
done
