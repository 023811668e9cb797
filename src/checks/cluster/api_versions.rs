use serde::Deserialize;

use super::undecided;
use crate::check::{Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase};
use crate::install::Origin;
use crate::values::parse_version;

const KIND_NOT_SERVED: Code = Code {
    code: "kind-not-served",
    explain: "an object's apiVersion/kind is not served and no CRD of the install defines it: helm says \"no matches for kind … ensure CRDs are installed first\"",
};
const API_REMOVED_LATER: Code = Code {
    code: "api-removed-later",
    explain: "an object uses an API version this cluster serves but a later Kubernetes removes: the install breaks at the upgrade",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.api-versions",
        phase: Phase::Cluster,
        title: "every kind the install renders is served, or brought by its own CRDs",
        requires: &["cluster.api"],
        install: InstallUse::Fed,
        codes: &[super::API_ERROR, KIND_NOT_SERVED, API_REMOVED_LATER],
        host_network: false,
        roll_up: None,
        explain: r#"Why: helm maps every rendered object to an API the cluster serves before it creates
anything; a CRD that is not installed, or an API version the cluster removed (or does not
have yet), stops the install:

    Error: INSTALLATION FAILED: unable to build kubernetes objects from release manifest:
    resource mapping not found for name: "w" namespace: "" from "": no matches for kind
    "Widget" in version "preflight.test/v1"
    ensure CRDs are installed first

What it looks at: with an install (--chart / --helmfile), API discovery (once), and every
rendered object's apiVersion/kind: served by the cluster, or defined (served) by a CRD the
install itself brings in crds/ or its templates. A served version the Kubernetes project
has removed in a later release (extensions/v1beta1 Ingress in 1.22, batch/v1beta1 CronJob
in 1.25, …: a table kept as data) is a warning naming that release.

Fix: install the CRDs first (or the operator that owns them), or use the chart version made
for this Kubernetes version.

Parameters: none"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiVersions {}

/// API versions the Kubernetes project removed: (apiVersion, kind or "*", removed in).
const REMOVED: &[(&str, &str, &str)] = &[
    ("extensions/v1beta1", "Deployment", "1.16"),
    ("extensions/v1beta1", "DaemonSet", "1.16"),
    ("extensions/v1beta1", "ReplicaSet", "1.16"),
    ("extensions/v1beta1", "NetworkPolicy", "1.16"),
    ("extensions/v1beta1", "PodSecurityPolicy", "1.16"),
    ("apps/v1beta1", "*", "1.16"),
    ("apps/v1beta2", "*", "1.16"),
    ("extensions/v1beta1", "Ingress", "1.22"),
    ("networking.k8s.io/v1beta1", "*", "1.22"),
    ("apiextensions.k8s.io/v1beta1", "*", "1.22"),
    ("admissionregistration.k8s.io/v1beta1", "*", "1.22"),
    ("apiregistration.k8s.io/v1beta1", "*", "1.22"),
    ("authentication.k8s.io/v1beta1", "*", "1.22"),
    ("authorization.k8s.io/v1beta1", "*", "1.22"),
    ("certificates.k8s.io/v1beta1", "*", "1.22"),
    ("coordination.k8s.io/v1beta1", "*", "1.22"),
    ("rbac.authorization.k8s.io/v1beta1", "*", "1.22"),
    ("scheduling.k8s.io/v1beta1", "*", "1.22"),
    ("storage.k8s.io/v1beta1", "CSIDriver", "1.22"),
    ("storage.k8s.io/v1beta1", "CSINode", "1.22"),
    ("storage.k8s.io/v1beta1", "StorageClass", "1.22"),
    ("storage.k8s.io/v1beta1", "VolumeAttachment", "1.22"),
    ("batch/v1beta1", "CronJob", "1.25"),
    ("discovery.k8s.io/v1beta1", "*", "1.25"),
    ("events.k8s.io/v1beta1", "*", "1.25"),
    ("autoscaling/v2beta1", "*", "1.25"),
    ("policy/v1beta1", "*", "1.25"),
    ("node.k8s.io/v1beta1", "*", "1.25"),
    ("autoscaling/v2beta2", "*", "1.26"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "*", "1.26"),
    ("storage.k8s.io/v1beta1", "CSIStorageCapacity", "1.27"),
    ("flowcontrol.apiserver.k8s.io/v1beta2", "*", "1.29"),
    ("flowcontrol.apiserver.k8s.io/v1beta3", "*", "1.32"),
];

fn removed_in(api_version: &str, kind: &str) -> Option<&'static str> {
    REMOVED
        .iter()
        .find(|(av, k, _)| *av == api_version && (*k == "*" || *k == kind))
        .map(|(_, _, v)| *v)
}

