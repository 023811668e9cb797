use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use serde::Deserialize;

use super::{client, release, undecided};
use crate::check::{Check, CheckDef, CheckFuture, Ctx, Fix, Meta, Outcome, Phase};
use crate::kube::{cannot_import, ownership_problem, owning_release};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.leftover-cert-manager",
        phase: Phase::Cluster,
        title: "no leftover cert-manager namespace of another release",
        requires: &["cluster.api"],
        explain: r#"Why: a chart that brings its own cert-manager cannot install over one left by another
release or by an unfinished uninstall. KubeVela users saw (seed 000):

    Error: rendered manifests contain a resource that already exists. Unable to continue with install:
    Namespace "cert-manager" in namespace "" exists and cannot be imported into the current release:
    invalid ownership metadata; label validation error: missing key "app.kubernetes.io/managed-by":
    must be set to "Helm"; annotation validation error: missing key "meta.helm.sh/release-name": must
    be set to "kubevela"; ...

and, while the old namespace was still being deleted:

    Error: failed to create resource: serviceaccounts "cert-manager-cainjector" is forbidden: unable to
    create new content in namespace cert-manager because it is being terminated

What it looks at: GET namespace cert-manager. Passes when it does not exist or carries
this release's Helm ownership (label app.kubernetes.io/managed-by=Helm, annotations
meta.helm.sh/release-name / -namespace equal to the profile's release). Fails when it is
owned by anything else (quoting helm's own message) or is Terminating. Skipped when the
profile names no release.

Fix (unsafe, deletes): `helm delete cert-manager -n cert-manager`, then
`kubectl delete namespace cert-manager`, then wait until it is gone.

Parameters: namespace: cert-manager, helm_release: cert-manager"#,
    },
};

fn default_namespace() -> String {
    "cert-manager".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeftoverCertManager {
    #[serde(default = "default_namespace")]
    namespace: String,
    /// The release that usually owns it, for the `helm delete` fix.
    #[serde(default = "default_namespace")]
    helm_release: String,
}

impl Check for LeftoverCertManager {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let release = match release(ctx) {
                Ok(r) => r,
                Err(o) => return o,
            };
            let client = match client(ctx).await {
                Ok(c) => c,
                Err(o) => return o,
            };
            let name = &self.namespace;
            let api: Api<Namespace> = Api::all(client);
            let ns = match ctx
                .kube
                .call(&format!("GET namespace {name}"), api.get_opt(name))
                .await
            {
                Ok(Some(ns)) => ns,
                Ok(None) => return Outcome::pass(format!("no namespace {name}")),
                Err(e) => return undecided(e),
            };
            let meta = &ns.metadata;
            if meta.deletion_timestamp.is_some() {
                return Outcome::fail(format!(
                    "namespace {name} is being terminated: helm would fail with \"unable to create new content in namespace {name} because it is being terminated\""
                ))
                .with_fix(Fix::manual(
                    format!("wait until namespace {name} is gone; if it stays Terminating, see cluster.terminating-namespaces"),
                    vec![format!("kubectl get namespace {name} -o jsonpath='{{.status.conditions}}'")],
                ));
            }
            let labels = meta.labels.clone().unwrap_or_default();
            let annotations = meta.annotations.clone().unwrap_or_default();
            match ownership_problem(&labels, &annotations, release) {
                None => Outcome::pass(format!(
                    "namespace {name} belongs to release {}/{}",
                    release.namespace, release.name
                )),
                Some(problem) => {
                    let (helm_release, helm_ns) = owning_release(&annotations)
                        .unwrap_or_else(|| (self.helm_release.clone(), name.clone()));
                    Outcome::fail(cannot_import("Namespace", name, None, &problem)).with_fix(
                        Fix::manual(
                            format!("uninstall the release that owns namespace {name}, then delete the namespace (destroys everything in it)"),
                            vec![
                                format!("helm delete {helm_release} -n {helm_ns}"),
                                format!("kubectl delete namespace {name}"),
                            ],
                        )
                        .unsafe_(),
                    )
                }
            }
        })
    }
}
