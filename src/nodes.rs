//! `preflight nodes`: the profile's node checks on every node, through Kubernetes itself.
//! One pod per node, pinned with `nodeName` (no scheduler needed), tolerating every taint,
//! the host's `/` read-only at `/host`, running this very image's binary with
//! `check --host-root /host --only <node checks> -o termination` and the operator's profile
//! (a ConfigMap). Each pod's verdict comes back in its container's termination message, so no
//! log access is needed; pods that do not finish are reported with their phase, waiting
//! reason and events. Every pod and the ConfigMap are deleted at the end, also on failure.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::Api;

use crate::check::{Access, CheckDef, Phase, Status};
use crate::kube::{ApiError, KubeAccess};
use crate::report::Compact;
use crate::vocab::CheckReport;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    /// Passed on to every pod (`--fix --yes`); any makes the host mount read-write.
    pub fix_args: Vec<String>,
    /// Leftovers of earlier runs older than this are deleted at start.
    pub leftover_age: Duration,
    /// A line on the terminal for the pods' progress (`None`: not a terminal, or
    /// --no-progress).
    pub progress: Option<indicatif::ProgressBar>,
}

const APP: &str = "preflight-nodes";
/// Pods and ConfigMaps of an interrupted earlier run older than this are removed at start.
pub const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

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
    for verb in ["create", "list", "watch", "delete", "deletecollection"] {
        v.push(Access::new(verb, "", "pods").in_namespace(ns));
    }
    for verb in ["create", "list", "delete"] {
        v.push(Access::new(verb, "", "configmaps").in_namespace(ns));
    }
    v.push(Access::new("list", "", "events").in_namespace(ns));
    v
}

/// Where the pod writes its report: a kubelet reads this file first and falls back to the
/// log's tail only when it is empty and the container failed, so a node whose checks all
/// pass (exit 0) is heard only through the file.
const TERMINATION_PATH: &str = "/dev/termination-log";

