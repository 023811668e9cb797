//! The target cluster, through the kubeconfig. Every check here requires cluster.api.

pub mod api;
pub mod csr_controllers;
pub mod helm_ownership;
pub mod leftover_cert_manager;
pub mod leftover_scopedefinition;
pub mod schedulable;
pub mod storageclass;
pub mod terminating_namespaces;
pub mod webhooks;

use crate::check::{Ctx, Outcome, Release};
use crate::kube::ApiError;

/// The shared client, or the `error` outcome saying why there is none.
pub async fn client(ctx: &Ctx) -> Result<kube::Client, Outcome> {
    match ctx.kube.connect().await {
        Ok(c) => Ok(c.client.clone()),
        Err(e) => Err(Outcome::error(format!("cannot connect to the cluster: {e}"))),
    }
}

/// An API call that gave no answer: the check cannot decide.
pub fn undecided(e: ApiError) -> Outcome {
    Outcome::error(e.message().to_string())
}

/// Ownership checks need to know which release is "ours".
pub fn release(ctx: &Ctx) -> Result<&Release, Outcome> {
    ctx.release
        .as_ref()
        .ok_or_else(|| Outcome::skip("the profile names no release (release: {name: ..., namespace: ...})"))
}
