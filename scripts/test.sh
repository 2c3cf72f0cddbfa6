#!/usr/bin/env bash
# Run every test: formatting, lints, Rust build + unit/integration tests, then the Python
# end-to-end suite against the built `clew` binary.
#
#   scripts/test.sh
#
# Environment:
#   CARGO_TARGET_DIR  cargo's target dir (default: <repo>/target); CLEW_BIN is derived from it
#   CLEW_CACHE_DIR    where the e2e Python venv lives (default: $HOME/.cache/clew)
#   PYTEST_ARGS       extra arguments for pytest (e.g. "-k crash -x")
#
# One build profile (the default dev profile) is used throughout. Exits non-zero on the
# first failing phase.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CACHE_DIR="${CLEW_CACHE_DIR:-$HOME/.cache/clew}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
export CARGO_TARGET_DIR="$TARGET_DIR"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

SUITE_START=$(date +%s)
PHASE_NAME=""
PHASE_START=0
SUMMARY=()

phase() {
  PHASE_NAME="$1"
  PHASE_START=$(date +%s)
  echo
  echo "==> ${PHASE_NAME}"
}

phase_done() {
  local took=$(( $(date +%s) - PHASE_START ))
  SUMMARY+=("$(printf '%-34s %5ss' "$PHASE_NAME" "$took")")
  echo "<== ${PHASE_NAME}: ok (${took}s)"
  PHASE_NAME=""
}

on_exit() {
  local rc=$?
  if [[ -n "$PHASE_NAME" ]]; then
    echo "<== ${PHASE_NAME}: FAILED after $(( $(date +%s) - PHASE_START ))s (exit ${rc})" >&2
  fi
  if ((${#SUMMARY[@]})); then
    echo
    echo "Phase timings:"
    printf '  %s\n' "${SUMMARY[@]}"
  fi
  echo "scripts/test.sh: $([[ $rc -eq 0 ]] && echo passed || echo FAILED) in $(( $(date +%s) - SUITE_START ))s"
}
trap on_exit EXIT

APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "need packages $* but apt-get is not available" >&2
    return 1
  fi
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  # Try from the current package lists first; refresh them only when that fails.
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "$@"; then
    if [[ $APT_UPDATED -eq 0 ]]; then
      $sudo apt-get update
      APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "$@"
  fi
}

# ---------------------------------------------------------------------------- prerequisites
phase "prerequisites"
command -v cargo >/dev/null || { echo "cargo not found: a Rust toolchain is required" >&2; exit 1; }
cargo fmt --version >/dev/null 2>&1 || { echo "rustfmt is missing (rustup component add rustfmt)" >&2; exit 1; }
cargo clippy --version >/dev/null 2>&1 || { echo "clippy is missing (rustup component add clippy)" >&2; exit 1; }
command -v cc >/dev/null || apt_install build-essential
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || apt_install python3 python3-venv
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt_install python3-venv
fi
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' \
  || { echo "Python >= 3.10 is required for the e2e tests" >&2; exit 1; }
phase_done

# ---------------------------------------------------------------------------- web UI prerequisites
# The build of crates/ui runs `npm run build` in ui/ (Vite needs Node.js >= 20.19); the browser tests
# drive Debian's chromium with playwright-core from tests/ui.
phase "web UI prerequisites (node, chromium, npm packages)"
command -v npm >/dev/null || apt_install nodejs npm
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
  || { echo "Node.js >= 20.19 is required to build the web UI (found $(node --version))" >&2; exit 1; }
command -v chromium >/dev/null || apt_install chromium
# `npm install` for ui/: its lock holds only this platform's optional native packages, which `npm ci` rejects.
(cd ui && npm install --no-audit --no-fund)
(cd tests/ui && npm ci --no-audit --no-fund)
# OpenTelemetry's Node Jaeger remote sampler, which tests/e2e/test_sampling_sdk.py points at Clew.
(cd tests/sampling-sdk && npm ci --no-audit --no-fund)
# Grafana's TraceQL grammar (tests/e2e/test_traceql_lezer.py) and Perses' Tempo client (test_tempo_client.py).
(cd tests/traceql-lezer && npm ci --no-audit --no-fund)
(cd tests/tempo-client && npm ci --no-audit --no-fund)
phase_done

# ---------------------------------------------------------------------------- 1. format
phase "1. cargo fmt --check"
cargo fmt --all -- --check
phase_done

# ---------------------------------------------------------------------------- 2. clippy
phase "2. cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
phase_done

# ---------------------------------------------------------------------------- 3. build + test
phase "3a. cargo build"
cargo build --workspace --all-targets
phase_done

phase "3b. cargo test"
cargo test --workspace
phase_done

# ---------------------------------------------------------------------------- 4. python venv
phase "4. e2e python venv"
REQS="$ROOT/tests/e2e/requirements.txt"
REQ_HASH="$(sha256sum "$REQS" | cut -c1-16)"
VENV="$CACHE_DIR/venv-$REQ_HASH"
if [[ ! -f "$VENV/.complete" ]] || ! "$VENV/bin/python" -c 'import pytest' >/dev/null 2>&1; then
  echo "creating $VENV"
  rm -rf "$VENV"
  mkdir -p "$CACHE_DIR"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
  touch "$VENV/.complete"
else
  echo "reusing $VENV"
fi
phase_done

# ---------------------------------------------------------------------------- 5. e2e
phase "5. e2e tests (pytest)"
export CLEW_BIN="$TARGET_DIR/debug/clew"
[[ -x "$CLEW_BIN" ]] || { echo "built binary not found at $CLEW_BIN" >&2; exit 1; }
# shellcheck disable=SC2086
"$VENV/bin/python" -m pytest -q tests/e2e ${PYTEST_ARGS:-}
phase_done

# ---------------------------------------------------------------------------- 6. web UI in a browser
phase "6. web UI: unit tests, then browser tests (chromium)"
(cd ui && npm test)
(cd tests/ui && CLEW_BIN="$CLEW_BIN" npm test)
phase_done
