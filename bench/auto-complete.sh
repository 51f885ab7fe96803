#!/usr/bin/env bash
# Automatic completion at scale (issue 21): REQUESTS delivered requests whose automatic
# completion timers (`requests.auto-complete`, one per request) all fall due at the same
# moment, on each engine. Prints how long after that moment every request was completed and
# every release payout created and completed (the sandbox completes a payout on its first
# poll), the server's peak RSS, and whether each request got exactly one payout.
#
#   bench/auto-complete.sh                       # 10,000 requests, PostgreSQL then SQLite
#   REQUESTS=2000 ENGINES=sqlite bench/auto-complete.sh
#
# The requests are made through the REST API as buyers and a seller would (`loadgen --mode
# deliveries`: request, offer, accept, payment, the sandbox's signed PAID callback, deliver),
# with AUTO_COMPLETE_AFTER_SECS at a day. Then one statement moves every request's
# `autoCompleteAt` and its timer's `run_at` to the same instant a few seconds ahead (what
# would happen if they had all been delivered at the same moment a day earlier), and the
# server, still running, is watched through the database until everything is done.
#
# Environment (all optional): REQUESTS (10000), CLIENTS (16 REST clients making them),
# ENGINES ("postgres sqlite"), PORT (3912), PG_URL (postgres://postgres@127.0.0.1:5432), PG_DB
# (mk_auto_bench; dropped and created again), SERVER_ENV (extra VAR=value words for the
# server), SKIP_BUILD (1 = use the binaries in BIN_DIR as they are), BIN_DIR (target/release),
# OUT (a fresh temporary directory for logs and the SQLite file).
# Needs: cargo, curl, psql (PostgreSQL) and sqlite3 (SQLite).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

REQUESTS="${REQUESTS:-10000}"
CLIENTS="${CLIENTS:-16}"
ENGINES="${ENGINES:-postgres sqlite}"
PORT="${PORT:-3912}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
PG_DB="${PG_DB:-mk_auto_bench}"
OUT="${OUT:-$(mktemp -d)}"
BIN_DIR="${BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}"
mkdir -p "$OUT"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release -p marketplace-api -p loadgen
fi

