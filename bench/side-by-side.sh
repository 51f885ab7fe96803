#!/usr/bin/env bash
# Side by side with Node socket.io (issue 14): this project's server and the Node socket.io
# 4.8 peer in bench/node-peer, one after the other, each pinned to one core, each driven by
# the same `apps/loadgen` run (N authenticated websocket sockets, then an admin announcement
# fanned out to all of them, ROUNDS times). Prints one row per server and the ratios
# project/Node.
#
#   bench/side-by-side.sh                 # 15,000 sockets, 5 rounds
#   SOCKETS=2000 bench/side-by-side.sh    # a quick check
#
# Environment (all optional): SOCKETS (15000), ROUNDS (5), USERS (50 seller accounts),
# SOURCES (4 source addresses 127.0.0.2..), CONCURRENCY (256 handshakes in flight),
# SERVER_CPU (0), LOADGEN_CPU (1), RUST_PORT (3901), NODE_PORT (3902), SKIP_BUILD (1 = use
# the binaries already built), BIN_DIR (target/release; another directory only for checking the
# script itself, never for figures), OUT (directory for logs; a fresh temporary
# one by default).
#
# Needs: cargo, node >= 18 and npm, taskset (util-linux), curl, an open-files hard limit of at
# least 20,000 (one loadgen process holds at most ~19,900 sockets).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SOCKETS="${SOCKETS:-15000}"
ROUNDS="${ROUNDS:-5}"
USERS="${USERS:-50}"
SOURCES="${SOURCES:-4}"
CONCURRENCY="${CONCURRENCY:-256}"
SERVER_CPU="${SERVER_CPU:-0}"
LOADGEN_CPU="${LOADGEN_CPU:-1}"
RUST_PORT="${RUST_PORT:-3901}"
NODE_PORT="${NODE_PORT:-3902}"
BIN_DIR="${BIN_DIR:-target/release}"
OUT="${OUT:-$(mktemp -d -t side-by-side.XXXXXX)}"
mkdir -p "$OUT"

JWT_SECRET="bench-secret-0123456789abcdef0123456789abcdef"
ADMIN_EMAIL="admin@bench.local"
ADMIN_PASSWORD="bench-password-1"

die() { echo "side-by-side: $*" >&2; exit 1; }

ulimit -n 20000 2>/dev/null || die "cannot raise the open-files limit to 20000 (hard limit $(ulimit -Hn))"
for tool in cargo node npm taskset curl; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[ "$SOCKETS" -le 19900 ] || die "SOCKETS=$SOCKETS: one loadgen process holds at most ~19,900 sockets"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== building release binaries"
  cargo build --release -p marketplace-api -p loadgen
fi
[ -x "$BIN_DIR/marketplace" ] && [ -x "$BIN_DIR/loadgen" ] || die "no binaries in $BIN_DIR (run without SKIP_BUILD=1)"
if [ ! -d bench/node-peer/node_modules/socket.io ]; then
  echo "== installing the Node peer (npm ci)"
  (cd bench/node-peer && npm ci --no-audit --no-fund)
fi

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

wait_healthy() { # port log
  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || die "server exited during start-up; see $2"
    sleep 0.5
  done
  die "server on port $1 not healthy after 120 s; see $2"
}

# run NAME PORT -- server command...: start the server pinned to SERVER_CPU, run loadgen
# pinned to LOADGEN_CPU, stop the server. loadgen's output goes to $OUT/NAME.loadgen.log.
run() {
  local name="$1" port="$2"
  shift 3
  echo "== $name: $SOCKETS sockets, $ROUNDS announcement rounds (server on CPU $SERVER_CPU, loadgen on CPU $LOADGEN_CPU), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  taskset -c "$SERVER_CPU" "$@" >"$OUT/$name.server.log" 2>&1 &
  SERVER_PID=$!
  wait_healthy "$port" "$OUT/$name.server.log"
  taskset -c "$LOADGEN_CPU" "$BIN_DIR/loadgen" --url "http://127.0.0.1:$port" \
    --sockets "$SOCKETS" --users "$USERS" --sources "$SOURCES" --concurrency "$CONCURRENCY" \
    --rounds "$ROUNDS" --server-pid "$SERVER_PID" --trigger announcement \
    --admin-email "$ADMIN_EMAIL" --admin-password "$ADMIN_PASSWORD" \
    2>&1 | tee "$OUT/$name.loadgen.log"
  cleanup
  SERVER_PID=""
}

