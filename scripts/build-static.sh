#!/usr/bin/env bash
# build-static.sh -- one statically linked preflight binary to copy onto any x86_64 node.
# glibc's static libc (crt-static) on the gnu target: there is no musl target here.
# --target is passed explicitly so RUSTFLAGS apply to the binary only, and proc-macros and
# build scripts stay dynamic (they cannot be built static). Names are resolved in pure Rust
# (src/resolve.rs), so the binary never calls getaddrinfo / loads the node's NSS modules.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=x86_64-unknown-linux-gnu
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked --target "$TARGET"
BIN="target/$TARGET/release/preflight"
desc=$(file -b "$BIN")
echo "$BIN: $desc"
case "$desc" in
  *static-pie\ linked*|*statically\ linked*) ;;
  *) echo "error: $BIN is not statically linked" >&2; exit 1 ;;
esac
if nm -D "$BIN" 2>/dev/null | grep -q .; then
  echo "error: $BIN has dynamic symbols" >&2; exit 1
fi
