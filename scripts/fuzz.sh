#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for SECONDS each (default 10), starting
# from the inputs kept in fuzz/regressions/<target>/. A crash stops the run and is saved under
# fuzz/artifacts/<target>/; after fixing it, copy it into fuzz/regressions/<target>/ so the
# stable test suite replays it forever (crates/fluxgate-core/tests/fuzz_regressions.rs).
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
secs=${1:-10}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz (crates.io)"
  cargo install --locked --quiet cargo-fuzz@0.13.2
fi
# libFuzzer needs nightly compiler flags: use a nightly toolchain when there is one, else
# unlock them on stable. No sanitizer: the Rust code forbids `unsafe`, so AddressSanitizer
# would only instrument the C dependencies (SQLite alone then takes minutes to compile); the
# fuzzers look for panics, failed assertions, hangs and memory blow-ups.
tc=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  tc=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

# `cargo fuzz build` has no --locked: check the fuzz crate's own lock first, so the build never
# rewrites fuzz/Cargo.lock (it must change in a commit, not in a test run).
if ! cargo fetch --locked --quiet --manifest-path fuzz/Cargo.toml; then
  echo "fuzz: fuzz/Cargo.lock is out of date with the crates it builds; run" >&2
  echo "  cargo fetch --manifest-path fuzz/Cargo.toml" >&2
  echo "and commit fuzz/Cargo.lock" >&2
  exit 1
fi
cargo "${tc[@]}" fuzz build --sanitizer none
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
total=0
for t in $(cargo "${tc[@]}" fuzz list); do
  mkdir -p "$corpus/$t" "fuzz/artifacts/$t"
  cp fuzz/regressions/"$t"/* "$corpus/$t/" 2>/dev/null || true
  out=$(cargo "${tc[@]}" fuzz run --sanitizer none "$t" "$corpus/$t" -- \
    -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
    -artifact_prefix="fuzz/artifacts/$t/" 2>&1) || {
    echo "$out" | tail -40
    echo "fuzz: $t crashed; the input is in fuzz/artifacts/$t/" >&2
    exit 1
  }
  runs=$(echo "$out" | grep -oE 'Done [0-9]+ runs' | grep -oE '[0-9]+' | tail -1)
  total=$((total + ${runs:-0}))
  echo "fuzz: $t ok (${runs:-?} runs in ${secs} s)"
done
echo "fuzz: every target ran; $total inputs in total, no crash"