impl Check for ApiVersions {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let install = crate::or_return!(ctx.install_given());
            let discovery = match ctx.kube.discovery().await {
                Ok(d) => d,
                Err(e) => return undecided(e),
            };
            let server = match ctx.kube.server_version().await {
                Ok(v) => v,
                Err(e) => return undecided(e),
            };
            let server_minor = parse_version(server)
                .map(|v| (v.major, v.minor))
                .unwrap_or((0, 0));
            let (mut missing, mut doomed, mut by_crd): (Vec<Finding>, Vec<Finding>, usize) =
                (Vec::new(), Vec::new(), 0);
            for o in &install.objects {
                if o.api_version.is_empty() {
                    continue;
                }
                let served = discovery.resolve_gvk(&o.gvk()).is_some();
                if !served {
                    if o.origin != Origin::Crd && install.crd_for(&o.api_version, &o.kind).is_some() {
                        by_crd += 1;
                        continue;
                    }
                    let ns = o.namespace.as_deref().unwrap_or("");
                    missing.push(Finding::fail(
                        &KIND_NOT_SERVED,
                        install.subject(o),
                        format!(
                            "{}: resource mapping not found for name: {:?} namespace: {ns:?} from \"\": no matches for kind {:?} in version {:?}",
                            install.provenance(o),
                            o.name,
                            o.kind,
                            o.api_version
                        ),
                    ));
                    continue;
                }
                if let Some(release) = removed_in(&o.api_version, &o.kind) {
                    let later = parse_version(release)
                        .map(|r| (r.major, r.minor) > server_minor)
                        .unwrap_or(false);
                    if later {
                        doomed.push(Finding::warn(
                            &API_REMOVED_LATER,
                            install.subject(o),
                            format!(
                                "{} {} ({}) uses {}, which Kubernetes {release} removes: served by this cluster ({server}), not after an upgrade",
                                o.kind,
                                o.name,
                                install.provenance(o),
                                o.api_version
                            ),
                        ));
                    }
                }
            }
            // Each finding carries its own fix: a kind nothing serves wants its CRDs first, an
            // API version a later release removes wants the newer version rendered.
            let crds_first = Fix::manual(
                "install the CRDs (or the operator that owns them) first, or use the chart version made for this Kubernetes version",
                vec!["kubectl api-resources".to_string(), "kubectl api-versions".to_string()],
            );
            let newer_version = Fix::manual(
                "before upgrading the cluster, upgrade the release with a chart version that renders the newer API version (helm then replaces the objects' API version)",
                vec!["kubectl api-versions".to_string()],
            );
            let missing: Vec<Finding> = missing
                .into_iter()
                .map(|f| f.with_fix(crds_first.clone()))
                .collect();
            let doomed: Vec<Finding> = doomed
                .into_iter()
                .map(|f| f.with_fix(newer_version.clone()))
                .collect();
            if !missing.is_empty() {
                let mut all = missing;
                all.extend(doomed);
                return Outcome::found(all, "ensure CRDs are installed first");
            }
            if !doomed.is_empty() {
                return Outcome::found(doomed, "");
            }
            let mut msg = format!(
                "every kind of the {} is served by Kubernetes {server}",
                install.counted(install.objects.len(), "objects")
            );
            if by_crd > 0 {
                msg.push_str(&format!(", {by_crd} by the install's own CRDs"));
            }
            Outcome::pass(msg)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::removed_in;

    #[test]
    fn removed_apis_by_kind_or_whole_version() {
        assert_eq!(removed_in("extensions/v1beta1", "Ingress"), Some("1.22"));
        assert_eq!(removed_in("batch/v1beta1", "CronJob"), Some("1.25"));
        assert_eq!(removed_in("policy/v1beta1", "PodDisruptionBudget"), Some("1.25"));
        assert_eq!(removed_in("apps/v1", "Deployment"), None);
    }
}
