#!/usr/bin/env bash
# bench-network.sh -- network.registry with 20 registries of which 15 never answer
# (a benchmark, not a test). All on 127.0.0.1: 5 answer like a registry (401 on /v2/),
# 15 accept connections and never answer. Probes run at once, so the wall time should be
# about one --timeout, not 15 of them.   scripts/bench-network.sh [timeout, default 2s]
set -euo pipefail
cd "$(dirname "$0")/.."
T="${1:-2s}"
cargo build --release --locked -q
work=$(mktemp -d)
python3 - "$work" <<'PY' &
import socket, sys, threading, time
work = sys.argv[1]
ports, socks = [], []
def answer(s):
    while True:
        c, _ = s.accept()
        try:
            c.recv(4096)
            c.sendall(b"HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Basic realm=x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        finally:
            c.close()
def hang(s):
    held = []
    while True:
        c, _ = s.accept(); held.append(c)
for i in range(20):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
    socks.append(s); ports.append(s.getsockname()[1])
    threading.Thread(target=answer if i < 5 else hang, args=(s,), daemon=True).start()
with open(f"{work}/ports", "w") as f:
    f.write("\n".join(map(str, ports)))
time.sleep(300)
PY
srv=$!
trap 'kill $srv 2>/dev/null; rm -rf "$work"' EXIT
while [ ! -s "$work/ports" ]; do sleep 0.1; done
{
  echo "checks:"; echo "  network.registry:"; echo "    registries:"
  while read -r p || [ -n "$p" ]; do echo "      - {host: \"127.0.0.1:$p\", insecure: true}"; done < "$work/ports"
} > "$work/profile.yaml"
secs=$(python3 -c "import re,sys; t='$T'; m=re.fullmatch(r'(\d+(?:\.\d+)?)(ms|s)',t); print(float(m[1])/(1000 if m[2]=='ms' else 1))")
/usr/bin/time -f "%e %M" -o "$work/time" target/release/preflight --profile "$work/profile.yaml" --timeout "$T" -o json > "$work/out.json" || true
read -r wall kb < <(tail -n 1 "$work/time")
python3 - "$work/out.json" "$wall" "$kb" "$secs" <<'PY'
import json, sys
doc, wall, kb, t = json.load(open(sys.argv[1])), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
c = doc["checks"][0]
lines = c["message"].splitlines()
print(f"20 registries, 15 never answer, --timeout {t:g}s: status {c['status']}, {len(lines)} failures named")
print(f"wall {wall:.2f}s (one timeout = {t:g}s; a serial probe would take >= {15*t:g}s), peak RSS {kb/1024:.1f} MiB")
PY
