#!/usr/bin/env bash
# bench-install.sh -- checking a 30-release helmfile (a benchmark, not a test).
# Starts its own control plane (ports 6448/23798/23808, no controller manager), writes a
# helmfile of 30 releases of tests/fixtures/storage-app, and times, side by side:
#   1. `helmfile template` alone (what any check of the install has to pay once), and
#   2. `preflight --helmfile … --only <the cluster checks the install feeds>` (its render:
#      `helmfile --debug list --skip-charts` for the state, then the releases templated in
#      shares by a few `helmfile template --output-dir` at once, with the cluster's
#      capabilities, plus the checks on top),
# reporting the median wall time of each and the ratio. Stops the control plane at the end.
#   scripts/bench-install.sh [runs]      (default 5 runs per measurement)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
ROOT="${K8S_TEST_ROOT:-$HOME/.cache/preflight-test-cluster}"
export APISERVER_PORT=6448 ETCD_PORT=23798 ETCD_PEER_PORT=23808 KCM_PORT=10263 WITH_KCM=0
export K8S_TEST_RUN_DIR="$ROOT/run-bench-install"
KC="$K8S_TEST_RUN_DIR/kubeconfig"
TOOLS=$(scripts/test-tools.sh)
trap 'scripts/test-cluster.sh stop >/dev/null 2>&1 || true' EXIT

cargo build --release --locked -q
BIN="$PWD/target/release/preflight"
scripts/test-cluster.sh up >/dev/null 2>&1

work=$(mktemp -d)
mkdir -p "$work/bin" "$work/home"
ln -s "$TOOLS/helm-3.17.2/helm" "$work/bin/helm"
ln -s "$TOOLS/helmfile-0.166.0/helmfile" "$work/bin/helmfile"
cp -r tests/fixtures/storage-app "$work/"
{
  echo "releases:"
  for i in $(seq -w 1 30); do
    echo "  - name: app-$i"
    echo "    namespace: bench-$i"
    echo "    chart: ./storage-app"
    echo "    values: [{storageClass: local-storage-$i}]"
  done
} > "$work/helmfile.yaml"
export PATH="$work/bin:$PATH" HOME="$work/home" KUBECONFIG="$KC"
cd "$work"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_runs() { # command...
  for _ in $(seq "$RUNS"); do
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN {print b - a}'
  done | median
}

alone=$(time_runs helmfile --file helmfile.yaml template --include-crds)
checks="cluster.api,cluster.helm-ownership,cluster.terminating-namespaces,cluster.storageclass"
with=$(time_runs "$BIN" --helmfile helmfile.yaml --only "$checks" --no-progress)
objects=$( ("$BIN" --helmfile helmfile.yaml --only "$checks" -o json || true) | grep -o '"objects": [0-9]*' | head -1)
printf 'helmfile template alone:        %.2f s (median of %s)\n' "$alone" "$RUNS"
printf 'preflight --helmfile (4 checks): %.2f s (median of %s; %s)\n' "$with" "$RUNS" "$objects"
printf 'ratio: %.2f (preflight / helmfile template)\n' "$(awk -v a="$alone" -v b="$with" 'BEGIN {print b / a}')"