fn pod_for(run: &NodesRun<'_>, id: &str, cm: &str, node: &str, index: usize) -> Result<Pod, String> {
    let ids: Vec<&str> = run.checks.iter().map(|d| d.meta.id).collect();
    let host_network = run.checks.iter().any(|d| d.meta.host_network);
    let mut args: Vec<String> = [
        "check",
        "--host-root",
        "/host",
        "--profile",
        "/etc/preflight/profile.yaml",
        "--only",
        &ids.join(","),
        "-o",
        "termination",
        "--termination-log",
        TERMINATION_PATH,
        "--no-progress",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(run.fix_args.iter().cloned());
    // Written to only when a node fix is asked for.
    let read_only = run.fix_args.is_empty();
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
                "args": args,
                "terminationMessagePath": TERMINATION_PATH,
                "terminationMessagePolicy": "FallbackToLogsOnError",
                // root reads every host file (containerd's config is 0600) and, with --fix,
                // writes the ones a fix changes; nothing else of root's is needed.
                "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true},
                "volumeMounts": [
                    {"name": "host", "mountPath": "/host", "readOnly": read_only},
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

/// A pod created and not yet answered: its node, when it was created, what the watch last
/// saw of it, and its place among the `--parallel` pods allowed at once.
struct Tracked {
    node: String,
    created: Instant,
    last: Option<Pod>,
    _slot: OwnedSemaphorePermit,
}

/// The result a finished pod left in its termination message, if it has finished.
fn finished(pod: &Pod) -> Option<NodeResult> {
    let status = pod.status.as_ref()?;
    let container = status.container_statuses.as_ref()?.first()?;
    let t = container.state.as_ref()?.terminated.as_ref()?;
    let message = t.message.clone().unwrap_or_default();
    Some(match serde_json::from_str::<Vec<Compact>>(&message) {
        Ok(items) => NodeResult::Reported(items),
        Err(_) => NodeResult::NoResult(format!(
            "the pod ended (exit code {}, {}) without a report: {}",
            t.exit_code,
            t.reason.clone().unwrap_or_default(),
            message.lines().last().unwrap_or("")
        )),
    })
}

/// Why a pod that did not finish in time has not: its phase, its container's waiting
/// reason (`ErrImagePull`, …) and the events about it, as `kubectl describe pod` shows them.
async fn unfinished(
    kube: &KubeAccess,
    events: &Api<Event>,
    name: &str,
    last: Option<&Pod>,
    deadline: Duration,
    watch_trouble: Option<&str>,
) -> String {
    let status = last.and_then(|p| p.status.clone()).unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    let waiting = status
        .container_statuses
        .as_ref()
        .and_then(|c| c.first())
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
    let unscheduled = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .map(|c| {
            format!(
                ", {}: {}",
                c.reason.unwrap_or_default(),
                c.message.unwrap_or_default()
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
        Err(e) => vec![format!("(events not read: {e})")],
    };
    let events = if said.is_empty() {
        "no events".to_string()
    } else {
        format!("events: {}", said.join("; "))
    };
    let trouble = watch_trouble
        .map(|t| format!("; watching the pods failed: {t}"))
        .unwrap_or_default();
    format!(
        "pod {name} did not finish within {}: phase {phase}{waiting}{unscheduled}; {events}{trouble}",
        humantime::format_duration(deadline)
    )
}

/// A node check that ran on no node, and why.
pub fn not_run(def: &'static CheckDef, why: &str) -> CheckReport {
    report(
        def,
        None,
        Status::Error,
        format!("not run on the nodes: {why}"),
        None,
    )
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
        findings: Vec::new(),
        fix,
        fixed: false,
        fix_error: None,
        duration_ms: 0,
        starved: Vec::new(),
        node: node.map(str::to_string),
        facts: None,
    }
}

/// Run the node checks on every selected node: one report per check per node, then a
/// roll-up per check (worst status, or the check's own `Meta::roll_up` verdict from what
/// each node measured).
pub async fn run(kube: &KubeAccess, run: &NodesRun<'_>) -> Result<Vec<CheckReport>, NodesError> {
    fan_out(kube, run).await
}

/// Why there is no per-node report at all.
#[derive(Debug)]
pub enum NodesError {
    /// Nothing could start: permissions, no nodes, no cluster.
    Failed(String),
    /// SIGINT / SIGTERM: the run's pods were deleted; the process should end (exit 130).
    Interrupted(String),
}

impl std::fmt::Display for NodesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodesError::Failed(m) | NodesError::Interrupted(m) => f.write_str(m),
        }
    }
}

impl From<String> for NodesError {
    fn from(m: String) -> Self {
        NodesError::Failed(m)
    }
}

async fn fan_out(kube: &KubeAccess, run: &NodesRun<'_>) -> Result<Vec<CheckReport>, NodesError> {
    let client = kube.connect().await?.client.clone();
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut denied = Vec::new();
    for a in needed(run.namespace) {
        match kube.may(&reviews, &a).await {
            Ok(None) => {}
            Ok(Some(_)) => denied.push(a.describe()),
            Err(e) => return Err(e.to_string().into()),
        }
    }
    if !denied.is_empty() {
        return Err(format!("this user may not: {}", denied.join("; ")).into());
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), run.namespace);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), run.namespace);
    let events: Api<Event> = Api::namespaced(client.clone(), run.namespace);
    remove_leftovers(kube, &pods, run.leftover_age).await;
    remove_leftovers(kube, &maps, run.leftover_age).await;

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
        }
        .into());
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
    // Ctrl-C (or a SIGTERM from a CI runner) stops the wait, not the cleanup below.
    let outcome = tokio::select! {
        r = on_nodes(kube, run, &pods, &events, &id, &cm_name, &nodes) => Ok(r),
        why = interrupted() => Err(why),
    };
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
    match outcome {
        Ok(results) => Ok(merge(&run.checks, results)),
        Err(why) => Err(NodesError::Interrupted(format!(
            "{why}: stopped; this run's pods and ConfigMap (label preflight.run={id}) were deleted"
        ))),
    }
}

/// Resolves when the process is asked to stop (SIGINT, SIGTERM).
async fn interrupted() -> String {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        // Without handlers the default ones stay: the process just ends as before.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "interrupted".to_string(),
        _ = term.recv() => "terminated".to_string(),
    }
}

