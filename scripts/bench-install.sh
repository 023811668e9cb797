#!/usr/bin/env bash
# bench-install.sh -- checking a 25-release helmfile of real-sized charts (a benchmark, not a test).
# Starts its own control plane (ports 6448/23798/23808, no controller manager), writes a
# helmfile of 25 releases of a generated chart of a real chart's size (~110 objects each),
# and times, side by side:
#   1. `helmfile template` alone (what any check of the install has to pay once), and
#   2. `preflight --helmfile … --only <the cluster checks the install feeds>` (its render:
#      `helmfile --debug list --skip-charts` for the state, then the releases templated in
#      shares by a few `helmfile template --output-dir` at once (`--skip-deps` for charts
#      that declare no dependencies), with the cluster's
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
# A chart of a real chart's size and shape (what bkce7's charts look like to helm): helpers,
# includes, loops and toYaml over a dozen components, each with its Deployment, Service,
# ConfigMap, ServiceAccount, Role, RoleBinding, PodDisruptionBudget, HPA and Ingress,
# plus a StatefulSet with its claim: ~110 objects per release.
chart="$work/big-app"
mkdir -p "$chart/templates"
cat > "$chart/Chart.yaml" <<'YAML'
apiVersion: v2
name: big-app
version: 1.0.0
YAML
{
  echo "image: {registry: hub.bktencent.com, repository: blueking, tag: 1.0.0}"
  echo "storageClass: local-storage"
  echo "components:"
  for c in api web worker scheduler gateway auth notice monitor search storage job repo; do
    echo "  - {name: $c, replicas: 2, port: 8080, cpu: 100m, memory: 128Mi, env: {LOG_LEVEL: info, MODE: prod, FEATURE_X: "true"}}"
  done
} > "$chart/values.yaml"
cat > "$chart/templates/_helpers.tpl" <<'TPL'
{{- define "big.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ .root.Chart.Name }}-{{ .root.Chart.Version | replace "+" "_" }}
{{- end -}}
{{- define "big.fullname" -}}
{{- printf "%s-%s" .root.Release.Name .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "big.image" -}}
{{ .Values.image.registry }}/{{ .Values.image.repository }}/{{ .name }}:{{ .Values.image.tag }}
{{- end -}}
TPL
cat > "$chart/templates/components.yaml" <<'TPL'
{{- range $c := .Values.components }}
{{- $ctx := dict "root" $ "name" $c.name }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "big.fullname" $ctx }}
  labels: {{- include "big.labels" $ctx | nindent 4 }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "big.fullname" $ctx }}-config
  labels: {{- include "big.labels" $ctx | nindent 4 }}
data:
{{- range $k, $v := $c.env }}
  {{ $k }}: {{ $v | quote }}
{{- end }}
  application.yaml: |
    server: {port: {{ $c.port }}}
    name: {{ $c.name }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "big.fullname" $ctx }}
  labels: {{- include "big.labels" $ctx | nindent 4 }}
rules:
  - {apiGroups: [""], resources: [configmaps, secrets], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ include "big.fullname" $ctx }}
  labels: {{- include "big.labels" $ctx | nindent 4 }}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: {{ include "big.fullname" $ctx }}}
subjects: [{kind: ServiceAccount, name: {{ include "big.fullname" $ctx }}}]
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "big.fullname" $ctx }}
  labels: {{- include "big.labels" $ctx | nindent 4 }}
spec:
  selector: {app.kubernetes.io/name: {{ $c.name }}, app.kubernetes.io/instance: {{ $.Release.Name }}}
  ports: [{name: http, port: {{ $c.port }}, targetPort: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "big.fullname" $ctx }}
  labels: {{- include "big.labels" $ctx | nindent 4 }}
spec:
  replicas: {{ $c.replicas }}
  selector: {matchLabels: {app.kubernetes.io/name: {{ $c.name }}, app.kubernetes.io/instance: {{ $.Release.Name }}}}
  template:
    metadata:
      labels: {{- include "big.labels" $ctx | nindent 8 }}
      annotations: {checksum/config: {{ toYaml $c.env | sha256sum }}}
    spec:
      serviceAccountName: {{ include "big.fullname" $ctx }}
      containers:
        - name: {{ $c.name }}
          image: {{ include "big.image" (merge (dict "name" $c.name) $) }}
          ports: [{name: http, containerPort: {{ $c.port }}}]
          envFrom: [{configMapRef: {name: {{ include "big.fullname" $ctx }}-config}}]
          resources: {requests: {cpu: {{ $c.cpu }}, memory: {{ $c.memory }}}, limits: {memory: {{ $c.memory }}}}
          readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 10}
          volumeMounts: [{name: config, mountPath: /etc/app}]
      volumes: [{name: config, configMap: {name: {{ include "big.fullname" $ctx }}-config, defaultMode: 420}}]
---
apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata:
  name: {{ include "big.fullname" $ctx }}
  labels: {{- include "big.labels" $ctx | nindent 4 }}
spec: {minAvailable: 1, selector: {matchLabels: {app.kubernetes.io/name: {{ $c.name }}}}}
---
apiVersion: autoscaling/v2beta2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "big.fullname" $ctx }}
  labels: {{- include "big.labels" $ctx | nindent 4 }}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: {{ include "big.fullname" $ctx }}}
  minReplicas: {{ $c.replicas }}
  maxReplicas: {{ mul $c.replicas 3 }}
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "big.fullname" $ctx }}
  labels: {{- include "big.labels" $ctx | nindent 4 }}
spec:
  rules:
    - host: {{ $c.name }}.{{ $.Release.Namespace }}.example
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: {{ include "big.fullname" $ctx }}, port: {name: http}}}}]}
{{- end }}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: {{ .Release.Name }}-db}
spec:
  serviceName: {{ .Release.Name }}-db
  selector: {matchLabels: {app: {{ .Release.Name }}-db}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}-db}}
    spec: {containers: [{name: db, image: "{{ .Values.image.registry }}/blueking/mysql:8.0", volumeMounts: [{name: data, mountPath: /var/lib/mysql}]}]}
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {accessModes: [ReadWriteOnce], storageClassName: {{ .Values.storageClass }}, resources: {requests: {storage: 10Gi}}}
TPL
{
  echo "releases:"
  for i in $(seq -w 1 25); do
    echo "  - name: app-$i"
    echo "    namespace: bench-$i"
    echo "    chart: ./big-app"
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
