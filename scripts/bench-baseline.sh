#!/usr/bin/env bash
# bench-baseline.sh -- the honest shell baseline of scripts/bench.sh: the checks of its
# profile written the way an installer's setup script does them, one after the other, with
# the real helm, helmfile, kubectl, curl, grep and df. Every check reports pass/fail; the
# script neither stops at the first failure nor skips work preflight does.
#   bench-baseline.sh HOST_ROOT KUBECONFIG REGISTRY...
set -u
root=$1 kc=$2; shift 2
k() { kubectl --kubeconfig "$kc" --request-timeout=5s "$@"; }
say() { printf '%-5s %s\n' "$1" "$2"; }

# tools
if v=$(helmfile --version 2>/dev/null); then say pass "helmfile: $v"; else say fail "helmfile"; fi
hv=$(helm version --short 2>/dev/null | sed 's/^v//; s/+.*//')
if [ -n "$hv" ] && [ "$(printf '%s\n3.12.0\n' "$hv" | sort -V | head -1)" = 3.12.0 ]; then
  say pass "helm $hv"; else say fail "helm ${hv:-missing}"; fi
if helm plugin list 2>/dev/null | awk 'NR>1 {print $1}' | grep -qx diff; then say pass "helm-diff"; else say fail "helm-diff"; fi

# node
max=$(cat "$root/proc/sys/net/netfilter/nf_conntrack_max" 2>/dev/null || echo 0)
if [ "$max" -ge 131072 ]; then say pass "conntrack $max"; else say fail "conntrack $max"; fi
avail=$(df --output=avail -k "$root/mnt/data" 2>/dev/null | tail -1)
if [ "${avail:-0}" -ge $((1024 * 1024)) ]; then say pass "disk ${avail}k"; else say fail "disk"; fi
if grep -q 'registry.local' "$root/etc/hosts"; then say pass "hosts pin"; else say fail "hosts pin"; fi
for r in "$@"; do
  if grep -q "$r" "$root/etc/containerd/config.toml" 2>/dev/null; then say pass "containerd knows $r"; else say fail "containerd lacks $r"; fi
done

# network
for r in "$@"; do
  code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$r/v2/")
  case "$code" in 200|401) say pass "registry $r";; *) say fail "registry $r ($code)";; esac
done

# cluster
if k version -o json >/dev/null 2>&1 && [ "$(k auth can-i create namespaces)" = yes ]; then
  say pass "api"; else say fail "api"; fi
if k get namespaces -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase}{"\n"}{end}' | grep -q ' Terminating$'; then
  say fail "terminating namespaces"; else say pass "no terminating namespaces"; fi
if k get validatingwebhookconfigurations,mutatingwebhookconfigurations -o json | grep -q '"failurePolicy": "Fail"'; then
  k get endpoints -A -o json >/dev/null; say warn "Fail webhooks: endpoints listed"; else say pass "webhooks"; fi
if k get storageclass -o jsonpath='{.items[*].metadata.annotations}' | grep -q 'is-default-class":"true'; then
  say pass "default storageclass"; else say fail "no default storageclass"; fi
if [ "$(k get nodes --no-headers 2>/dev/null | grep -cw Ready)" -gt 0 ]; then say pass "nodes"; else say fail "no ready nodes"; fi
if k get namespace cert-manager -o jsonpath='{.metadata.annotations.meta\.helm\.sh/release-name}' 2>/dev/null | grep -qv '^kubevela$'; then
  say fail "cert-manager owned by another release"; else say pass "ownership"; fi
if k get secrets -A -l owner=helm,name=cert-manager --no-headers 2>/dev/null | grep -q .; then
  say fail "leftover cert-manager release"; else say pass "no leftover cert-manager"; fi
exit 0
