use std::collections::BTreeMap;

use futures::future::join_all;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::Api;
use serde::Deserialize;

use super::{is_ready, nodes};
use crate::check::{
    Access, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::kube::ApiError;

const KUBELET_UNREACHABLE: Code = Code {
    code: "kubelet-unreachable",
    explain: "the API server cannot reach the node's kubelet (port 10250): kubectl logs/exec, metrics-server and the installer's scripts fail there",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.kubelet-reachable",
        phase: Phase::Cluster,
        title: "the API server reaches every node's kubelet",
        requires: &["cluster.api"],
        install: InstallUse::No,
        codes: &[super::API_ERROR, KUBELET_UNREACHABLE],
        host_network: false,
        roll_up: None,
        explain: r#"Why: `kubectl logs`, `kubectl exec` and metrics-server go from the API server to each
node's kubelet (TCP 10250). A firewall between them breaks the installer's own scripts,
which read logs and exec into pods, half-way through the install. BlueKing CE 7 users saw
(seed 004):

    Error from server: Get "https://IP:10250/containerLogs/…": dial tcp IP:10250: connect: no route to host

What it looks at, without a packet of its own to any node: for every Ready node (or those
`node_selector` picks), the API server's own path to the kubelet —
`/api/v1/nodes/NAME/proxy/healthz` — all at once, each bounded by --timeout. A failure names
the node, the address and port the kubelet announces (status.addresses,
daemonEndpoints.kubeletEndpoint) and the API server's words. Without the `nodes/proxy`
permission, the same path through a log read of a pod running on that node (what `kubectl
logs` does: pods/log, tailLines=1); with neither, `error` naming both. Nodes that are not
Ready are named, not judged.

Fix: open TCP 10250 from the control-plane hosts to every node (firewalld:
`firewall-cmd --permanent --add-port=10250/tcp && firewall-cmd --reload`).

Parameters: node_selector: {label: value}"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeletReachable {
    /// Only the nodes with these labels (as kubectl -l).
    #[serde(default)]
    node_selector: BTreeMap<String, String>,
}

/// How one node's kubelet answered the API server.
enum Reach {
    Ok,
    /// The API server's words.
    Broken(String),
    /// This user may not ask (nodes/proxy, pods/log).
    Denied(String),
}

/// `127.0.0.3:10250`: where the API server dials the node's kubelet.
fn kubelet_address(n: &Node) -> String {
    let status = n.status.as_ref();
    let ip = status
        .and_then(|s| s.addresses.as_ref())
        .and_then(|a| {
            ["InternalIP", "ExternalIP", "Hostname"]
                .iter()
                .find_map(|t| a.iter().find(|x| x.type_ == *t))
        })
        .map(|a| a.address.clone())
        .unwrap_or_else(|| "?".to_string());
    let port = status
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map(|e| e.port)
        .unwrap_or(10250);
    format!("{ip}:{port}")
}

async fn through_proxy(ctx: &Ctx, client: &kube::Client, node: &str) -> Reach {
    let req = match http::Request::get(format!("/api/v1/nodes/{node}/proxy/healthz")).body(Vec::new()) {
        Ok(r) => r,
        Err(e) => return Reach::Broken(e.to_string()),
    };
    match ctx
        .kube
        .call(
            &format!("GET nodes/{node}/proxy/healthz"),
            client.request_text(req),
        )
        .await
    {
        Ok(_) => Reach::Ok,
        Err(ApiError::Forbidden(m)) => Reach::Denied(m),
        Err(e) => Reach::Broken(e.message().to_string()),
    }
}

/// What `kubectl logs --tail=1` does for a pod on the node.
async fn through_logs(ctx: &Ctx, client: &kube::Client, node: &str, pods: &[Pod]) -> Reach {
    let Some(pod) = pods
        .iter()
        .find(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
    else {
        return Reach::Denied("no pod runs there to read a log of".to_string());
    };
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let lp = kube::api::LogParams {
        tail_lines: Some(1),
        ..Default::default()
    };
    match ctx
        .kube
        .call(&format!("GET pods/log {ns}/{name}"), api.logs(&name, &lp))
        .await
    {
        Ok(_) => Reach::Ok,
        Err(ApiError::Forbidden(m)) => Reach::Denied(m),
        Err(e) => Reach::Broken(e.message().to_string()),
    }
}

impl Check for KubeletReachable {
    fn access(&self) -> Vec<Access> {
        vec![Access::new("list", "", "nodes")]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let (client, nodes) = crate::or_return!(nodes(ctx, &self.node_selector).await);
            let (ready, not_ready): (Vec<&Node>, Vec<&Node>) = nodes.iter().partition(|n| is_ready(n));
            let not_judged: Vec<String> = not_ready
                .iter()
                .map(|n| n.metadata.name.clone().unwrap_or_default())
                .collect();
            if ready.is_empty() {
                return Outcome::skip(if nodes.is_empty() {
                    "no nodes are registered".to_string()
                } else {
                    format!("no node is Ready ({})", not_judged.join(", "))
                });
            }
            let answers = join_all(ready.iter().map(|n| {
                let client = client.clone();
                async move {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    let reach = through_proxy(ctx, &client, &name).await;
                    (*n, name, reach)
                }
            }))
            .await;
            // Without nodes/proxy, each node through a pod's log, as kubectl logs goes.
            let mut pods: Option<Result<Vec<Pod>, ApiError>> = None;
            let (mut broken, mut denied, mut fine) = (Vec::new(), Vec::new(), 0);
            for (node, name, reach) in answers {
                let reach = match reach {
                    Reach::Denied(proxy_denied) => {
                        if pods.is_none() {
                            let api: Api<Pod> = Api::all(client.clone());
                            pods = Some(
                                ctx.kube
                                    .call("list pods", api.list(&ListParams::default()))
                                    .await
                                    .map(|l| l.items),
                            );
                        }
                        match pods.as_ref() {
                            Some(Ok(list)) => match through_logs(ctx, &client, &name, list).await {
                                Reach::Denied(log_denied) => Reach::Denied(format!(
                                    "{proxy_denied}; and through a pod's log: {log_denied}"
                                )),
                                other => other,
                            },
                            Some(Err(e)) => {
                                Reach::Denied(format!("{proxy_denied}; and listing pods: {}", e.message()))
                            }
                            None => Reach::Denied(proxy_denied),
                        }
                    }
                    other => other,
                };
                match reach {
                    Reach::Ok => fine += 1,
                    Reach::Broken(why) => broken.push(Finding::fail(
                        &KUBELET_UNREACHABLE,
                        Subject::node(name.as_str()),
                        format!(
                            "node {name}: the API server cannot reach its kubelet at {}: {why}",
                            kubelet_address(node)
                        ),
                    )),
                    Reach::Denied(why) => denied.push(Finding::error(
                        &super::API_ERROR,
                        Subject::node(name.as_str()),
                        format!("node {name}: cannot ask the API server for its kubelet (nodes/proxy, or pods/log of a pod there): {why}"),
                    )),
                }
            }
            let not = if not_judged.is_empty() {
                String::new()
            } else {
                format!("; not Ready, not judged: {}", not_judged.join(", "))
            };
            if !broken.is_empty() {
                broken.extend(denied);
                return Outcome::found(
                    broken,
                    format!(
                        "kubectl logs/exec on their pods, metrics-server and the installer's scripts fail there ({fine} node(s) reachable{not})"
                    ),
                )
                .with_fix(Fix::manual(
                    "open TCP 10250 (the kubelet's port) from the control-plane hosts to these nodes",
                    vec![
                        "firewall-cmd --permanent --add-port=10250/tcp && firewall-cmd --reload   # on each node".to_string(),
                        "kubectl get --raw /api/v1/nodes/NODE/proxy/healthz".to_string(),
                    ],
                ));
            }
            if !denied.is_empty() {
                return Outcome::found(denied, format!("{fine} node(s) reachable{not}"));
            }
            Outcome::pass(format!(
                "the API server reaches the kubelet of {fine} node(s){not}"
            ))
        })
    }
}
