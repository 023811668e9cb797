#!/usr/bin/env bash
# compare-human.sh OLD NEW -- what a user reads, before and after a change: runs two
# preflight binaries with the same arguments on the same scenarios (a host tree with every
# node problem, a limited and an admin user on the test cluster, the fixtures' charts, thirty
# leftovers of another release) and prints the diff of their human output, scenario by
# scenario. Needs the test cluster (scripts/test-cluster.sh up) and the test tools; talks
# only to 127.0.0.1. Build the old binary from a worktree, e.g.
#   git worktree add /tmp/old <commit> && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build)
#   scripts/compare-human.sh /tmp/old-target/debug/preflight target/debug/preflight
set -uo pipefail
OLD=${1:?usage: compare-human.sh OLD NEW}
NEW=${2:?usage: compare-human.sh OLD NEW}
OUT=$(mktemp -d)
FX=$(cd "$(dirname "$0")/.." && pwd)/tests/fixtures
T=$HOME/.cache/preflight-test-tools
KC=$HOME/.cache/preflight-test-cluster/run/kubeconfig
W=$OUT/work; mkdir -p $W/bin $W/home $W/plugins $W/host
ln -s $T/helm-3.17.2/helm $W/bin/helm
H=$W/host
f() { mkdir -p "$(dirname "$H/$1")"; printf '%s' "$2" > "$H/$1"; }
# a node with everything wrong
f proc/sys/kernel/osrelease $'5.15.0-91-generic\n'
f proc/modules $'overlay 151552 0 - Live 0x0000000000000000\n'
f proc/sys/net/ipv4/ip_forward $'0\n'
f proc/sys/fs/inotify/max_user_instances $'128\n'
f proc/sys/fs/inotify/max_user_watches $'8192\n'
f etc/hosts $'127.0.0.1 localhost\n43.135.100.7 hub.bktencent.com\n'
f proc/net/tcp $'  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 424242 1 0000000000000000 100 0 0 10 0\n'
f proc/net/udp $'  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n'
f proc/4242/comm $'nginx\n'
mkdir -p $H/proc/4242/fd; ln -s 'socket:[424242]' $H/proc/4242/fd/3
cat > $W/profile-node.yaml <<P
checks:
  node.conntrack: {}
  node.kernel-settings: {}
  node.hosts: {pins: [{host: hub.bktencent.com, ip: 49.234.165.79}]}
  node.localpv-disk: {paths: [{path: /mnt/blueking, need: 1Gi}, {path: /mnt/huge, need: 900Ti}]}
  node.host-ports: {ports: [{port: 80, what: ingress-nginx}]}
  tools.helm-plugins: {required: [diff, secrets]}
  tools.helm-version: {min: 3.12.0}
P
mkdir -p $H/mnt/huge
run() { # name args...
  local name=$1; shift
  for which in old new; do
    local B=$OLD; [ $which = new ] && B=$NEW
    env -i PATH=$W/bin HOME=$W/home HELM_PLUGINS=$W/plugins NO_COLOR=1 $B --host-root $H --no-progress "$@" > $OUT/$name.$which 2>&1
    echo "exit $?" >> $OUT/$name.$which
  done
  if diff -q $OUT/$name.old $OUT/$name.new >/dev/null; then echo "== $name: same"; else echo "== $name: differs"; diff -u $OUT/$name.old $OUT/$name.new | sed 1,2d; fi
}
run node --profile $W/profile-node.yaml
# cluster: a user who may do little; an install with a claim of a missing class, images on a closed registry
cat > $W/profile-cluster.yaml <<P
release: {name: kubevela, namespace: vela-system}
checks:
  cluster.api: {verbs: [{verb: create, resource: namespaces}]}
  cluster.webhooks: {}
  cluster.storageclass: {}
  cluster.terminating-namespaces: {}
  cluster.leftover-scopedefinition: {}
  cluster.helm-ownership: {objects: [{kind: NoSuchPreflightKind, name: a}]}
  cluster.csr-controllers: {}
  cluster.schedulable: {}
P
run cluster-limited --profile $W/profile-cluster.yaml --kubeconfig $KC --context test-limited
run cluster-admin --profile $W/profile-cluster.yaml --kubeconfig $KC
run chart-storage --chart $FX/storage-app --release bk --namespace blueking --set storageClass=nope --set imageA=127.0.0.1:1/blueking/bk-repo:1.0.0 --set imageB=127.0.0.1:1/library/busybox:1.36 --set initImage=127.0.0.1:1/library/busybox:1.36 --kubeconfig $KC --skip node
run chart-webhook --chart $FX/self-webhook --release kruise --namespace kruise-system --kubeconfig $KC --skip node,network
run chart-kinds --chart $FX/api-kinds --release ak --namespace ak --set widgetGroup=missing.preflight.test --kubeconfig $KC --skip node,network
run chart-hostnet --chart $FX/hostnet --release ingress --namespace ingress --kubeconfig $KC --skip network
# thirty leftovers of another release
K="$T/kubectl-1.32/kubectl --kubeconfig $KC"
ls $T/kubectl-1.32/ >/dev/null 2>&1 || K="kubectl --kubeconfig $KC"
L="apiVersion: v1
kind: List
items:"
for i in $(seq -w 1 30); do L="$L
- {apiVersion: core.oam.dev/v1alpha2, kind: ScopeDefinition, metadata: {name: cmp-sd-$i, labels: {app.kubernetes.io/managed-by: Helm}, annotations: {meta.helm.sh/release-name: oam, meta.helm.sh/release-namespace: oam-system}}, spec: {definitionRef: {name: x}}}"; done
echo "$L" | $K apply -f - >/dev/null
printf 'release: {name: kubevela, namespace: vela-system}\nchecks:\n  cluster.leftover-scopedefinition: {}\n' > $W/profile-sd.yaml
run leftovers --profile $W/profile-sd.yaml --kubeconfig $KC
$K delete scopedefinitions.core.oam.dev $(for i in $(seq -w 1 30); do echo cmp-sd-$i; done) >/dev/null
echo "(both outputs of each scenario are in $OUT)"
