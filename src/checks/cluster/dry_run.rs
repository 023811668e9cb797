use futures::stream::{self, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::Scope;
use kube::Api;
use serde::Deserialize;

use super::{client, undecided};
use crate::check::{Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase};
use crate::install::{crd_schema, Install, Object};
use crate::kube::ApiError;

const OBJECT_REJECTED: Code = Code {
    code: "object-rejected",
    explain: "the API server (its validation, a webhook, a quota, an allocated nodePort) rejects an object of the install in a server-side dry-run: helm install fails with the same words",
};
const OBJECT_NOT_DRY_RUN: Code = Code {
    code: "object-not-dry-run",
    explain: "an object could not be dry-run (a kind nothing serves or defines yet, a webhook without dry-run support): not judged",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.dry-run",
        phase: Phase::Cluster,
        title: "the API server accepts every object of the install (server-side dry-run)",
        requires: &["cluster.api"],
        install: InstallUse::Fed,
        codes: &[super::API_ERROR, OBJECT_REJECTED, OBJECT_NOT_DRY_RUN],
        host_network: false,
        roll_up: None,
        explain: r#"Why: the API server, its admission webhooks and its quotas have the last word on every
object, and helm learns it one object at a time, part-way through the install. OpenKruise
users saw every create fail behind a webhook with no backend (seed 003):

    Error from server (InternalError): Internal error occurred: failed calling webhook
    "vpod.kb.io": ... no endpoints available for service "kruise-webhook-service"

TKEStack users met "field is immutable" on an object of the same name (seed 002), and a
namespace's ResourceQuota or LimitRange rejects what does not fit it ("exceeded quota").

What it looks at: with an install (--chart / --helmfile), every object, in helm's install
order (Namespaces, quotas, accounts, config, storage, CRDs, RBAC, Services, workloads, …):
a server-side dry-run (dryRun=All) — a create for a new object, a merge patch for one that
exists — so webhooks, quotas and validation answer in their own words, with the release and
source template named. A custom resource whose CRD comes with the install (so the server
cannot serve its kind yet) is checked against that CRD's openAPIV3Schema as the server will
check it — types, required, enums, nullable, with the server's pruning and defaulting for
apiextensions.k8s.io/v1 CRDs — which is vela-core 0.1.0's failure:

    ScopeDefinition.core.oam.dev "..." is invalid: spec.workloadRefPath: Invalid value:
    "null": spec.workloadRefPath in body must be of type string: "null"

An object in a namespace the install creates (--create-namespace, or its own Namespace) is
dry-run as a new object in namespace `default`, standing in for it (a webhook that selects
namespaces by label sees default's labels). Objects it cannot dry-run are counted and named,
never passed: kinds nothing serves or defines, and webhooks that do not support dry-run.

Fix: depends on the server's answer, which is quoted: bring the webhook's backend up, raise
the quota, rename or delete the conflicting object.

Parameters: none"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRun {}

/// helm's InstallOrder (pkg/releaseutil/kind_sorter.go); other kinds go last.
const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

fn order(kind: &str) -> usize {
    INSTALL_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(INSTALL_ORDER.len())
}

enum Verdict {
    Accepted,
    /// A custom resource whose CRD comes with the install, checked against its schema.
    Validated,
    Rejected(String),
    NotDryRun(String),
}

/// Where a stand-in dry-run runs for a namespace the install has yet to create.
const STAND_IN: &str = "default";

async fn judge(ctx: &Ctx, client: &kube::Client, install: &Install, o: &Object) -> Result<Verdict, ApiError> {
    let discovery = ctx.kube.discovery().await?;
    let Some((ar, caps)) = discovery.resolve_gvk(&o.gvk()) else {
        let Some(crd) = install.crd_for(&o.api_version, &o.kind) else {
            return Ok(Verdict::NotDryRun(
                "its kind is not served (see cluster.api-versions)".to_string(),
            ));
        };
        // The server cannot answer for a kind it does not serve yet; the CRD's schema can.
        return Ok(match crd_schema::validate(crd, o) {
            Ok(crd_schema::Verdict::Valid) => Verdict::Validated,
            Ok(crd_schema::Verdict::Invalid(m)) => Verdict::Rejected(format!(
                "{m} (checked against the schema of its CRD {}, which the install brings)",
                crd.name
            )),
            Err(why) => Verdict::NotDryRun(why),
        });
    };
    let release = install.release(o);
    let ns = match caps.scope {
        Scope::Cluster => None,
        Scope::Namespaced => o
            .namespace
            .clone()
            .or_else(|| release.map(|r| r.namespace.clone())),
    };
    // A namespace the install creates does not exist during a dry-run: the object is
    // dry-run as a new object in a namespace that exists, standing in for it.
    let mut stand_in = None;
    if let Some(ns) = &ns {
        let namespaces = ApiResource::erase::<Namespace>(&());
        if ctx.kube.existing(client, &namespaces, None, ns).await?.is_none() {
            if !install.creates_namespace(ns) {
                let unsure = install.unsure_hook_namespaces();
                if !unsure.is_empty() {
                    return Ok(Verdict::NotDryRun(format!(
                        "namespace {ns} does not exist, and {} creates a namespace whose name a reading of it cannot tell",
                        unsure.join(", ")
                    )));
                }
                // The server's own answer, without asking it.
                return Ok(Verdict::Rejected(format!("namespaces \"{ns}\" not found")));
            }
            if ctx
                .kube
                .existing(client, &namespaces, None, STAND_IN)
                .await?
                .is_none()
            {
                return Ok(Verdict::NotDryRun(format!(
                    "namespace {ns} does not exist yet (the install creates it) and there is no namespace {STAND_IN} to stand in for it"
                )));
            }
            stand_in = Some(ns.clone());
        }
    }
    let target = if stand_in.is_some() {
        Some(STAND_IN.to_string())
    } else {
        ns.clone()
    };
    let api: Api<DynamicObject> = match &target {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let mut value = o.value.clone();
    if let (Some(ns), Some(meta)) = (&target, value.get_mut("metadata").and_then(|m| m.as_object_mut())) {
        meta.insert("namespace".to_string(), ns.clone().into());
    }
    let what = format!("dry-run {} {}", o.kind, o.name);
    let exists = stand_in.is_none()
        && ctx
            .kube
            .existing(client, &ar, target.as_deref(), &o.name)
            .await?
            .is_some();
    let answer = if exists {
        let pp = PatchParams {
            dry_run: true,
            ..Default::default()
        };
        ctx.kube
            .call(&what, api.patch(&o.name, &pp, &Patch::Merge(&value)))
            .await
            .map(|_| ())
    } else {
        let pp = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let obj: DynamicObject = match serde_json::from_value(value) {
            Ok(d) => d,
            Err(e) => return Ok(Verdict::Rejected(format!("not a Kubernetes object: {e}"))),
        };
        let first = ctx.kube.call(&what, api.create(&pp, &obj)).await;
        match first {
            // The stand-in namespace holds an object of that name; in the new namespace
            // nothing can: ask again under a generated name.
            Err(e) if stand_in.is_some() && e.message().contains("already exists") => {
                let mut renamed = obj.clone();
                renamed.metadata.generate_name = Some(format!("{}-", o.name));
                renamed.metadata.name = None;
                ctx.kube.call(&what, api.create(&pp, &renamed)).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    };
    match answer {
        Ok(()) => Ok(Verdict::Accepted),
        Err(e @ (ApiError::Timeout(_) | ApiError::Unreachable(_) | ApiError::Unauthorized(_))) => Err(e),
        Err(e) if e.message().contains("does not support dry run") => Ok(Verdict::NotDryRun(format!(
            "a webhook does not support dry run ({})",
            e.message()
        ))),
        // Forbidden, invalid, conflict, webhook denial, quota: the server's answer.
        Err(e) => Ok(Verdict::Rejected(match &stand_in {
            Some(ns) => format!(
                "{} (dry-run in namespace {STAND_IN}, standing in for {ns}, which the install creates)",
                e.message()
            ),
            None => e.message().to_string(),
        })),
    }
}

/// For a Service refused with `provided port is already allocated`: which Services of the
/// cluster hold the nodePorts it asks for (one list), as ` (nodePort 32080 is held by
/// Service ns/name)`.
async fn node_port_holders(ctx: &Ctx, client: &kube::Client, o: &Object) -> String {
    let wanted: Vec<i64> = o
        .value
        .pointer("/spec/ports")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(|n| n.as_i64()))
        .collect();
    let api: kube::Api<k8s_openapi::api::core::v1::Service> = kube::Api::all(client.clone());
    let Ok(list) = ctx
        .kube
        .call("list services", api.list(&kube::api::ListParams::default()))
        .await
    else {
        return String::new();
    };
    let mut held = Vec::new();
    for svc in &list.items {
        for p in svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
        {
            if let Some(n) = p.node_port.filter(|n| wanted.contains(&i64::from(*n))) {
                held.push(format!(
                    "nodePort {n} is held by Service {}/{}",
                    svc.metadata.namespace.clone().unwrap_or_default(),
                    svc.metadata.name.clone().unwrap_or_default()
                ));
            }
        }
    }
    if held.is_empty() {
        String::new()
    } else {
        format!(" ({})", held.join("; "))
    }
}

impl Check for DryRun {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let install = crate::or_return!(ctx.install_given());
            let client = crate::or_return!(client(ctx).await);
            // Hooks of other events (pre-delete, test, …) are not sent at install.
            let mut objects: Vec<&Object> = install.created_objects().collect();
            let sent = objects.len();
            // helmfile installs release after release (in `needs` order), each in helm's kind order.
            objects.sort_by_key(|o| (o.release, order(&o.kind)));
            // In install order, a few at a time, answers kept in that order.
            let client = &client;
            let asks: Vec<_> = objects
                .into_iter()
                .map(|o| async move { (o, judge(ctx, client, install, o).await) })
                .collect();
            let verdicts: Vec<(&Object, Result<Verdict, ApiError>)> =
                stream::iter(asks).buffered(8).collect().await;
            let (mut accepted, mut validated, mut rejected, mut skipped) = (0, 0, Vec::new(), Vec::new());
            for (o, v) in verdicts {
                let who = format!("{} {} ({})", o.kind, o.name, install.provenance(o));
                match v {
                    Ok(Verdict::Accepted) => accepted += 1,
                    Ok(Verdict::Validated) => validated += 1,
                    Ok(Verdict::Rejected(why)) => {
                        let holder = if why.contains("provided port is already allocated") {
                            node_port_holders(ctx, client, o).await
                        } else {
                            String::new()
                        };
                        rejected.push(Finding::fail(
                            &OBJECT_REJECTED,
                            install.subject(o),
                            format!("{who}: {why}{holder}"),
                        ));
                    }
                    Ok(Verdict::NotDryRun(why)) => skipped.push(Finding::warn(
                        &OBJECT_NOT_DRY_RUN,
                        install.subject(o),
                        format!("{who}: {why}"),
                    )),
                    Err(e) => return undecided(e),
                }
            }
            let not_run =
                (!skipped.is_empty()).then(|| format!("{} object(s) could not be dry-run", skipped.len()));
            if !rejected.is_empty() {
                let mut summary = format!("the API server rejects {} of {} object(s)", rejected.len(), sent);
                if let Some(n) = &not_run {
                    summary.push_str(&format!("; {n}"));
                }
                let mut found = rejected;
                found.extend(skipped);
                return Outcome::found(found, summary).with_fix(Fix::manual(
                    "act on the server's answers above (webhook backend, quota, conflicting object), then check again",
                    vec!["kubectl get validatingwebhookconfigurations,mutatingwebhookconfigurations".to_string(), "kubectl describe resourcequota,limitrange -A".to_string()],
                ));
            }
            let mut all = format!(
                "the API server accepts all {accepted} object(s) it was asked about ({})",
                install.counted(sent, "objects")
            );
            let not_at_install = install.objects.len() - sent;
            if not_at_install > 0 {
                all.push_str(&format!(
                    "; {not_at_install} hook object(s) of other events (pre-delete, test, …) are not created at install"
                ));
            }
            if validated > 0 {
                all.push_str(&format!(
                    "; {validated} custom resource(s) of kinds the install's own CRDs bring pass those CRDs' schemas"
                ));
            }
            match not_run {
                Some(n) => Outcome::found(skipped, format!("{all}; {n}")),
                None => Outcome::pass(all),
            }
        })
    }
}
