use std::collections::{BTreeMap, BTreeSet};

use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Discovery, Scope};
use serde::Deserialize;

use super::{client, delete_exactly, release, undecided, Doomed};
use crate::check::{
    ApplyFuture, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Observed, Outcome,
    Phase, Release, Subject,
};

use crate::install::{Origin, RawInstall};
use crate::kube::{cannot_import, ownership_problem, owning_release};

const OWNED_BY_ANOTHER: Code = Code {
    code: "owned-by-another-release",
    explain: "an object the install creates already exists with another release's (or no) Helm ownership: helm says it \"exists and cannot be imported into the current release\"",
};
const KIND_AMBIGUOUS: Code = Code {
    code: "kind-ambiguous",
    explain: "a profile entry gives only a kind that two API groups serve: which object is meant is undecided (give apiVersion)",
};

const KIND_NOT_SERVED: Code = Code {
    code: "kind-not-served",
    explain: "an object's kind is not served by the API and no CRD of the install defines it: not looked up (its CRD must come first, or helm says \"no matches for kind\")",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.helm-ownership",
        phase: Phase::Cluster,
        title: "objects the release will create are free or already its own",
        requires: &["cluster.api"],
        install: InstallUse::Fed,
        codes: &[
            super::API_ERROR,
            OWNED_BY_ANOTHER,
            KIND_AMBIGUOUS,
            KIND_NOT_SERVED,
        ],
        host_network: false,
        roll_up: None,
        explain: r#"Why: helm refuses to adopt an existing object that lacks the release's ownership
metadata, after it has already started the install. KubeVela users saw it for a
namespace, a ScopeDefinition and a webhook configuration (seed 000):

    Error: rendered manifests contain a resource that already exists. Unable to continue with install:
    MutatingWebhookConfiguration "mutating-webhook-configuration" in namespace "" exists and cannot be
    imported into the current release: invalid ownership metadata; label validation error: missing key
    "app.kubernetes.io/managed-by": must be set to "Helm"; ...

TKEStack users hit the same object-of-the-same-name problem as "field is immutable"
(seed 002).

What it looks at: every object the release will create — listed in the profile
(`objects`), and/or the install's templates and hooks (--chart / --helmfile / `install:`;
`render:` here is the older spelling of the profile's `install:`, rendered once per run
by the real helm / helmfile for every check) — resolved through API discovery (a kind given
without apiVersion is looked for in every served group; a kind two groups serve is an
`error` naming both, to be settled with apiVersion), then one targeted GET each. Passes when
every object was looked up and is absent or carries this release's Helm ownership (label
app.kubernetes.io/managed-by=Helm, annotations meta.helm.sh/release-name and -namespace);
fails with helm's own sentence otherwise, before helm says it. A kind the API does not serve
is never counted as free: it is named, and the check warns. When the installer's command
passes `--take-ownership` (`-- helm install … --take-ownership`), helm adopts such objects:
they are named in the pass, not failed.

Fix (unsafe, `--fix --unsafe-fixes`): delete exactly the objects listed, each with a UID
precondition; or, with helm ≥ 3.17, let helm adopt them with
`helm install/upgrade --take-ownership` instead.

Parameters: objects: [{kind: Namespace, name: cert-manager, apiVersion: v1, namespace: ...}],
            render: {chart: ./chart, values: [values.yaml]} or {helmfile: ./helmfile.yaml}"#,
    },
};

