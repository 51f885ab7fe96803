#!/usr/bin/env bash
# schemathesis (an outside fuzzer) against the served OpenAPI document, as a buyer and as an
# admin, every check but `positive_data_acceptance`. Starts its own server on a free port with
# a fresh SQLite database, and exits non-zero on any finding.
#
#   tests/fuzz/run.sh                # debug build, 60 s per role
#   FUZZ_PROFILE=release FUZZ_SECS=30 tests/fuzz/run.sh
#
# Needs `schemathesis` on PATH (pip install -r tests/fuzz/requirements.txt) or FUZZ_ST=/path/to/st.
set -euo pipefail
cd "$(dirname "$0")/../.."

PROFILE=${FUZZ_PROFILE:-debug}
SECS=${FUZZ_SECS:-60}
ST=${FUZZ_ST:-$(command -v st || command -v schemathesis || true)}
case "$ST" in /*|"") ;; *) ST="$PWD/$ST" ;; esac
[ -n "$ST" ] || { echo "schemathesis not found: pip install -r tests/fuzz/requirements.txt" >&2; exit 2; }

if [ "$PROFILE" = release ]; then
  cargo build --release -q -p marketplace-api
else
  cargo build -q -p marketplace-api
fi
BIN=target/$PROFILE/marketplace

WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
export ADMIN_EMAIL=${ADMIN_EMAIL:-admin@fuzz.local}
export ADMIN_PASSWORD=${ADMIN_PASSWORD:-fuzz-admin-password}

SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

env -u REDIS_URL HOST=127.0.0.1 PORT="$PORT" DATABASE_URL="sqlite://$WORK/fuzz.db?mode=rwc" \
  JWT_SECRET=fuzz-secret-0123456789abcdef0123456789abcdef PAYMENT_PROVIDER=sandbox \
  STORAGE_URL="file://$WORK/uploads" PUBLIC_URL="$BASE" RUST_LOG=warn "$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fs "$BASE/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.2
done

token() { python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
BUYER=$(curl -fs -H 'content-type: application/json' -X POST "$BASE/api/auth/register" \
  -d '{"email":"buyer@fuzz.local","password":"fuzz-buyer-password","name":"Fuzz Buyer","role":"buyer"}' | token)
ADMIN=$(curl -fs -H 'content-type: application/json' -X POST "$BASE/api/auth/login" \
  -d "{\"email\":\"$ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\"}" | token)

status=0
for role in buyer admin; do
  if [ $role = buyer ]; then T=$BUYER; else T=$ADMIN; fi
  echo "== schemathesis as $role ($SECS s)"
  # From the scratch directory: schemathesis keeps a cache in its working directory.
  (cd "$WORK" && "$ST" run "$BASE/api/openapi.json" --url "$BASE" -H "Authorization: Bearer $T" \
    --checks all --exclude-checks positive_data_acceptance \
    --max-time "$SECS" --seed "${FUZZ_SEED:-1}" --no-color \
    ${FUZZ_ARGS:-}) || status=1
done
if grep -q 'panicked' "$WORK/server.log"; then
  echo "the server panicked:" >&2; grep -A3 panicked "$WORK/server.log" >&2; status=1
fi
exit $status
