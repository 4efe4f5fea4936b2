#!/usr/bin/env bash
# Runs every test: the supply-chain checks (cargo-deny), the console's unit tests (Vitest),
# the Rust workspace (unit, property, in-process, binary, keychain, limit and chaos tests), the
# Python end-to-end suite (the OpenAI and Anthropic SDKs, the Claude Code and Codex CLIs, the
# console in headless Chromium, the desktop app under Xvfb with a private D-Bus session), and a
# short run of every fuzz target (FUZZ_SECONDS per target, default 5; 0 skips it).
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
scripts/deps.sh test
scripts/deny.sh
# Every doc comment's links resolve (private items included: they are most of the docs).
RUSTDOCFLAGS="-D warnings -A rustdoc::private_intra_doc_links" \
  cargo doc --locked --workspace --exclude fluxgate-app --no-deps --document-private-items --quiet
cargo build --locked --workspace --bins
# The console's linter and formatter check (ESLint with typescript-eslint, Prettier), then its
# unit tests (Vitest).
(cd ui && npx --no-install eslint . && npx --no-install prettier --check . && npx --no-install vitest run)

# The secrets canary (RELIABILITY.md 7): every fake key the tests make is recorded in
# $FLUXGATE_CANARY_DIR; temporary directories are kept under $TMPDIR, binaries log at TRACE,
# captured test output is kept; afterwards scripts/canary_scan.py reads all of it.
RUN="$PWD/target/canary-run"
rm -rf "$RUN" target/nextest/canary
mkdir -p "$RUN/tmp" "$RUN/canaries"
export TMPDIR="$RUN/tmp" FLUXGATE_CANARY_DIR="$RUN/canaries" FLUXGATE_KEEP_TEMP=1
# Tests assert English messages whatever this machine's locale is (tests that check Chinese
# set FLUXGATE_LANG themselves).
export FLUXGATE_LANG=en
export FLUXGATE_LOG="trace,hyper=info,h2=info,rustls=info,hyper_util=info"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast --profile canary
else
  cargo test --locked --workspace --no-fail-fast 2>&1 | tee "$RUN/cargo-test.log"
fi
python3 -m pytest -q tests/python --junitxml="$RUN/pytest.xml" -o junit_logging=all
python3 scripts/canary_scan.py "$RUN/canaries" "$RUN" target/nextest/canary
unset TMPDIR FLUXGATE_CANARY_DIR FLUXGATE_KEEP_TEMP FLUXGATE_LOG

if [ "${FUZZ_SECONDS:-5}" != 0 ]; then
  scripts/fuzz.sh "${FUZZ_SECONDS:-5}"
fi
