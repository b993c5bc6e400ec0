#!/usr/bin/env bash
# Run Runnel's whole test suite: Rust unit/integration tests, then the Python
# and kcat client tests against a freshly built `runnel` binary.
#
# Usage:  bash scripts/test.sh [extra pytest args...]
#         e.g. bash scripts/test.sh -k confluent -x
#
# It installs what it needs and is idempotent: a second run skips the
# installs quickly. Steps:
#   1. Debian packages (kcat, C toolchain for librdkafka's build) if missing
#   2. Python venv at .venv with tests/python/requirements.txt (reinstalled
#      only when that file changes; a hash stamp lives in .venv)
#   3. cargo build --workspace --all-targets --locked
#   4. cargo test --workspace --locked
#   5. pytest tests/python against target/debug/runnel
#   6. librdkafka conformance: compat/librdkafka/run.sh --allow-list (librdkafka's
#      own integration tests that Runnel passes; skipped if the list is empty)
# It stops at the first failing step, names it, and exits non-zero.
#
# Knobs (environment variables):
#   RUNNEL_TEST_ONLY=python   skip steps 4 and 6 (cargo test, conformance); still
#                             builds the binary
#   RUNNEL_TEST_ONLY=rust     skip steps 5-6 (pytest, conformance) and the venv setup
#   RUNNEL_TEST_ONLY=compat   only step 6 (after steps 1 and 3, building just
#                             the runnel binary); no venv, cargo test or pytest
#   RUNNEL_SKIP_COMPAT=1      skip step 6
#   RUNNEL_COMPAT_BUDGET=1200 time limit for step 6 as a whole, in seconds (the
#                             first run also builds librdkafka, about 2 minutes)
#   RUNNEL_SKIP_INSTALL=1     skip steps 1-2 (no apt, no pip); the venv must exist
#   RUNNEL_TEST_TIMEOUT=120   per-test timeout for pytest, in seconds
#   RUNNEL_BIN=/path/runnel   broker binary for pytest (default:
#                             ${CARGO_TARGET_DIR:-target}/debug/runnel)
#   RUNNEL_TEST_LOG_DIR=DIR   keep broker stderr logs there (default: pytest tmp)
#   Extra arguments are passed to pytest.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT=$PWD

ONLY=${RUNNEL_TEST_ONLY:-}
case "$ONLY" in
  "" | python | rust | compat) ;;
  *) echo "test.sh: RUNNEL_TEST_ONLY must be 'python', 'rust', 'compat' or empty, not '$ONLY'" >&2; exit 2 ;;
esac

CURRENT_STEP="setup"
SUITE_START=$SECONDS
STEP_START=$SECONDS

on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "test.sh: FAILED in step '$CURRENT_STEP' (exit $rc) after $((SECONDS - SUITE_START))s" >&2
  else
    echo "test.sh: all steps passed in $((SECONDS - SUITE_START))s"
  fi
}
trap on_exit EXIT

end_step() {
  if [ "$CURRENT_STEP" != "setup" ]; then
    echo "--- step '$CURRENT_STEP' done in $((SECONDS - STEP_START))s"
  fi
}

step() {
  end_step
  CURRENT_STEP=$1
  STEP_START=$SECONDS
  echo "=== $CURRENT_STEP"
}

