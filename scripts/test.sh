#!/usr/bin/env bash
# test.sh -- the project's test command (README "Tests"; .ci/run calls exactly this).
#   1. the real helm/helmfile releases the tests use (cached outside the repo)
#   2. fmt + clippy, clean
#   3. the whole suite against the debug build
#   4. the static build, checked with `file`, and the whole suite again against it
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-tools.sh >/dev/null
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
scripts/build-static.sh
PREFLIGHT_BIN="$PWD/target/x86_64-unknown-linux-gnu/release/preflight" cargo test --locked --tests
