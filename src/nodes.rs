//! `preflight nodes`: the profile's node checks on every node, through Kubernetes itself.
//! One pod per node, pinned with `nodeName` (no scheduler needed), tolerating every taint,
//! the host's `/` read-only at `/host`, running this very image's binary with
//! `check --host-root /host --only <node checks> -o termination` and the operator's profile
//! (a ConfigMap). Each pod's verdict comes back in its container's termination message, so no
//! log access is needed; pods that do not finish are reported with their phase, waiting
//! reason and events. Every pod and the ConfigMap are deleted at the end, also on failure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::Api;

use crate::check::{Access, CheckDef, Phase, Status};
use crate::engine::CheckReport;
use crate::kube::{ApiError, KubeAccess};
use crate::report::Compact;

/// What to run where.
pub struct NodesRun<'a> {
    pub checks: Vec<&'static CheckDef>,
    pub profile_yaml: String,
    pub image: &'a str,
    pub namespace: &'a str,
    pub selector: Option<&'a str>,
    pub parallel: usize,
    /// How long one pod may take from creation to its result.
    pub pod_deadline: Duration,
}

const APP: &str = "preflight-nodes";
/// Pods and ConfigMaps of an interrupted earlier run older than this are removed at start.
const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}", (nanos as u64) ^ u64::from(std::process::id()))
}

/// The permissions the run needs, reviewed before anything is created.
fn needed(ns: &str) -> Vec<Access> {
    let mut v = vec![Access::new("list", "", "nodes")];
    for verb in ["create", "get", "list", "delete"] {
        v.push(Access::new(verb, "", "pods").in_namespace(ns));
    }
    for verb in ["create", "list", "delete"] {
        v.push(Access::new(verb, "", "configmaps").in_namespace(ns));
    }
    v.push(Access::new("list", "", "events").in_namespace(ns));
    v
}

fn pod_for(run: &NodesRun<'_>, id: &str, cm: &str, node: &str, index: usize) -> Result<Pod, String> {
    let ids: Vec<&str> = run.checks.iter().map(|d| d.meta.id).collect();
    let host_network = run.checks.iter().any(|d| d.meta.host_network);
    let value = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("preflight-{id}-{index}"),
            "namespace": run.namespace,
            "labels": {"app.kubernetes.io/name": APP, "preflight.run": id},
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "hostNetwork": host_network,
            "tolerations": [{"operator": "Exists"}],
            "automountServiceAccountToken": false,
            "containers": [{
                "name": "preflight",
                "image": run.image,
                "command": [crate::oci::ENTRYPOINT],
                "args": ["check", "--host-root", "/host", "--profile", "/etc/preflight/profile.yaml",
                         "--only", ids.join(","), "-o", "termination", "--no-progress"],
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": [
                    {"name": "host", "mountPath": "/host", "readOnly": true},
                    {"name": "profile", "mountPath": "/etc/preflight", "readOnly": true},
                ],
            }],
            "volumes": [
                {"name": "host", "hostPath": {"path": "/"}},
                {"name": "profile", "configMap": {"name": cm}},
            ],
        },
    });
    serde_json::from_value(value).map_err(|e| format!("pod spec: {e}"))
}

/// One node's outcome: its checks' results, or why there are none.
enum NodeResult {
    Reported(Vec<Compact>),
    NoResult(String),
}

