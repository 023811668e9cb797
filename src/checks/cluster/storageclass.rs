use k8s_openapi::api::core::v1::PersistentVolume;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::ListParams;
use kube::Api;
use serde::Deserialize;

use super::{client, undecided};
use crate::check::{
    Access, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::install::{Claim, Install};
use crate::quantity::Bytes;

const STORAGECLASS_MISSING: Code = Code {
    code: "storageclass-missing",
    explain: "the StorageClass the profile names does not exist: claims that name it never bind",
};
const NO_DEFAULT_STORAGECLASS: Code = Code {
    code: "no-default-storageclass",
    explain: "no StorageClass is marked default: claims without storageClassName never bind (\"no storage class is set\", seed 004)",
};

const CLAIM_CLASS_MISSING: Code = Code {
    code: "claim-storageclass-missing",
    explain: "a claim of the install names a StorageClass that does not exist, and no PersistentVolume of that class (shipped or Available) can bind it: it stays Pending",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.storageclass",
        phase: Phase::Cluster,
        title: "the StorageClass the charts use exists",
        requires: &["cluster.api"],
        install: InstallUse::Fed,
        codes: &[
            super::API_ERROR,
            STORAGECLASS_MISSING,
            NO_DEFAULT_STORAGECLASS,
            CLAIM_CLASS_MISSING,
        ],
        host_network: false,
        roll_up: None,
        explain: r#"Why: a claim that names no StorageClass, in a cluster without a default one, never
binds, and its pods stay Pending. BlueKing CE 7 users saw (seed 004):

    Normal  FailedBinding  persistentvolume-controller  no persistent volumes available for this
    claim and no storage class is set

What it looks at: the StorageClass named in the profile (`name`), or else a default one
(annotation storageclass.kubernetes.io/is-default-class=true). With an install
(--chart/--helmfile): every claim it makes (PersistentVolumeClaims, StatefulSet
volumeClaimTemplates) — each storageClassName must exist, and a claim naming none needs a
default class; an install with no claims needs no StorageClass. A class no StorageClass
defines is fine when a PersistentVolume of that class binds the claim (static
provisioning, as bk-job's `job-local` claim and the PersistentVolume its chart ships): one
the install ships, or one Available in the cluster, with room for the claim and a
`claimRef` (if any) naming it; each volume binds one claim.

Fix: install the provisioner (BlueKing: `helmfile -f 00-localpv.yaml.gotmpl sync`), or mark
a class default: `kubectl patch storageclass <name> -p '{"metadata":{"annotations":
{"storageclass.kubernetes.io/is-default-class":"true"}}}'`.

Parameters: name: local-storage"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageClassCheck {
    #[serde(default)]
    name: Option<String>,
}

const DEFAULT_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

impl Check for StorageClassCheck {
    fn access(&self) -> Vec<Access> {
        vec![Access::new("list", "storage.k8s.io", "storageclasses")]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let client = crate::or_return!(client(ctx).await);
            let api: Api<StorageClass> = Api::all(client.clone());
            let list = match ctx
                .kube
                .call("list storageclasses", api.list(&ListParams::default()))
                .await
            {
                Ok(l) => l,
                Err(e) => return undecided(e),
            };
            let names: Vec<String> = list
                .items
                .iter()
                .filter_map(|s| s.metadata.name.clone())
                .collect();
            let existing = if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            };
            if let Some(want) = &self.name {
                return match list.items.iter().find(|s| s.metadata.name.as_deref() == Some(want)) {
                    Some(sc) => Outcome::pass(format!("StorageClass {want} exists (provisioner {})", sc.provisioner)),
                    None => Outcome::found(
                        vec![Finding::fail(
                            &STORAGECLASS_MISSING,
                            Subject::object("StorageClass", None, want),
                            format!("StorageClass {want} does not exist (existing: {existing}); claims that name it never bind"),
                        )],
                        "",
                    )
                    .with_fix(Fix::manual(
                            format!("install the provisioner that creates StorageClass {want}, or set the charts' storageClass to an existing one"),
                            vec!["kubectl get storageclass".to_string()],
                        )),
                };
            }
            let default_sc = list.items.iter().find(|s| {
                s.metadata.annotations.as_ref().is_some_and(|a| {
                    DEFAULT_ANNOTATIONS
                        .iter()
                        .any(|k| a.get(*k).map(String::as_str) == Some("true"))
                })
            });
            if let Some(install) = crate::or_return!(ctx.rendered()) {
                // PersistentVolumes already there, read only when a claim needs them.
                let needs_pvs = install.claims().iter().any(|c| {
                    c.storage_class
                        .as_deref()
                        .is_some_and(|sc| !sc.is_empty() && !names.iter().any(|n| n == sc))
                });
                let existing_pvs = if needs_pvs {
                    let pv_api: Api<PersistentVolume> = Api::all(client.clone());
                    match ctx
                        .kube
                        .call("list persistentvolumes", pv_api.list(&ListParams::default()))
                        .await
                    {
                        Ok(l) => l.items.iter().filter_map(Volume::existing).collect(),
                        Err(e) => return undecided(e),
                    }
                } else {
                    Vec::new()
                };
                return for_install(install, &names, default_sc, existing_pvs);
            }
            let default = list.items.iter().find(|s| {
                s.metadata.annotations.as_ref().is_some_and(|a| {
                    DEFAULT_ANNOTATIONS
                        .iter()
                        .any(|k| a.get(*k).map(String::as_str) == Some("true"))
                })
            });
            match default {
                Some(sc) => Outcome::pass(format!(
                    "default StorageClass {}",
                    sc.metadata.name.clone().unwrap_or_default()
                )),
                None => Outcome::found(
                    vec![Finding::fail(
                        &NO_DEFAULT_STORAGECLASS,
                        Subject::Cluster,
                        format!(
                            "no default StorageClass (existing: {existing}): claims without storageClassName never bind (\"no storage class is set\")"
                        ),
                    )],
                    "",
                )
                .with_fix(Fix::manual(
                    "install a provisioner, or mark an existing StorageClass as the default",
                    match names.first() {
                        Some(n) => vec![format!(
                            "kubectl patch storageclass {n} -p '{{\"metadata\":{{\"annotations\":{{\"storageclass.kubernetes.io/is-default-class\":\"true\"}}}}}}'"
                        )],
                        None => vec!["kubectl get storageclass".to_string()],
                    },
                )),
            }
        })
    }
}

