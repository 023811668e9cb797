use serde::Deserialize;

use super::undecided;
use crate::check::{
    Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::values::{parse_version, Version};

const CLUSTER_TOO_OLD: Code = Code {
    code: "cluster-too-old",
    explain: "the server's Kubernetes version is older than the profile's min_version",
};
const KUBE_VERSION_REFUSED: Code = Code {
    code: "kube-version-refused",
    explain: "a chart's kubeVersion refuses this cluster: helm says \"chart requires kubeVersion: … which is incompatible with Kubernetes …\" (its crds/ are still created first)",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.kube-version",
        phase: Phase::Cluster,
        title: "every chart accepts the cluster's Kubernetes version",
        requires: &["cluster.api"],
        install: InstallUse::Fed,
        codes: &[super::API_ERROR, CLUSTER_TOO_OLD, KUBE_VERSION_REFUSED],
        host_network: false,
        roll_up: None,
        explain: r#"Why: a chart declares the Kubernetes versions it supports (`kubeVersion` in Chart.yaml),
and helm refuses the install on any other, after the installer has already started:

    Error: INSTALLATION FAILED: chart requires kubeVersion: >= 1.22.0-0 which is incompatible
    with Kubernetes v1.20.2

(cert-manager v1.21, ingress-nginx 4.15 and kube-prometheus-stack on a v1.20 cluster; older
clusters are also why seed 001's CSR requests failed: "the cluster version is below 1.18".)

What it looks at: the server version (GET /version) against the profile's `min_version`, and,
with an install (--chart / --helmfile), helm's own verdict: the install is rendered with the
real `helm template --kube-version <server version>`, which applies helm's semver rules
(including the `-0` pre-release handling) to every chart it renders; a chart it refuses is
this check's failure, in helm's sentence.

helm compares kubeVersion only *after* it has created the chart's `crds/` (its install
order), so a refused chart still leaves its CRDs behind (kube-prometheus-stack on v1.20:
10 CRDs, then `chart requires kubeVersion: >=1.25.0-0`): they are listed (`helm show
crds`) and cluster.dry-run sends them to the server.

Fix: install a chart version made for this Kubernetes version (`helm search repo <chart>
--versions` lists each version's kubeVersion), or upgrade the cluster.

Parameters: min_version: "1.18.0""#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeVersion {
    #[serde(default)]
    min_version: Option<Version>,
}

/// helm's sentence in a render error, when the render failed on a chart's kubeVersion.
fn refused(render_error: &str) -> Option<String> {
    render_error
        .lines()
        .find(|l| l.contains("chart requires kubeVersion:"))
        .map(|l| {
            let l = l.trim();
            l.find("chart requires kubeVersion:")
                .map(|i| l[i..].to_string())
                .unwrap_or_else(|| l.to_string())
        })
}

impl Check for KubeVersion {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let server = match ctx.kube.server_version().await {
                Ok(v) => v,
                Err(e) => return undecided(e),
            };
            let fix = || {
                Fix::manual(
                    "install a chart version made for this Kubernetes version, or upgrade the cluster",
                    vec![
                        "helm search repo <chart> --versions".to_string(),
                        "helm show chart <chart> --version <v> | grep kubeVersion".to_string(),
                    ],
                )
            };
            if let Some(min) = &self.min_version {
                let v = match parse_version(server) {
                    Ok(v) => v,
                    Err(e) => return Outcome::error(format!("server version: {e}")),
                };
                if semver::Version::new(v.major, v.minor, v.patch) < min.0 {
                    return Outcome::problem(Finding::fail(
                        &CLUSTER_TOO_OLD,
                        Subject::Cluster,
                        format!("Kubernetes {server} is older than {min}, the oldest the installer supports"),
                    ))
                    .with_fix(Fix::manual(
                        format!("upgrade the cluster to {min} or newer"),
                        vec![],
                    ));
                }
            }
            let floor = self
                .min_version
                .as_ref()
                .map(|m| format!(" (≥ {m})"))
                .unwrap_or_default();
            match ctx.install() {
                None => Outcome::pass(format!("Kubernetes {server}{floor}")),
                Some(Err(e)) => match refused(e) {
                    Some(sentence) => {
                        Outcome::problem(Finding::fail(&KUBE_VERSION_REFUSED, Subject::Cluster, sentence)).with_fix(fix())
                    }
                    None => Outcome::error(format!("the install could not be rendered: {e}")),
                },
                Some(Ok(i)) if i.unrendered().any(|(_, e)| refused(e).is_some()) => {
                    let found: Vec<Finding> = i
                        .unrendered()
                        .filter_map(|(r, e)| Some((r, refused(e)?)))
                        .map(|(r, sentence)| {
                            let line = match i.releases.len() {
                                1 => sentence,
                                _ => format!("release {}: {sentence}", r.name),
                            };
                            // helm install creates crds/ before it compares kubeVersion.
                            let index = i.releases.iter().position(|x| std::ptr::eq(x, r));
                            let crds: Vec<String> = i
                                .objects
                                .iter()
                                .filter(|o| Some(o.release) == index && o.origin == crate::install::Origin::Crd)
                                .map(|o| o.name.clone())
                                .collect();
                            let line = if crds.is_empty() {
                                line
                            } else {
                                format!(
                                    "{line}; helm install still creates the chart's {} CRD(s) from crds/ first, and leaves them behind: {} (cluster.dry-run sends them to the server)",
                                    crds.len(),
                                    crds.join(", ")
                                )
                            };
                            Finding::fail(
                                &KUBE_VERSION_REFUSED,
                                Subject::release(r.name.as_str(), Some(r.namespace.as_str())),
                                line,
                            )
                        })
                        .collect();
                    Outcome::found(found, "").with_fix(fix())
                }
                Some(Ok(i)) => match &i.rendered_for {
                    Ok(for_) => Outcome::pass(format!(
                        "helm rendered the {} release(s) for {for_}: every chart's kubeVersion accepts it{floor}",
                        i.releases.len() - i.unrendered().count()
                    )),
                    Err(why) => Outcome::error(format!(
                        "the install was rendered without the cluster's version ({why}), so helm did not judge the charts' kubeVersion"
                    )),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::refused;

    #[test]
    fn helms_sentence_out_of_its_error() {
        assert_eq!(
            refused("helm template r ./c failed:\nError: chart requires kubeVersion: >= 1.22.0-0 which is incompatible with Kubernetes v1.20.2").as_deref(),
            Some("chart requires kubeVersion: >= 1.22.0-0 which is incompatible with Kubernetes v1.20.2")
        );
        assert_eq!(refused("Error: map has no entry for key"), None);
    }
}
