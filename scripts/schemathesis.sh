#!/usr/bin/env bash
# Schemathesis against the OpenAPI document a running `referral all` serves at /openapi.json,
# once per credential (admin JWT, user JWT, shop API key), from a fresh state:
#   - its own Postgres database, NATS stream prefix, ClickHouse database and ports;
#   - random secrets; `referral migrate`, then `referral all` in the background;
#   - a shop, a user it signs up with two referrals below, three purchases and a refund
#     (so reports, analytics and the live stream answer with data), and the three credentials;
#   - schemathesis (installed into .local/schemathesis-venv if missing) with the checks
#     not_a_server_error, status_code_conformance, content_type_conformance and
#     response_schema_conformance, a bounded number of examples per operation;
#   - on exit (any exit): the service stopped, the database, ClickHouse database and streams dropped.
# Exits non-zero when a run finds a failure or anything in the setup fails.
#
#   scripts/schemathesis.sh [-- EXTRA SCHEMATHESIS RUN ARGS]   e.g. -- --baseline "$PWD/.local/st-baseline.json"
# (schemathesis runs from the run's output directory: give extra paths as absolute ones)
#
# Environment (all optional):
#   REFERRAL_BIN        the binary to run (default target/debug/referral; this script never builds)
#   ST_MAX_EXAMPLES     examples per operation and phase (default 5; ~1 minute for all three)
#   ST_PHASES           schemathesis phases (default examples,coverage,fuzzing; add stateful for more)
#   ST_CREDENTIALS      which runs (default "admin user shop")
#   ST_SEED             schemathesis seed (default: random, printed)
#   ST_WORKERS          schemathesis workers (default 2)
#   SCHEMATHESIS_VERSION  pip pin (default 4.32.5; the options used here are 4.x's)
#   ST_PG_URL           Postgres server (default postgres://postgres@127.0.0.1:5432)
#   ST_NATS_URL         NATS server (default nats://127.0.0.1:4222, the machine's, as tests use)
#   ST_CLICKHOUSE_URL   ClickHouse HTTP (default http://127.0.0.1:18123); analytics are
#                       exercised only when it answers, else they are 503 analytics_disabled
# Output: .local/schemathesis/<run>/ (service log, schemathesis output, NDJSON/JUnit reports,
# and <credential>.failures.txt: each distinct failure with a curl line reproducing it).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
log() { printf '[schemathesis] %s\n' "$*" >&2; }
warn() { printf '[schemathesis] WARNING: %s\n' "$*" >&2; }
die() {
  printf '[schemathesis] ERROR: %s\n' "$*" >&2
  exit 1
}

EXTRA_ARGS=()
if [[ "${1:-}" == "--" ]]; then
  shift
  EXTRA_ARGS=("$@")
elif (($# > 0)); then
  die "usage: scripts/schemathesis.sh [-- EXTRA SCHEMATHESIS RUN ARGS]"
fi

BIN="${REFERRAL_BIN:-target/debug/referral}"
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-5}"
PHASES="${ST_PHASES:-examples,coverage,fuzzing}"
CREDENTIALS="${ST_CREDENTIALS:-admin user shop}"
SEED="${ST_SEED:-$((RANDOM * 32768 + RANDOM))}"
WORKERS="${ST_WORKERS:-2}"
ST_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
PG_URL="${ST_PG_URL:-postgres://postgres@127.0.0.1:5432}"
NATS="${ST_NATS_URL:-nats://127.0.0.1:4222}"
CH_URL="${ST_CLICKHOUSE_URL:-http://127.0.0.1:18123}"
VENV="$LOCAL_DIR/schemathesis-venv"
ST="$VENV/bin/schemathesis"
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance

[[ -x "$BIN" ]] || die "no binary at $BIN: build it (cargo build -p referral) or set REFERRAL_BIN"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

# --- names of this run: database, stream prefix, ClickHouse database, ports ------------------
TAG="st_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
RUN_DIR="$LOCAL_DIR/schemathesis/$(date -u +%Y%m%dT%H%M%SZ)-$TAG"
mkdir -p "$RUN_DIR"
PID_FILE="$RUN_DIR/referral.pid"
SERVICE_LOG="$RUN_DIR/referral.log"
DB="referral_$TAG"
CH_DB="$TAG"
PREFIX="$TAG"
STREAM_PREFIX="$(tr '[:lower:].-' '[:upper:]__' <<<"$PREFIX")"

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 12000))
    tcp_open 127.0.0.1 "$port" || {
      echo "$port"
      return 0
    }
  done
  die "no free port found in 20000-32000"
}
API_PORT="$(free_port)"
INGEST_PORT="$(free_port)"
while [[ "$INGEST_PORT" == "$API_PORT" ]]; do INGEST_PORT="$(free_port)"; done
BASE="http://127.0.0.1:$API_PORT"