/// Create a pod per node (at most `--parallel` unanswered at once) and collect each one's
/// result from ONE watch on the run's pods: the API requests per node are the pod's create,
/// whatever the node count and however long the nodes take.
async fn on_nodes(
    kube: &KubeAccess,
    run: &NodesRun<'_>,
    pods: &Api<Pod>,
    events: &Api<Event>,
    id: &str,
    cm: &str,
    nodes: &[String],
) -> Vec<(String, NodeResult)> {
    let slots = Arc::new(Semaphore::new(run.parallel.max(1)));
    let tracked: Mutex<HashMap<String, Tracked>> = Mutex::new(HashMap::new());
    let results: Mutex<Vec<(String, NodeResult)>> = Mutex::new(Vec::new());
    let selector = format!("preflight.run={id}");
    // The watch starts where this list ends, so no pod event of this run is missed.
    let mut version = match kube
        .call(
            "list pods",
            pods.list_metadata(&ListParams::default().labels(&selector).limit(1)),
        )
        .await
    {
        Ok(l) => l.metadata.resource_version.unwrap_or_default(),
        Err(e) => {
            return nodes
                .iter()
                .map(|n| (n.clone(), NodeResult::NoResult(e.to_string())))
                .collect()
        }
    };
    let create_all =
        stream::iter(nodes.iter().enumerate()).for_each_concurrent(run.parallel.max(1), |(i, node)| {
            let slots = Arc::clone(&slots);
            let tracked = &tracked;
            let results = &results;
            async move {
                let Ok(slot) = slots.acquire_owned().await else {
                    return;
                };
                let outcome = match pod_for(run, id, cm, node, i) {
                    Err(e) => Err(e),
                    Ok(pod) => kube
                        .call("create pod", pods.create(&PostParams::default(), &pod))
                        .await
                        .map_err(|e| why_rejected(e, run.namespace)),
                };
                match outcome {
                    Ok(pod) => {
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        lock(tracked).insert(
                            name,
                            Tracked {
                                node: node.clone(),
                                created: Instant::now(),
                                last: None,
                                _slot: slot,
                            },
                        );
                    }
                    Err(why) => lock(results).push((node.clone(), NodeResult::NoResult(why))),
                }
            }
        });
    let collect = async {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut trouble: Option<String> = None;
        let all_in = || lock(&results).len() >= nodes.len();
        while !all_in() {
            let wp = WatchParams::default().labels(&selector).timeout(60);
            let stream = match kube.call("watch pods", pods.watch(&wp, &version)).await {
                Ok(s) => Some(s),
                Err(e) => {
                    trouble = Some(e.to_string());
                    None
                }
            };
            let mut stream = stream.map(Box::pin);
            let retry_at = Instant::now() + Duration::from_secs(1);
            loop {
                tokio::select! {
                    ev = async {
                        match stream.as_mut() {
                            Some(s) => s.next().await,
                            None => std::future::pending().await,
                        }
                    } => match ev {
                        Some(Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod))) => {
                            if let Some(v) = pod.metadata.resource_version.clone() {
                                version = v;
                            }
                            let name = pod.metadata.name.clone().unwrap_or_default();
                            let done = finished(&pod);
                            let mut t = lock(&tracked);
                            match done {
                                Some(result) => {
                                    if let Some(gone) = t.remove(&name) {
                                        lock(&results).push((gone.node, result));
                                    }
                                }
                                None => {
                                    if let Some(entry) = t.get_mut(&name) {
                                        entry.last = Some(pod);
                                    }
                                }
                            }
                        }
                        Some(Ok(WatchEvent::Bookmark(b))) => version = b.metadata.resource_version,
                        Some(Ok(WatchEvent::Error(status))) => {
                            // 410 Gone: the version is too old; start again from now (a pod
                            // that finished meanwhile is caught by the re-list below).
                            trouble = Some(status.message.clone());
                            if status.code == 410 {
                                version = relist(kube, pods, &selector, &tracked, &results).await.unwrap_or_default();
                            }
                            break;
                        }
                        Some(Ok(WatchEvent::Deleted(pod))) => {
                            let name = pod.metadata.name.clone().unwrap_or_default();
                            if let Some(gone) = lock(&tracked).remove(&name) {
                                lock(&results).push((gone.node, NodeResult::NoResult(format!("pod {name} was deleted before it finished"))));
                            }
                        }
                        Some(Err(e)) => {
                            trouble = Some(e.to_string());
                            break;
                        }
                        None => break,
                    },
                    _ = tick.tick() => {
                        let late: Vec<(String, Tracked)> = {
                            let mut t = lock(&tracked);
                            let names: Vec<String> = t
                                .iter()
                                .filter(|(_, p)| p.created.elapsed() >= run.pod_deadline)
                                .map(|(n, _)| n.clone())
                                .collect();
                            names.into_iter().filter_map(|n| t.remove_entry(&n)).collect()
                        };
                        for (name, p) in late {
                            let why = unfinished(kube, events, &name, p.last.as_ref(), run.pod_deadline, trouble.as_deref()).await;
                            lock(&results).push((p.node, NodeResult::NoResult(why)));
                        }
                        if let Some(bar) = &run.progress {
                            bar.set_message(progress_line(nodes.len(), lock(&results).len(), &lock(&tracked)));
                        }
                        if stream.is_none() && Instant::now() >= retry_at {
                            break;
                        }
                    }
                }
                if all_in() {
                    break;
                }
            }
        }
    };
    futures::join!(create_all, collect);
    if let Some(bar) = &run.progress {
        bar.finish_and_clear();
    }
    results.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// What the terminal shows while the pods run, as `kubectl rollout status` would: how many
