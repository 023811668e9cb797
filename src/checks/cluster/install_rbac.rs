use std::collections::BTreeMap;

use futures::future::join_all;
use futures::stream::{self, StreamExt};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ApiResource;
use kube::discovery::Scope;
use kube::Api;
use serde::Deserialize;

use super::{client, undecided};
use crate::check::{
    Access, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase,
};
use crate::install::Install;
use crate::kube::ApiError;

const VERB_DENIED: Code = Code {
    code: "verb-denied",
    explain: "the kubeconfig's user may not get, create or patch a kind the install writes, where it writes it (SelfSubjectAccessReview): helm stops with \"forbidden\"",
};

const KIND_NOT_REVIEWED: Code = Code {
    code: "kind-not-reviewed",
    explain: "an object's kind is not served and no CRD of the install defines it, so the rights to write it were not reviewed (cluster.api-versions says why): named, never passed",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.install-rbac",
        phase: Phase::Cluster,
        title: "the installing user may create everything the install renders",
        requires: &["cluster.api"],
        install: InstallUse::Fed,
        codes: &[super::API_ERROR, VERB_DENIED, KIND_NOT_REVIEWED],
        host_network: false,
        roll_up: None,
        explain: r#"Why: helm installs as the kubeconfig's user; a kind it may not read or create stops
the install part-way, after earlier objects were already created:

    Error: INSTALLATION FAILED: rendered manifests contain a resource that already exists.
    Unable to continue with install: could not get information about the resource ClusterRole
    "r-reader" in namespace "": clusterroles.rbac.authorization.k8s.io "r-reader" is forbidden:
    User "deploy" cannot get resource "clusterroles" in API group "rbac.authorization.k8s.io"
    at the cluster scope

What it looks at: with an install (--chart / --helmfile), every kind it renders (CRDs,
templates, hooks), resolved through discovery (or the install's own CRDs) to its resource
and scope, in each namespace it renders into: `get` (helm looks for existing objects first)
and `create`, plus `patch` for the objects that already exist (helm patches them on an
upgrade; `update` is needed only with `--force`); and helm's own release storage in each release's namespace (`list`, `create`,
`update` secrets; configmaps with HELM_DRIVER=configmap). All as SelfSubjectAccessReviews,
at once — as linkerd's `check --pre` does for its own objects, here for any chart.

Fix: install with a kubeconfig whose user has these rights, or grant them (a Role per
namespace, a ClusterRole for cluster-scoped kinds); `kubectl auth can-i` shows each.

Parameters: none"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallRbac {}

/// An object the cluster may already hold: helm patches it (upgrade) instead of creating it.
struct Lookup {
    ar: ApiResource,
    namespace: Option<String>,
    name: String,
    why: String,
}

type Needs = (BTreeMap<Access, Vec<String>>, Vec<Finding>, Vec<Lookup>);

/// What the install needs, which objects need it, and the objects to look up.
fn needs(install: &Install, discovery: &kube::Discovery) -> Needs {
    let mut lookups = Vec::new();
    let mut out: BTreeMap<Access, Vec<String>> = BTreeMap::new();
    let mut unresolved = Vec::new();
    let mut add = |a: Access, why: String| {
        let v = out.entry(a).or_default();
        if !v.contains(&why) {
            v.push(why);
        }
    };
    let storage = if std::env::var("HELM_DRIVER").is_ok_and(|d| d.starts_with("configmap")) {
        "configmaps"
    } else {
        "secrets"
    };
    for r in &install.releases {
        for verb in ["list", "create", "update"] {
            add(
                Access::new(verb, "", storage).in_namespace(&r.namespace),
                format!("helm's release storage of {}", r.name),
            );
        }
    }
    for o in &install.objects {
        let Some(release) = install.release(o) else {
            continue;
        };
        let gvk = o.gvk();
        let served = discovery.resolve_gvk(&gvk);
        if let Some((ar, caps)) = &served {
            lookups.push(Lookup {
                ar: ar.clone(),
                namespace: (caps.scope == Scope::Namespaced)
                    .then(|| o.namespace.clone().unwrap_or_else(|| release.namespace.clone())),
                name: o.name.clone(),
                why: install.provenance(o),
            });
        }
        let resolved = served
            .map(|(ar, caps)| (ar.plural, caps.scope == Scope::Namespaced))
            .or_else(|| {
                // A kind the install's own CRD brings.
                let spec = install.crd_for(&o.api_version, &o.kind)?.value.get("spec")?;
                Some((
                    spec.pointer("/names/plural")?.as_str()?.to_string(),
                    spec.get("scope")?.as_str()? == "Namespaced",
                ))
            });
        let Some((plural, namespaced)) = resolved else {
            unresolved.push(Finding::warn(
                &KIND_NOT_REVIEWED,
                install.subject(o),
                format!(
                    "{} {} ({}): not served and no CRD of the install defines it, so the rights to write it were not reviewed (see cluster.api-versions)",
                    o.kind,
                    o.name,
                    install.provenance(o)
                ),
            ));
            continue;
        };
        for verb in ["get", "create"] {
            let a = Access::new(verb, &gvk.group, &plural);
            let a = if namespaced {
                a.in_namespace(o.namespace.as_deref().unwrap_or(&release.namespace))
            } else {
                a
            };
            add(a, install.provenance(o));
        }
    }
    (out, unresolved, lookups)
}

async fn look<'a>(
    ctx: &Ctx,
    client: &kube::Client,
    l: &'a Lookup,
) -> (&'a Lookup, Result<Option<ObjectMeta>, ApiError>) {
    (
        l,
        ctx.kube
            .existing(client, &l.ar, l.namespace.as_deref(), &l.name)
            .await,
    )
}

impl Check for InstallRbac {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let install = crate::or_return!(ctx.install_given());
            let discovery = match ctx.kube.discovery().await {
                Ok(d) => d,
                Err(e) => return undecided(e),
            };
            let client = crate::or_return!(client(ctx).await);
            let (mut needed, unresolved, lookups) = needs(install, discovery);
            // Objects that already exist are patched by helm (an upgrade, or adoption).
            let asks: Vec<_> = lookups.iter().map(|l| look(ctx, &client, l)).collect();
            let found: Vec<_> = stream::iter(asks).buffered(16).collect().await;
            let mut existing = 0;
            for (l, found) in found {
                match found {
                    Ok(Some(_)) => {
                        existing += 1;
                        let mut a = Access::new("patch", &l.ar.group, &l.ar.plural);
                        if let Some(ns) = &l.namespace {
                            a = a.in_namespace(ns);
                        }
                        let v = needed.entry(a).or_default();
                        if !v.contains(&l.why) {
                            v.push(l.why.clone());
                        }
                    }
                    Ok(None) => {}
                    // Not allowed to look: the `get` review below names that.
                    Err(ApiError::Forbidden(_)) => {}
                    Err(e) => return undecided(e),
                }
            }
            let reviews: Api<SelfSubjectAccessReview> = Api::all(client);
            let answers = join_all(needed.keys().map(|a| ctx.kube.may(&reviews, a))).await;
            let mut denied = Vec::new();
            let mut cmds = Vec::new();
            for ((a, why), allowed) in needed.iter().zip(answers) {
                match allowed {
                    Ok(None) => {}
                    Ok(Some(_)) => {
                        let scope = match &a.namespace {
                            Some(ns) => format!("in namespace {ns}"),
                            None => "at the cluster scope".to_string(),
                        };
                        let mut whys = why.clone();
                        let more = whys.len().saturating_sub(3);
                        whys.truncate(3);
                        let more = if more > 0 {
                            format!(" and {more} more")
                        } else {
                            String::new()
                        };
                        denied.push(Finding::fail(
                            &VERB_DENIED,
                            a.subject(),
                            format!(
                                "may not {} {} {scope}: needed by {}{more}",
                                a.verb,
                                a.resource_name(),
                                whys.join("; ")
                            ),
                        ));
                        cmds.push(a.can_i().replace(" -A", ""));
                    }
                    Err(e) => return undecided(e),
                }
            }
            if !denied.is_empty() {
                denied.extend(unresolved);
                return Outcome::found(denied, "").with_fix(Fix::manual(
                    "install with a kubeconfig whose user has these rights, or grant them (Role per namespace, ClusterRole for cluster-scoped kinds)",
                    cmds,
                ));
            }
            if !unresolved.is_empty() {
                return Outcome::found(unresolved, "");
            }
            let patched = if existing > 0 {
                format!(", and patch the {existing} that already exist")
            } else {
                String::new()
            };
            Outcome::pass(format!(
                "this user may get and create every kind of the {}{patched} ({} permission(s) reviewed)",
                install.counted(install.objects.len(), "objects"),
                needed.len()
            ))
        })
    }
}
