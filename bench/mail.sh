#!/usr/bin/env bash
# Email digests at scale (issue 19): USERS offline users, each with PER_USER unread
# notifications in one window, all falling due at the same moment; the release server sends
# the digests to a local SMTP sink (aiosmtpd, tests/py/smtp_sink.py --count-only) and this
# prints digests sent per second, the server's peak RSS, and whether every user got exactly
# one email.
#
#   bench/mail.sh                       # 10,000 users × 3 notifications, PostgreSQL
#   USERS=2000 bench/mail.sh
#
# The users, notifications and digest timers are written straight into the database (what
# the `mail.digest-scheduler` subscriber would have scheduled for them), so the figure is the
# digest path alone: timer claims, the digest transaction, rendering, SMTP.
#
# Environment (all optional): USERS (10000), PER_USER (3), PORT (3911), PG_URL
# (postgres://postgres@127.0.0.1:5432), PG_DB (mk_mail_bench; dropped and created again),
# SKIP_BUILD (1 = use target/release/marketplace as it is), OUT (a fresh temporary directory).
# Needs: cargo, psql, python3 (the tests' virtualenv tests/py/.venv with aiosmtpd; made if
# missing), curl.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

USERS="${USERS:-10000}"
PER_USER="${PER_USER:-3}"
PORT="${PORT:-3911}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
PG_DB="${PG_DB:-mk_mail_bench}"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/marketplace"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release -p marketplace-api
fi
VENV="$ROOT/tests/py/.venv"
if ! "$VENV/bin/python" -c "import aiosmtpd" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$ROOT/tests/py/requirements.txt"
fi

psql "$PG_URL/postgres" -q -c "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB"
DB="$PG_URL/$PG_DB"

# The sink: prints its port, then runs until its stdin closes.
mkfifo "$OUT/sink.in"
"$VENV/bin/python" "$ROOT/tests/py/smtp_sink.py" --dir "$OUT/sink" --count-only \
  < "$OUT/sink.in" > "$OUT/sink.port" 2> "$OUT/sink.log" &
SINK_PID=$!
exec 9> "$OUT/sink.in"
for _ in $(seq 100); do [[ -s "$OUT/sink.port" ]] && break; sleep 0.1; done
SMTP_PORT="$(head -1 "$OUT/sink.port")"

DATABASE_URL="$DB" PORT="$PORT" JWT_SECRET=bench-secret-0123456789abcdef0123456789abcdef \
  SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" MAIL_FROM='Marketplace <no-reply@bench.local>' \
  APP_URL=https://app.example EMAIL_DIGEST_DELAY_SECS=900 RUST_LOG=warn \
  "$BIN" serve > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
cleanup() {
  kill "$SERVER_PID" 2>/dev/null || true
  exec 9>&- || true
  kill "$SINK_PID" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$PORT/readyz" > /dev/null && break; sleep 0.1; done

# Users, their unread notifications (created now) and one digest timer each, due in 20 s.
psql "$DB" -q <<SQL
INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)
SELECT gen_random_uuid(), 'user' || i || '@bench.local', 'User ' || i, 'buyer', 'x', now(), now()
FROM generate_series(1, $USERS) AS i;
INSERT INTO notifications (id, recipient_id, kind, title, body, data, read_at, created_at, source_event_id)
SELECT gen_random_uuid(), u.id, 'request:offer-received', 'New offer on your request',
       'A seller offered ' || (100 + k) || '.00 USD.', json_build_object('requestId', gen_random_uuid()),
       NULL, now() - interval '1 hour', k
FROM users u, generate_series(1, $PER_USER) AS k;
INSERT INTO timers (id, kind, key, payload, run_at, attempts, generation, created_at, updated_at)
SELECT gen_random_uuid(), 'mail.digest', u.id::text, json_build_object('userId', u.id),
       now() + interval '20 seconds', 0, 0, now(), now()
FROM users u;
SQL
DUE=$(psql "$DB" -Atc "SELECT extract(epoch FROM min(run_at)) FROM timers")
echo "due at $(date -d @"${DUE%.*}" -u +%T) UTC; waiting for $USERS emails"

ACCEPTED="$OUT/sink/accepted.jsonl"
DEADLINE=$(( $(date +%s) + 1200 ))
while :; do
  N=$(cat "$ACCEPTED" 2>/dev/null | wc -l)
  [[ "$N" -ge "$USERS" ]] && break
  if [[ $(date +%s) -gt $DEADLINE ]]; then echo "timed out with $N emails"; break; fi
  sleep 0.2
done
DONE=$(date +%s.%N)
sleep 5   # anything sent twice would arrive now
PEAK_KB=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
TOTAL=$(wc -l < "$ACCEPTED")
DISTINCT=$(sort -u "$ACCEPTED" | wc -l)
SENT_ROWS=$(psql "$DB" -Atc "SELECT count(*) FROM email_digests WHERE status = 'sent'")
python3 - "$DUE" "$DONE" "$USERS" "$TOTAL" "$DISTINCT" "$PEAK_KB" "$SENT_ROWS" "$PER_USER" <<'PY'
import sys
due, done, users, total, distinct, peak_kb, sent_rows, per_user = sys.argv[1:]
secs = float(done) - float(due)
print(f"| users | notifications each | emails accepted | distinct recipients | digests sent/s | peak RSS |")
print(f"| --- | --- | --- | --- | --- | --- |")
print(f"| {int(users):,} | {per_user} | {int(total):,} | {int(distinct):,} | {int(users)/secs:,.0f} ({secs:.1f} s) | {int(peak_kb)/1024:.0f} MiB |")
print(f"digest rows sent: {sent_rows}; exactly one per user: {int(total) == int(users) == int(distinct)}")
PY
echo "logs: $OUT"
