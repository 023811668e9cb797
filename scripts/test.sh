#!/usr/bin/env bash
# test.sh -- the project's test command (README "Tests"; .ci/run calls exactly this).
#   1. the real helm/helmfile releases the tests use (cached outside the repo)
#   2. the two real test control planes (scripts/test-cluster.sh), started here or the run
#      fails; PREFLIGHT_SKIP_CLUSTER=1 is the only opt-out, and the closing line counts
#      the cluster tests it skipped
#   3. fmt + clippy, clean
#   4. the whole suite against the debug build
#   5. the static build, checked with `file`, and the whole suite again against it
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-tools.sh >/dev/null

skip_log=$(mktemp)
trap 'rm -f "$skip_log"' EXIT
export PREFLIGHT_SKIP_LOG="$skip_log"
if [ "${PREFLIGHT_SKIP_CLUSTER:-}" = 1 ]; then
  echo "test.sh: PREFLIGHT_SKIP_CLUSTER=1: the cluster tests will be skipped (and counted)" >&2
else
  root="${K8S_TEST_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/preflight-test-cluster}"
  scripts/test-cluster.sh up
  # The second control plane runs kube-controller-manager without csrsigning (tests/cluster.rs).
  env APISERVER_PORT=6445 ETCD_PORT=23795 ETCD_PEER_PORT=23805 KCM_PORT=10260 \
      K8S_TEST_RUN_DIR="$root/run-nosign" KCM_CONTROLLERS='*,-csrsigning' \
      scripts/test-cluster.sh up
fi

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
scripts/build-static.sh
PREFLIGHT_BIN="$PWD/target/x86_64-unknown-linux-gnu/release/preflight" cargo test --locked --tests

skipped=$(wc -l < "$skip_log")
if [ "$skipped" -gt 0 ]; then
  echo "test.sh: $skipped cluster test run(s) SKIPPED (PREFLIGHT_SKIP_CLUSTER=1): $(sort -u "$skip_log" | tr '\n' ' ')"
else
  echo "test.sh: all suites ran; 0 cluster tests skipped"
fi