# --- services this needs (the machine's; nothing is started here) -----------------------------
PG_HOSTPORT="${PG_URL#*@}"
PG_HOST="${PG_HOSTPORT%:*}"
PG_PORT="${PG_HOSTPORT##*:}"
PG_USER="${PG_URL#postgres://}"
PG_USER="${PG_USER%@*}"
NATS_HOSTPORT="${NATS#nats://}"
NATS_HOST="${NATS_HOSTPORT%:*}"
NATS_PORT="${NATS_HOSTPORT##*:}"
pg_isready -q -h "$PG_HOST" -p "$PG_PORT" || die "Postgres does not answer at $PG_HOST:$PG_PORT (scripts/services.sh up)"
tcp_open "$NATS_HOST" "$NATS_PORT" || die "NATS does not answer at $NATS (scripts/services.sh up)"
CH_ENABLED=false
if http_says "$CH_URL/ping" "Ok."; then
  CH_ENABLED=true
else
  warn "ClickHouse does not answer at $CH_URL: analytics routes will answer 503 analytics_disabled"
fi

# --- cleanup on every exit ---------------------------------------------------------------------
# Deletes this run's streams through the JetStream API ($JS.API.STREAM.DELETE.<name>) over the
# plain NATS protocol: no client library or `nats` CLI needed.
delete_streams() {
  python3 - "$NATS_HOST" "$NATS_PORT" "${STREAM_PREFIX}_PURCHASES" "${STREAM_PREFIX}_EARNINGS" \
    "${STREAM_PREFIX}_DEADLETTER" <<'PY'
import json, socket, sys

host, port, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
inbox = "_INBOX.schemathesis_cleanup"
sock = socket.create_connection((host, port), timeout=5)
buf = b""
sock.sendall(f'CONNECT {{"verbose":false,"name":"schemathesis-cleanup"}}\r\nSUB {inbox} 1\r\n'.encode())


def answer():
    global buf
    while True:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("NATS closed the connection")
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        if line.startswith(b"PING"):
            sock.sendall(b"PONG\r\n")
        elif line.startswith(b"-ERR"):
            raise RuntimeError(line.decode())
        elif line.startswith(b"MSG"):
            size = int(line.split()[-1])
            while len(buf) < size + 2:
                buf += sock.recv(65536)
            body, buf = buf[:size], buf[size + 2:]
            return json.loads(body or b"{}")


for name in names:
    sock.sendall(f"PUB $JS.API.STREAM.DELETE.{name} {inbox} 0\r\n\r\n".encode())
    reply = answer()
    if not reply.get("success") and reply.get("error", {}).get("err_code") != 10059:  # not found
        print(f"stream {name}: {reply.get('error', {}).get('description', reply)}", file=sys.stderr)
PY
}