SERVER_PID=""
cleanup() { [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

RESULTS="$OUT/results.txt"
: > "$RESULTS"

for ENGINE in $ENGINES; do
  case "$ENGINE" in
    postgres)
      psql "$PG_URL/postgres" -q -c "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB"
      DB="$PG_URL/$PG_DB"
      sql() { psql "$DB" -Atq -c "$1"; }
      PAYLOAD="payload::text"
      ;;
    sqlite)
      FILE="$OUT/auto-complete.db"
      rm -f "$FILE" "$FILE-wal" "$FILE-shm"
      DB="sqlite://$FILE?mode=rwc"
      sql() { sqlite3 -cmd ".timeout 30000" "$FILE" "$1"; }
      PAYLOAD="payload"
      ;;
    *) echo "unknown engine $ENGINE"; exit 1 ;;
  esac

  # shellcheck disable=SC2086 # SERVER_ENV is a list of words on purpose
  env DATABASE_URL="$DB" PORT="$PORT" JWT_SECRET=bench-secret-0123456789abcdef0123456789abcdef \
    AUTO_COMPLETE_AFTER_SECS=86400 PAYOUT_POLL_SECS=1 RUST_LOG=warn ${SERVER_ENV:-} \
    "$BIN_DIR/marketplace" serve > "$OUT/server-$ENGINE.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 300); do curl -fs "http://127.0.0.1:$PORT/readyz" > /dev/null && break; sleep 0.1; done

  echo "[$ENGINE] making $REQUESTS delivered requests over REST ($CLIENTS clients)"
  SETUP=$("$BIN_DIR/loadgen" --mode deliveries --url "http://127.0.0.1:$PORT" \
    --requests "$REQUESTS" --clients "$CLIENTS" --buyers 8)
  echo "[$ENGINE] $SETUP"
  TIMERS=$(sql "SELECT count(*) FROM timers WHERE kind = 'requests.auto-complete'")

  # Every timer and every request's autoCompleteAt to one instant, 5 s from now.
  if [[ "$ENGINE" == postgres ]]; then
    DUE_EPOCH=$(sql "SELECT extract(epoch FROM date_trunc('second', now()) + interval '5 seconds')")
    DUE_SQL="to_timestamp($DUE_EPOCH)"
  else
    DUE_EPOCH=$(( $(date +%s) + 5 ))
    DUE_SQL="'$(date -u -d "@$DUE_EPOCH" +%Y-%m-%dT%H:%M:%S.000000+00:00)'"
  fi
  sql "UPDATE purchase_requests SET auto_complete_at = $DUE_SQL WHERE status = 'delivered'; \
       UPDATE timers SET run_at = $DUE_SQL WHERE kind = 'requests.auto-complete'" > /dev/null
  echo "[$ENGINE] $TIMERS timers due at $(date -u -d "@${DUE_EPOCH%.*}" +%T) UTC"

  T_COMPLETED="" ; T_CREATED="" ; T_PAID=""
  DEADLINE=$(( $(date +%s) + 1800 ))
  while :; do
    read -r COMPLETED CREATED PAID < <(sql "SELECT \
        (SELECT count(*) FROM purchase_requests WHERE status = 'completed'), \
        (SELECT count(*) FROM payouts), \
        (SELECT count(*) FROM payouts WHERE status = 'completed')" | tr '|' ' ')
    NOW=$(date +%s.%N)
    [[ -z "$T_COMPLETED" && "$COMPLETED" -ge "$REQUESTS" ]] && T_COMPLETED=$NOW
    [[ -z "$T_CREATED" && "$CREATED" -ge "$REQUESTS" ]] && T_CREATED=$NOW
    [[ -z "$T_PAID" && "$PAID" -ge "$REQUESTS" ]] && T_PAID=$NOW
    [[ -n "$T_COMPLETED" && -n "$T_CREATED" && -n "$T_PAID" ]] && break
    if [[ $(date +%s) -gt $DEADLINE ]]; then
      echo "[$ENGINE] timed out: $COMPLETED completed, $CREATED payouts, $PAID paid"
      break
    fi
    sleep 0.2
  done
  sleep 5   # a second completion or payout of anything would show now
  PEAK_KB=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
  RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
  CHECK=$(sql "SELECT \
      (SELECT count(*) FROM purchase_requests WHERE status = 'completed'), \
      (SELECT count(*) FROM payouts), \
      (SELECT count(DISTINCT request_id) FROM payouts), \
      (SELECT count(*) FROM (SELECT request_id FROM payouts GROUP BY request_id HAVING count(*) > 1) AS twice), \
      (SELECT count(*) FROM events WHERE name = 'request:status-updated' AND $PAYLOAD LIKE '%\"completed\"%'), \
      (SELECT count(*) FROM timers WHERE kind = 'requests.auto-complete')")
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  echo "$ENGINE $REQUESTS $DUE_EPOCH ${T_COMPLETED:-0} ${T_CREATED:-0} ${T_PAID:-0} $PEAK_KB $RSS_KB ${CHECK//|/ }" >> "$RESULTS"
done

python3 - "$RESULTS" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print("| engine | timers due at once | all completed after | all payouts created after | all payouts completed after | completions/s | peak RSS | payouts | requests paid twice | completion events | timers left |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    engine, n, due, t_done, t_created, t_paid, peak, rss, completed, payouts, distinct, twice, events, left = r
    n, due = int(n), float(due)
    secs = lambda t: float(t) - due if float(t) > 0 else float("nan")
    s_done = secs(t_done)
    print(f"| {engine} | {n:,} | {s_done:.1f} s | {secs(t_created):.1f} s | {secs(t_paid):.1f} s | "
          f"{n / s_done:,.0f} | {int(peak) / 1024:.0f} MiB | {int(payouts):,} | {int(twice)} | {int(events):,} | {int(left)} |")
    ok = int(completed) == n and int(payouts) == n and int(distinct) == n and int(twice) == 0 and int(events) == n and int(left) == 0
    print(f"<!-- {engine}: exactly one completion and one payout per request: {ok} -->")
PY
echo "logs: $OUT"