# ---------------------------------------------------------------------------
# 1. Debian packages
#   kcat                      the kcat client tests
#   build-essential           cc, c++ and make: the rdkafka crate (dev-dependency
#                             of crates/runnel) builds librdkafka from source with
#                             ./configure && make; zstd-sys and libz-sys use cc
#   pkg-config, zlib1g-dev    libz-sys links the system zlib when pkg-config finds it
#   (the conformance step builds the same librdkafka source, with its test
#   runner, using only these: cc, c++, make, zlib; ssl, sasl, zstd and curl
#   are configured off, lz4 is librdkafka's bundled copy; python3 lists tests)
#   rapidjson-dev             header-only; lets librdkafka's C++ tests that check
#                             statistics JSON build and run in the conformance step
#   libssl-dev                the rdkafka dev-dependency of crates/runnel enables
#                             `ssl` so the TLS and SCRAM tests can connect with
#                             librdkafka, and the runnel binary they run gets it
#                             too (the `client-tls` feature); the broker uses rustls
#   openssl                   the command tests/python/test_tls.py makes its CA with
# Otherwise the rdkafka crate is used with its default features (libz; no sasl,
# external zstd or lz4), so libsasl2-dev, libzstd-dev and liblz4-dev are not
# needed. Add them here if those features get enabled.
# ---------------------------------------------------------------------------
install_debian_packages() {
  local wanted=(kcat build-essential pkg-config zlib1g-dev rapidjson-dev libssl-dev openssl)
  # The venv needs ensurepip; pyenv's Python has it, Debian's needs python3-venv.
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    wanted+=(python3-venv)
  fi
  if ! command -v dpkg >/dev/null 2>&1; then
    echo "dpkg not found: not a Debian system; make sure these are installed: ${wanted[*]}"
    return 0
  fi
  local missing=() pkg
  for pkg in "${wanted[@]}"; do
    if ! dpkg -s "$pkg" 2>/dev/null | grep '^Status: install ok installed' >/dev/null; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "Debian packages present: ${wanted[*]}"
    return 0
  fi
  echo "Installing Debian packages: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo -n)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}

# ---------------------------------------------------------------------------
# 2. Python venv
# ---------------------------------------------------------------------------
VENV=$REPO_ROOT/.venv
REQUIREMENTS=tests/python/requirements.txt
STAMP=$VENV/.requirements.sha256

setup_venv() {
  # Recreate the venv when its interpreter is gone (e.g. Python upgraded).
  if [ -d "$VENV" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "Existing .venv is broken; recreating it"
    rm -rf "$VENV"
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating venv at .venv with $(python3 --version 2>&1)"
    python3 -m venv "$VENV"
  fi
  local want have=""
  want="$( (sha256sum "$REQUIREMENTS"; "$VENV/bin/python" --version) | sha256sum | cut -d' ' -f1)"
  if [ -f "$STAMP" ]; then
    have=$(cat "$STAMP")
  fi
  if [ "$want" = "$have" ]; then
    echo "venv up to date with $REQUIREMENTS"
    return 0
  fi
  echo "Installing $REQUIREMENTS into .venv"
  rm -f "$STAMP"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q -r "$REQUIREMENTS"
  echo "$want" >"$STAMP"
}

if [ "${RUNNEL_SKIP_INSTALL:-}" = "1" ]; then
  echo "RUNNEL_SKIP_INSTALL=1: skipping Debian packages and venv setup"
else
  step "debian packages"
  install_debian_packages
  if [ "$ONLY" != "rust" ] && [ "$ONLY" != "compat" ]; then
    step "python venv"
    setup_venv
  fi
fi

# ---------------------------------------------------------------------------
# 3-4. Rust
# ---------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  echo "test.sh: cargo not found on PATH (a Rust toolchain is required)" >&2
  exit 1
fi

step "cargo build"
if [ "$ONLY" = "compat" ]; then
  cargo build -p runnel --locked
else
  cargo build --workspace --all-targets --locked
fi

if [ "$ONLY" = "python" ] || [ "$ONLY" = "compat" ]; then
  echo "RUNNEL_TEST_ONLY=$ONLY: skipping cargo test"
else
  step "cargo test"
  cargo test --workspace --locked
fi

# ---------------------------------------------------------------------------
# 5. Python and kcat client tests
# ---------------------------------------------------------------------------
RUNNEL_BIN=${RUNNEL_BIN:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/runnel}
export RUNNEL_BIN
if [ "$ONLY" != "rust" ] && [ ! -x "$RUNNEL_BIN" ]; then
  echo "test.sh: broker binary not found at $RUNNEL_BIN" >&2
  exit 1
fi

if [ "$ONLY" = "rust" ] || [ "$ONLY" = "compat" ]; then
  echo "RUNNEL_TEST_ONLY=$ONLY: skipping the Python client tests"
else
  step "pytest"
  "$VENV/bin/python" -m pytest tests/python -q -p no:cacheprovider \
    --timeout="${RUNNEL_TEST_TIMEOUT:-120}" "$@"
fi

# ---------------------------------------------------------------------------
# 6. librdkafka conformance: librdkafka's own integration tests that Runnel
#    passes (compat/librdkafka/allow-list.txt), against a fresh broker. The
#    first run builds librdkafka and its test runner into the git-ignored
#    compat/librdkafka/build (a few minutes); later runs reuse it.
# ---------------------------------------------------------------------------
ALLOW_LIST=compat/librdkafka/allow-list.txt
if [ "$ONLY" = "rust" ] || [ "$ONLY" = "python" ]; then
  echo "RUNNEL_TEST_ONLY=$ONLY: skipping the librdkafka conformance run"
elif [ "${RUNNEL_SKIP_COMPAT:-}" = "1" ]; then
  echo "RUNNEL_SKIP_COMPAT=1: skipping the librdkafka conformance run"
elif ! grep -qE '^[[:space:]]*[0-9]{4}' "$ALLOW_LIST" 2>/dev/null; then
  echo "$ALLOW_LIST is empty: skipping the librdkafka conformance run"
else
  step "librdkafka conformance"
  # timeout signals the whole process group: run.sh, its broker and the test.
  timeout -k 10 "${RUNNEL_COMPAT_BUDGET:-1200}" \
    bash compat/librdkafka/run.sh --allow-list
fi

end_step