cleanup() {
  local rc=$?
  set +e
  stop_pidfile "$PID_FILE" "$(basename "$BIN")" 20
  dropdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" --if-exists "$DB" 2>/dev/null ||
    warn "could not drop database $DB"
  if [[ "$CH_ENABLED" == true ]]; then
    curl -sS --max-time 10 "$CH_URL/" --data-binary "DROP DATABASE IF EXISTS $CH_DB" >/dev/null ||
      warn "could not drop ClickHouse database $CH_DB"
  fi
  delete_streams || warn "could not delete streams ${STREAM_PREFIX}_* on $NATS"
  log "cleaned up (database $DB, streams ${STREAM_PREFIX}_*, ClickHouse $CH_DB); output in $RUN_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- schemathesis --------------------------------------------------------------------------------
if [[ ! -x "$ST" ]] || [[ "$("$ST" --version 2>/dev/null)" != *"$ST_VERSION"* ]]; then
  log "installing schemathesis $ST_VERSION into $VENV"
  pip_install "$VENV" "schemathesis==$ST_VERSION"
fi
log "$("$ST" --version)"

# --- the service -------------------------------------------------------------------------------
# The configuration refuses unknown REFERRAL_* variables (REFERRAL_BIN included) and would take
# any other the caller has set (a config file, dev secrets, addresses): start from none.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^REFERRAL_' || true)
random_hex() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; } # 48 hex characters
export DATABASE_URL="$PG_URL/$DB"
export NATS_URL="$NATS"
export CLICKHOUSE_URL="$CH_URL"
export REFERRAL_NATS__PREFIX="$PREFIX"
export REFERRAL_CLICKHOUSE__ENABLED="$CH_ENABLED"
export REFERRAL_CLICKHOUSE__DATABASE="$CH_DB"
export REFERRAL_HTTP__API_ADDR="127.0.0.1:$API_PORT"
export REFERRAL_HTTP__INGEST_ADDR="127.0.0.1:$INGEST_PORT"
# Schemathesis sends thousands of requests per credential, many failing authentication.
export REFERRAL_HTTP__RATE_LIMIT_PER_SEC=100000 REFERRAL_HTTP__RATE_LIMIT_BURST=100000
export REFERRAL_HTTP__AUTH_FAILURES_PER_SEC=100000 REFERRAL_HTTP__AUTH_FAILURES_BURST=100000
REFERRAL_AUTH__JWT_SECRET="$(random_hex)"
REFERRAL_AUTH__PSEUDONYM_KEY="$(random_hex)"
export REFERRAL_AUTH__JWT_SECRET REFERRAL_AUTH__PSEUDONYM_KEY

createdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$DB" || die "createdb $DB failed"
"$BIN" migrate >"$RUN_DIR/migrate.log" 2>&1 || {
  cat "$RUN_DIR/migrate.log" >&2
  die "referral migrate failed"
}
log "starting $BIN all on $BASE (database $DB, prefix $PREFIX, ClickHouse $CH_ENABLED)"
start_bg "$PID_FILE" "$SERVICE_LOG" nice -n 10 "$BIN" all
ready() {
  pid_alive "$PID_FILE" || {
    tail -n 30 "$SERVICE_LOG" >&2
    die "referral all exited (log: $SERVICE_LOG)"
  }
  curl -sf --max-time 2 "$BASE/readyz" >/dev/null
}
wait_for 60 "referral all at $BASE/readyz" ready || {
  tail -n 30 "$SERVICE_LOG" >&2
  die "referral all did not become ready (log: $SERVICE_LOG)"
}

