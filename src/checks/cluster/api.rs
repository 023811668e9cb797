use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use kube::Api;
use serde::Deserialize;

use std::collections::BTreeMap;

use futures::future::join_all;

use crate::check::{
    Access, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Starved,
    Subject,
};
use crate::kube::ApiError;

const KUBECONFIG_UNUSABLE: Code = Code {
    code: "kubeconfig-unusable",
    explain: "no kubeconfig, a malformed one, or an unknown context: nothing can reach the cluster",
};
const CREDENTIALS_REJECTED: Code = Code {
    code: "credentials-rejected",
    explain: "the API server answers 401 Unauthorized to the kubeconfig's credentials",
};
const API_UNREACHABLE: Code = Code {
    code: "api-unreachable",
    explain: "the API server the kubeconfig names does not answer (refused, timeout, TLS): the install cannot proceed",
};

const VERB_DENIED: Code = Code {
    code: "verb-denied",
    explain: "the kubeconfig's user may not do what the profile's verbs say the install does (create namespaces, …): helm stops with \"forbidden\"",
};
const READ_DENIED: Code = Code {
    code: "read-denied",
    explain: "the kubeconfig's user may not read what a planned check needs (SelfSubjectAccessReview): that check is skipped, so nothing is known of it",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.api",
        phase: Phase::Cluster,
        title: "the Kubernetes API answers and allows the install",
        requires: &[],
        install: InstallUse::No,
        codes: &[
            KUBECONFIG_UNUSABLE,
            CREDENTIALS_REJECTED,
            API_UNREACHABLE,
            VERB_DENIED,
            READ_DENIED,
            super::API_ERROR,
        ],
        host_network: false,
        roll_up: None,
        explain: r#"Why: every helm/helmfile step talks to the API server; when the kubeconfig is wrong,
the server is down, or the user lacks rights, the install dies part-way, e.g.

    Error: Kubernetes cluster unreachable: Get "https://10.0.0.1:6443/version": dial tcp 10.0.0.1:6443: connect: connection refused
    Error: failed to create resource: namespaces is forbidden: User "deploy" cannot create resource "namespaces" in API group "" at the cluster scope

What it looks at: the kubeconfig as kubectl finds it (--kubeconfig, then $KUBECONFIG, then
~/.kube/config, then the pod's service account) and --context; GET /version (bounded by
--timeout); then, all at once, one SelfSubjectAccessReview per verb the profile lists and
per read access every planned cluster check declares (list namespaces, list apiservices,
…). Missing or malformed kubeconfig, unreachable server, rejected credentials and a denied
install verb each fail with their own message. A denied read is `error`: it names each
missing permission and the checks it starves, and those checks are skipped naming
cluster.api (the others still run). Every other cluster check is skipped when this one
fails.

Fix: point --kubeconfig / KUBECONFIG at the cluster's admin kubeconfig, or grant the user
the verbs (`kubectl auth can-i <verb> <resource>` shows what is missing).

Parameters: verbs: [{verb: create, resource: namespaces, group: "", namespace: ""}]"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerbReq {
    verb: String,
    resource: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    namespace: Option<String>,
}

