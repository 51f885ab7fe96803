#!/usr/bin/env bash
# The REST side of the event path on both engines (issue 14, item 4): for SQLite and then
# PostgreSQL, start the release server on a fresh database, run
#   loadgen --mode rest-latency      (open loop, RATE POST /api/requests per second, DURATION s,
#                                     SELLERS seller sockets timing every request:created)
#   loadgen --mode write-throughput  (CLIENTS clients posting back to back, DURATION s)
# against it, stop it, and print one table. On PostgreSQL, while write-throughput runs, one
# more connection samples pg_stat_activity every 10 ms and prints what the server's
# connections were doing (running, waiting for the event-id advisory lock, for another lock,
# for WAL, or idle in a transaction waiting for the server).
#
#   bench/rest.sh                          # both engines, 1,000 requests/s and 32 clients, 20 s each
#   ENGINES=postgres DURATION=10 bench/rest.sh
#
# Environment (all optional): ENGINES ("sqlite postgres"), RATE (1000), DURATION (20),
# CLIENTS (32), BUYERS (8 buyer accounts), SELLERS (4 seller sockets), SERVER_CPU (0) and
# LOADGEN_CPU (1) for taskset (empty: not pinned), PORT (3903), PG_URL
# (postgres://postgres@127.0.0.1:5432), PG_DB (mk_rest_bench; dropped and created again),
# SERVER_ENV (extra VAR=value words for the server, e.g. "DB_MAX_CONNECTIONS=20"),
# PG_WITHOUT (measurement only, breaks the id order: "lock", "notify" or "lock notify" make
# pg_advisory_xact_lock / pg_notify no-ops in the bench database, through functions of the
# same name in `public` ahead of `pg_catalog` on its search_path, to see what the server does
# without them),
# SKIP_BUILD (1 = use the binaries already built), BIN_DIR (target/release), OUT (directory
# for logs and JSON; a fresh temporary one by default).
#
# Needs: an open-files hard limit of at least 20,000, cargo, curl, jq, taskset (util-linux) unless SERVER_CPU and LOADGEN_CPU are empty,
# and psql for PostgreSQL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ENGINES="${ENGINES:-sqlite postgres}"
RATE="${RATE:-1000}"
DURATION="${DURATION:-20}"
CLIENTS="${CLIENTS:-32}"
BUYERS="${BUYERS:-8}"
SELLERS="${SELLERS:-4}"
SERVER_CPU="${SERVER_CPU-0}"
LOADGEN_CPU="${LOADGEN_CPU-1}"
PORT="${PORT:-3903}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
PG_DB="${PG_DB:-mk_rest_bench}"
SERVER_ENV="${SERVER_ENV:-}"
BIN_DIR="${BIN_DIR:-target/release}"
OUT="${OUT:-$(mktemp -d -t rest-bench.XXXXXX)}"
mkdir -p "$OUT"

die() { echo "rest.sh: $*" >&2; exit 1; }

# Open loop: when the server falls behind, requests pile up, each on its own connection.
ulimit -n 20000 2>/dev/null || die "cannot raise the open-files limit to 20000 (hard limit $(ulimit -Hn))"

