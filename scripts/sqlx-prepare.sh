#!/usr/bin/env bash
# Refreshes .sqlx/ (the offline query data the sqlx macros check against) from a scratch
# database migrated from schemas/migrations. Run after changing a query or a migration.
set -euo pipefail
cd "$(dirname "$0")/.."
# SQLX_PREPARE_DB names the scratch database, so engineers sharing a server do not collide.
db=${SQLX_PREPARE_DB:-referral_sqlx_prepare}
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
for f in schemas/migrations/*.sql; do psql -q -1 -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -d "$db" -f "$f" >/dev/null; done
rm -rf .sqlx && mkdir -p .sqlx
# Touch the crates that hold queries so their macros expand again, online, writing .sqlx/.
touch platform/src/lib.rs ingest/src/lib.rs processor/src/lib.rs api/src/lib.rs cli/src/lib.rs warehouse/src/lib.rs
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$PWD/.sqlx" DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" \
  cargo check --workspace --all-targets --quiet
echo "wrote $(ls .sqlx | wc -l) query files to .sqlx/"
