use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::Api;
use serde::Deserialize;

use crate::check::{Check, CheckDef, CheckFuture, Ctx, Fix, Meta, Outcome, Phase};
use crate::kube::ApiError;

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.api",
        phase: Phase::Cluster,
        title: "the Kubernetes API answers and allows the install",
        requires: &[],
        explain: r#"Why: every helm/helmfile step talks to the API server; when the kubeconfig is wrong,
the server is down, or the user lacks rights, the install dies part-way, e.g.

    Error: Kubernetes cluster unreachable: Get "https://10.0.0.1:6443/version": dial tcp 10.0.0.1:6443: connect: connection refused
    Error: failed to create resource: namespaces is forbidden: User "deploy" cannot create resource "namespaces" in API group "" at the cluster scope

What it looks at: the kubeconfig as kubectl finds it (--kubeconfig, then $KUBECONFIG, then
~/.kube/config, then the pod's service account) and --context; GET /version (bounded by
--timeout); then one SelfSubjectAccessReview per verb the profile lists. Missing or
malformed kubeconfig, unreachable server, rejected credentials and a denied verb each fail
with their own message. Every other cluster check is skipped when this one fails.

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
    fn describe(&self) -> String {
        let res = if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        match &self.namespace {
            Some(ns) => format!("{} {res} in namespace {ns}", self.verb),
            None => format!("{} {res}", self.verb),
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
                Err(e) => return Outcome::fail(e).with_fix(kubeconfig_fix()),
            };
            let where_ = format!("{} ({})", conn.server, conn.source);
            let version = match ctx
                .kube
                .call("GET /version", conn.client.apiserver_version())
                .await
            {
                Ok(v) => v.git_version,
                Err(ApiError::Unauthorized(_)) => {
                    return Outcome::fail(format!("{where_} rejected the credentials: Unauthorized (401)"))
                        .with_fix(kubeconfig_fix())
                }
                // Unreachable is this check's answer, not an undecided one: the install cannot proceed.
                Err(e) => {
                    return Outcome::fail(format!("cannot reach {where_}: {e}")).with_fix(kubeconfig_fix())
                }
            };
            let reviews: Api<SelfSubjectAccessReview> = Api::all(conn.client.clone());
            let mut denied = Vec::new();
            for req in &self.verbs {
                let review = SelfSubjectAccessReview {
                    spec: SelfSubjectAccessReviewSpec {
                        resource_attributes: Some(ResourceAttributes {
                            verb: Some(req.verb.clone()),
                            resource: Some(req.resource.clone()),
                            group: Some(req.group.clone()),
                            namespace: req.namespace.clone(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let what = format!("SelfSubjectAccessReview ({})", req.describe());
                match ctx.kube.call(&what, reviews.create(&PostParams::default(), &review)).await {
                    Ok(r) => {
                        let status = r.status.unwrap_or_default();
                        if !status.allowed {
                            let why = status.reason.filter(|r| !r.is_empty()).map(|r| format!(" ({r})")).unwrap_or_default();
                            denied.push(format!("{}{why}", req.describe()));
                        }
                    }
                    Err(e) => {
                        return Outcome::error(format!(
                            "Kubernetes {version} at {where_} answers, but cannot tell what this user may do: {e}"
                        ))
                    }
                }
            }
            if !denied.is_empty() {
                return Outcome::fail(format!(
                    "Kubernetes {version} at {where_} answers, but this user may not: {}",
                    denied.join("; ")
                ))
                .with_fix(Fix::manual(
                    "use a kubeconfig whose user has these rights, or grant them (RBAC)",
                    self.verbs
                        .iter()
                        .map(|v| {
                            let ns = v
                                .namespace
                                .as_ref()
                                .map(|n| format!(" -n {n}"))
                                .unwrap_or_default();
                            let res = if v.group.is_empty() {
                                v.resource.clone()
                            } else {
                                format!("{}.{}", v.resource, v.group)
                            };
                            format!("kubectl auth can-i {} {res}{ns}", v.verb)
                        })
                        .collect(),
                ));
            }
            let mut msg = format!("Kubernetes {version} at {where_}");
            if !self.verbs.is_empty() {
                let allowed: Vec<String> = self.verbs.iter().map(VerbReq::describe).collect();
                msg.push_str(&format!("; may {}", allowed.join(", ")));
            }
            Outcome::pass(msg)
        })
    }
}