#[derive(Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
struct ObjRef {
    kind: String,
    name: String,
    #[serde(default, rename = "apiVersion")]
    api_version: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRender {
    #[serde(default)]
    chart: Option<String>,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    helmfile: Option<String>,
}

/// What to render: a chart (with values files) or a helmfile, exactly one of them.
#[derive(Deserialize)]
#[serde(try_from = "RawRender")]
enum Render {
    Chart { chart: String, values: Vec<String> },
    Helmfile(String),
}

impl TryFrom<RawRender> for Render {
    type Error = String;
    fn try_from(r: RawRender) -> Result<Self, String> {
        match (r.chart, r.helmfile) {
            (Some(chart), None) => Ok(Render::Chart {
                chart,
                values: r.values,
            }),
            (None, Some(file)) if r.values.is_empty() => Ok(Render::Helmfile(file)),
            (None, Some(_)) => Err("`values` goes with `chart`; a helmfile names its own values".to_string()),
            (Some(_), Some(_)) => Err("give either `chart` or `helmfile`, not both".to_string()),
            (None, None) => Err("give `chart` (with `values`) or `helmfile` to render".to_string()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmOwnership {
    #[serde(default)]
    objects: Vec<ObjRef>,
    #[serde(default)]
    render: Option<Render>,
    #[serde(skip)]
    foreign: Observed<Vec<Doomed>>,
}

/// The namespace an object goes to: its own, else its release's; none when cluster-scoped.
fn where_it_lives(scope: &Scope, o: &ObjRef, release: &Release) -> Option<String> {
    match scope {
        Scope::Cluster => None,
        Scope::Namespaced => Some(o.namespace.clone().unwrap_or_else(|| release.namespace.clone())),
    }
}

/// Objects of one kind in one namespace: its resource and their names.
type Group<'a> = (ApiResource, Vec<&'a str>);

impl Check for HelmOwnership {
    fn apply<'a>(&'a self, ctx: &'a Ctx) -> ApplyFuture<'a> {
        Box::pin(async move {
            let doomed = self.foreign.get().ok_or("nothing was observed to fix")?;
            delete_exactly(ctx, &doomed).await
        })
    }

    fn implied_install(&self) -> Option<RawInstall> {
        Some(match self.render.as_ref()? {
            Render::Chart { chart, values } => RawInstall {
                chart: Some(chart.clone()),
                values: values.clone(),
                ..Default::default()
            },
            Render::Helmfile(file) => RawInstall {
                helmfile: Some(file.clone()),
                ..Default::default()
            },
        })
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            self.foreign.set(None);
            let install = crate::or_return!(ctx.rendered());
            // (object, the release it must belong to, where it comes from)
            let mut objects: Vec<(ObjRef, Release, Option<String>)> = Vec::new();
            if !self.objects.is_empty() || install.is_none() {
                let release = crate::or_return!(release(ctx));
                objects.extend(self.objects.iter().map(|o| (o.clone(), release.clone(), None)));
            }
            // helm checks what the release creates from templates and hooks, not crds/.
            if let Some(install) = install {
                for o in &install.objects {
                    let Some(r) = install.release(o) else { continue };
                    if o.origin == Origin::Crd {
                        continue;
                    }
                    let obj = ObjRef {
                        kind: o.kind.clone(),
                        name: o.name.clone(),
                        api_version: Some(o.api_version.clone()).filter(|a| !a.is_empty()),
                        namespace: o.namespace.clone(),
                    };
                    objects.push((obj, r.as_release(), Some(install.provenance(o))));
                }
            }
            objects.sort_by(|a, b| (&a.0, &a.1.namespace, &a.1.name).cmp(&(&b.0, &b.1.namespace, &b.1.name)));
            objects.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
            if objects.is_empty() {
                return Outcome::skip("the profile lists no objects and renders no chart");
            }
            let client = crate::or_return!(client(ctx).await);
            // A kind written without apiVersion may live in any group: then discover them all.
            let kind_only = objects.iter().any(|(o, _, _)| o.api_version.is_none());
            let groups: BTreeSet<String> = objects
                .iter()
                .filter_map(|(o, _, _)| o.api_version.as_ref())
                .map(|av| av.split_once('/').map(|(g, _)| g.to_string()).unwrap_or_default())
                .collect();
            let filter: Vec<&str> = groups.iter().map(String::as_str).collect();
            let make = || {
                let d = Discovery::new(client.clone());
                if kind_only {
                    d
                } else {
                    d.filter(&filter)
                }
            };
            let discovery = match ctx.kube.discover(make).await {
                Ok(d) => d,
                Err(e) => return undecided(e),
            };
            // Many objects of one kind in one namespace (a large helmfile): one list each
            // instead of a GET per object.
            let mut groups: BTreeMap<(String, Option<String>), Group> = BTreeMap::new();
            for (o, release, _) in &objects {
                let Some(av) = &o.api_version else { continue };
                let (g, v) = av.split_once('/').unwrap_or(("", av.as_str()));
                let Some((ar, caps)) = discovery.resolve_gvk(&GroupVersionKind::gvk(g, v, &o.kind)) else {
                    continue;
                };
                let ns = where_it_lives(&caps.scope, o, release);
                groups
                    .entry((format!("{}/{}", ar.api_version, ar.plural), ns))
                    .or_insert_with(|| (ar, Vec::new()))
                    .1
                    .push(o.name.as_str());
            }
            futures::future::join_all(
                groups.iter().map(|((_, ns), (ar, names))| {
                    ctx.kube.prefetch_existing(&client, ar, ns.as_deref(), names)
                }),
            )
            .await;
            let mut foreign = Vec::new();
            let mut doomed = Vec::new();
            // helm --take-ownership adopts what exists, whoever owns it (helm ≥ 3.17).
            let adopts =
                matches!(&ctx.install_spec, Some(crate::install::InstallSpec::Chart(c)) if c.take_ownership);
            let mut adopted: Vec<String> = Vec::new();
            let mut checked = 0;
            let mut unserved = Vec::new();
            let mut unjudged = Vec::new();
            let mut from_crds = 0;
            for (o, release, from) in &objects {
                let found = match &o.api_version {
                    Some(av) => {
                        let (g, v) = av.split_once('/').unwrap_or(("", av.as_str()));
                        discovery.resolve_gvk(&GroupVersionKind::gvk(g, v, &o.kind))
                    }
                    None => {
                        let candidates: Vec<_> = discovery
                            .groups()
                            .filter_map(|g| g.recommended_kind(&o.kind))
                            .collect();
                        if candidates.len() > 1 {
                            let mut names: Vec<String> =
                                candidates.iter().map(|(ar, _)| ar.api_version.clone()).collect();
                            names.sort();
                            unjudged.push(Finding::error(
                                &KIND_AMBIGUOUS,
                                Subject::object(&o.kind, None, &o.name),
                                format!(
                                    "kind {} (object {}) is served by {} API groups: {}; give apiVersion in the profile entry",
                                    o.kind,
                                    o.name,
                                    names.len(),
                                    names.join(", ")
                                ),
                            ));
                            continue;
                        }
                        candidates.into_iter().next()
                    }
                };
                // Not served: nothing of that kind exists to clash with, but say it was not
                // looked up rather than count it as free.
                let Some((ar, caps)) = found else {
                    let brought = match (install, &o.api_version) {
                        (Some(i), Some(av)) => i.crd_for(av, &o.kind).is_some(),
                        _ => false,
                    };
                    if brought {
                        // Its CRD comes with the install: nothing of that kind exists yet.
                        from_crds += 1;
                        continue;
                    }
                    let what = match &o.api_version {
                        Some(av) => format!("{} {} ({av})", o.kind, o.name),
                        None => format!("{} {}", o.kind, o.name),
                    };
                    let subject = Subject::object(&o.kind, None, &o.name).of_release(&release.name);
                    unserved.push(Finding::warn(
                        &KIND_NOT_SERVED,
                        subject,
                        format!("{what} is not served by the API, so not looked up (its CRD must come first, or helm will say \"no matches for kind\")"),
                    ));
                    continue;
                };
                let ns = where_it_lives(&caps.scope, o, release);
                checked += 1;
                let meta = match ctx.kube.existing(&client, &ar, ns.as_deref(), &o.name).await {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    Err(e) => return undecided(e),
                };
                let labels = meta.labels.clone().unwrap_or_default();
                let annotations = meta.annotations.clone().unwrap_or_default();
                if let Some(problem) = ownership_problem(&labels, &annotations, release) {
                    if adopts {
                        adopted.push(format!("{} {}", o.kind, o.name));
                        continue;
                    }
                    doomed.extend(Doomed::from_meta(&ar, ns.clone(), &meta));
                    let resource = if ar.group.is_empty() {
                        ar.plural.clone()
                    } else {
                        format!("{}.{}", ar.plural, ar.group)
                    };
                    let delete = match &ns {
                        Some(ns) => format!("kubectl delete {resource} {} -n {ns}", o.name),
                        None => format!("kubectl delete {resource} {}", o.name),
                    };
                    let owner = owning_release(&annotations)
                        .map(|(r, n)| format!(" (owned by release {n}/{r})"))
                        .unwrap_or_default();
                    let from = from.as_ref().map(|f| format!(" [{f}]")).unwrap_or_default();
                    let subject = Subject::object(&o.kind, ns.as_deref(), &o.name).of_release(&release.name);
                    foreign.push((
                        Finding::fail(
                            &OWNED_BY_ANOTHER,
                            subject,
                            cannot_import(&o.kind, &o.name, ns.as_deref(), &problem) + &owner + &from,
                        ),
                        delete,
                    ));
                }
            }
            // Not judged, so named: never counted as free.
            unjudged.extend(unserved);
            if foreign.is_empty() {
                if !unjudged.is_empty() {
                    return Outcome::found(
                        unjudged,
                        format!(
                            "{checked} of {} object(s) looked up: none belongs to another release",
                            objects.len() - from_crds
                        ),
                    );
                }
                let mut msg = format!(
                    "{} object(s) looked up: none belongs to another release",
                    objects.len() - from_crds
                );
                if from_crds > 0 {
                    msg.push_str(&format!(
                        "; {from_crds} of a kind whose CRD the install brings (none can exist yet)"
                    ));
                }
                if let Some(i) = install {
                    msg.push_str(&format!(" ({})", i.counted(objects.len(), "objects")));
                }
                if !adopted.is_empty() {
                    msg.push_str(&format!(
                        "; {} of another release (or none) that helm --take-ownership adopts: {}",
                        adopted.len(),
                        adopted.join(", ")
                    ));
                }
                return Outcome::pass(msg);
            }
            let mut found: Vec<Finding> = foreign.iter().map(|f| f.0.clone()).collect();
            found.extend(unjudged);
            self.foreign.set(Some(doomed));
            Outcome::found(found, "").with_fix(
                Fix::automatic(
                    "delete the objects of the other release (or, with helm ≥ 3.17, install with --take-ownership to adopt them)",
                    foreign.into_iter().map(|f| f.1).collect(),
                )
                .unsafe_(),
            )
        })
    }
}
