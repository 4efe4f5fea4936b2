#!/usr/bin/env bash
# Builds Fluxgate's Linux packages offline: a .deb and an .rpm holding the desktop app
# (/usr/bin/fluxgate-app), the command line (/usr/bin/fluxgate), a desktop entry, hicolor icons
# and AppStream metainfo, with their runtime dependencies declared. The Tauri CLI is pinned in
# packaging/package-lock.json (its version matches the tauri crate in Cargo.lock); nothing is
# downloaded but crates and npm packages. Then checks the result with desktop-file-validate and
# appstreamcli, and prints where the packages are.
#
#   scripts/package.sh           release build -> target/release/bundle/{deb,rpm}/
#   scripts/package.sh --debug   packages the debug build (what the package test installs)
#
# AppImage is not built: the bundler downloads linuxdeploy and its plugins from GitHub, which
# this project's machines cannot reach. See README "Install" for building one elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
profile=release
cargo_flags=(--release)
tauri_flags=()
if [ "${1:-}" = --debug ]; then
  profile=debug
  cargo_flags=()
  tauri_flags=(--debug)
fi

scripts/deps.sh build
need=()
for p in desktop-file-utils appstream; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -x packaging/node_modules/.bin/tauri ] \
  || [ packaging/package-lock.json -nt packaging/node_modules/.package-lock.json ]; then
  echo "installing the Tauri CLI (npm ci, pinned in packaging/package-lock.json)"
  (cd packaging && npm ci --no-audit --no-fund --loglevel=error)
fi

cargo build --locked "${cargo_flags[@]}" -p fluxgate-server --bin fluxgate
mkdir -p target/package
sed "s|PROFILE|$profile|g" packaging/bundle.json > target/package/bundle.json
rm -rf "target/$profile/bundle/deb" "target/$profile/bundle/rpm"
(cd src-tauri && ../packaging/node_modules/.bin/tauri build --ci "${tauri_flags[@]}" \
  --config ../target/package/bundle.json -- --locked)

deb=$(ls "target/$profile/bundle/deb/"*.deb)
rpm=$(ls "target/$profile/bundle/rpm/"*.rpm)
check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
dpkg-deb -x "$deb" "$check"
desktop-file-validate "$check"/usr/share/applications/*.desktop
appstreamcli validate --no-net --explain "$check"/usr/share/metainfo/dev.fluxgate.app.metainfo.xml >/dev/null \
  || appstreamcli validate --no-net --explain "$check"/usr/share/metainfo/dev.fluxgate.app.metainfo.xml
for f in usr/bin/fluxgate usr/bin/fluxgate-app usr/share/icons/hicolor/128x128/apps; do
  [ -e "$check/$f" ] || { echo "package check: $f is missing from $deb" >&2; exit 1; }
done
echo "desktop entry and AppStream metainfo valid"
ls -l "$deb" "$rpm" | awk '{printf "%s  %.1f MiB\n", $NF, $5/1048576}'