# --- credentials and a little data ----------------------------------------------------------------
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
SHOP="$("$BIN" shop create --name "schemathesis $TAG" | json_field api_key)"
ADMIN="$("$BIN" token --admin)"
post() { # post PATH BODY: as the shop; prints the body; fails on a status other than 2xx
  curl -sSf --max-time 10 -X POST "$BASE$1" -H "Authorization: Bearer $SHOP" \
    -H 'Content-Type: application/json' --data-binary "$2"
}
U="$(post /v1/users '{"referrer_id": null, "display_name": "Schemathesis"}' | json_field id)"
A="$(post /v1/users "{\"referrer_id\": \"$U\", \"display_name\": \"Leg A\"}" | json_field id)"
B="$(post /v1/users "{\"referrer_id\": \"$A\"}" | json_field id)"
post /v1/purchases "{\"order_id\": \"seed-1\", \"user_id\": \"$A\", \"amount\": \"2000.00\", \"profit\": \"500.00\"}" >/dev/null
post /v1/purchases "{\"order_id\": \"seed-2\", \"user_id\": \"$B\", \"amount\": \"1000.00\"}" >/dev/null
post /v1/purchases "{\"order_id\": \"seed-3\", \"user_id\": \"$B\", \"amount\": \"80.50\", \"profit\": \"20.00\"}" >/dev/null
post /v1/refunds '{"refund_id": "seed-r1", "order_id": "seed-1", "amount": "100.00"}' >/dev/null
has_entries() { # the refund's reversal is the last of the seeded entries to be paid
  curl -sf "$BASE/v1/users/$U/earnings/history" -H "Authorization: Bearer $ADMIN" | grep -q '"kind":"reversal"'
}
wait_for 20 "the seeded purchases to be paid" has_entries || warn "seeded purchases not paid yet; reports may be empty"
log "user $U (referrals $A, $B); shop key and admin token minted (the user's token is minted for its run)"

# Half the generated ids (path and body) are the seeded users, so requests reach real data
# rather than 404; the live stream stops after 3 events or 1 s (it never ends on its own).
cat >"$RUN_DIR/schemathesis.toml" <<TOML
[dictionaries]
users = { values = ["$U", "$A", "$B"] }

[parameters]
"path.id" = { dictionary = "users", probability = 0.7 }
"body.user_id" = { dictionary = "users", probability = 0.7 }
"body.referrer_id" = { dictionary = "users", probability = 0.5 }

[[operations]]
include-path-regex = "/earnings/stream$"
request-timeout = 1.0
max-stream-events = 3
TOML

# --- the runs ------------------------------------------------------------------------------------
failed=()
for who in $CREDENTIALS; do
  case "$who" in
    admin) token="$ADMIN" ;;
    # Minted for its run: the admin run may have revoked the user's tokens
    # (POST /v1/admin/users/{id}/tokens/revoke on a seeded id), and a token issued after
    # a revocation passes.
    user) token="$("$BIN" token --user "$U")" ;;
    shop) token="$SHOP" ;;
    *) die "unknown credential $who (admin, user, shop)" ;;
  esac
  log "run: $who (max $MAX_EXAMPLES examples, phases $PHASES, seed $SEED)"
  rc=0
  # From the run's directory: schemathesis keeps its replay cache in ./.schemathesis.
  (cd "$RUN_DIR" && exec nice -n 10 "$ST" --config-file "$RUN_DIR/schemathesis.toml" run "$BASE/openapi.json" \
    --url "$BASE" -H "Authorization: Bearer $token" --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" --phases "$PHASES" --continue-on-failure \
    --workers "$WORKERS" --request-timeout 10 --seed "$SEED" --generation-database none \
    --report ndjson,junit --report-dir "$RUN_DIR/$who" --no-color \
    ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}) >"$RUN_DIR/$who.txt" 2>&1 || rc=$?
  report="$(ls -t "$RUN_DIR/$who"/*.ndjson 2>/dev/null | head -n 1 || true)"
  if [[ -n "$report" ]]; then
    python3 scripts/schemathesis-failures.py "$report" "$who" >"$RUN_DIR/$who.failures.txt"
    sed '/^$/q' "$RUN_DIR/$who.failures.txt" >&2
  fi
  grep -E '^(=+ .* in [0-9.]+s =+|  Tested:.*)$' "$RUN_DIR/$who.txt" >&2 || tail -n 20 "$RUN_DIR/$who.txt" >&2
  if ((rc != 0)); then
    failed+=("$who")
    log "$who: schemathesis exited $rc; details: $RUN_DIR/$who.txt, $RUN_DIR/$who.failures.txt"
  fi
done

if grep -qE 'panicked|ERROR' "$SERVICE_LOG"; then
  warn "the service logged errors: grep -E 'panicked|ERROR' $SERVICE_LOG"
  failed+=("service-log")
fi
((${#failed[@]} == 0)) || die "failures in: ${failed[*]} (seed $SEED)"
log "no failures (seed $SEED)"
