#!/usr/bin/env bash
# Runs every test: brings up the services the tests need, then the whole workspace
# suite (unit, property, end-to-end against real Postgres, NATS, ClickHouse and a
# headless browser) with cargo-nextest, one shared build, then schemathesis against the
# OpenAPI document of the built binary, then a bounded fuzzing run (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh up >/dev/null
# shellcheck disable=SC1091
source .local/services.env
# Tests share the machine's NATS on 4222 (each under its own prefix); fault tests spawn
# their own nats-server from NATS_SERVER_BIN. ClickHouse and Chromium come from services.sh.
export NATS_URL="nats://127.0.0.1:4222"
export CLICKHOUSE_URL NATS_SERVER_BIN CHROMIUM_BIN

command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
cargo nextest run --workspace --profile "${NEXTEST_PROFILE:-ci}" "$@"
# A whole run (no filter given) also checks the served OpenAPI document with schemathesis,
# as each credential, on the binary the tests just built (bounded: about a minute), then
# replays the kept fuzz crashes and fuzzes each target for FUZZ_SECONDS (10) seconds
# (cargo-fuzz on the nightly toolchain; its own build of `schemas` and `rules` only,
# about 2.5 minutes cold). FUZZ=0 skips it, for a machine without nightly.
if (($# == 0)); then
  scripts/schemathesis.sh
  if [[ "${FUZZ:-1}" != 0 ]]; then
    scripts/fuzz.sh
  fi
fi