impl VerbReq {
    fn access(&self) -> Access {
        Access {
            verb: self.verb.clone(),
            group: self.group.clone(),
            resource: self.resource.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterApi {
    #[serde(default)]
    verbs: Vec<VerbReq>,
}

fn kubeconfig_fix() -> Fix {
    Fix::manual(
        "point preflight at the cluster's kubeconfig (--kubeconfig, KUBECONFIG or ~/.kube/config) and the right --context",
        vec![
            "kubectl config get-contexts".to_string(),
            "export KUBECONFIG=/etc/kubernetes/admin.conf".to_string(),
        ],
    )
}

impl Check for ClusterApi {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let conn = match ctx.kube.connect().await {
                Ok(c) => c.clone(),
                Err(e) => {
                    return Outcome::found(vec![Finding::fail(&KUBECONFIG_UNUSABLE, Subject::Cluster, e)], "")
                        .with_fix(kubeconfig_fix())
                }
            };
            let where_ = format!("{} ({})", conn.server, conn.source);
            // Asked once per run (and already in flight since the run started).
            let version = match ctx.kube.server_version().await {
                Ok(v) => v.to_string(),
                Err(ApiError::Unauthorized(_)) => {
                    return Outcome::found(
                        vec![Finding::fail(
                            &CREDENTIALS_REJECTED,
                            Subject::Cluster,
                            format!("{where_} rejected the credentials: Unauthorized (401)"),
                        )],
                        "",
                    )
                    .with_fix(kubeconfig_fix())
                }
                // Unreachable is this check's answer, not an undecided one: the install cannot proceed.
                Err(e) => {
                    return Outcome::found(
                        vec![Finding::fail(
                            &API_UNREACHABLE,
                            Subject::Cluster,
                            format!("cannot reach {where_}: {e}"),
                        )],
                        "",
                    )
                    .with_fix(kubeconfig_fix())
                }
            };
            let reviews: Api<SelfSubjectAccessReview> = Api::all(conn.client.clone());
            // The install's own verbs, then every planned check's read access: one round of
            // concurrent reviews, so a user who may read nothing gets one message, not eight.
            let install: Vec<Access> = self.verbs.iter().map(VerbReq::access).collect();
            let mut reads: BTreeMap<Access, Vec<&'static str>> = BTreeMap::new();
            for (id, needs) in &ctx.planned_access {
                for a in needs {
                    reads.entry(a.clone()).or_default().push(id);
                }
            }
            let asked: Vec<&Access> = install.iter().chain(reads.keys()).collect();
            let answers = join_all(asked.iter().map(|a| ctx.kube.may(&reviews, a))).await;
            let mut denied: BTreeMap<&Access, String> = BTreeMap::new();
            for (a, answer) in asked.iter().zip(answers) {
                match answer {
                    Ok(None) => {}
                    Ok(Some(why)) => {
                        denied.insert(a, why);
                    }
                    Err(e) => {
                        return Outcome::problem(Finding::error(
                            &super::API_ERROR,
                            Subject::Cluster,
                            format!("Kubernetes {version} at {where_} answers, but cannot tell what this user may do: {e}"),
                        ))
                    }
                }
            }
            let say = |a: &Access| match denied.get(a).map(String::as_str) {
                Some("") | None => a.describe(),
                Some(why) => format!("{} ({why})", a.describe()),
            };
            let install_denied: Vec<&Access> = install.iter().filter(|a| denied.contains_key(a)).collect();
            let reads_denied: Vec<(&Access, &Vec<&'static str>)> =
                reads.iter().filter(|(a, _)| denied.contains_key(a)).collect();
            if install_denied.is_empty() && reads_denied.is_empty() {
                let mut msg = format!("Kubernetes {version} at {where_}");
                if !install.is_empty() {
                    let allowed: Vec<String> = install.iter().map(Access::describe).collect();
                    msg.push_str(&format!("; may {}", allowed.join(", ")));
                }
                if !reads.is_empty() {
                    msg.push_str(&format!("; may read what the {} cluster checks need", {
                        let mut ids: Vec<&str> = reads.values().flatten().copied().collect();
                        ids.sort();
                        ids.dedup();
                        ids.len()
                    }));
                }
                return Outcome::pass(msg);
            }
            let mut findings: Vec<Finding> = install_denied
                .iter()
                .map(|a| {
                    Finding::fail(
                        &VERB_DENIED,
                        a.subject(),
                        format!("this user may not {}: the install needs it", say(a)),
                    )
                })
                .collect();
            let mut starved: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
            for (a, ids) in &reads_denied {
                findings.push(Finding::error(
                    &READ_DENIED,
                    a.subject(),
                    format!("this user may not {}: needed by {}", say(a), ids.join(", ")),
                ));
                for id in *ids {
                    starved.entry(id).or_default().push(a.describe());
                }
            }
            let mut summary = format!("Kubernetes {version} at {where_} answers");
            if !starved.is_empty() {
                summary.push_str(&format!(
                    "; {} check(s) cannot decide and are skipped: {}",
                    starved.len(),
                    starved.keys().copied().collect::<Vec<_>>().join(", ")
                ));
            }
            let mut commands: Vec<String> = install_denied
                .iter()
                .chain(reads_denied.iter().map(|(a, _)| a))
                .map(|a| a.can_i())
                .collect();
            if !reads_denied.is_empty() {
                let mut resources: Vec<String> =
                    reads_denied.iter().map(|(a, _)| a.resource_name()).collect();
                resources.sort();
                resources.dedup();
                commands.push(format!(
                    "kubectl create clusterrole preflight-read --verb=get,list --resource={}",
                    resources.join(",")
                ));
                commands.push(
                    "kubectl create clusterrolebinding preflight-read --clusterrole=preflight-read --user=<this user>"
                        .to_string(),
                );
            }
            let fix = Fix::manual(
                "use a kubeconfig whose user has these rights, or grant them (RBAC)",
                commands,
            );
            // A denied install verb (fail) is this check's answer; a denied read (error) only
            // means other checks cannot decide.
            let mut outcome = Outcome::found(findings, summary);
            outcome.starved = starved
                .into_iter()
                .map(|(check, missing)| Starved {
                    check,
                    reason: format!("this user may not {}", missing.join(", ")),
                })
                .collect();
            outcome.with_fix(fix)
        })
    }
}