async fn await_pod(
    kube: &KubeAccess,
    pods: &Api<Pod>,
    events: &Api<Event>,
    name: &str,
    deadline: Duration,
) -> NodeResult {
    let started = Instant::now();
    loop {
        let pod = match kube.call(&format!("GET pod {name}"), pods.get(name)).await {
            Ok(p) => p,
            Err(e) => return NodeResult::NoResult(e.to_string()),
        };
        let status = pod.status.unwrap_or_default();
        let container = status.container_statuses.unwrap_or_default().into_iter().next();
        let terminated = container
            .as_ref()
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.terminated.clone());
        if let Some(t) = terminated {
            let message = t.message.unwrap_or_default();
            return match serde_json::from_str::<Vec<Compact>>(&message) {
                Ok(items) => NodeResult::Reported(items),
                Err(_) => NodeResult::NoResult(format!(
                    "the pod ended (exit code {}, {}) without a report: {}",
                    t.exit_code,
                    t.reason.unwrap_or_default(),
                    message.lines().last().unwrap_or("")
                )),
            };
        }
        if started.elapsed() >= deadline {
            let phase = status.phase.unwrap_or_else(|| "Pending".into());
            let waiting = container
                .as_ref()
                .and_then(|c| c.state.as_ref())
                .and_then(|s| s.waiting.as_ref())
                .map(|w| {
                    format!(
                        ", container waiting: {} {}",
                        w.reason.clone().unwrap_or_default(),
                        w.message.clone().unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            let lp = ListParams::default().fields(&format!("involvedObject.name={name}"));
            let said: Vec<String> = match kube.call("list events", events.list(&lp)).await {
                Ok(l) => l
                    .items
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {}: {}",
                            e.type_.clone().unwrap_or_default(),
                            e.reason.clone().unwrap_or_default(),
                            e.message.clone().unwrap_or_default()
                        )
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
            let events = if said.is_empty() {
                "no events".to_string()
            } else {
                format!("events: {}", said.join("; "))
            };
            return NodeResult::NoResult(format!(
                "pod {name} did not finish within {}: phase {phase}{waiting}; {events}",
                humantime::format_duration(deadline)
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn report(
    def: &'static CheckDef,
    node: Option<&str>,
    status: Status,
    message: String,
    fix: Option<crate::check::Fix>,
) -> CheckReport {
    CheckReport {
        id: def.meta.id,
        phase: Phase::Node,
        title: def.meta.title,
        status,
        message,
        fix,
        fixed: false,
        fix_error: None,
        duration_ms: 0,
        starved: Vec::new(),
        node: node.map(str::to_string),
    }
}

fn rank(s: Status) -> u8 {
    match s {
        Status::Pass => 0,
        Status::Skip => 1,
        Status::Warn => 2,
        Status::Error => 3,
        Status::Fail => 4,
    }
}

/// Run the node checks on every selected node: one report per check per node, then a
/// roll-up per check (worst status; for a check that asks whether something fits on
/// *some* node — `node.localpv-disk` — it passes when one node passes).
pub async fn run(kube: &KubeAccess, run: &NodesRun<'_>) -> Result<Vec<CheckReport>, String> {
    let client = kube.connect().await?.client.clone();
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut denied = Vec::new();
    for a in needed(run.namespace) {
        match kube.may(&reviews, &a).await {
            Ok(None) => {}
            Ok(Some(_)) => denied.push(a.describe()),
            Err(e) => return Err(e.to_string()),
        }
    }
    if !denied.is_empty() {
        return Err(format!("this user may not: {}", denied.join("; ")));
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), run.namespace);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), run.namespace);
    let events: Api<Event> = Api::namespaced(client.clone(), run.namespace);
    remove_leftovers(kube, &pods, &maps).await;

    let nodes: Api<Node> = Api::all(client);
    let mut lp = ListParams::default();
    if let Some(sel) = run.selector {
        lp = lp.labels(sel);
    }
    let nodes: Vec<String> = kube
        .call("list nodes", nodes.list_metadata(&lp))
        .await
        .map_err(|e| e.to_string())?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    if nodes.is_empty() {
        return Err(match run.selector {
            Some(s) => format!("no node matches the selector {s}"),
            None => "the cluster has no nodes".to_string(),
        });
    }

    let id = run_id();
    let cm_name = format!("preflight-{id}");
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": cm_name, "labels": {"app.kubernetes.io/name": APP, "preflight.run": id}},
        "data": {"profile.yaml": run.profile_yaml},
    }))
    .map_err(|e| format!("configmap: {e}"))?;
    kube.call("create configmap", maps.create(&PostParams::default(), &cm))
        .await
        .map_err(|e| e.to_string())?;
    let outcome = on_nodes(kube, run, &pods, &events, &id, &cm_name, &nodes).await;
    // Cleanup runs whatever happened above.
    let lp = ListParams::default().labels(&format!("preflight.run={id}"));
    let _ = kube
        .call(
            "delete pods",
            pods.delete_collection(&DeleteParams::default(), &lp),
        )
        .await;
    let _ = kube
        .call(
            "delete configmap",
            maps.delete(&cm_name, &DeleteParams::default()),
        )
        .await;
    outcome
}

async fn on_nodes(
    kube: &KubeAccess,
    run: &NodesRun<'_>,
    pods: &Api<Pod>,
    events: &Api<Event>,
    id: &str,
    cm: &str,
    nodes: &[String],
) -> Result<Vec<CheckReport>, String> {
    let asks: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| async move {
            let pod = match pod_for(run, id, cm, node, i) {
                Ok(p) => p,
                Err(e) => return (node.clone(), NodeResult::NoResult(e)),
            };
            let name = pod.metadata.name.clone().unwrap_or_default();
            if let Err(e) = kube.call("create pod", pods.create(&PostParams::default(), &pod)).await {
                let why = match e {
                    ApiError::Forbidden(m) if m.contains("PodSecurity") || m.contains("hostPath") => format!(
                        "{m}; the namespace needs the privileged Pod Security level: kubectl label namespace {} pod-security.kubernetes.io/enforce=privileged",
                        run.namespace
                    ),
                    other => other.to_string(),
                };
                return (node.clone(), NodeResult::NoResult(why));
            }
            (node.clone(), await_pod(kube, pods, events, &name, run.pod_deadline).await)
        })
        .collect();
    let results: Vec<(String, NodeResult)> = stream::iter(asks)
        .buffer_unordered(run.parallel.max(1))
        .collect()
        .await;
    let mut by_node: BTreeMap<String, NodeResult> = results.into_iter().collect();
    let mut out = Vec::new();
    for def in &run.checks {
        let mut per_node: Vec<(String, Status)> = Vec::new();
        for (node, result) in by_node.iter_mut() {
            let r = match result {
                NodeResult::Reported(items) => match items.iter().position(|c| c.id == def.meta.id) {
                    Some(i) => {
                        let c = items.remove(i);
                        report(def, Some(node), c.status, c.message, c.fix)
                    }
                    None => report(
                        def,
                        Some(node),
                        Status::Error,
                        "the node's report does not name this check".into(),
                        None,
                    ),
                },
                NodeResult::NoResult(why) => report(def, Some(node), Status::Error, why.clone(), None),
            };
            per_node.push((node.clone(), r.status));
            out.push(r);
        }
        out.push(roll_up(def, &per_node));
    }
    Ok(out)
}

