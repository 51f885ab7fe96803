#!/usr/bin/env bash
# Search latency over many purchase requests (issue 21): for SQLite and then PostgreSQL,
# start the release server on a fresh database and run
#   loadgen --mode search   (seed REQUESTS requests through POST /api/requests with CLIENTS
#                            clients, then time each search query QUERIES times, one at a
#                            time, as a seller: every open request is in view)
# against it (on PostgreSQL with a VACUUM ANALYZE between the two, as autovacuum would do
# after a bulk load), stop it, and print one table: p50 / p99 per query and engine, the
# seeding rate (the write path with its search index), and the database's size.
#
#   bench/search.sh                               # both engines, 100,000 requests, 200 calls per query
#   REQUESTS=10000 QUERIES=50 bench/search.sh     # a quick check
#   ENGINES=postgres SKIP_BUILD=1 bench/search.sh
#
# Environment (all optional): ENGINES ("sqlite postgres"), REQUESTS (100000), QUERIES (200),
# CLIENTS (32), BUYERS (8), SERVER_CPU (0) and LOADGEN_CPU (1) for taskset (empty: not
# pinned), PORT (3913), PG_URL (postgres://postgres@127.0.0.1:5432), PG_DB (mk_search_bench;
# dropped and created again), SKIP_BUILD (1 = use the binaries already built), BIN_DIR
# (target/release), OUT (directory for logs and JSON; a fresh temporary one by default).
#
# Needs: cargo, curl, jq, taskset (util-linux) unless SERVER_CPU and LOADGEN_CPU are empty,
# and psql for PostgreSQL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ENGINES="${ENGINES:-sqlite postgres}"
REQUESTS="${REQUESTS:-100000}"
QUERIES="${QUERIES:-200}"
CLIENTS="${CLIENTS:-32}"
BUYERS="${BUYERS:-8}"
SERVER_CPU="${SERVER_CPU-0}"
LOADGEN_CPU="${LOADGEN_CPU-1}"
PORT="${PORT:-3913}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
PG_DB="${PG_DB:-mk_search_bench}"
BIN_DIR="${BIN_DIR:-target/release}"
OUT="${OUT:-$(mktemp -d -t search-bench.XXXXXX)}"
mkdir -p "$OUT"

die() { echo "search.sh: $*" >&2; exit 1; }

for tool in curl jq; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
case " $ENGINES " in *" postgres "*) command -v psql >/dev/null || die "psql not found" ;; esac
PIN_SERVER=()
PIN_LOADGEN=()
[ -z "$SERVER_CPU" ] || PIN_SERVER=(taskset -c "$SERVER_CPU")
[ -z "$LOADGEN_CPU" ] || PIN_LOADGEN=(taskset -c "$LOADGEN_CPU")

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== building release binaries"
  cargo build --release -p marketplace-api -p loadgen
fi
[ -x "$BIN_DIR/marketplace" ] && [ -x "$BIN_DIR/loadgen" ] || die "no binaries in $BIN_DIR (run without SKIP_BUILD=1)"

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap cleanup EXIT INT TERM

wait_healthy() { # log
  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || die "server exited during start-up; see $1"
    sleep 0.5
  done
  die "server not healthy after 120 s; see $1"
}

# run ENGINE DATABASE_URL: one server, seeding and searches; JSON in $OUT/ENGINE.json
run() {
  local engine="$1" url="$2" log="$OUT/$1.server.log"
  echo "== $engine: server on CPU ${SERVER_CPU:-any}, loadgen on CPU ${LOADGEN_CPU:-any}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  ! curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null || die "something already answers on port $PORT"
  "${PIN_SERVER[@]}" env DATABASE_URL="$url" JWT_SECRET=bench-secret-0123456789abcdef0123456789abcdef \
    RUST_LOG=warn HOST=127.0.0.1 PORT="$PORT" "$BIN_DIR/marketplace" serve >"$log" 2>&1 &
  SERVER_PID=$!
  wait_healthy "$log"
  local lg=("${PIN_LOADGEN[@]}" "$BIN_DIR/loadgen" --mode search --url "http://127.0.0.1:$PORT" --json)
  "${lg[@]}" --requests "$REQUESTS" --queries 0 --clients "$CLIENTS" --buyers "$BUYERS" | tee "$OUT/$engine.seed.json"
  # What autovacuum does soon after a bulk load (it is off on some machines, this one
  # included): without statistics PostgreSQL guesses few open requests and filters them
  # all instead of asking the GIN index. SQLite is left as the server leaves it (no
  # ANALYZE): its search plan does not depend on statistics.
  if [ "$engine" = postgres ]; then
    psql -X -q -v ON_ERROR_STOP=1 "$url" -c "VACUUM ANALYZE"
  fi
  "${lg[@]}" --requests 0 --queries "$QUERIES" | jq --slurpfile seed "$OUT/$engine.seed.json" '.seeded = $seed[0].seeded' \
    | tee "$OUT/$engine.json"
  case "$engine" in
    sqlite) du -b "$OUT/marketplace.db" | cut -f1 >"$OUT/$engine.size" ;;
    postgres) psql -X -At "$url" -c "SELECT pg_database_size(current_database())" >"$OUT/$engine.size" ;;
  esac
  cleanup
}

for engine in $ENGINES; do
  case "$engine" in
    sqlite)
      DB="$OUT/marketplace.db"
      rm -f "$DB" "$DB-shm" "$DB-wal"
      run sqlite "sqlite://$DB?mode=rwc"
      ;;
    postgres)
      psql -X -q -v ON_ERROR_STOP=1 "$PG_URL/postgres" \
        -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" -c "CREATE DATABASE $PG_DB" >/dev/null
      run postgres "$PG_URL/$PG_DB"
      ;;
    *) die "unknown engine $engine (sqlite or postgres)" ;;
  esac
done

echo
echo "== search over $REQUESTS requests, $QUERIES calls per query, one at a time ($BIN_DIR), $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
header="| query |"
rule="| --- |"
for engine in $ENGINES; do
  header="$header $engine p50 / p99 ms |"
  rule="$rule --- |"
done
echo "$header"
echo "$rule"
first="$(set -- $ENGINES; echo "$1")"
n="$(jq '.queries | length' "$OUT/$first.json")"
for i in $(seq 0 $((n - 1))); do
  line="| $(jq -r ".queries[$i].query" "$OUT/$first.json") |"
  for engine in $ENGINES; do
    line="$line $(jq -r ".queries[$i] | \"\(.p50_ms) / \(.p99_ms)\"" "$OUT/$engine.json") |"
  done
  echo "$line"
done
line="| **all queries pooled** |"
for engine in $ENGINES; do
  line="$line **$(jq -r '.all | "\(.p50_ms) / \(.p99_ms)"' "$OUT/$engine.json")** |"
done
echo "$line"
line="| seeding: POST /api/requests with $CLIENTS clients |"
for engine in $ENGINES; do
  line="$line $(jq -r '.seeded | if . == null then "n/a" else "\(.per_second)/s" end' "$OUT/$engine.json") |"
done
echo "$line"
line="| database size |"
for engine in $ENGINES; do
  line="$line $(awk '{ printf "%.0f MiB", $1 / 1048576 }' "$OUT/$engine.size") |"
done
echo "$line"
echo "(logs and JSON in $OUT)"
