#!/usr/bin/env bash
# bench.sh -- preflight against the serial shell script a user would write for the same
# checks (scripts/bench-baseline.sh), side by side in one run (a benchmark, not a test).
# The profile: tools (helmfile, helm ≥ 3.12, helm-diff), node (conntrack, local-PV disk,
# hosts, container runtime registries) on a host tree, 3 registries on 127.0.0.1, and 7
# cluster checks against its own control plane (ports 6448/23798/23808, no controller
# manager). Real helm 3.17.2, helmfile 0.166.0 and kubectl 1.32 (scripts/test-tools.sh).
# Prints the median wall and CPU time and the peak RSS of each, the ratio, and preflight's
# per-phase split from -o json.      scripts/bench.sh [runs, default 7] [binary]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-7}"
ROOT="${K8S_TEST_ROOT:-$HOME/.cache/preflight-test-cluster}"
export APISERVER_PORT=6448 ETCD_PORT=23798 ETCD_PEER_PORT=23808 KCM_PORT=10263 WITH_KCM=0
export K8S_TEST_RUN_DIR="$ROOT/run-bench-shell"
KC="$K8S_TEST_RUN_DIR/kubeconfig"
TOOLS=$(scripts/test-tools.sh)
if [ -n "${2:-}" ]; then BIN=$(realpath "$2"); else cargo build --release --locked -q; BIN=$PWD/target/release/preflight; fi
work=$(mktemp -d)
srv=""
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; scripts/test-cluster.sh stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
scripts/test-cluster.sh up >/dev/null 2>&1

# Three registries answering /v2/ as a registry does.
python3 - "$work" <<'PY' &
import http.server, socketserver, sys, threading, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *a): pass
ports = []
for _ in range(3):
    s = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H); s.daemon_threads = True
    ports.append(s.server_address[1]); threading.Thread(target=s.serve_forever, daemon=True).start()
open(sys.argv[1] + "/ports", "w").write("\n".join(map(str, ports)))
time.sleep(3600)
PY
srv=$!
while [ ! -s "$work/ports" ]; do sleep 0.05; done
mapfile -t ports < "$work/ports"
regs=(); for p in "${ports[@]}"; do regs+=("127.0.0.1:$p"); done

# The host tree, helm's plugins, and the tools on PATH.
host="$work/host"
mkdir -p "$host/proc/sys/net/netfilter" "$host/etc/containerd" "$host/mnt/data" "$work/bin" "$work/plugins/diff" "$work/home"
echo 262144 > "$host/proc/sys/net/netfilter/nf_conntrack_max"
printf '127.0.0.1 localhost\n10.0.0.5 registry.local\n' > "$host/etc/hosts"
{ for r in "${regs[@]}"; do printf '[plugins."io.containerd.grpc.v1.cri".registry.configs."%s".tls]\n  insecure_skip_verify = true\n' "$r"; done; } > "$host/etc/containerd/config.toml"
printf 'name: "diff"\nversion: "3.9.4"\nusage: "diff"\ndescription: "diff"\ncommand: "$HELM_PLUGIN_DIR/bin/diff"\n' > "$work/plugins/diff/plugin.yaml"
ln -s "$TOOLS/helm-3.17.2/helm" "$TOOLS/helmfile-0.166.0/helmfile" "$TOOLS/kubectl-1.32/kubectl" "$work/bin/"
export PATH="$work/bin:/usr/bin:/bin" HELM_PLUGINS="$work/plugins" HOME="$work/home"

{
  echo "release: {name: kubevela, namespace: vela-system}"
  echo "registries:"; for r in "${regs[@]}"; do echo "  - {host: \"$r\", insecure: true}"; done
  cat <<YAML
checks:
  tools.helmfile-on-path: {}
  tools.helm-version: {min: "3.12.0"}
  tools.helm-plugins: {required: [diff]}
  node.conntrack: {}
  node.localpv-disk: {paths: [{path: /mnt/data, need: 1Gi}]}
  node.hosts: {pins: {registry.local: ["10.0.0.5"]}}
  node.container-runtime-registries: {}
  network.registry: {}
  cluster.api: {verbs: [{verb: create, resource: namespaces}]}
  cluster.terminating-namespaces: {}
  cluster.webhooks: {}
  cluster.storageclass: {}
  cluster.schedulable: {}
  cluster.helm-ownership: {objects: [{kind: Namespace, name: cert-manager, apiVersion: v1}]}
  cluster.leftover-cert-manager: {}
YAML
} > "$work/profile.yaml"

# Alternating runs, timed by Python (perf_counter for wall; getrusage of the children for CPU
# and the largest process's peak RSS) -- /usr/bin/time's 10 ms steps are too coarse here.
python3 - "$work" "$RUNS" "$BIN" "$host" "$KC" "${regs[@]}" <<'PY'
import os, resource, subprocess, sys, time
w, n, binary, host, kc, regs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
pf = [binary, "--profile", f"{w}/profile.yaml", "--host-root", host, "--kubeconfig", kc, "-o", "json"]
sh = ["scripts/bench-baseline.sh", host, kc] + regs
env = dict(os.environ, PREFLIGHT_STATS="1")
def once(cmd, tag, i):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(f"{w}/{tag}.{i}.json", "w") as out, open(f"{w}/{tag}.{i}.err", "w") as err:
        subprocess.run(cmd, stdout=out, stderr=err, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    open(f"{w}/t.{tag}.{i}", "w").write(f"{wall} {cpu} 0 {after.ru_maxrss}\n")
once(pf, "pf", 0); once(sh, "sh", 0)   # warm caches for both, untimed
for i in range(1, n + 1):
    once(pf, "pf", i); once(sh, "sh", i)
PY
python3 - "$work" "$RUNS" <<'PY'
import json, statistics, sys
w, n = sys.argv[1], int(sys.argv[2])
def load(tag):
    rows = [list(map(float, open(f"{w}/t.{tag}.{i}").read().split()[-4:])) for i in range(1, n + 1)]
    return (statistics.median(r[0] for r in rows), statistics.median(r[1] + r[2] for r in rows),
            max(r[3] for r in rows) / 1024)
pf, sh = load("pf"), load("sh")
import re
own = max(int(re.search(r"peak RSS (\d+) kB", open(f"{w}/pf.{i}.err").read())[1]) for i in range(1, n + 1)) / 1024
print(f"{'':26}{'wall (median)':>14}{'CPU (median)':>14}   peak RSS")
print(f"{'preflight':26}{pf[0]*1000:>11.1f} ms{pf[1]*1000:>11.1f} ms   {own:.1f} MiB (preflight itself)")
print(f"{'shell baseline (serial)':26}{sh[0]*1000:>11.1f} ms{sh[1]*1000:>11.1f} ms")
print(f"(CPU counts every process started: helm, helmfile, kubectl, curl; the largest of them peaks at {max(pf[2], sh[2]):.0f} MiB)")
print(f"ratio (baseline / preflight): wall {sh[0]/pf[0]:.1f}x, CPU {sh[1]/pf[1]:.1f}x   ({n} runs each, alternating)")
doc = json.load(open(f"{w}/pf.{n}.json"))
phases = {}
for c in doc["checks"]:
    phases.setdefault(c["phase"], []).append((c["duration_ms"], c["id"], c["status"]))
print("preflight per phase (last run; checks of a phase run at once):")
for p, cs in phases.items():
    slow = max(cs)
    print(f"  {p:8} {slow[0]:>5} ms  slowest {slow[1]} ({len(cs)} checks: " +
          ", ".join(f"{i.split('.',1)[1]}={s}" for _, i, s in cs) + ")")
PY