DB="$OUT/marketplace.db"
rm -f "$DB" "$DB-shm" "$DB-wal"
run project "$RUST_PORT" -- env DATABASE_URL="sqlite://$DB?mode=rwc" JWT_SECRET="$JWT_SECRET" \
  ADMIN_EMAIL="$ADMIN_EMAIL" ADMIN_PASSWORD="$ADMIN_PASSWORD" RUST_LOG=warn HOST=127.0.0.1 \
  MAX_CONNECTIONS_PER_CLIENT=100000 PORT="$RUST_PORT" "$BIN_DIR/marketplace" serve
run node "$NODE_PORT" -- env NODE_ENV=production JWT_SECRET="$JWT_SECRET" \
  ADMIN_EMAIL="$ADMIN_EMAIL" ADMIN_PASSWORD="$ADMIN_PASSWORD" PORT="$NODE_PORT" \
  node bench/node-peer/server.js

# Figures from loadgen's output: KiB of server RSS per socket; "every delivery" p50/p99 (each
# socket's arrival time, pooled over the rounds); "last socket" p50 (median over the rounds of
# the time until the last socket had the event).
field() { # log regex → first capture
  sed -nE "s/$2/\1/p" "$1" | head -1
}
row() {
  local log="$OUT/$1.loadgen.log"
  local connected rss d50 d99 last50
  connected=$(field "$log" '^connected ([0-9]+)\/.*')
  rss=$(field "$log" '.*; ([0-9.]+) KiB per socket.*')
  d50=$(field "$log" '^REST action → each socket.*p50 ([0-9.]+),.*')
  d99=$(field "$log" '^REST action → each socket.*p99 ([0-9.]+).*')
  last50=$(field "$log" '^emit to .*last socket.*: p50 ([0-9.]+),.*')
  echo "${connected:-?} ${rss:-nan} ${d50:-nan} ${d99:-nan} ${last50:-nan}"
}
read -r p_conn p_rss p_d50 p_d99 p_last <<<"$(row project)"
read -r n_conn n_rss n_d50 n_d99 n_last <<<"$(row node)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "nan") printf "%.2f", a / b; else printf "n/a" }'; }

echo
echo "== side by side ($BIN_DIR): $SOCKETS sockets, $ROUNDS rounds of system:announcement to everyone, $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-28s %10s %12s %18s %18s %20s\n' server connected "KiB RSS/sock" "delivery p50 ms" "delivery p99 ms" "last socket p50 ms"
printf '%-28s %10s %12s %18s %18s %20s\n' "project ($(basename "$BIN_DIR"), SQLite)" "$p_conn" "$p_rss" "$p_d50" "$p_d99" "$p_last"
printf '%-28s %10s %12s %18s %18s %20s\n' "Node socket.io 4.8" "$n_conn" "$n_rss" "$n_d50" "$n_d99" "$n_last"
printf '%-28s %10s %12s %18s %18s %20s\n' "ratio project/Node" "" "$(ratio "$p_rss" "$n_rss")" \
  "$(ratio "$p_d50" "$n_d50")" "$(ratio "$p_d99" "$n_d99")" "$(ratio "$p_last" "$n_last")"
if [ "$p_conn" != "$SOCKETS" ] || [ "$n_conn" != "$SOCKETS" ]; then
  echo "WARNING: not every socket connected (see the logs); the two rows do not compare."
fi
if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN { exit !(l > 1.5) }'; then
  echo "WARNING: load average above 1.5: other work shared the cores, latencies are noisy."
fi
echo "(goal of issue 14: memory <= 0.75, fan-out p99 <= 0.80; logs in $OUT)"
