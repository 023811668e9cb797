#!/usr/bin/env bash
# bench-nodes.sh -- `preflight nodes` on 200 Node objects (a benchmark, not a test).
# Starts its own control plane (ports 6448/23798/23808, no controller manager), creates the
# Node objects, and plays their kubelets with examples/fake_kubelet.rs: each pod is answered
# after a delay of 0-2 s drawn per pod, with a termination message the real binary produced
# on a host tree. Reports, for 20 and for 200 nodes: preflight's wall time, when the slowest
# node answered, the difference (the goal: under 1 s), preflight's API requests and the
# requests per added node (the goal: constant, one pod create each), and the harness's own
# CPU time apart. Stops the control plane at the end.
#   scripts/bench-nodes.sh [nodes] [max-delay-ms]     (default 200 nodes, 2000 ms)
set -euo pipefail
cd "$(dirname "$0")/.."
NODES="${1:-200}"
MAX_MS="${2:-2000}"
ROOT="${K8S_TEST_ROOT:-$HOME/.cache/preflight-test-cluster}"
export APISERVER_PORT=6448 ETCD_PORT=23798 ETCD_PEER_PORT=23808 KCM_PORT=10263 WITH_KCM=0
export K8S_TEST_RUN_DIR="$ROOT/run-bench-nodes"
KC="$K8S_TEST_RUN_DIR/kubeconfig"
TOOLS=$(scripts/test-tools.sh)
KUBECTL="$TOOLS/kubectl-1.32/kubectl --kubeconfig $KC"
work=$(mktemp -d)
trap 'scripts/test-cluster.sh stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

cargo build --release --locked -q --bin preflight --example fake_kubelet
BIN=target/release/preflight
KUBELET=target/release/examples/fake_kubelet
scripts/test-cluster.sh up >/dev/null 2>&1
NS=preflight-bench
$KUBECTL create namespace $NS >/dev/null
# No controller manager: the ServiceAccount admission plugin wants the namespace's default.
$KUBECTL -n $NS create serviceaccount default >/dev/null 2>&1 || true
python3 - "$NODES" > "$work/nodes.json" <<'PY'
import json, sys
n = int(sys.argv[1])
items = [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"bench-{i:03d}",
          "labels": {"bench": "all", **({"bench-small": "yes"} if i < 20 else {})}}} for i in range(n)]
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
PY
$KUBECTL apply -f "$work/nodes.json" >/dev/null

# One node's real answer: the binary on a host tree with conntrack loaded and room on disk.
mkdir -p "$work/host/proc/sys/kernel" "$work/host/lib/modules/5.15.0-91-generic" "$work/host/mnt/data"
echo 5.15.0-91-generic > "$work/host/proc/sys/kernel/osrelease"
: > "$work/host/lib/modules/5.15.0-91-generic/modules.dep"
echo "nf_conntrack 172032 4 xt_conntrack, Live 0x0" > "$work/host/proc/modules"
cat > "$work/profile.yaml" <<'YAML'
checks:
  node.conntrack: {}
  node.localpv-disk: {paths: [{path: /mnt/data, need: 1Ki}]}
YAML
"$BIN" check --host-root "$work/host" --profile "$work/profile.yaml" --only node -o termination \
  --no-progress > "$work/message" || true

measure() { # selector count
  local sel=$1 count=$2
  /usr/bin/time -f "%U %S" -o "$work/kubelet.time" \
    "$KUBELET" "$KC" $NS "$work/message" "$MAX_MS" "$count" > "$work/kubelet.out" &
  local kubelet=$!
  until grep -q ready "$work/kubelet.out" 2>/dev/null; do sleep 0.05; done
  local t0 t1
  t0=$(date +%s%3N)
  PREFLIGHT_STATS=1 "$BIN" nodes --image bench/preflight:x --pod-namespace $NS --node-selector "$sel" \
    --profile "$work/profile.yaml" --kubeconfig "$KC" -o json > "$work/out.json" 2> "$work/err" || true
  t1=$(date +%s%3N)
  wait $kubelet
  local last req failed cpu passed
  last=$(awk '$1 == "answered" {print $3}' "$work/kubelet.out" | sort -n | tail -n 1)
  failed=$(grep -c '^failed' "$work/kubelet.out" || true)
  req=$(grep -o '[0-9]* Kubernetes API requests' "$work/err" | awk '{print $1}')
  cpu=$(awk '{print $1 + $2}' "$work/kubelet.time")
  passed=$(python3 -c "import json; d=json.load(open('$work/out.json')); print(sum(1 for c in d['checks'] if c.get('node') and c['status']=='pass'))")
  printf '%4d nodes: wall %5.2fs, slowest node answered at %5.2fs, wall - slowest %4.2fs; %s API requests; %d per-node checks passed; harness: %s s CPU, %s status writes failed\n' \
    "$count" "$(echo "($t1-$t0)/1000" | bc -l)" "$(echo "($last-$t0)/1000" | bc -l)" \
    "$(echo "($t1-$last)/1000" | bc -l)" "$req" "$passed" "$cpu" "$failed"
  echo "$req" > "$work/req.$count"
}

measure bench-small=yes 20
measure bench=all "$NODES"
r20=$(cat "$work/req.20"); rn=$(cat "$work/req.$NODES")
printf 'API requests per added node: %.2f ((%d - %d) / %d)\n' \
  "$(echo "($rn-$r20)/($NODES-20)" | bc -l)" "$rn" "$r20" "$((NODES-20))"
