# shellcheck shell=bash
# Small helpers shared by the project's scripts. Source it; it defines functions only.

# Repository root (this file lives in <root>/scripts/).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL_DIR="$ROOT/.local"

log() { printf '[services] %s\n' "$*" >&2; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() {
  printf '[services] ERROR: %s\n' "$*" >&2
  exit 1
}

# tcp_open HOST PORT: true when something accepts TCP connections there.
tcp_open() {
  timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# http_says URL TEXT: true when GET URL answers a body containing TEXT.
http_says() {
  local body
  body="$(curl -s --max-time 2 "$1" 2>/dev/null)" || return 1
  [[ "$body" == *"$2"* ]]
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s until it
# succeeds or SECONDS pass. Returns 1 on timeout (callers print the reason).
wait_for() {
  local secs="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    if "$@"; then
      return 0
    fi
    sleep 0.2
  done
  "$@" && return 0
  warn "timed out after ${secs}s waiting for $what"
  return 1
}

# pid_alive PIDFILE [NAME]: true when PIDFILE names a live process (whose
# command line contains NAME, if given, so a recycled pid is not mistaken).
pid_alive() {
  local pidfile="$1" name="${2:-}" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(tr -dc '0-9' <"$pidfile")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -n "$name" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name" || return 1
  fi
}

# stop_pidfile PIDFILE NAME [SECONDS]: TERM the process, wait, then KILL.
# Only ever signals the one pid recorded by this project's own start step.
stop_pidfile() {
  local pidfile="$1" name="$2" secs="${3:-20}" pid
  if ! pid_alive "$pidfile" "$name"; then
    rm -f "$pidfile"
    return 0
  fi
  pid="$(tr -dc '0-9' <"$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for "$secs" "$name (pid $pid) to exit" bash -c "! kill -0 $pid 2>/dev/null"; then
    warn "$name (pid $pid) ignored TERM; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$pidfile"
}

# start_bg PIDFILE LOGFILE COMMAND...: start COMMAND detached (own session,
# stdin closed, output to LOGFILE, truncated) and record its pid.
start_bg() {
  local pidfile="$1" logfile="$2"
  shift 2
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  setsid "$@" </dev/null >"$logfile" 2>&1 &
  echo $! >"$pidfile"
}

# missing_packages PKG...: prints the packages that are not installed.
missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

# apt_install PKG...: install Debian packages that are missing, without letting
# any package start a service, running `apt-get update` only when needed.
APT_UPDATED=0
apt_install() {
  local missing
  missing="$(missing_packages "$@" | tr '\n' ' ')"
  [[ -n "${missing// /}" ]] || return 0
  log "apt: installing $missing"
  mkdir -p "$LOCAL_DIR"
  # shellcheck disable=SC2086
  apt_ensure_lists $missing
  local apt=(apt-get -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0
    --no-install-recommends)
  # Keep postinst scripts from starting services (clickhouse-server's would
  # try to run its init script and fail the install if that fails).
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  # shellcheck disable=SC2086
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install $missing >"$LOCAL_DIR/apt.log" 2>&1; then
    if ((APT_UPDATED == 0)); then
      log "apt: install failed; running apt-get update and retrying"
      DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update >>"$LOCAL_DIR/apt.log" 2>&1 || true
      APT_UPDATED=1
      # shellcheck disable=SC2086
      DEBIAN_FRONTEND=noninteractive "${apt[@]}" install $missing >>"$LOCAL_DIR/apt.log" 2>&1 || rc=$?
    else
      rc=1
    fi
  fi
  ((made_policy == 0)) || rm -f /usr/sbin/policy-rc.d
  if ((rc != 0)); then
    tail -n 30 "$LOCAL_DIR/apt.log" >&2
    die "apt-get install $missing failed (full log: $LOCAL_DIR/apt.log)"
  fi
}

# apt_ensure_lists PKG...: run `apt-get update` once if apt does not know a package.
apt_ensure_lists() {
  local p
  for p in "$@"; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then
      ((APT_UPDATED == 1)) && return 0
      log "apt: package lists lack $p; running apt-get update"
      DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update >>"$LOCAL_DIR/apt.log" 2>&1 ||
        die "apt-get update failed (see $LOCAL_DIR/apt.log)"
      APT_UPDATED=1
      return 0
    fi
  done
}

# pip_install VENV PACKAGE... : installs pinned packages into a virtualenv of their own,
# creating it first (with Debian's python3-venv when python3 lacks the venv module).
pip_install() {
  local venv=$1
  shift
  if [[ ! -x "$venv/bin/python" ]] && ! python3 -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    apt_install python3-venv
    /usr/bin/python3 -m venv "$venv" || die "could not create $venv"
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" ||
    die "pip install $* failed"
}
