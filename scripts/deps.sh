#!/usr/bin/env bash
# Installs what building and testing Fluxgate needs on Debian 12, skipping what is present.
# Usage: scripts/deps.sh build|test
set -euo pipefail
cd "$(dirname "$0")/.."
# Tools that `cargo install` puts in CARGO_HOME (cargo-deny, cargo-fuzz) are found there even
# when CARGO_HOME is not ~/.cargo or its bin is not on PATH yet.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

need_apt=()
want=(build-essential pkg-config libdbus-1-dev)
# The desktop app (src-tauri): WebKitGTK, the Ayatana tray, SVG icons.
want+=(libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libssl-dev)
# Node builds the console (ui/); any Node >= 18.
command -v npm >/dev/null 2>&1 || want+=(nodejs npm)
if [ "${1:-build}" = test ]; then
  # The desktop test: a virtual display, window lookup, screenshots, a private D-Bus session
  # with mocked notification daemon and tray watcher (Debian's python3-dbusmock).
  want+=(xvfb xdotool xclip imagemagick python3-dbusmock libnotify-bin gir1.2-ayatanaappindicator3-0.1)
  # chromium: the cross-origin browser test (driven by playwright-core from npm).
  want+=(dbus gnome-keyring libsecret-tools curl python3 chromium)
  # Team mode's tests start their own Redis and PostgreSQL on loopback ports (the services
  # are not used).
  want+=(redis-server postgresql)
  # The outbound-proxy tests start a real HTTP CONNECT proxy and a real SOCKS5 proxy on
  # loopback ports (the tinyproxy service is not used).
  want+=(tinyproxy microsocks)
  # The deployment recipe's unit is checked with `systemd-analyze verify`.
  want+=(systemd)
fi
for p in "${want[@]}"; do
  # "installed", not merely known: a removed package keeps a `dpkg -s` entry (config-files).
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || need_apt+=("$p")
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

# The console (ui/): TypeScript + Vite, pinned in ui/package-lock.json (complete: every
# platform's optional rollup build is listed). The router's build script builds it and embeds
# it at compile time; installing the tools here keeps that step quiet. `npm ci` installs
# exactly the lock and never rewrites it.
if [ ! -d ui/node_modules/vite ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  echo "installing the console's build tools (npm ci)"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ "${1:-build}" = test ]; then
  # Exactly the pinned versions (a machine with other versions installed is brought in line);
  # a second run only checks them (about a second).
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    -r tests/python/requirements.txt
fi

if [ "${1:-build}" = test ]; then
  # The Claude Code, Codex, Gemini and opencode CLIs, pinned in tests/cli/package-lock.json.
  # npm may skip Claude Code's postinstall script (it fetches the native binary from the npm
  # registry), so it is run explicitly.
  if [ ! -x tests/cli/node_modules/.bin/claude ] || [ ! -x tests/cli/node_modules/.bin/codex ] \
    || [ ! -x tests/cli/node_modules/.bin/gemini ] \
    || [ tests/cli/package-lock.json -nt tests/cli/node_modules/.package-lock.json ]; then
    echo "installing the Claude Code, Codex, Gemini and opencode CLIs (npm ci)"
    (cd tests/cli && npm ci --no-audit --no-fund --loglevel=error)
  fi
  (cd tests/cli/node_modules/@anthropic-ai/claude-code && node install.cjs >/dev/null)
  if [ ! -d tests/browser/node_modules/playwright-core ] \
    || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    echo "installing playwright-core (npm; it drives Debian's chromium, no browser download)"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
  fi
  tests/cli/node_modules/.bin/claude --version >/dev/null
  tests/cli/node_modules/.bin/codex --version >/dev/null
  tests/cli/node_modules/.bin/gemini --version >/dev/null
  tests/cli/node_modules/opencode-linux-x64-baseline/bin/opencode --version >/dev/null
fi

if [ "${1:-build}" = test ]; then
  # cargo-deny checks every crate of Cargo.lock, those of other platforms too, offline; a
  # machine that has built only for Linux (or nothing) lacks them in its registry.
  echo "fetching every crate in Cargo.lock (cargo fetch --locked)"
  cargo fetch --locked --quiet
  if ! cargo deny --version >/dev/null 2>&1; then
    # Supply-chain checks (deny.toml); built from crates.io, about 4 minutes on 2 cores.
    echo "installing cargo-deny (crates.io)"
    cargo install --locked --quiet cargo-deny@0.20.2
  fi
fi