/// nodes answered, how many are pending and why (starting, pulling, failing to pull), and
/// the slowest one still running.
fn progress_line(total: usize, answered: usize, running: &HashMap<String, Tracked>) -> String {
    let (mut pulling, mut failing, mut started) = (0, 0, 0);
    for t in running.values() {
        let state = t
            .last
            .as_ref()
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref());
        match state {
            Some(s) if s.running.is_some() => started += 1,
            Some(s) => match s.waiting.as_ref().and_then(|w| w.reason.as_deref()) {
                Some("ErrImagePull" | "ImagePullBackOff" | "InvalidImageName") => failing += 1,
                Some(_) => pulling += 1,
                None => {}
            },
            None => {}
        }
    }
    let pending = total.saturating_sub(answered);
    let mut line = format!("nodes: {answered} of {total} answered, {pending} pending");
    let mut why = Vec::new();
    if pulling > 0 {
        why.push(format!("{pulling} pulling the image"));
    }
    if failing > 0 {
        why.push(format!("{failing} failing to pull"));
    }
    if started > 0 {
        why.push(format!("{started} running"));
    }
    if !why.is_empty() {
        line.push_str(&format!(" ({})", why.join(", ")));
    }
    if let Some(slowest) = running.values().min_by_key(|t| t.created) {
        line.push_str(&format!(
            "; slowest: {} ({}s)",
            slowest.node,
            slowest.created.elapsed().as_secs()
        ));
    }
    line
}

/// After the watch lost its place: the run's pods as they are now, finished ones recorded.
async fn relist(
    kube: &KubeAccess,
    pods: &Api<Pod>,
    selector: &str,
    tracked: &Mutex<HashMap<String, Tracked>>,
    results: &Mutex<Vec<(String, NodeResult)>>,
) -> Option<String> {
    let list = kube
        .call("list pods", pods.list(&ListParams::default().labels(selector)))
        .await
        .ok()?;
    for pod in list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let Some(done) = finished(&pod) {
            if let Some(gone) = lock(tracked).remove(&name) {
                lock(results).push((gone.node, done));
            }
        }
    }
    list.metadata.resource_version
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A pod the API server refused, in its words; for Pod Security admission, the label
/// that lets the namespace run it.
fn why_rejected(e: ApiError, namespace: &str) -> String {
    match e {
        ApiError::Forbidden(m) if m.contains("PodSecurity") => format!(
            "{m}; the pod mounts the host's / (hostPath), which needs the privileged Pod Security level: kubectl label --overwrite namespace {namespace} pod-security.kubernetes.io/enforce=privileged (or run in another namespace with --pod-namespace)"
        ),
        other => other.to_string(),
    }
}

