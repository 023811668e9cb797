use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::ListParams;
use kube::discovery::ApiResource;
use kube::Api;
use serde::Deserialize;

use super::terminating_namespaces::unavailable;
use super::{client, delete_exactly, release, undecided, Doomed};
use crate::check::{
    Access, ApplyFuture, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Observed,
    Outcome, Phase, Subject,
};
use crate::exec;
use crate::kube::{cannot_import, ownership_problem, owning_release};
use crate::values::Dur;

const LEFTOVER_FOREIGN: Code = Code {
    code: "namespace-of-another-release",
    explain: "the namespace exists and belongs to another (or no) release: helm says it \"exists and cannot be imported into the current release\" (seed 000; --unsafe-fixes uninstalls and deletes)",
};
const LEFTOVER_UNLABELLED: Code = Code {
    code: "namespace-label-missing",
    explain: "the namespace's annotations name this very release but the managed-by label is missing: label it, uninstall nothing",
};
const LEFTOVER_TERMINATING: Code = Code {
    code: "namespace-terminating",
    explain: "the namespace is being deleted: helm would fail with \"unable to create new content in namespace X because it is being terminated\"",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.leftover-cert-manager",
        phase: Phase::Cluster,
        title: "no leftover cert-manager namespace of another release",
        requires: &["cluster.api"],
        install: InstallUse::No,
        codes: &[
            super::API_ERROR,
            LEFTOVER_FOREIGN,
            LEFTOVER_UNLABELLED,
            LEFTOVER_TERMINATING,
        ],
        host_network: false,
        roll_up: None,
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

Fix (unsafe, `--fix --unsafe-fixes`): `helm uninstall` of the release that owns it — only
the release the check saw, identified by its storage secrets' names and UIDs, and refused
when they changed since (or when the annotations name the profile's own release) — with the
real helm on PATH, then delete exactly that namespace (UID precondition), then wait (up to
`wait`, 60s) until it is gone — or report that it is stuck Terminating and why
(unavailable APIServices, finalizers).

Parameters: namespace: cert-manager, helm_release: cert-manager, wait: 60s"#,
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
    #[serde(default = "default_wait")]
    wait: Dur,
    /// The namespace the last run found, and the helm release behind it as it was then.
    #[serde(skip)]
    observed: Observed<(Doomed, Option<SeenRelease>)>,
}

/// A helm release as the check saw it: its storage secrets (`sh.helm.release.v1.NAME.vN`,
/// label owner=helm) by name and UID, so the fix uninstalls exactly that release or nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRelease {
    name: String,
    namespace: String,
    secrets: Vec<(String, String)>,
}

/// The storage secrets of release `name` in `ns`, sorted by name (the versions).
async fn storage(
    ctx: &Ctx,
    client: &kube::Client,
    name: &str,
    ns: &str,
) -> Result<Vec<(String, String)>, String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("owner=helm,name={name}"));
    let found = ctx
        .kube
        .call(
            &format!("list helm release {ns}/{name}"),
            secrets.list_metadata(&lp),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut out: Vec<(String, String)> = found
        .items
        .into_iter()
        .filter_map(|m| Some((m.metadata.name?, m.metadata.uid?)))
        .collect();
    out.sort();
    Ok(out)
}

fn default_wait() -> Dur {
    Dur(Duration::from_secs(60))
}

impl LeftoverCertManager {
    /// `helm uninstall` of exactly the release the check saw: refused when its storage
    /// secrets are no longer the ones seen (re-installed, upgraded, gone).
    async fn uninstall(
        &self,
        ctx: &Ctx,
        client: &kube::Client,
        seen: &SeenRelease,
    ) -> Result<String, String> {
        let (name, ns) = (&seen.name, &seen.namespace);
        let now = storage(ctx, client, name, ns).await?;
        if now != seen.secrets {
            return Err(format!(
                "helm release {ns}/{name} changed since the check looked (storage secrets then: {}; now: {}): nothing was uninstalled; run preflight again",
                names(&seen.secrets),
                names(&now)
            ));
        }
        let helm = ctx
            .which("helm")
            .ok_or_else(|| format!("helm release {ns}/{name} exists but helm is not on PATH"))?;
        let mut args = vec![
            "uninstall".to_string(),
            name.to_string(),
            "--namespace".to_string(),
            ns.to_string(),
        ];
        if let Some(k) = &ctx.kube.kubeconfig {
            args.push("--kubeconfig".to_string());
            args.push(k.display().to_string());
        }
        if let Some(c) = &ctx.kube.context {
            args.push("--kube-context".to_string());
            args.push(c.clone());
        }
        let out = exec::run(
            &helm,
            &args,
            ctx.path_env.as_deref(),
            self.wait.0.max(ctx.exec_timeout()),
        )
        .await?;
        if !out.success {
            return Err(format!("helm uninstall {name} -n {ns}: {}", out.stderr.trim()));
        }
        Ok(format!("helm uninstall {name} -n {ns}"))
    }

