#!/usr/bin/env bash
# Runs the README's two set-up commands the way a newcomer does, to catch steps that only work
# because of what this machine already has: a fresh clone of HEAD, an empty cargo registry
# and target directory (a throwaway CARGO_HOME holding only links to the toolchain's own
# binaries, so cargo-deny, cargo-fuzz and every crate are fetched and built again), an empty
# npm cache and a Python virtual environment with no packages in it. Then the clone's
# `git status --porcelain` must print nothing.
#
#   scripts/fresh-clone-check.sh [WORKDIR]
#
# WORKDIR (default: a new directory under /var/tmp) keeps the clone, logs and build output
# (about 15 GB: a debug build with the desktop app, a release build of the router); it is
# removed when the check passes. Not part of every CI run (it rebuilds everything: about
# 30-40 minutes on 2 cores); run it before a stop whenever set-up scripts change.
# Debian packages cannot be uninstalled for the check: scripts/deps.sh lists each one it needs.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /var/tmp/fluxgate-fresh.XXXXXX)}
mkdir -p "$work"
log="$work/log"
mkdir -p "$log"
start=$(date +%s)
step() { echo "[$(($(date +%s) - start)) s] $*"; }

step "cloning $(git -C "$src" rev-parse --short HEAD) into $work/clone"
rm -rf "$work/clone"
git clone --quiet --no-hardlinks "$src" "$work/clone"
if [ -n "$(git -C "$src" status --porcelain)" ]; then
  echo "note: the checkout has uncommitted changes; the check uses HEAD only" >&2
fi

# CARGO_HOME with the toolchain's binaries only (rustup's proxies); nothing cargo installed.
home="$work/cargo-home"
rm -rf "$home"
mkdir -p "$home/bin"
toolchain_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
for b in cargo rustc rustup rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver; do
  [ -e "$toolchain_bin/$b" ] && ln -s "$toolchain_bin/$b" "$home/bin/$b"
done
export CARGO_HOME="$home"
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
export PATH="$home/bin:$(echo "$PATH" | tr ':' '\n' | grep -vx "$toolchain_bin" | paste -sd:)"
unset CARGO_TARGET_DIR
export npm_config_cache="$work/npm-cache"
rm -rf "$npm_config_cache"
export PIP_NO_CACHE_DIR=1
python3 -m venv "$work/venv"
export PATH="$work/venv/bin:$PATH"
# A new user's home: no ~/.config/fluxgate, no caches, no tool configs.
export HOME="$work/home"
mkdir -p "$HOME"
unset DISPLAY WAYLAND_DISPLAY FLUXGATE_CONFIG FLUXGATE_DATA_DIR
export CI=true

cd "$work/clone"
step "README command 1: scripts/run.sh --headless (build and start the router)"
port=$((20000 + RANDOM % 20000))
data="$work/data"
mkdir -p "$data"
scripts/run.sh --headless --listen "127.0.0.1:$port" --data-dir "$data" </dev/null >"$log/run.log" 2>&1 &
run_pid=$!
up=0
for _ in $(seq 1 3600); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
    up=1
    break
  fi
  kill -0 "$run_pid" 2>/dev/null || break
  sleep 1
done
if [ "$up" = 1 ]; then
  console=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/admin/")
  kill "$run_pid"
  wait "$run_pid" || true
  if [ "$console" != 200 ]; then
    echo "FAIL: the router started but /admin/ answered $console (console not built in)" >&2
    exit 1
  fi
  step "the router answered /healthz and served the console; stopped it"
else
  tail -30 "$log/run.log" >&2
  echo "FAIL: scripts/run.sh did not start the router (log: $log/run.log)" >&2
  exit 1
fi

step "README command 2: scripts/test.sh"
if ! scripts/test.sh </dev/null >"$log/test.log" 2>&1; then
  tail -60 "$log/test.log" >&2
  echo "FAIL: scripts/test.sh failed on the fresh clone (log: $log/test.log)" >&2
  exit 1
fi
grep -E '^(fuzz: every target|canary scan:|cargo-deny|.*tests? run:|[0-9]+ passed)' "$log/test.log" || true

dirty=$(git status --porcelain)
if [ -n "$dirty" ]; then
  echo "FAIL: the set-up left the clone dirty:" >&2
  echo "$dirty" >&2
  exit 1
fi
step "PASS: both README commands work from a fresh clone with an empty registry; the tree is clean"
cd /
rm -rf "$work"
