#!/usr/bin/env bash
# Fuzzes with cargo-fuzz (libFuzzer, on the machine's nightly toolchain) the targets in
# fuzz/fuzz_targets: Money parsing (money_parse), the processor's decoding of purchase,
# group and refund payloads (messages), and the payout rule against its reference model
# (payout_model). fuzz/ is a workspace of its own with its own target dir, so this never
# rebuilds or locks the main workspace's target/.
#
#   scripts/fuzz.sh                    each target for ${FUZZ_SECONDS:-10} s (the bounded run)
#   scripts/fuzz.sh --seconds 600      the longer run
#   scripts/fuzz.sh --target messages  only that target (repeatable)
#   scripts/fuzz.sh --replay-only      only replay fuzz/regressions
#
# Each target first replays fuzz/regressions/<target>/* (crashes found before, kept in
# git), so a fixed crash stays fixed; then fuzzes from fuzz/corpus/<target> (not in git)
# plus fuzz/seeds/<target>, with fuzz/dicts/<target>.dict when there is one. Exits 1 when
# any target crashed; the input is in fuzz/artifacts/<target>/. To keep it:
#   cd fuzz && cargo +nightly fuzz tmin <target> artifacts/<target>/crash-…
#   cp artifacts/<target>/minimized-from-… regressions/<target>/<what-it-shows>
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
log() { printf '[fuzz] %s\n' "$*" >&2; }
die() {
  printf '[fuzz] ERROR: %s\n' "$*" >&2
  exit 1
}

CARGO_FUZZ_VERSION="${CARGO_FUZZ_VERSION:-0.13.2}" # crates.io cargo-fuzz
TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"             # -Zsanitizer needs nightly
FUZZ_DIR="$ROOT/fuzz"
LOG_DIR="$LOCAL_DIR/fuzz"

seconds="${FUZZ_SECONDS:-10}"
replay_only=0
only=()
while (($#)); do
  case "$1" in
  --seconds)
    seconds="${2:?--seconds needs a number}"
    shift 2
    ;;
  --seconds=*)
    seconds="${1#*=}"
    shift
    ;;
  --target)
    only+=("${2:?--target needs a name}")
    shift 2
    ;;
  --replay-only)
    replay_only=1
    shift
    ;;
  -h | --help)
    sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "--seconds must be a positive whole number, not $seconds"

rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1 ||
  die "no $TOOLCHAIN toolchain (cargo-fuzz needs one; rustup toolchain install $TOOLCHAIN)"
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet ||
    die "cargo install cargo-fuzz $CARGO_FUZZ_VERSION failed"
fi

cd "$FUZZ_DIR"
fuzz=(nice -n 10 cargo "+$TOOLCHAIN" fuzz)
if ((${#only[@]})); then
  targets=("${only[@]}")
else
  mapfile -t targets < <("${fuzz[@]}" list)
fi
((${#targets[@]})) || die "no fuzz targets in $FUZZ_DIR"

log "building ${targets[*]} (release, debug assertions, AddressSanitizer)"
if ((${#only[@]})); then
  for t in "${targets[@]}"; do
    "${fuzz[@]}" build "$t" || die "cargo fuzz build $t failed"
  done
else
  "${fuzz[@]}" build || die "cargo fuzz build failed"
fi

mkdir -p "$LOG_DIR"
passed=0
failed=()
for t in "${targets[@]}"; do
  # Regressions: each input run once; any panic fails the target.
  regressions=()
  if [[ -d "regressions/$t" ]]; then
    mapfile -t regressions < <(find "regressions/$t" -maxdepth 1 -type f ! -name '.*' | sort)
  fi
  if ((${#regressions[@]})); then
    log "$t: replaying ${#regressions[@]} regression input(s)"
    if ! "${fuzz[@]}" run "$t" "${regressions[@]}" -- -runs=1 >"$LOG_DIR/$t.replay.log" 2>&1; then
      grep -m1 -A3 'panicked at' "$LOG_DIR/$t.replay.log" >&2 || tail -n 20 "$LOG_DIR/$t.replay.log" >&2
      log "$t: a regression input fails again (log: $LOG_DIR/$t.replay.log)"
      failed+=("$t")
      continue
    fi
  fi
  if ((replay_only)); then
    passed=$((passed + 1))
    continue
  fi

  mkdir -p "corpus/$t"
  dirs=("corpus/$t")
  [[ -d "seeds/$t" ]] && dirs+=("seeds/$t")
  args=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1)
  [[ -f "dicts/$t.dict" ]] && args+=(-dict="dicts/$t.dict")
  log "$t: fuzzing for ${seconds}s"
  if "${fuzz[@]}" run "$t" "${dirs[@]}" -- "${args[@]}" >"$LOG_DIR/$t.log" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG_DIR/$t.log")"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$LOG_DIR/$t.log")"
    log "$t: ok, ${runs:-?} runs (${rate:-?}/s), corpus $(find "corpus/$t" -type f | wc -l) inputs"
    passed=$((passed + 1))
  else
    grep -m1 -A3 'panicked at\|ERROR: AddressSanitizer\|ERROR: libFuzzer' "$LOG_DIR/$t.log" >&2 || tail -n 20 "$LOG_DIR/$t.log" >&2
    grep 'Test unit written to' "$LOG_DIR/$t.log" >&2 || true
    log "$t: CRASHED (log: $LOG_DIR/$t.log); minimize it and keep it in fuzz/regressions/$t/ (see the header)"
    failed+=("$t")
  fi
done

echo "fuzz: $passed passed, ${#failed[@]} failed"
((${#failed[@]} == 0)) || die "crashed: ${failed[*]}"