/// A PersistentVolume a claim of a class no StorageClass defines can bind (static
/// provisioning): shipped by the install, or Available in the cluster.
#[derive(Clone, Debug)]
struct Volume {
    what: String,
    class: String,
    capacity: Option<u64>,
    /// `claimRef` (namespace, name): it binds only that claim.
    claim_ref: Option<(String, String)>,
}

impl Volume {
    fn existing(pv: &PersistentVolume) -> Option<Volume> {
        let spec = pv.spec.as_ref()?;
        if pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Available") {
            return None;
        }
        Some(Volume {
            what: format!(
                "PersistentVolume {} (in the cluster)",
                pv.metadata.name.clone().unwrap_or_default()
            ),
            class: spec.storage_class_name.clone().unwrap_or_default(),
            capacity: spec
                .capacity
                .as_ref()
                .and_then(|c| c.get("storage"))
                .and_then(|q| Bytes::parse_lossy(&q.0).ok())
                .map(|b| b.0),
            claim_ref: spec.claim_ref.as_ref().map(|r| {
                (
                    r.namespace.clone().unwrap_or_default(),
                    r.name.clone().unwrap_or_default(),
                )
            }),
        })
    }

    fn shipped(install: &Install) -> Vec<Volume> {
        install
            .created_objects()
            .filter(|o| o.kind == "PersistentVolume")
            .map(|o| {
                let text = |p: &str| o.value.pointer(p).and_then(|v| v.as_str()).map(String::from);
                Volume {
                    what: format!("PersistentVolume {} ({})", o.name, install.provenance(o)),
                    class: text("/spec/storageClassName").unwrap_or_default(),
                    capacity: text("/spec/capacity/storage")
                        .and_then(|q| Bytes::parse_lossy(&q).ok().map(|b| b.0)),
                    claim_ref: o.value.pointer("/spec/claimRef").map(|_| {
                        (
                            text("/spec/claimRef/namespace").unwrap_or_default(),
                            text("/spec/claimRef/name").unwrap_or_default(),
                        )
                    }),
                }
            })
            .collect()
    }

    /// Whether it binds `c` (class, room, claimRef), as the PV controller matches.
    fn binds(&self, c: &Claim, class: &str) -> bool {
        let need = c
            .size
            .as_deref()
            .and_then(|s| Bytes::parse_lossy(s).ok())
            .map(|b| b.0);
        let room = match (self.capacity, need) {
            (Some(have), Some(need)) => have >= need,
            _ => true,
        };
        let for_it = match &self.claim_ref {
            None => true,
            Some((ns, name)) => {
                (ns.is_empty() || *ns == c.namespace)
                    && (*name == c.name || (c.per_replica && name.starts_with(&format!("{}-", c.name))))
            }
        };
        self.class == class && room && for_it
    }
}