    /// Why a namespace stays Terminating: its finalizers and the unavailable APIServices.
    async fn why_stuck(&self, ctx: &Ctx, client: &kube::Client, ns: &Namespace) -> String {
        let mut why = Vec::new();
        let finalizers = ns.metadata.finalizers.clone().unwrap_or_default();
        if !finalizers.is_empty() {
            why.push(format!("finalizers {}", finalizers.join(", ")));
        }
        let api: Api<APIService> = Api::all(client.clone());
        if let Ok(list) = ctx
            .kube
            .call("list apiservices", api.list(&ListParams::default()))
            .await
        {
            let broken: Vec<String> = list.items.iter().filter_map(unavailable).collect();
            if !broken.is_empty() {
                why.push(format!(
                    "unavailable APIServices {} (see cluster.terminating-namespaces)",
                    broken.join(", ")
                ));
            }
        }
        if why.is_empty() {
            "its content is still being deleted".to_string()
        } else {
            why.join("; ")
        }
    }
}

impl Check for LeftoverCertManager {
    fn access(&self) -> Vec<Access> {
        vec![Access::new("get", "", "namespaces")]
    }

    fn apply<'a>(&'a self, ctx: &'a Ctx) -> ApplyFuture<'a> {
        Box::pin(async move {
            let (doomed, seen) = self.observed.get().ok_or("nothing was observed to fix")?;
            let client = client(ctx).await.map_err(|o| o.message)?;
            let mut done = Vec::new();
            if let Some(seen) = &seen {
                done.push(self.uninstall(ctx, &client, seen).await?);
            }
            done.push(delete_exactly(ctx, std::slice::from_ref(&doomed)).await?);
            let api: Api<Namespace> = Api::all(client.clone());
            let started = Instant::now();
            loop {
                match ctx
                    .kube
                    .call(
                        &format!("GET namespace {}", doomed.name),
                        api.get_opt(&doomed.name),
                    )
                    .await
                {
                    Ok(None) => break,
                    // Re-created under the same name: not ours to wait for.
                    Ok(Some(ns)) if ns.metadata.uid.as_deref() != Some(doomed.uid.as_str()) => break,
                    Ok(Some(ns)) if started.elapsed() >= self.wait.0 => {
                        return Err(format!(
                            "{}; namespace {} is still Terminating after {}: {}",
                            done.join("; "),
                            doomed.name,
                            humantime::format_duration(self.wait.0),
                            self.why_stuck(ctx, &client, &ns).await
                        ))
                    }
                    Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(500)).await,
                    Err(e) => return Err(e.to_string()),
                }
            }
            done.push(format!("namespace {} is gone", doomed.name));
            Ok(done.join("; "))
        })
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            self.observed.set(None);
            let release = crate::or_return!(release(ctx));
            let client = crate::or_return!(client(ctx).await);
            let name = &self.namespace;
            let api: Api<Namespace> = Api::all(client.clone());
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
                return Outcome::problem(Finding::fail(
                    &LEFTOVER_TERMINATING,
                    Subject::object("Namespace", None, name),
                    format!(
                        "namespace {name} is being terminated: helm would fail with \"unable to create new content in namespace {name} because it is being terminated\""
                    ),
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
                    let message = cannot_import("Namespace", name, None, &problem);
                    let (helm_release, helm_ns) = owning_release(&annotations)
                        .unwrap_or_else(|| (self.helm_release.clone(), name.clone()));
                    if helm_release == release.name && helm_ns == release.namespace {
                        // Our own release by its annotations: never uninstall it to fix this.
                        return Outcome::found(
                            vec![Finding::fail(&LEFTOVER_UNLABELLED, Subject::object("Namespace", None, name), message)],
                            format!(
                                "its annotations name this very release ({helm_ns}/{helm_release}): add the missing label rather than uninstall anything"
                            ),
                        )
                        .with_fix(Fix::manual(
                            format!("label namespace {name} as managed by Helm"),
                            vec![format!("kubectl label namespace {name} app.kubernetes.io/managed-by=Helm")],
                        ));
                    }
                    let secrets = match storage(ctx, &client, &helm_release, &helm_ns).await {
                        Ok(s) => s,
                        Err(e) => return Outcome::error(e),
                    };
                    let seen = (!secrets.is_empty()).then(|| SeenRelease {
                        name: helm_release.clone(),
                        namespace: helm_ns.clone(),
                        secrets,
                    });
                    let mut commands = Vec::new();
                    let mut summary = String::new();
                    match &seen {
                        Some(r) => {
                            commands.push(format!("helm uninstall {helm_release} -n {helm_ns}"));
                            summary.push_str(&format!(
                                "uninstall release {helm_ns}/{helm_release} (as seen now: {}), then ",
                                names(&r.secrets)
                            ));
                        }
                        None => {
                            summary.push_str(&format!("(no helm release {helm_ns}/{helm_release} exists) "))
                        }
                    }
                    commands.push(format!("kubectl delete namespace {name}"));
                    summary.push_str(&format!("delete namespace {name} (destroys everything in it)"));
                    let resource = ApiResource::erase::<Namespace>(&());
                    if let Some(d) = Doomed::from_meta(&resource, None, meta) {
                        self.observed.set(Some((d, seen)));
                    }
                    Outcome::problem(Finding::fail(
                        &LEFTOVER_FOREIGN,
                        Subject::object("Namespace", None, name),
                        message,
                    ))
                    .with_fix(Fix::automatic(summary, commands).unsafe_())
                }
            }
        })
    }
}

/// `sh.helm.release.v1.x.v1 (uid …), sh.helm.release.v1.x.v2 (uid …)` (or `none`).
fn names(secrets: &[(String, String)]) -> String {
    if secrets.is_empty() {
        "none".to_string()
    } else {
        secrets
            .iter()
            .map(|(n, uid)| format!("{n} (uid {uid})"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
