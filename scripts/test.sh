#!/usr/bin/env bash
# Runs every test: the supply-chain checks (cargo-deny), the Rust workspace (unit, property,
# in-process, binary, keychain, limit and chaos tests), the Python end-to-end suite (the OpenAI
# and Anthropic SDKs, the Claude Code and Codex CLIs), and a short run of every fuzz target
# (FUZZ_SECONDS per target, default 5; 0 skips it).
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/deny.sh
cargo build --locked --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast
else
  cargo test --locked --workspace --no-fail-fast
fi
python3 -m pytest -q tests/python
if [ "${FUZZ_SECONDS:-5}" != 0 ]; then
  scripts/fuzz.sh "${FUZZ_SECONDS:-5}"
fi
