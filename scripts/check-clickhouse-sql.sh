#!/usr/bin/env bash
# Checks the project's ClickHouse SQL (the DDL of schemas/clickhouse, the Grafana panel
# queries, the sink's statements and the API's analytics queries) on a current
# ClickHouse engine (chdb, in-process, from PyPI) and on the server services.sh runs
# (Debian's 18.16), side by side. Installs chdb into .local/chdb-venv when missing;
# the check itself is scripts/check-clickhouse-sql.py (its header says what it runs).
#
#   scripts/check-clickhouse-sql.sh                    both engines (the server if it answers)
#   scripts/check-clickhouse-sql.sh --no-server        chdb only
#   scripts/check-clickhouse-sql.sh --require-server   fail when the server does not answer
#   (also --server-url URL, --show-sql, --show-rows)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHDB_VERSION="${CHDB_VERSION:-4.4.0}"           # PyPI chdb
CHDB_CORE_VERSION="${CHDB_CORE_VERSION:-26.9.0}" # PyPI chdb-core: embeds ClickHouse 26.9.2.1
CHDB_VENV="$LOCAL_DIR/chdb-venv"

chdb_ok() {
  [[ -x "$CHDB_VENV/bin/python" ]] &&
    "$CHDB_VENV/bin/python" -c "import sys, chdb; sys.exit(chdb.__version__ != '$CHDB_VERSION')" 2>/dev/null
}

ensure_chdb() {
  chdb_ok && return 0
  log "chdb: installing chdb==$CHDB_VERSION (chdb-core==$CHDB_CORE_VERSION) into $CHDB_VENV"
  pip_install "$CHDB_VENV" "chdb==$CHDB_VERSION" "chdb-core==$CHDB_CORE_VERSION"
  chdb_ok || die "chdb $CHDB_VERSION not importable from $CHDB_VENV after install"
}

ensure_chdb
# The server services.sh started, unless the caller names another.
if [[ -z "${CLICKHOUSE_URL:-}" && -f "$LOCAL_DIR/services.env" ]]; then
  CLICKHOUSE_URL="$(sed -n 's/^export CLICKHOUSE_URL=//p' "$LOCAL_DIR/services.env")"
fi
export CLICKHOUSE_URL="${CLICKHOUSE_URL:-http://127.0.0.1:18123}"
cd "$ROOT"
exec nice -n 10 "$CHDB_VENV/bin/python" scripts/check-clickhouse-sql.py "$@"
