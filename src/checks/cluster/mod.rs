//! The target cluster, through the kubeconfig. Every check here requires cluster.api.

pub mod api;
pub mod api_versions;
pub mod csr_controllers;
pub mod dry_run;
pub mod helm_ownership;
pub mod install_rbac;
pub mod kube_version;
pub mod kubelet_reachable;
pub mod leftover_cert_manager;
pub mod leftover_scopedefinition;
pub mod metrics_api;
pub mod node_clocks;
pub mod openapi_validation;
pub mod release_namespace;
pub mod release_state;
pub mod schedulable;
pub mod storageclass;
pub mod terminating_namespaces;
pub mod webhooks;

use crate::check::{Code, Ctx, Finding, Outcome, Release, Subject};
use crate::kube::ApiError;

/// What every cluster check reports when an API call it needs gives no answer: declared in
/// each cluster check's codes.
pub const API_ERROR: Code = Code {
    code: "api-error",
    explain: "an API call the check needs was refused or not answered (forbidden, timeout, unreachable): it cannot decide",
};

/// The shared client, or the `error` outcome saying why there is none.
pub async fn client(ctx: &Ctx) -> Result<kube::Client, Outcome> {
    match ctx.kube.connect().await {
        Ok(c) => Ok(c.client.clone()),
        Err(e) => Err(Outcome::problem(Finding::error(
            &API_ERROR,
            Subject::Cluster,
            format!("cannot connect to the cluster: {e}"),
        ))),
    }
}

/// An API call that gave no answer: the check cannot decide.
pub fn undecided(e: ApiError) -> Outcome {
    Outcome::problem(Finding::error(&API_ERROR, Subject::Cluster, e.message()))
}

/// `a=b,c=d`: a check's `node_selector` as a label selector (empty: every node).
pub fn node_selector_text(selector: &std::collections::BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The nodes a check looks at: those `selector` picks (as kubectl -l), in one list.
async fn list_nodes(
    ctx: &Ctx,
    client: &kube::Client,
    selector: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<k8s_openapi::api::core::v1::Node>, ApiError> {
    let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    let lp = kube::api::ListParams::default().labels(&node_selector_text(selector));
    ctx.kube.call("list nodes", api.list(&lp)).await.map(|l| l.items)
}

/// The client and the nodes matching `selector`, or the outcome that says why not (no
/// client, or the list unanswered): the start of every check that looks at the nodes.
pub async fn nodes(
    ctx: &Ctx,
    selector: &std::collections::BTreeMap<String, String>,
) -> Result<(kube::Client, Vec<k8s_openapi::api::core::v1::Node>), Outcome> {
    let client = client(ctx).await?;
    match list_nodes(ctx, &client, selector).await {
        Ok(n) => Ok((client, n)),
        Err(e) => Err(undecided(e)),
    }
}

/// Whether the node controller finds the node Ready (its Ready condition is True).
pub fn is_ready(node: &k8s_openapi::api::core::v1::Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// Ownership checks need to know which release is "ours".
pub fn release(ctx: &Ctx) -> Result<&Release, Outcome> {
    ctx.release
        .as_ref()
        .ok_or_else(|| Outcome::skip("the profile names no release (release: {name: ..., namespace: ...})"))
}

/// An object a check saw and an unsafe fix may delete: exactly that one (by UID).
#[derive(Clone, Debug)]
pub struct Doomed {
    pub resource: kube::discovery::ApiResource,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
}

impl Doomed {
    pub fn from_meta(
        resource: &kube::discovery::ApiResource,
        namespace: Option<String>,
        meta: &kube::api::ObjectMeta,
    ) -> Option<Doomed> {
        Some(Doomed {
            resource: resource.clone(),
            namespace,
            name: meta.name.clone()?,
            uid: meta.uid.clone()?,
        })
    }

    fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.resource.kind, self.name),
            None => format!("{} {}", self.resource.kind, self.name),
        }
    }
}

/// Delete each object with a UID precondition, so one re-created since the check looked is
/// never deleted. Already gone counts as done.
pub async fn delete_exactly(ctx: &Ctx, objects: &[Doomed]) -> Result<String, String> {
    use kube::api::{DeleteParams, DynamicObject, Preconditions};
    let client = client(ctx).await.map_err(|o| o.message)?;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for o in objects {
        let api: kube::Api<DynamicObject> = match &o.namespace {
            Some(ns) => kube::Api::namespaced_with(client.clone(), ns, &o.resource),
            None => kube::Api::all_with(client.clone(), &o.resource),
        };
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(o.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match ctx
            .kube
            .call(&format!("delete {}", o.describe()), api.delete(&o.name, &dp))
            .await
        {
            Ok(_) | Err(ApiError::NotFound(_)) => done.push(o.describe()),
            Err(e) => failed.push(e.to_string()),
        }
    }
    if failed.is_empty() {
        Ok(format!("deleted {}", done.join(", ")))
    } else {
        Err(failed.join("; "))
    }
}