/// Each check per node, then its roll-up.
fn merge(checks: &[&'static CheckDef], results: Vec<(String, NodeResult)>) -> Vec<CheckReport> {
    let mut by_node: BTreeMap<String, NodeResult> = results.into_iter().collect();
    let mut out = Vec::new();
    for def in checks {
        let mut per_node: Vec<(String, Status, Option<serde_json::Value>)> = Vec::new();
        for (node, result) in by_node.iter_mut() {
            let (r, facts) = match result {
                NodeResult::Reported(items) => match items.iter().position(|c| c.id == def.meta.id) {
                    Some(i) => {
                        let c = items.remove(i);
                        let mut r = report(def, Some(node), c.status, c.message, c.fix);
                        r.findings = c.findings;
                        r.fixed = c.fixed;
                        r.fix_error = c.fix_error;
                        (r, c.facts)
                    }
                    None => (
                        report(
                            def,
                            Some(node),
                            Status::Error,
                            "the node's report does not name this check".into(),
                            None,
                        ),
                        None,
                    ),
                },
                NodeResult::NoResult(why) => {
                    (report(def, Some(node), Status::Error, why.clone(), None), None)
                }
            };
            per_node.push((node.clone(), r.status, facts));
            out.push(r);
        }
        out.push(roll_up(def, &per_node));
    }
    out
}

/// `passes on 2 of 3 node(s); not on: worker-3 (error)`, then the worst status over the
/// nodes — or, for a check with its own roll-up, its verdict from what each node measured.
fn roll_up(def: &'static CheckDef, per_node: &[(String, Status, Option<serde_json::Value>)]) -> CheckReport {
    let total = per_node.len();
    let passed = per_node.iter().filter(|(_, s, _)| *s == Status::Pass).count();
    let not: Vec<String> = per_node
        .iter()
        .filter(|(_, s, _)| *s != Status::Pass)
        .map(|(n, s, _)| format!("{n} ({})", s.name()))
        .collect();
    let mut message = format!("passes on {passed} of {total} node(s)");
    if !not.is_empty() {
        message.push_str(&format!("; not on: {}", not.join(", ")));
    }
    let worst = per_node
        .iter()
        .map(|(_, s, _)| *s)
        .max_by_key(|s| s.weight())
        .unwrap_or(Status::Error);
    let mut findings = Vec::new();
    let status = match def.meta.roll_up {
        Some(verdict) => {
            let on: Vec<crate::check::OnNode<'_>> = per_node
                .iter()
                .map(|(n, s, f)| crate::check::OnNode {
                    node: n,
                    status: *s,
                    facts: f.as_ref(),
                })
                .collect();
            let o = verdict(&on);
            if !o.message.is_empty() {
                message.push('\n');
                message.push_str(&o.message);
            }
            findings = o.findings;
            o.status
        }
        None => worst,
    };
    CheckReport {
        findings,
        ..report(def, None, status, message, None)
    }
}

/// Pods or ConfigMaps of an earlier run that never cleaned up (killed, node lost) and are
/// older than `age`; a younger one may belong to a run still going.
async fn remove_leftovers<K>(kube: &KubeAccess, api: &Api<K>, age: Duration)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/name={APP}"));
    let now = k8s_openapi::jiff::Timestamp::now();
    let Ok(list) = kube.call("list leftovers", api.list_metadata(&lp)).await else {
        return;
    };
    for item in list.items {
        let old = item
            .metadata
            .creation_timestamp
            .as_ref()
            .is_some_and(|t| now.duration_since(t.0).unsigned_abs() >= age);
        if let (true, Some(name)) = (old, item.metadata.name) {
            let _ = kube
                .call("delete leftover", api.delete(&name, &DeleteParams::default()))
                .await;
        }
    }
}
