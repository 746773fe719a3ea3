# Sourced by scripts that test a live host (dredd.sh, fuzz.sh): starts
# target/release/vnext (built by `cargo build --release`) with the
# components of scripts/build-components.sh on a free port and a fresh
# state directory, and stops it. The caller sets $work (a temporary
# directory it removes), $inventory (the inventory file) and a `die`.

# How long the host may take to serve (it compiles components on a cold cache).
START_TIMEOUT_S=180
# How long a stopping host may take before it is killed.
STOP_TIMEOUT_S=10

host_pid=""

[ -x target/release/vnext ] || die "target/release/vnext is missing: run cargo build --release -p vnext-host"

stop_host() {
  [ -n "$host_pid" ] || return 0
  kill -TERM "$host_pid" 2>/dev/null || true
  for _ in $(seq $((STOP_TIMEOUT_S * 10))); do
    kill -0 "$host_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$host_pid" 2>/dev/null || true
  wait "$host_pid" 2>/dev/null || true
  host_pid=""
}

# Starts a host named $1 (its state and log are $work/state-$1 and
# $work/host-$1.log); sets $url.
start_host() {
  local state="$work/state-$1"
  mkdir -p "$state" target/test-compile-cache
  # The compile cache is the integration tests' one, so a warm start is fast.
  ln -s "$PWD/target/test-compile-cache" "$state/cache"
  target/release/vnext up -f spin.toml --listen 127.0.0.1:0 --state-dir "$state" \
    --inventory "$inventory" > "$work/host-$1.log" 2>&1 &
  host_pid=$!
  url=""
  for _ in $(seq $((START_TIMEOUT_S * 10))); do
    url=$(sed -n 's/^Serving \(http:[^ ]*\).*/\1/p' "$work/host-$1.log" | head -1)
    [ -n "$url" ] && return 0
    if ! kill -0 "$host_pid" 2>/dev/null; then
      cat "$work/host-$1.log" >&2
      die "the host exited before serving"
    fi
    sleep 0.1
  done
  cat "$work/host-$1.log" >&2
  die "the host did not serve within ${START_TIMEOUT_S}s"
}
