#!/usr/bin/env bash
# Cluster benchmark (issue 9): NODES marketplace nodes on this machine behind one PostgreSQL
# database and one Redis, SOCKETS authenticated websocket sockets spread evenly over them by
# several `apps/loadgen` processes (one process holds at most ~19,900 sockets), and an admin
# announcement caused on node 0 fanned out to all of them, ROUNDS times.
#
#   bench/cluster.sh                          # 4 nodes, 60,000 sockets, 5 rounds
#   NODES=3 SOCKETS=3000 bench/cluster.sh     # a quick check
#
# Prints, first on the idle cluster (a few sockets per node): the cross-node delivery latency
# at rest, node by node (node 0 is where the event is caused); then under SOCKETS sockets:
# delivered count (must be ROUNDS × SOCKETS), fan-out latency over every delivery (p50/p99),
# the time until the last socket had it (median and worst round), and RSS per socket per node.
#
# Environment (all optional): NODES (4), SOCKETS (60000), ROUNDS (5), PER_PROCESS (15000
# sockets per loadgen process), USERS (50 seller accounts, registered before the memory is read), SOURCES (4 source
# addresses 127.0.0.2..), CONCURRENCY (128 handshakes in flight per process), BASE_PORT (3910),
# REST_ROUNDS (50 rounds for the latency at rest), PG_SERVER (postgres://postgres@127.0.0.1:5432),
# REDIS_URL (redis://127.0.0.1:6379), SKIP_BUILD (1 = use target/release as it is), OUT (log
# directory; a fresh temporary one by default).
#
# Needs: cargo, psql, redis (running), python3, curl, an open-files hard limit of at least 20,000.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

NODES="${NODES:-4}"
SOCKETS="${SOCKETS:-60000}"
ROUNDS="${ROUNDS:-5}"
PER_PROCESS="${PER_PROCESS:-15000}"
USERS="${USERS:-50}"
SOURCES="${SOURCES:-4}"
CONCURRENCY="${CONCURRENCY:-128}"
BASE_PORT="${BASE_PORT:-3910}"
REST_ROUNDS="${REST_ROUNDS:-50}"
PG_SERVER="${PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
OUT="${OUT:-$(mktemp -d -t cluster-bench.XXXXXX)}"
mkdir -p "$OUT"
BIN=target/release

JWT_SECRET="bench-secret-0123456789abcdef0123456789abcdef"
ADMIN_EMAIL="admin@bench.local"
ADMIN_PASSWORD="bench-password-1"
DB="mk_bench_cluster_$$"
PREFIX="bench-cluster-$$"

die() { echo "cluster.sh: $*" >&2; exit 1; }

ulimit -n 20000 2>/dev/null || die "cannot raise the open-files limit to 20000 (hard limit $(ulimit -Hn))"
for tool in cargo psql python3 curl; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[ "$PER_PROCESS" -le 19900 ] || die "PER_PROCESS=$PER_PROCESS: one loadgen process holds at most ~19,900 sockets"
[ $((SOCKETS % NODES)) -eq 0 ] || die "SOCKETS must be a multiple of NODES"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== building release binaries"
  cargo build --release -p marketplace-api -p loadgen
fi
[ -x "$BIN/marketplace" ] && [ -x "$BIN/loadgen" ] || die "no binaries in $BIN (run without SKIP_BUILD=1)"

