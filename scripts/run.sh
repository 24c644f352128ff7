#!/usr/bin/env bash
# The main job: services, migrations, every role in one process (`referral all`) on
# the project's durable NATS, demo traffic, then the dashboard URL and tokens.
#   scripts/run.sh          start (idempotent: an instance already running is reused)
#   scripts/run.sh stop     stop the instance this script started
# The JWT secret and pseudonym key are generated once into .local/secrets.env (not in
# git), with the bearer token that reads /metrics; set REFERRAL_AUTH__JWT_SECRET /
# REFERRAL_AUTH__PSEUDONYM_KEY / REFERRAL_AUTH__METRICS_TOKEN to use your own.
set -euo pipefail
cd "$(dirname "$0")/.."
PID_FILE=.local/referral.pid
LOG_FILE=.local/referral.log
SECRETS_FILE=.local/secrets.env
ADDR="${REFERRAL_HTTP__API_ADDR:-127.0.0.1:8080}"

running() { [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

if [[ "${1:-start}" == "stop" ]]; then
  if running; then kill "$(cat "$PID_FILE")"; echo "stopped referral (pid $(cat "$PID_FILE"))"; fi
  rm -f "$PID_FILE"
  exit 0
fi

# Random secrets, made once per checkout; the service refuses the public defaults.
random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
if [[ ! -s "$SECRETS_FILE" ]]; then
  mkdir -p .local
  (
    umask 077
    printf 'REFERRAL_AUTH__JWT_SECRET=%s\nREFERRAL_AUTH__PSEUDONYM_KEY=%s\n' \
      "$(random_hex)" "$(random_hex)" >"$SECRETS_FILE.tmp"
  )
  mv "$SECRETS_FILE.tmp" "$SECRETS_FILE"
  echo "generated secrets in $SECRETS_FILE"
fi
# The scraper's credential for /metrics (a file made before it existed gets one too).
if ! grep -q '^REFERRAL_AUTH__METRICS_TOKEN=' "$SECRETS_FILE"; then
  (umask 077 && printf 'REFERRAL_AUTH__METRICS_TOKEN=%s\n' "$(random_hex)" >>"$SECRETS_FILE")
fi
while IFS='=' read -r name value; do
  [[ -n "${!name:-}" ]] || export "$name=$value"
done <"$SECRETS_FILE"

scripts/services.sh up
# shellcheck disable=SC1091
source .local/services.env
export DATABASE_URL NATS_URL CLICKHOUSE_URL
export REFERRAL_HTTP__API_ADDR="$ADDR"
export REFERRAL_CLICKHOUSE__ENABLED="${REFERRAL_CLICKHOUSE__ENABLED:-true}"

echo "building referral (release)…"
cargo build --release --quiet -p referral
BIN="${CARGO_TARGET_DIR:-target}/release/referral"
"$BIN" migrate

if running; then
  echo "referral already running (pid $(cat "$PID_FILE")); reusing it"
else
  nohup "$BIN" all >"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 100); do
    curl -sf "http://$ADDR/readyz" >/dev/null && break
    running || { tail -n 30 "$LOG_FILE"; echo "referral exited; log above" >&2; exit 1; }
    sleep 0.2
  done
  curl -sf "http://$ADDR/readyz" >/dev/null || { tail -n 30 "$LOG_FILE"; exit 1; }
  echo "referral all is running (pid $(cat "$PID_FILE")), log: $LOG_FILE"
fi

"$BIN" demo --base-url "http://$ADDR" --users "${DEMO_USERS:-200}" --purchases "${DEMO_PURCHASES:-2000}"
cat <<MSG

Open the dashboard URL above and paste the user (or admin) token to sign in.
Metrics (the scraper's token, or the admin token above):
  curl -H "Authorization: Bearer \$(sed -n 's/^REFERRAL_AUTH__METRICS_TOKEN=//p' $SECRETS_FILE)" http://$ADDR/metrics
Health: http://$ADDR/readyz   ClickHouse: $CLICKHOUSE_URL
Grafana (with Docker): see docs/operations.md (docker compose; passwords required) → http://127.0.0.1:3000
Stop: scripts/run.sh stop
MSG
