use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::Api;
use serde::Deserialize;

use super::{client, undecided};
use crate::check::{Access, Check, CheckDef, CheckFuture, Ctx, Fix, Meta, Outcome, Phase};
use crate::quantity::{Bytes, Cpu};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.schedulable",
        phase: Phase::Cluster,
        title: "some node can take the workload",
        requires: &["cluster.api"],
        explain: r#"Why: pods stay Pending when every node is tainted or too small. On a one-node cluster
the control-plane taint alone does it (TKEStack, seed 002); BlueKing CE 7 users saw
(seed 004):

    0/5 nodes are available: 1 node(s) had taint {node-role.kubernetes.io/master: }, that
    the pod didn't tolerate, 4 node(s) didn't find available persistent volumes to bind.

and "waiting for pod to be scheduled" when no node had the CPU or memory.

What it looks at: one list of nodes (optionally narrowed by `node_selector`): not cordoned,
no NoSchedule/NoExecute taint the workload does not tolerate (`tolerations`: taint keys),
allocatable cpu and memory at least the profile's `cpu` / `memory`. Passes when one node
qualifies; otherwise fails with the scheduler-style count of why each node does not.

Fix: on a single-node cluster remove the control-plane taint
(`kubectl taint nodes --all node-role.kubernetes.io/master- node-role.kubernetes.io/control-plane-`),
uncordon nodes, or add capacity.

Parameters: cpu: "4", memory: 8Gi, node_selector: {key: value}, tolerations: [key]"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedulable {
    #[serde(default)]
    cpu: Option<Cpu>,
    #[serde(default)]
    memory: Option<Bytes>,
    #[serde(default)]
    node_selector: BTreeMap<String, String>,
    #[serde(default)]
    tolerations: Vec<String>,
}

const CONTROL_PLANE_TAINTS: [&str; 2] = [
    "node-role.kubernetes.io/master",
    "node-role.kubernetes.io/control-plane",
];

impl Schedulable {
    /// `None` when the node can take the workload, else the scheduler-style reason.
    fn reject(&self, node: &Node) -> Option<String> {
        let spec = node.spec.clone().unwrap_or_default();
        if spec.unschedulable == Some(true) {
            return Some("node(s) were unschedulable".to_string());
        }
        for t in spec.taints.unwrap_or_default() {
            if (t.effect == "NoSchedule" || t.effect == "NoExecute") && !self.tolerations.contains(&t.key) {
                return Some(format!(
                    "node(s) had taint {{{}: {}}}, that the pod didn't tolerate",
                    t.key,
                    t.value.unwrap_or_default()
                ));
            }
        }
        let alloc = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.clone())
            .unwrap_or_default();
        if let Some(need) = self.cpu {
            let have = alloc
                .get("cpu")
                .and_then(|q| Cpu::parse(&q.0).ok())
                .unwrap_or(Cpu(0));
            if have < need {
                return Some("Insufficient cpu".to_string());
            }
        }
        if let Some(need) = self.memory {
            let have = alloc
                .get("memory")
                .and_then(|q| Bytes::parse_lossy(&q.0).ok())
                .unwrap_or(Bytes(0));
            if have < need {
                return Some("Insufficient memory".to_string());
            }
        }
        None
    }

    fn need(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = self.cpu {
            parts.push(format!("cpu {c}"));
        }
        if let Some(m) = self.memory {
            parts.push(format!("memory {m}"));
        }
        if parts.is_empty() {
            "the workload".to_string()
        } else {
            parts.join(", ")
        }
    }
}

impl Check for Schedulable {
    fn access(&self) -> Vec<Access> {
        vec![Access::new("list", "", "nodes")]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let client = crate::or_return!(client(ctx).await);
            let selector: Vec<String> = self
                .node_selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let mut lp = ListParams::default();
            if !selector.is_empty() {
                lp = lp.labels(&selector.join(","));
            }
            let api: Api<Node> = Api::all(client);
            let nodes = match ctx.kube.call("list nodes", api.list(&lp)).await {
                Ok(l) => l.items,
                Err(e) => return undecided(e),
            };
            if nodes.is_empty() {
                let scope = if selector.is_empty() {
                    String::new()
                } else {
                    format!(" matching {}", selector.join(","))
                };
                return Outcome::fail(format!(
                    "no nodes{scope} are registered: nothing can be scheduled"
                ))
                .with_fix(Fix::manual(
                    "join worker nodes to the cluster (kubelet)",
                    vec!["kubectl get nodes".to_string()],
                ));
            }
            let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
            for n in &nodes {
                match self.reject(n) {
                    None => {
                        return Outcome::pass(format!(
                            "node {} can take {}",
                            n.metadata.name.clone().unwrap_or_default(),
                            self.need()
                        ))
                    }
                    Some(r) => *reasons.entry(r).or_default() += 1,
                }
            }
            let detail: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
            let msg = format!(
                "0/{} nodes are available for {}: {}.",
                nodes.len(),
                self.need(),
                detail.join(", ")
            );
            let only_control_plane = reasons.keys().all(|r| {
                CONTROL_PLANE_TAINTS
                    .iter()
                    .any(|t| r.contains(&format!("{{{t}:")))
            });
            let fix = if only_control_plane {
                Fix::manual(
                    "only control-plane nodes, all tainted: on a single-node cluster allow workloads on it",
                    vec!["kubectl taint nodes --all node-role.kubernetes.io/master- node-role.kubernetes.io/control-plane-".to_string()],
                )
            } else {
                Fix::manual(
                    "uncordon nodes, remove taints the workload does not tolerate, or add capacity",
                    vec![
                        "kubectl describe nodes | grep -E 'Taints|Unschedulable|Allocatable' -A5".to_string(),
                    ],
                )
            };
            Outcome::fail(msg).with_fix(fix)
        })
    }
}
