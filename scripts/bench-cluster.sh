#!/usr/bin/env bash
# bench-cluster.sh -- the cluster phase against a loaded control plane (a benchmark, not a test).
# Starts its own control plane (ports 6447/23797/23807, no controller manager), measures the
# cluster phase empty, loads 5,000 namespaces and 2,000 ScopeDefinitions (one of them owned by
# another release), measures again: wall time, peak RSS, and the number of API requests, which
# must not grow with the object counts. Stops the control plane at the end.
#   scripts/bench-cluster.sh [runs]      (default 5 runs per measurement)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
ROOT="${K8S_TEST_ROOT:-$HOME/.cache/preflight-test-cluster}"
export APISERVER_PORT=6447 ETCD_PORT=23797 ETCD_PEER_PORT=23807 KCM_PORT=10262 WITH_KCM=0
export K8S_TEST_RUN_DIR="$ROOT/run-bench"
KC="$K8S_TEST_RUN_DIR/kubeconfig"
TOOLS=$(scripts/test-tools.sh)
KUBECTL="$TOOLS/kubectl-1.32/kubectl --kubeconfig $KC"
trap 'scripts/test-cluster.sh stop >/dev/null 2>&1 || true' EXIT

cargo build --release --locked -q
BIN=target/release/preflight
scripts/test-cluster.sh up >/dev/null 2>&1
work=$(mktemp -d)
cat > "$work/profile.yaml" <<'YAML'
release: {name: kubevela, namespace: vela-system}
checks:
  cluster.api: {verbs: [{verb: create, resource: namespaces}]}
  cluster.leftover-cert-manager: {}
  cluster.leftover-scopedefinition: {}
  cluster.helm-ownership:
    objects:
      - {kind: Namespace, name: cert-manager}
      - {kind: MutatingWebhookConfiguration, apiVersion: admissionregistration.k8s.io/v1, name: mutating-webhook-configuration}
  cluster.terminating-namespaces: {}
  cluster.webhooks: {}
  cluster.storageclass: {}
  cluster.schedulable: {}
YAML

measure() { # label
  local walls=() rss=0 req=""
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$work/time" env PREFLIGHT_STATS=1 "$BIN" --kubeconfig "$KC" \
      --profile "$work/profile.yaml" -o json > "$work/out.json" 2> "$work/err" || true
    read -r wall kb < <(tail -n 1 "$work/time")
    walls+=("$wall"); [ "$kb" -gt "$rss" ] && rss=$kb
    req=$(grep -o '[0-9]* Kubernetes API requests' "$work/err" | awk '{print $1}')
  done
  local median
  median=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%-32s wall median %6ss (of %d)  peak RSS %6.1f MiB  API requests %s\n' \
    "$1" "$median" "$RUNS" "$(echo "$rss/1024" | bc -l)" "$req"
  python3 -c "import json,sys; d=json.load(open('$work/out.json')); print('   ', ', '.join(c['id'].split('.',1)[1]+'='+c['status'] for c in d['checks']))"
}

$KUBECTL apply -f - >/dev/null <<'YAML'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: scopedefinitions.core.oam.dev}
spec:
  group: core.oam.dev
  scope: Cluster
  names: {kind: ScopeDefinition, plural: scopedefinitions, singular: scopedefinition}
  versions:
  - {name: v1alpha2, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
YAML
$KUBECTL wait --for=condition=Established crd/scopedefinitions.core.oam.dev --timeout=60s >/dev/null
measure "CRD, no objects"

echo "loading 5000 namespaces and 2000 ScopeDefinitions ..." >&2
python3 - "$work" <<'PY'
import sys
w = sys.argv[1]
with open(f"{w}/ns.yaml", "w") as f:
    f.write("apiVersion: v1\nkind: List\nitems:\n")
    for i in range(5000):
        f.write(f"- {{apiVersion: v1, kind: Namespace, metadata: {{name: bench-{i:04d}}}}}\n")
with open(f"{w}/sd.yaml", "w") as f:
    f.write("apiVersion: v1\nkind: List\nitems:\n")
    for i in range(2000):
        rel, ns = ("oam", "oam-system") if i == 0 else ("kubevela", "vela-system")
        name = "healthscopes.core.oam.dev" if i == 0 else f"scope-{i:04d}.core.oam.dev"
        f.write(f"- {{apiVersion: core.oam.dev/v1alpha2, kind: ScopeDefinition, metadata: {{name: {name}, "
                f"labels: {{app.kubernetes.io/managed-by: Helm}}, annotations: {{meta.helm.sh/release-name: {rel}, "
                f"meta.helm.sh/release-namespace: {ns}}}}}, spec: {{definitionRef: {{name: {name}}}}}}}\n")
PY
t0=$(date +%s)
$KUBECTL create -f "$work/ns.yaml" >/dev/null 2>&1 || true
$KUBECTL create -f "$work/sd.yaml" >/dev/null 2>&1 || true
echo "loaded in $(( $(date +%s) - t0 ))s: $($KUBECTL get ns --no-headers | wc -l) namespaces, $($KUBECTL get scopedefinitions --no-headers | wc -l) ScopeDefinitions" >&2

measure "5000 namespaces, 2000 ScopeDefs"
rm -rf "$work"
