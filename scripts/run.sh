#!/usr/bin/env bash
# Builds Fluxgate (installing what is missing) and runs `fluxgate serve`.
# Extra arguments go to `fluxgate serve`, e.g. scripts/run.sh --config my.toml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cargo build --release --locked -p fluxgate-server --bin fluxgate
exec ./target/release/fluxgate serve "$@"