/// With an install: every claim it makes names an existing StorageClass, or finds a default,
/// or a PersistentVolume of its class (shipped by the install or Available) binds it.
fn for_install(
    install: &Install,
    names: &[String],
    default_sc: Option<&StorageClass>,
    existing_pvs: Vec<Volume>,
) -> Outcome {
    let mut volumes = Volume::shipped(install);
    volumes.extend(existing_pvs);
    let mut statically = Vec::new();
    let claims = install.claims();
    if claims.is_empty() {
        return Outcome::pass(format!(
            "the install makes no volume claims ({}): no StorageClass needed",
            install.counted(install.objects.len(), "objects")
        ));
    }
    let existing = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    };
    let default_name = default_sc.and_then(|s| s.metadata.name.clone());
    let mut bad = Vec::new();
    let mut missing_classes: Vec<String> = Vec::new();
    for c in &claims {
        let from = install
            .releases
            .get(c.release)
            .map(|r| format!("release {}, {}", r.name, c.source))
            .unwrap_or_default();
        match c.storage_class.as_deref() {
            // "" asks for no dynamic provisioning: a pre-made PV binds it.
            Some("") => {}
            Some(sc) if names.iter().any(|n| n == sc) => {}
            // Static provisioning: a PersistentVolume of that class binds it (each once).
            Some(sc) if volumes.iter().any(|v| v.binds(c, sc)) => {
                if let Some(i) = volumes.iter().position(|v| v.binds(c, sc)) {
                    let v = volumes.remove(i);
                    statically.push(format!("{} binds {}", v.what, c.what));
                }
            }
            Some(sc) => {
                bad.push(Finding::fail(&CLAIM_CLASS_MISSING, c.subject.clone(), format!("{} ({from}) asks for StorageClass {sc}, which does not exist (existing: {existing}), and no PersistentVolume of that class (shipped by the install or Available, with room and a claimRef that allows it) can bind it: it never binds", c.what)));
                if !missing_classes.iter().any(|m| m == sc) {
                    missing_classes.push(sc.to_string());
                }
            }
            None if default_name.is_some() => {}
            None => bad.push(Finding::fail(
                &NO_DEFAULT_STORAGECLASS,
                c.subject.clone(),
                format!(
                    "{} ({from}) names no StorageClass and the cluster has no default one (existing: {existing}): it never binds (\"no persistent volumes available for this claim and no storage class is set\")",
                    c.what
                ),
            )),
        }
    }
    if bad.is_empty() {
        let mut msg = format!(
            "the {} claim(s) of the install find their StorageClass{}",
            claims.len(),
            default_name
                .map(|d| format!(" (default: {d})"))
                .unwrap_or_default()
        );
        if !statically.is_empty() {
            msg.push_str(&format!(" or a PersistentVolume: {}", statically.join("; ")));
        }
        return Outcome::pass(msg);
    }
    let mut cmds = vec!["kubectl get storageclass".to_string()];
    cmds.extend(missing_classes.iter().map(|m| format!("# install the provisioner that creates StorageClass {m}, or set the chart's storageClass to an existing one")));
    if let Some(n) = names.first() {
        cmds.push(format!(
            "kubectl patch storageclass {n} -p '{{\"metadata\":{{\"annotations\":{{\"storageclass.kubernetes.io/is-default-class\":\"true\"}}}}}}'   # for claims that name none"
        ));
    }
    let summary = if statically.is_empty() {
        String::new()
    } else {
        format!("bound by a PersistentVolume: {}", statically.join("; "))
    };
    Outcome::found(bad, summary).with_fix(Fix::manual(
        "give every claim of the install a StorageClass that exists",
        cmds,
    ))
}