psql_admin() { psql "$PG_SERVER/postgres" -v ON_ERROR_STOP=1 -qAtc "$1"; }
PIDS=()
LOADGENS=()
cleanup() {
  for p in "${LOADGENS[@]}" "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${LOADGENS[@]}" "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  psql_admin "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM
psql_admin "CREATE DATABASE $DB"

URLS=""
for i in $(seq 0 $((NODES - 1))); do
  port=$((BASE_PORT + i))
  env DATABASE_URL="$PG_SERVER/$DB" REDIS_URL="$REDIS_URL" REDIS_KEY_PREFIX="$PREFIX" \
    JWT_SECRET="$JWT_SECRET" ADMIN_EMAIL="$ADMIN_EMAIL" ADMIN_PASSWORD="$ADMIN_PASSWORD" \
    RUST_LOG=warn HOST=127.0.0.1 MAX_CONNECTIONS_PER_CLIENT=100000 PORT="$port" "$BIN/marketplace" serve >"$OUT/node$i.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break
    kill -0 "${PIDS[$i]}" 2>/dev/null || die "node $i exited during start-up; see $OUT/node$i.log"
    sleep 0.5
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" || die "node $i not ready after 120 s"
  URLS="${URLS:+$URLS,}http://127.0.0.1:$port"
done
PID_LIST=$(IFS=,; echo "${PIDS[*]}")
rss() { sed -nE 's/^VmRSS:\s+([0-9]+) kB/\1/p' "/proc/$1/status"; }
echo "== $NODES nodes up (pids $PID_LIST), database $DB, Redis prefix $PREFIX; logs in $OUT"

echo "== at rest: $((NODES * 5)) sockets ($((5)) per node), $REST_ROUNDS announcements caused on node 0"
"$BIN/loadgen" --url "$URLS" --sockets $((NODES * 5)) --users 5 --sources 1 --rounds "$REST_ROUNDS" \
  --trigger announcement --admin-email "$ADMIN_EMAIL" --admin-password "$ADMIN_PASSWORD" \
  --marks-file "$OUT/rest.marks" >"$OUT/rest.loadgen.log" 2>&1 || die "loadgen at rest failed; see $OUT/rest.loadgen.log"
sleep 2

echo "== $USERS seller accounts (registered round robin over the nodes) and the admin's token"
python3 - "$URLS" "$USERS" "$ADMIN_EMAIL" "$ADMIN_PASSWORD" "$OUT" "$$" <<'PY' || die "registration failed"
import json, sys, urllib.request
urls, users, email, password, out, run = sys.argv[1].split(","), int(sys.argv[2]), *sys.argv[3:]
def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(req) as res:
        return json.load(res)["token"]
with open(f"{out}/sellers.tokens", "w") as f:
    for i in range(users):
        f.write(post(f"{urls[i % len(urls)]}/api/auth/register", {
            "email": f"bench-seller-{run}-{i}@bench.local", "password": "bench-password-1",
            "name": f"bench seller {i}", "role": "seller"}) + "\n")
with open(f"{out}/admin.token", "w") as f:
    f.write(post(f"{urls[0]}/api/auth/login", {"email": email, "password": password}))
PY
sleep 3   # the hashing threads give their memory back once their queue is empty

declare -a RSS_BEFORE
for i in $(seq 0 $((NODES - 1))); do RSS_BEFORE[$i]=$(rss "${PIDS[$i]}"); done

processes=$(( (SOCKETS + PER_PROCESS - 1) / PER_PROCESS ))
echo "== $SOCKETS sockets from $processes loadgen processes, $ROUNDS announcement rounds, load average $(cut -d' ' -f1-3 /proc/loadavg)"
remaining=$SOCKETS
for p in $(seq 1 "$processes"); do
  n=$(( remaining < PER_PROCESS ? remaining : PER_PROCESS ))
  remaining=$((remaining - n))
  log="$OUT/loadgen$p.log"
  common=(--url "$URLS" --sockets "$n" --tokens-file "$OUT/sellers.tokens" --sources "$SOURCES" --concurrency "$CONCURRENCY"
    --rounds "$ROUNDS" --marks-file "$OUT/loadgen$p.marks")
  if [ "$p" -lt "$processes" ]; then
    "$BIN/loadgen" "${common[@]}" --passive --start-after 900 >"$log" 2>&1 &
    LOADGENS+=($!)
    # The next process connects only once this one holds all its sockets.
    for _ in $(seq 1 1200); do
      grep -q '^passive: waiting' "$log" && break
      kill -0 "${LOADGENS[-1]}" 2>/dev/null || die "loadgen $p exited; see $log"
      sleep 0.5
    done
    grep -q '^passive: waiting' "$log" || die "loadgen $p did not connect in 600 s; see $log"
    echo "   loadgen $p (passive): $(grep '^connected' "$log")"
  else
    "$BIN/loadgen" "${common[@]}" --start-after 5 --trigger announcement \
      --trigger-token "$(cat "$OUT/admin.token")" >"$log" 2>&1 &
    LOADGENS+=($!)
    for _ in $(seq 1 1200); do
      grep -q '^connected' "$log" && break
      kill -0 "${LOADGENS[-1]}" 2>/dev/null || die "loadgen $p exited; see $log"
      sleep 0.5
    done
    echo "   loadgen $p (active): $(grep '^connected' "$log" || echo 'did not connect')"
    sleep 3
    declare -a RSS_AFTER
    for i in $(seq 0 $((NODES - 1))); do RSS_AFTER[$i]=$(rss "${PIDS[$i]}"); done
  fi
done
for pid in "${LOADGENS[@]}"; do wait "$pid" || true; done
LOADGENS=()

echo
echo "== results ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, release build, PostgreSQL + Redis, load average $(cut -d' ' -f1-3 /proc/loadavg))"
grep -h '^connected\|^delivered\|only ' "$OUT"/loadgen*.log | sed 's/^/   /'
per_node=$((SOCKETS / NODES))
for i in $(seq 0 $((NODES - 1))); do
  awk -v n="$i" -v b="${RSS_BEFORE[$i]}" -v a="${RSS_AFTER[$i]}" -v s="$per_node" \
    'BEGIN { printf "   node %d RSS: %.0f MiB with %d sockets, %.1f KiB per socket\n", n, a / 1024, s, (a - b) / s }'
done
python3 - "$OUT" "$ROUNDS" "$SOCKETS" "$NODES" <<'PY'
import glob, statistics, sys
out, rounds, sockets, nodes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def load(paths):
    marks = []
    for p in paths:
        with open(p) as f:
            for line in f:
                r, n, ms = line.split()
                marks.append((int(r), int(n), float(ms)))
    return marks

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))] if v else float("nan")

rest = load([f"{out}/rest.marks"])
print("   at rest (idle cluster): first socket per node and round, ms from the REST call on node 0:")
for n in range(nodes):
    firsts = {}
    for r, node, ms in rest:
        if node == n:
            firsts[r] = min(ms, firsts.get(r, ms))
    v = list(firsts.values())
    label = "caused here" if n == 0 else "cross-node"
    print(f"     node {n} ({label}): p50 {pct(v, 50):.1f}, p95 {pct(v, 95):.1f}, max {max(v) if v else float('nan'):.1f}")

marks = load(sorted(glob.glob(f"{out}/loadgen*.marks")))
every = [ms for _, _, ms in marks]
last = {}
for r, _, ms in marks:
    last[r] = max(ms, last.get(r, 0.0))
print(f"   delivered {len(marks)} of {rounds * sockets} ({rounds} rounds x {sockets} sockets)")
print(f"   fan-out, every delivery (ms): p50 {pct(every, 50):.1f}, p99 {pct(every, 99):.1f}")
if last:
    print(f"   REST call -> last socket (ms): median of rounds {statistics.median(last.values()):.1f}, worst round {max(last.values()):.1f}")
for n in range(nodes):
    v = [ms for _, node, ms in marks if node == n]
    print(f"     node {n}: {len(v)} deliveries, p50 {pct(v, 50):.1f}, p99 {pct(v, 99):.1f}")
PY
