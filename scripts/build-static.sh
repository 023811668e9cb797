#!/usr/bin/env bash
# build-static.sh -- one statically linked preflight binary to copy onto any x86_64 node.
# glibc's static libc (crt-static) on the gnu target: there is no musl target here.
# --target is passed explicitly so RUSTFLAGS apply to the binary only, and proc-macros and
# build scripts stay dynamic (they cannot be built static). Names are resolved in pure Rust
# (src/resolve.rs), so the binary never calls getaddrinfo / loads the node's NSS modules.
# The size is printed and must stay within MAX_BYTES: CI runs this script, so a binary that
# grows past it fails the build. The goal is 12 MiB (issue 19); the ceiling is 14 MiB until
# it is met. Measured (2026-11-30): 13.17 MiB (13,807,816 bytes) with findings in every
# check; a non-PIE build is no smaller (the
# pointers a static-pie relocates move from .data.rel.ro into .rodata, and .text grew);
# panic = "abort" gave 11.4 MiB (before the findings) but a panicking check would end the
# run instead of being reported as `error`.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=x86_64-unknown-linux-gnu
# Unstripped first, so the symbol check below can see what glibc pulled in.
MAX_BYTES=$((14 * 1024 * 1024))
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" CARGO_PROFILE_RELEASE_STRIP=false \
  cargo build --release --locked --target "$TARGET"
BIN="target/$TARGET/release/preflight"
# getaddrinfo in a static glibc binary dlopens the node's NSS modules: it must not be linked.
if nm "$BIN" | grep -qE ' [TtWw] getaddrinfo$'; then
  echo "error: $BIN links getaddrinfo; resolve names through src/resolve.rs" >&2; exit 1
fi
strip "$BIN"
desc=$(file -b "$BIN")
echo "$BIN: $desc"
case "$desc" in
  *static-pie\ linked*|*statically\ linked*) ;;
  *) echo "error: $BIN is not statically linked" >&2; exit 1 ;;
esac
if nm -D "$BIN" 2>/dev/null | grep -q .; then
  echo "error: $BIN has dynamic symbols" >&2; exit 1
fi
size=$(stat -c %s "$BIN")
printf '%s: %d bytes (%.2f MiB; limit %.2f MiB)\n' "$BIN" "$size" \
  "$(awk -v b="$size" 'BEGIN {print b / 1048576}')" "$(awk -v b="$MAX_BYTES" 'BEGIN {print b / 1048576}')"
if [ "$size" -gt "$MAX_BYTES" ]; then
  echo "error: $BIN is $size bytes, over the limit of $MAX_BYTES" >&2; exit 1
fi
