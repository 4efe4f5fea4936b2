#!/usr/bin/env bash
# Installs what building and testing Fluxgate needs on Debian 12, skipping what is present.
# Usage: scripts/deps.sh build|test
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
want=(build-essential pkg-config libdbus-1-dev)
if [ "${1:-build}" = test ]; then
  want+=(dbus gnome-keyring curl python3)
fi
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed; install Rust from https://rustup.rs (or Debian's rustc/cargo) and retry" >&2
  exit 1
fi

if [ "${1:-build}" = test ]; then
  if ! python3 -c 'import openai, anthropic, pytest' >/dev/null 2>&1; then
    echo "installing Python test packages"
    python3 -m pip install --quiet -r tests/python/requirements.txt
  fi
fi
