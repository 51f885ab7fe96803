#!/usr/bin/env bash
# Is PostgreSQL's commit order the limit of event writing? pgbench replays the transaction of
# one `POST /api/requests` (insert the request, take the event-id advisory lock, insert the
# event, NOTIFY, commit) without the application in between, in five variants: with and
# without the advisory lock, with and without NOTIFY, and the three in one statement (as
# modules/kernel/src/bus.rs sends them). Both serialize commits: the advisory
# lock explicitly (held until commit, WAL flush included), NOTIFY through the lock PostgreSQL
# takes in PreCommit_Notify to keep its queue in commit order (also held until the commit is
# flushed). Prints transactions/s (and mean latency) per variant and client count.
#
#   bench/pg-commit-order/run.sh                       # 10 and 32 clients, 10 s per variant
#   CLIENTS="1 10 32" DURATION=20 bench/pg-commit-order/run.sh
#
# Environment: PG_URL (postgres://postgres@127.0.0.1:5432), PG_DB (mk_pg_commit_order; dropped
# and created again), CLIENTS ("10 32"), DURATION (10). Needs psql and pgbench.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
PG_DB="${PG_DB:-mk_pg_commit_order}"
CLIENTS="${CLIENTS:-10 32}"
DURATION="${DURATION:-10}"

# The statements of one request's transaction, as the server sends them (no colons inside:
# pgbench reads a colon and a word as a variable).
REQUEST="INSERT INTO purchase_requests (id, buyer_id, title, description, category, budget_amount, budget_currency, status, accepted_offer_id, created_at, updated_at)
  VALUES (gen_random_uuid(), '00000000-0000-0000-0000-000000000001', 'pgbench request', 'pgbench', 'pgbench', NULL, NULL, 'open', NULL, now(), now())
  RETURNING id, buyer_id, title, description, category, budget_amount, budget_currency, status, accepted_offer_id, created_at, updated_at;"
EVENT="INSERT INTO events (name, payload, audience, created_at)
  SELECT 'request' || chr(58) || 'created',
    json_build_object('id', gen_random_uuid(), 'buyerId', '00000000-0000-0000-0000-000000000001', 'title', 'pgbench request',
      'description', 'pgbench', 'category', 'pgbench', 'budget', NULL, 'status', 'open', 'acceptedOfferId', NULL,
      'createdAt', now(), 'updatedAt', now()),
    json_build_object('rooms', json_build_array('sellers')), now()"
LOCK="SELECT pg_advisory_xact_lock(7242001);"
NOTIFY="SELECT pg_notify('marketplace_events', '');"
script() { # variant → the pgbench script
  echo "BEGIN;"
  echo "$REQUEST"
  case "$1" in
    lock-notify) printf '%s\n%s\n  RETURNING id;\n%s\n' "$LOCK" "$EVENT" "$NOTIFY" ;;
    one-statement)
      echo "WITH commit_order AS (SELECT pg_advisory_xact_lock(7242001)), wake AS (SELECT pg_notify('marketplace_events', ''))"
      printf '%s\n  FROM commit_order, wake\n  RETURNING id;\n' "$EVENT"
      ;;
    notify) printf '%s\n  RETURNING id;\n%s\n' "$EVENT" "$NOTIFY" ;;
    lock) printf '%s\n%s\n  RETURNING id;\n' "$LOCK" "$EVENT" ;;
    neither) printf '%s\n  RETURNING id;\n' "$EVENT" ;;
  esac
  echo "COMMIT;"
}
SCRIPTS="$(mktemp -d -t pg-commit-order.XXXXXX)"
trap 'rm -rf "$SCRIPTS"' EXIT

psql -X -q -v ON_ERROR_STOP=1 "$PG_URL/postgres" \
  -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" -c "CREATE DATABASE $PG_DB" >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 "$PG_URL/$PG_DB" -f "$HERE/schema.sql" >/dev/null 2>&1

echo "== $(date -u +%Y-%m-%dT%H:%MZ), $(psql -X -At "$PG_URL/$PG_DB" -c 'SHOW server_version'), synchronous_commit $(psql -X -At "$PG_URL/$PG_DB" -c 'SHOW synchronous_commit'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s' "variant \\ clients"
for c in $CLIENTS; do printf ' %18s' "$c: tps (lat ms)"; done
echo
for variant in ${VARIANTS:-lock-notify one-statement notify lock neither}; do
  case $variant in
    lock-notify) label="lock, insert, NOTIFY (3 stmts)" ;;
    notify) label="NOTIFY, no advisory lock" ;;
    lock) label="advisory lock, no NOTIFY" ;;
    one-statement) label="lock + insert + NOTIFY in one stmt" ;;
    neither) label="neither" ;;
  esac
  printf '%-34s' "$label"
  for c in $CLIENTS; do
    script "$variant" >"$SCRIPTS/$variant.sql"
    out=$(pgbench -n -M prepared -c "$c" -j 1 -T "$DURATION" -f "$SCRIPTS/$variant.sql" "$PG_URL/$PG_DB" 2>&1) \
      || { echo; echo "$out" >&2; exit 1; }
    tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out" | head -1)
    lat=$(sed -nE 's/^latency average = ([0-9.]+) ms/\1/p' <<<"$out")
    printf ' %18s' "$(printf '%.0f (%.1f)' "$tps" "$lat")"
  done
  echo
done