fn roll_up(def: &'static CheckDef, per_node: &[(String, Status)]) -> CheckReport {
    let total = per_node.len();
    let passed: Vec<&str> = per_node
        .iter()
        .filter(|(_, s)| *s == Status::Pass)
        .map(|(n, _)| n.as_str())
        .collect();
    let not: Vec<String> = per_node
        .iter()
        .filter(|(_, s)| *s != Status::Pass)
        .map(|(n, s)| {
            format!(
                "{n} ({})",
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            )
        })
        .collect();
    let worst = per_node
        .iter()
        .map(|(_, s)| *s)
        .max_by_key(|s| rank(*s))
        .unwrap_or(Status::Error);
    let some_node = def.meta.any_node;
    let status = if some_node && !passed.is_empty() {
        Status::Pass
    } else {
        worst
    };
    let mut message = format!("passes on {} of {total} node(s)", passed.len());
    if !not.is_empty() {
        message.push_str(&format!("; not on: {}", not.join(", ")));
    }
    if some_node && !passed.is_empty() && !not.is_empty() {
        message.push_str(&format!(
            " — enough that some node has room: {}",
            passed.join(", ")
        ));
    }
    report(def, None, status, message, None)
}

async fn remove_leftovers(kube: &KubeAccess, pods: &Api<Pod>, maps: &Api<ConfigMap>) {
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/name={APP}"));
    let now = k8s_openapi::jiff::Timestamp::now();
    let old = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        t.as_ref()
            .is_some_and(|t| now.duration_since(t.0).unsigned_abs() > LEFTOVER_AGE)
    };
    if let Ok(list) = kube.call("list pods", pods.list_metadata(&lp)).await {
        for p in list.items {
            if old(&p.metadata.creation_timestamp) {
                if let Some(n) = p.metadata.name {
                    let _ = kube
                        .call("delete pod", pods.delete(&n, &DeleteParams::default()))
                        .await;
                }
            }
        }
    }
    if let Ok(list) = kube.call("list configmaps", maps.list_metadata(&lp)).await {
        for m in list.items {
            if old(&m.metadata.creation_timestamp) {
                if let Some(n) = m.metadata.name {
                    let _ = kube
                        .call("delete configmap", maps.delete(&n, &DeleteParams::default()))
                        .await;
                }
            }
        }
    }
}
