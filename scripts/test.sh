#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, in-process, binary and keychain tests) and the
# Python SDK end-to-end suite. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
cargo build --locked --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast
else
  cargo test --locked --workspace --no-fail-fast
fi
python3 -m pytest -q tests/python
