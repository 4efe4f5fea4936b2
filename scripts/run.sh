#!/usr/bin/env bash
# Builds Fluxgate (installing what is missing) and runs it: the desktop app (tray, console
# window, notifications) when a display is available, else the headless router.
#   scripts/run.sh                 the desktop app (or `serve` without a display)
#   scripts/run.sh --headless ...  always `fluxgate serve ...`
# Other arguments go to the program, e.g. scripts/run.sh --config my.toml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
headless=0
if [ "${1:-}" = --headless ]; then
  headless=1
  shift
elif [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "no display found: running the headless router (fluxgate serve)" >&2
  headless=1
fi
if [ "$headless" = 1 ]; then
  cargo build --release --locked -p fluxgate-server --bin fluxgate
  exec ./target/release/fluxgate serve "$@"
fi
cargo build --release --locked -p fluxgate-server --bin fluxgate -p fluxgate-app --bin fluxgate-app
exec ./target/release/fluxgate-app "$@"