for tool in curl jq; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
case " $ENGINES " in *" postgres "*) command -v psql >/dev/null || die "psql not found" ;; esac
# Command prefixes that pin the server and loadgen (none when the CPU is empty). Arrays, not
# a function: the server's pid ($!) must be the server's own.
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
SAMPLER_PID=""
cleanup() {
  for pid in "$SAMPLER_PID" "$SERVER_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  SERVER_PID=""
  SAMPLER_PID=""
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

# What the PostgreSQL connections of the server do, sampled every 10 ms for DURATION s:
# per category, the mean number of connections in it per sample.
pg_sample() { # db-url out-file
  psql -X -q -v ON_ERROR_STOP=1 "$1" >"$2" 2>&1 <<SQL
CREATE TEMP TABLE samples (n int, what text);
DO \$\$
DECLARE
  stop timestamptz := clock_timestamp() + interval '$DURATION seconds';
  i int := 0;
BEGIN
  WHILE clock_timestamp() < stop LOOP
    PERFORM pg_stat_clear_snapshot();
    INSERT INTO samples
    SELECT i, CASE
        WHEN wait_event_type = 'Lock' AND wait_event = 'advisory' THEN 'waiting: advisory lock (event ids)'
        WHEN wait_event_type = 'Lock' AND wait_event = 'object' THEN 'waiting: object lock (NOTIFY queue)'
        WHEN wait_event_type = 'Lock' THEN 'waiting: lock ' || wait_event
        WHEN state = 'active' AND wait_event_type IS NULL THEN 'active, running'
        WHEN state = 'active' THEN 'active, waiting: ' || wait_event_type || '/' || wait_event
        WHEN state = 'idle in transaction' THEN 'idle in transaction (waiting for the server)'
        ELSE coalesce(state, '?')
      END
    FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND backend_type = 'client backend';
    i := i + 1;
    PERFORM pg_sleep(0.01);
  END LOOP;
END
\$\$;
\pset footer off
SELECT what AS "server connections doing (mean per sample)",
       round(count(*)::numeric / (SELECT max(n) + 1 FROM samples), 2) AS mean
FROM samples GROUP BY what ORDER BY mean DESC;
SELECT max(n) + 1 AS samples FROM samples;
SQL
}

# run ENGINE DATABASE_URL: one server, both modes; JSON in $OUT/ENGINE.{latency,throughput}.json
run() {
  local engine="$1" url="$2" log="$OUT/$1.server.log"
  echo "== $engine: server on CPU ${SERVER_CPU:-any}, loadgen on CPU ${LOADGEN_CPU:-any}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  ! curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null || die "something already answers on port $PORT"
  # shellcheck disable=SC2086 # SERVER_ENV is a list of words
  "${PIN_SERVER[@]}" env DATABASE_URL="$url" JWT_SECRET=bench-secret-0123456789abcdef0123456789abcdef \
    RUST_LOG=warn HOST=127.0.0.1 MAX_CONNECTIONS_PER_CLIENT=100000 PORT="$PORT" $SERVER_ENV "$BIN_DIR/marketplace" serve >"$log" 2>&1 &
  SERVER_PID=$!
  wait_healthy "$log"
  local lg=("$BIN_DIR/loadgen" --url "http://127.0.0.1:$PORT" --duration "$DURATION" --buyers "$BUYERS" --json)
  echo "-- rest-latency: $RATE requests/s for $DURATION s, $SELLERS seller sockets"
  "${PIN_LOADGEN[@]}" "${lg[@]}" --mode rest-latency --rate "$RATE" --sellers "$SELLERS" \
    | tee "$OUT/$engine.latency.json"
  sleep 2
  echo "-- write-throughput: $CLIENTS clients for $DURATION s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  if [ "$engine" = postgres ]; then
    pg_sample "$url" "$OUT/$engine.pg-activity.txt" &
    SAMPLER_PID=$!
  fi
  "${PIN_LOADGEN[@]}" "${lg[@]}" --mode write-throughput --clients "$CLIENTS" \
    | tee "$OUT/$engine.throughput.json"
  if [ -n "$SAMPLER_PID" ]; then
    wait "$SAMPLER_PID" || echo "(pg_stat_activity sampling failed; see $OUT/$engine.pg-activity.txt)"
    SAMPLER_PID=""
    cat "$OUT/$engine.pg-activity.txt"
  fi
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
      if [ -n "${PG_WITHOUT:-}" ]; then
        echo "== PG_WITHOUT=$PG_WITHOUT: a measurement, not the server as it ships (ids may leave commit order)"
        psql -X -q -v ON_ERROR_STOP=1 "$PG_URL/$PG_DB" -c "ALTER DATABASE $PG_DB SET search_path = public, pg_catalog" >/dev/null
        for what in $PG_WITHOUT; do
          case "$what" in
            lock) sig="pg_advisory_xact_lock(bigint)" ;;
            notify) sig="pg_notify(text, text)" ;;
            *) die "PG_WITHOUT: lock and/or notify, not $what" ;;
          esac
          psql -X -q -v ON_ERROR_STOP=1 "$PG_URL/$PG_DB" \
            -c "CREATE FUNCTION public.$sig RETURNS void LANGUAGE plpgsql AS \$\$BEGIN END\$\$" >/dev/null
        done
      fi
      run postgres "$PG_URL/$PG_DB"
      ;;
    *) die "unknown engine $engine (sqlite or postgres)" ;;
  esac
done

errors() { # json-file → "none" or "N×status, ..."
  jq -r '[.statuses | to_entries[] | select(.key != "201") | "\(.value)×\(.key)"] | if length == 0 then "none" else join(", ") end' "$1"
}
fmt() { # json-file jq-path → number with one decimal, or n/a
  jq -r "$2 | if . == null then \"n/a\" else (. * 10 | round / 10 | tostring) end" "$1"
}

echo
echo "== REST → socket and event-writing throughput ($BIN_DIR), $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s | %-44s | %-30s | %-30s\n' engine "rest-latency at $RATE/s: achieved, errors" "REST p50 / p99 / max ms" "action → socket p50 / p99 / max ms"
for engine in $ENGINES; do
  f="$OUT/$engine.latency.json"
  [ -s "$f" ] || continue
  printf '%-10s | %-44s | %-30s | %-30s\n' "$engine" \
    "$(fmt "$f" .achieved_rate)/s, $(errors "$f")" \
    "$(fmt "$f" .response_from_scheduled.p50_ms) / $(fmt "$f" .response_from_scheduled.p99_ms) / $(fmt "$f" .response_from_scheduled.max_ms)" \
    "$(fmt "$f" .action_to_socket.p50_ms) / $(fmt "$f" .action_to_socket.p99_ms) / $(fmt "$f" .action_to_socket.max_ms) ($(jq -r '"\(.deliveries)/\(.deliveries_expected)"' "$f"))"
done
printf '%-10s | %-44s | %-30s\n' engine "write-throughput, $CLIENTS clients: requests/s" "p50 / p99 / max ms, errors"
for engine in $ENGINES; do
  f="$OUT/$engine.throughput.json"
  [ -s "$f" ] || continue
  printf '%-10s | %-44s | %-30s\n' "$engine" "$(fmt "$f" .requests_per_s)" \
    "$(fmt "$f" .latency.p50_ms) / $(fmt "$f" .latency.p99_ms) / $(fmt "$f" .latency.max_ms), $(errors "$f")"
done
if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN { exit !(l > 1.5) }'; then
  echo "WARNING: load average above 1.5: other work shared the cores, the figures are pessimistic."
fi
echo "(logs and JSON in $OUT)"
