use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::Api;
use serde::Deserialize;

use super::{node_selector_text, nodes, undecided};
use crate::check::{
    Access, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::install::Install;
use crate::quantity::{Bytes, Cpu};

const NO_NODES: Code = Code {
    code: "no-nodes",
    explain: "no node (matching node_selector) is registered: nothing can be scheduled",
};
const POD_UNSCHEDULABLE: Code = Code {
    code: "pod-unschedulable",
    explain: "a pod of the install fits no node (taints, cordons, allocatable cpu/memory, host ports another pod holds), in the scheduler's words",
};
const NOT_ENOUGH_CAPACITY: Code = Code {
    code: "not-enough-capacity",
    explain:
        "the install's pods together request more cpu or memory than the schedulable nodes have allocatable",
};
const NO_NODE_FITS: Code = Code {
    code: "no-node-fits",
    explain: "no node can take the profile's cpu/memory request with its tolerations",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.schedulable",
        phase: Phase::Cluster,
        title: "some node can take the workload",
        requires: &["cluster.api"],
        install: InstallUse::Fed,
        codes: &[
            super::API_ERROR,
            NO_NODES,
            POD_UNSCHEDULABLE,
            NOT_ENOUGH_CAPACITY,
            NO_NODE_FITS,
        ],
        host_network: false,
        roll_up: None,
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
by node name, for each key it carries (`kubectl taint nodes NODE node-role.kubernetes.io/master-`,
and `node-role.kubernetes.io/control-plane-` on newer clusters),
uncordon nodes, or add capacity.

With an install (--chart / --helmfile) and no `cpu`/`memory` in the profile: every pod it
runs (its containers' requests, or its largest init container) must fit some schedulable
node, and all of them (times their replicas) the schedulable nodes' allocatable together
— seed 004's "0/5 nodes are available", before helm runs. A pod that takes host ports
(hostPort, or hostNetwork's container ports) also needs a node where no pod already there
holds them (the scheduler's "node(s) didn't have free ports for the requested pod ports").
Hooks that never run at install (pre-delete, test, …) are no install pods.

Parameters: cpu: "4", memory: 8Gi, node_selector: {key: value}, tolerations: [key]"#,
    },
};

#[derive(Deserialize, Clone)]
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
    /// `None` when the node can take a pod asking for `cpu`/`memory`, else the
    /// scheduler-style reason.
    fn reject(&self, node: &Node, cpu: Option<Cpu>, memory: Option<Bytes>) -> Option<String> {
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
        let (have_cpu, have_memory) = allocatable(node);
        if cpu.is_some_and(|need| have_cpu < need) {
            return Some("Insufficient cpu".to_string());
        }
        if memory.is_some_and(|need| have_memory < need) {
            return Some("Insufficient memory".to_string());
        }
        None
    }

    /// With an install: each of its pods fits some node, and all of them fit together.
    /// `taken`: the host ports the pods already on each node hold.
    fn for_install(
        &self,
        install: &Install,
        nodes: &[Node],
        taken: &BTreeMap<String, Vec<(u16, String)>>,
    ) -> Outcome {
        let pods = install.pod_requests();
        if pods.is_empty() {
            return Outcome::pass("the install runs no pods");
        }
        let mut findings = Vec::new();
        for p in &pods {
            let (cpu, memory) = (Cpu(p.cpu_milli), Bytes(p.memory));
            let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
            for n in nodes {
                let name = n.metadata.name.clone().unwrap_or_default();
                let busy = taken
                    .get(&name)
                    .is_some_and(|t| p.host_ports.iter().any(|hp| t.contains(hp)));
                let verdict = self.reject(n, Some(cpu), Some(memory)).or_else(|| {
                    // The scheduler's NodePorts filter: another pod there holds the port.
                    busy.then(|| "node(s) didn't have free ports for the requested pod ports".to_string())
                });
                match verdict {
                    None => {
                        reasons.clear();
                        break;
                    }
                    Some(r) => *reasons.entry(r).or_default() += 1,
                }
            }
            if !reasons.is_empty() {
                let detail: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
                findings.push(Finding::fail(
                    &POD_UNSCHEDULABLE,
                    p.subject.clone(),
                    format!(
                        "{}: 0/{} nodes are available for cpu {cpu}, memory {memory}: {}.",
                        p.what,
                        nodes.len(),
                        detail.join(", ")
                    ),
                ));
            }
        }
        let open: Vec<&Node> = nodes
            .iter()
            .filter(|n| self.reject(n, None, None).is_none())
            .collect();
        let (have_cpu, have_memory) = open.iter().fold((0u128, 0u64), |(c, m), n| {
            let (nc, nm) = allocatable(n);
            (c + nc.0, m.saturating_add(nm.0))
        });
        let count: u64 = pods.iter().map(|p| p.replicas).sum();
        let need_cpu: u128 = pods.iter().map(|p| p.cpu_milli * u128::from(p.replicas)).sum();
        let need_memory: u64 = pods
            .iter()
            .map(|p| p.memory.saturating_mul(p.replicas))
            .fold(0, u64::saturating_add);
        let total = format!(
            "the install's {count} pod(s) request cpu {}, memory {} in all; the {} schedulable node(s) have cpu {}, memory {} allocatable",
            Cpu(need_cpu),
            Bytes(need_memory),
            open.len(),
            Cpu(have_cpu),
            Bytes(have_memory)
        );
        let too_much = need_cpu > have_cpu || need_memory > have_memory;
        if findings.is_empty() && !too_much {
            return Outcome::pass(format!("every pod of the install fits a node; {total}"));
        }
        if too_much {
            findings.push(Finding::fail(
                &NOT_ENOUGH_CAPACITY,
                Subject::Cluster,
                format!("{total}: pods stay Pending"),
            ));
        }
        let largest = pods.iter().max_by_key(|p| (p.cpu_milli, p.memory));
        let fix = largest
            .and_then(|p| self.control_plane_fix(nodes, Some(Cpu(p.cpu_milli)), Some(Bytes(p.memory))))
            .unwrap_or_else(|| {
                Fix::manual(
                    "add capacity (or nodes the pods tolerate), or lower the charts' resource requests",
                    vec![
                        "kubectl describe nodes | grep -E 'Taints|Unschedulable|Allocatable' -A5".to_string(),
                    ],
                )
            });
        Outcome::found(findings, "").with_fix(fix)
    }

    /// When only control-plane taints keep the workload off every node that could take it
    /// (a one-node cluster: seed 002), the fix is removing them from those nodes, by name,
    /// for each key the node has (`master`, and `control-plane` on newer clusters).
    fn control_plane_fix(&self, nodes: &[Node], cpu: Option<Cpu>, memory: Option<Bytes>) -> Option<Fix> {
        let untainted = Schedulable {
            tolerations: self
                .tolerations
                .iter()
                .cloned()
                .chain(CONTROL_PLANE_TAINTS.iter().map(|t| t.to_string()))
                .collect(),
            ..self.clone()
        };
        let mut commands = Vec::new();
        for n in nodes {
            // A node that takes it already: nothing to remove.
            self.reject(n, cpu, memory)?;
            if untainted.reject(n, cpu, memory).is_some() {
                continue;
            }
            let name = n.metadata.name.clone().unwrap_or_default();
            let keys: std::collections::BTreeSet<String> = n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .into_iter()
                .flatten()
                .filter(|t| CONTROL_PLANE_TAINTS.contains(&t.key.as_str()))
                .map(|t| t.key.clone())
                .collect();
            for k in keys {
                commands.push(format!("kubectl taint nodes {name} {k}-"));
            }
        }
        (!commands.is_empty()).then(|| {
            Fix::manual(
                "only control-plane taints keep the workload off the nodes that could take it: on a single-node (or all-control-plane) cluster remove them",
                commands,
            )
        })
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

/// A node's allocatable cpu and memory.
fn allocatable(node: &Node) -> (Cpu, Bytes) {
    let alloc = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.clone())
        .unwrap_or_default();
    (
        alloc
            .get("cpu")
            .and_then(|q| Cpu::parse(&q.0).ok())
            .unwrap_or(Cpu(0)),
        alloc
            .get("memory")
            .and_then(|q| Bytes::parse_lossy(&q.0).ok())
            .unwrap_or(Bytes(0)),
    )
}

impl Check for Schedulable {
    fn access(&self) -> Vec<Access> {
        vec![Access::new("list", "", "nodes")]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let (client, nodes) = crate::or_return!(nodes(ctx, &self.node_selector).await);
            if nodes.is_empty() {
                let scope = if self.node_selector.is_empty() {
                    String::new()
                } else {
                    format!(" matching {}", node_selector_text(&self.node_selector))
                };
                return Outcome::found(
                    vec![Finding::fail(
                        &NO_NODES,
                        Subject::Cluster,
                        format!("no nodes{scope} are registered: nothing can be scheduled"),
                    )],
                    "",
                )
                .with_fix(Fix::manual(
                    "join worker nodes to the cluster (kubelet)",
                    vec!["kubectl get nodes".to_string()],
                ));
            }
            if self.cpu.is_none() && self.memory.is_none() {
                if let Some(install) = crate::or_return!(ctx.rendered()) {
                    // Host ports the pods already on the nodes hold, when the install asks
                    // for any (one list of pods).
                    let mut taken: BTreeMap<String, Vec<(u16, String)>> = BTreeMap::new();
                    if install.pod_requests().iter().any(|p| !p.host_ports.is_empty()) {
                        let pods: Api<Pod> = Api::all(client.clone());
                        let running = match ctx
                            .kube
                            .call("list pods", pods.list(&ListParams::default()))
                            .await
                        {
                            Ok(l) => l.items,
                            Err(e) => return undecided(e),
                        };
                        for pod in running {
                            let done = pod
                                .status
                                .as_ref()
                                .and_then(|s| s.phase.as_deref())
                                .is_some_and(|ph| ph == "Succeeded" || ph == "Failed");
                            let (Some(node), Some(spec)) = (
                                pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                                serde_json::to_value(&pod.spec).ok(),
                            ) else {
                                continue;
                            };
                            if done {
                                continue;
                            }
                            taken
                                .entry(node)
                                .or_default()
                                .extend(crate::install::pod_host_ports(&spec));
                        }
                    }
                    return self.for_install(install, &nodes, &taken);
                }
            }
            let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
            for n in &nodes {
                match self.reject(n, self.cpu, self.memory) {
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
            let fix = self
                .control_plane_fix(&nodes, self.cpu, self.memory)
                .unwrap_or_else(|| {
                    Fix::manual(
                        "uncordon nodes, remove taints the workload does not tolerate, or add capacity",
                        vec![
                            "kubectl describe nodes | grep -E 'Taints|Unschedulable|Allocatable' -A5"
                                .to_string(),
                        ],
                    )
                });
            Outcome::found(vec![Finding::fail(&NO_NODE_FITS, Subject::Cluster, msg)], "").with_fix(fix)
        })
    }
}
