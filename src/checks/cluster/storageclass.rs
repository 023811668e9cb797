use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::ListParams;
use kube::Api;
use serde::Deserialize;

use super::{client, undecided};
use crate::check::{Access, Check, CheckDef, CheckFuture, Ctx, Fix, Meta, Outcome, Phase};
use crate::install::Install;

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.storageclass",
        phase: Phase::Cluster,
        title: "the StorageClass the charts use exists",
        requires: &["cluster.api"],
        reads_install: true,
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
default class; an install with no claims needs no StorageClass.

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
            let api: Api<StorageClass> = Api::all(client);
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
                    None => Outcome::fail(format!("StorageClass {want} does not exist (existing: {existing}); claims that name it never bind"))
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
                return for_install(install, &names, default_sc);
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
                None => Outcome::fail(format!(
                    "no default StorageClass (existing: {existing}): claims without storageClassName never bind (\"no storage class is set\")"
                ))
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

/// With an install: every claim it makes names an existing StorageClass, or finds a default.
fn for_install(install: &Install, names: &[String], default_sc: Option<&StorageClass>) -> Outcome {
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
            Some(sc) => {
                bad.push(format!("{} ({from}) asks for StorageClass {sc}, which does not exist (existing: {existing}): it never binds", c.what));
                if !missing_classes.iter().any(|m| m == sc) {
                    missing_classes.push(sc.to_string());
                }
            }
            None if default_name.is_some() => {}
            None => bad.push(format!(
                "{} ({from}) names no StorageClass and the cluster has no default one (existing: {existing}): it never binds (\"no persistent volumes available for this claim and no storage class is set\")",
                c.what
            )),
        }
    }
    if bad.is_empty() {
        return Outcome::pass(format!(
            "the {} claim(s) of the install find their StorageClass{}",
            claims.len(),
            default_name
                .map(|d| format!(" (default: {d})"))
                .unwrap_or_default()
        ));
    }
    let mut cmds = vec!["kubectl get storageclass".to_string()];
    cmds.extend(missing_classes.iter().map(|m| format!("# install the provisioner that creates StorageClass {m}, or set the chart's storageClass to an existing one")));
    if let Some(n) = names.first() {
        cmds.push(format!(
            "kubectl patch storageclass {n} -p '{{\"metadata\":{{\"annotations\":{{\"storageclass.kubernetes.io/is-default-class\":\"true\"}}}}}}'   # for claims that name none"
        ));
    }
    Outcome::fail(bad.join("\n")).with_fix(Fix::manual(
        "give every claim of the install a StorageClass that exists",
        cmds,
    ))
}
