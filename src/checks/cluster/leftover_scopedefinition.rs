use kube::api::ListParams;
use kube::discovery::Scope;
use serde::Deserialize;

use super::{client, delete_exactly, release, undecided, Doomed};
use crate::check::{
    Access, ApplyFuture, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Observed,
    Outcome, Phase, Subject,
};
use crate::kube::{cannot_import, ownership_problem, ApiError};

const LEFTOVER: Code = Code {
    code: "owned-by-another-release",
    explain: "an object of the kind (ScopeDefinition) exists with another release's (or no) Helm ownership: installing KubeVela over it fails with \"exists and cannot be imported into the current release\" (seed 000; --unsafe-fixes deletes it)",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.leftover-scopedefinition",
        phase: Phase::Cluster,
        title: "no ScopeDefinitions owned by another release",
        requires: &["cluster.api"],
        install: InstallUse::No,
        codes: &[super::API_ERROR, LEFTOVER],
        host_network: false,
        roll_up: None,
        explain: r#"Why: an older OAM Kubernetes Runtime release leaves cluster-scoped ScopeDefinition
objects behind, and installing KubeVela over them fails. Users saw (seed 000):

    Error: rendered manifests contain a resource that already exists. Unable to continue with install:
    ScopeDefinition "healthscopes.core.oam.dev" in namespace "" exists and cannot be imported into the
    current release: invalid ownership metadata; annotation validation error: key
    "meta.helm.sh/release-name" must equal "kubevela": current value is "oam"; annotation validation
    error: key "meta.helm.sh/release-namespace" must equal "vela-system": current value is "oam-system"

What it looks at: whether the core.oam.dev API exists at all (no API means no leftovers:
pass), then one list of ScopeDefinition metadata, each held to Helm's ownership rule
against the profile's release. Skipped when the profile names no release.

Fix (unsafe, `--fix --unsafe-fixes`): delete exactly the objects listed, each with a UID
precondition (one re-created since the check looked is never deleted), as the KubeVela FAQ
says: `kubectl delete scopedefinition.core.oam.dev <name>`.

Parameters: group: core.oam.dev, kind: ScopeDefinition"#,
    },
};

fn default_group() -> String {
    "core.oam.dev".to_string()
}

fn default_kind() -> String {
    "ScopeDefinition".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeftoverScopeDefinition {
    #[serde(default = "default_group")]
    group: String,
    #[serde(default = "default_kind")]
    kind: String,
    #[serde(skip)]
    foreign: Observed<Vec<Doomed>>,
}

impl Check for LeftoverScopeDefinition {
    fn access(&self) -> Vec<Access> {
        vec![Access::new("list", "core.oam.dev", "scopedefinitions")]
    }

    fn apply<'a>(&'a self, ctx: &'a Ctx) -> ApplyFuture<'a> {
        Box::pin(async move {
            let doomed = self.foreign.get().ok_or("nothing was observed to fix")?;
            delete_exactly(ctx, &doomed).await
        })
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            self.foreign.set(None);
            let release = crate::or_return!(release(ctx));
            let client = crate::or_return!(client(ctx).await);
            let what = format!("discover API group {}", self.group);
            let group = match ctx
                .kube
                .call(&what, kube::discovery::group(&client, &self.group))
                .await
            {
                Ok(g) => g,
                Err(ApiError::NotFound(_)) => {
                    return Outcome::pass(format!(
                        "no {} API in the cluster: no {} objects",
                        self.group, self.kind
                    ))
                }
                Err(e) => return undecided(e),
            };
            let Some((resource, caps)) = group.recommended_kind(&self.kind) else {
                return Outcome::pass(format!("the {} API has no {} kind", self.group, self.kind));
            };
            // Metadata only, page by page; only the objects of another release are kept.
            let what = format!("list {}.{}", resource.plural, self.group);
            let mut foreign = Vec::new();
            let mut doomed = Vec::new();
            let listed = ctx
                .kube
                .list_meta(&client, &resource, &what, &ListParams::default(), |m| {
                    let empty = Default::default();
                    let labels = m.labels.as_ref().unwrap_or(&empty);
                    let annotations = m.annotations.as_ref().unwrap_or(&empty);
                    if let Some(problem) = ownership_problem(labels, annotations, release) {
                        let ns = match caps.scope {
                            Scope::Cluster => None,
                            Scope::Namespaced => m.namespace.clone(),
                        };
                        foreign.push((
                            m.name.clone().unwrap_or_default(),
                            m.namespace.clone(),
                            cannot_import(
                                &self.kind,
                                m.name.as_deref().unwrap_or(""),
                                ns.as_deref(),
                                &problem,
                            ),
                        ));
                        doomed.extend(Doomed::from_meta(&resource, ns, &m.into_object_meta()));
                    }
                })
                .await;
            let listed = match listed {
                Ok(n) => n,
                Err(e) => return undecided(e),
            };
            if foreign.is_empty() {
                return Outcome::pass(format!(
                    "{listed} {} object(s), none owned by another release",
                    self.kind
                ));
            }
            let full = format!("{}.{}", resource.plural, self.group);
            // One command per namespace, 20 names each: thousands of leftovers stay readable.
            let mut by_ns: std::collections::BTreeMap<Option<String>, Vec<String>> = Default::default();
            for (name, ns, _) in &foreign {
                let key = if caps.scope == Scope::Namespaced {
                    ns.clone()
                } else {
                    None
                };
                by_ns.entry(key).or_default().push(name.clone());
            }
            let mut commands = Vec::new();
            for (ns, names) in &by_ns {
                for chunk in names.chunks(20) {
                    let ns = ns.as_ref().map(|n| format!(" -n {n}")).unwrap_or_default();
                    commands.push(format!("kubectl delete {full} {}{ns}", chunk.join(" ")));
                }
            }
            self.foreign.set(Some(doomed));
            let summary = format!(
                "{} of {listed} {} object(s) belong to another release",
                foreign.len(),
                self.kind
            );
            let findings = foreign
                .into_iter()
                .map(|(name, ns, sentence)| {
                    Finding::fail(
                        &LEFTOVER,
                        Subject::object(&self.kind, ns.as_deref(), &name),
                        sentence,
                    )
                })
                .collect();
            Outcome::found(findings, summary).with_fix(
                Fix::automatic(
                    format!("delete the {} objects left by the other release", self.kind),
                    commands,
                )
                .unsafe_(),
            )
        })
    }
}
