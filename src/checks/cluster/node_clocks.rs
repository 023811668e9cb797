use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::Api;
use serde::Deserialize;

use super::{is_ready, nodes, undecided};
use crate::check::{
    Access, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::kube::ApiError;
use crate::values::Dur;

const CLOCK_SKEW: Code = Code {
    code: "clock-skew",
    explain: "the node's clock (its Lease renewals) is off the API server's by more than max_skew: TLS fails with \"x509: certificate has expired or is not yet valid\"",
};

const CLOCK_NOT_JUDGED: Code = Code {
    code: "clock-not-judged",
    explain: "a node's clock cannot be judged (no Lease in kube-node-lease, or the node is not Ready): a warning, or error when no node could be judged",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.node-clocks",
        phase: Phase::Cluster,
        title: "node clocks agree with the API server's",
        requires: &["cluster.api"],
        install: InstallUse::No,
        codes: &[super::API_ERROR, CLOCK_SKEW, CLOCK_NOT_JUDGED],
        host_network: false,
        roll_up: None,
        explain: r#"Why: a node whose clock is off breaks TLS between its kubelet and the control plane
(`x509: certificate has expired or is not yet valid`), leases and leader elections, and
makes logs and events lie about when things happened; host-preflight tools check it
(troubleshoot's `time` analyzer).

What it looks at, without sending a packet to any node: each node's Lease in
kube-node-lease, whose `renewTime` its kubelet writes with the node's own clock every ~10 s,
against the API server's clock (the `Date` of the server's answer). A renewal later than
the server's now by more than `max_skew` (default 30s) is a clock ahead; one older than
`max_skew` plus the renewal interval on a node the node controller still finds Ready is a
clock behind. A node that is not Ready, or has no Lease, cannot be judged: it is named.

Fix: run time synchronisation on the node (chrony or systemd-timesyncd against the site's
NTP server; on an air-gapped site, an internal one): `chronyc tracking`, `timedatectl`.

Parameters: max_skew: 30s, node_selector: {label: value}"#,
    },
};

fn default_skew() -> Dur {
    Dur(std::time::Duration::from_secs(30))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeClocks {
    #[serde(default = "default_skew")]
    max_skew: Dur,
    /// Only the nodes with these labels (as kubectl -l).
    #[serde(default)]
    node_selector: std::collections::BTreeMap<String, String>,
}

/// How often a kubelet renews its Lease (its default `nodeLeaseDurationSeconds` / 4).
const RENEW_INTERVAL: i64 = 10;

impl Check for NodeClocks {
    fn access(&self) -> Vec<Access> {
        vec![
            Access::new("list", "", "nodes"),
            Access::new("list", "coordination.k8s.io", "leases").in_namespace("kube-node-lease"),
        ]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let (client, nodes) = crate::or_return!(nodes(ctx, &self.node_selector).await);
            if nodes.is_empty() {
                return Outcome::skip("no nodes are registered");
            }
            let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
            let leases = match ctx
                .kube
                .call("list leases", leases.list(&ListParams::default()))
                .await
            {
                Ok(l) => l.items,
                Err(e) => return undecided(e),
            };
            let now = match server_now(ctx, &client).await {
                Ok(t) => t,
                Err(e) => return undecided(e),
            };
            let max = self.max_skew.0.as_secs() as i64;
            let (mut off, mut unjudged, mut fine) = (Vec::new(), Vec::new(), 0);
            for n in &nodes {
                let name = n.metadata.name.clone().unwrap_or_default();
                let ready = is_ready(n);
                let renewed = leases
                    .iter()
                    .find(|l| l.metadata.name.as_deref() == Some(name.as_str()))
                    .and_then(|l| l.spec.as_ref())
                    .and_then(|s| s.renew_time.as_ref())
                    .map(|t| t.0);
                let Some(renewed) = renewed else {
                    unjudged.push((name, "has no Lease in kube-node-lease"));
                    continue;
                };
                let ahead = renewed.duration_since(now).as_secs();
                if ahead > max {
                    off.push(Finding::fail(&CLOCK_SKEW, Subject::node(name.as_str()), format!("{name}: its clock is about {ahead}s ahead of the API server's (Lease renewed at {renewed}, the server's now is {now})")));
                } else if !ready {
                    unjudged.push((name, "is not Ready (a stale Lease says nothing of its clock)"));
                } else if -ahead > max + RENEW_INTERVAL {
                    off.push(Finding::fail(
                        &CLOCK_SKEW,
                        Subject::node(name.as_str()),
                        format!(
                            "{name}: its clock is about {}s behind the API server's (Lease renewed at {renewed} by its own clock while the node is Ready; the server's now is {now})",
                            -ahead - RENEW_INTERVAL
                        ),
                    ));
                } else {
                    fine += 1;
                }
            }
            // With no node judged, what could not be judged is the answer: error, never pass.
            let nothing_judged = off.is_empty() && fine == 0;
            let unjudged: Vec<Finding> = unjudged
                .into_iter()
                .map(|(name, why)| {
                    let sentence = format!("{name}: its clock cannot be judged: the node {why}");
                    if nothing_judged {
                        Finding::error(&CLOCK_NOT_JUDGED, Subject::node(name.as_str()), sentence)
                    } else {
                        Finding::warn(&CLOCK_NOT_JUDGED, Subject::node(name.as_str()), sentence)
                    }
                })
                .collect();
            if !off.is_empty() {
                off.extend(unjudged);
                return Outcome::found(off, format!("(allowed skew {max}s)")).with_fix(Fix::manual(
                    "synchronise the node's clock (chrony or systemd-timesyncd against the site's NTP server)",
                    vec!["chronyc tracking   # on the node".to_string(), "timedatectl status   # on the node".to_string()],
                ));
            }
            if nothing_judged {
                // Every node is unjudged here (there is at least one): their findings are errors.
                return Outcome::found(unjudged, "no node's clock could be judged");
            }
            Outcome::found(
                unjudged,
                format!("{fine} node clock(s) within {max}s of the API server's"),
            )
        })
    }
}

/// The API server's clock: the `Date` of its answer (seconds; the skews judged are tens of
/// seconds).
async fn server_now(ctx: &Ctx, client: &kube::Client) -> Result<Timestamp, ApiError> {
    let req = http::Request::get("/version")
        .body(kube::client::Body::empty())
        .map_err(|e| ApiError::Other(format!("GET /version: {e}")))?;
    let res = ctx.kube.call("GET /version", client.send(req)).await?;
    let date = res
        .headers()
        .get("date")
        .and_then(|d| d.to_str().ok())
        .ok_or_else(|| {
            ApiError::Other("GET /version: the API server's answer carries no Date".to_string())
        })?;
    k8s_openapi::jiff::fmt::rfc2822::parse(date)
        .map(|z| z.timestamp())
        .map_err(|e| ApiError::Other(format!("the API server's Date {date:?}: {e}")))
}
