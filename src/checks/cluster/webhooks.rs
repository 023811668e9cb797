use std::collections::HashMap;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ServiceReference, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::ListParams;
use kube::Api;
use serde::Deserialize;

use super::{client, undecided};
use crate::check::{
    Access, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::install::Install;
use crate::kube::ApiError;

const WEBHOOK_BACKEND_DOWN: Code = Code {
    code: "webhook-backend-down",
    explain: "a webhook with failurePolicy Fail calls a service that is missing or has no ready endpoints: every request it matches fails (\"no endpoints available for service\", seed 003)",
};

const URL_NOT_PROBED: Code = Code {
    code: "webhook-url-not-probed",
    explain: "a webhook with failurePolicy Fail calls a URL, not a service: only the API server's network can tell whether it answers, so it is named, never passed",
};
const OWN_WEBHOOK: Code = Code {
    code: "own-webhook-intercepts-install",
    explain: "the install ships a webhook with failurePolicy Fail that intercepts what the same install creates: until its backend is ready, those creates fail (\"failed calling webhook\")",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.webhooks",
        phase: Phase::Cluster,
        title: "admission webhooks that must answer have a ready backend",
        requires: &["cluster.api"],
        install: InstallUse::Fed,
        codes: &[
            super::API_ERROR,
            WEBHOOK_BACKEND_DOWN,
            URL_NOT_PROBED,
            OWN_WEBHOOK,
        ],
        host_network: false,
        roll_up: None,
        explain: r#"Why: a webhook with failurePolicy: Fail whose service has no ready endpoint rejects
every request it matches, so every create of the install fails. OpenKruise users saw
(seed 003):

    Error from server (InternalError): Internal error occurred: failed calling webhook
    "vpod.kb.io": failed to call webhook: Post
    "https://kruise-webhook-service.kruise-system.svc:443/validate-pod?timeout=10s":
    no endpoints available for service "kruise-webhook-service"

What it looks at: every Validating- and MutatingWebhookConfiguration; for each webhook
with failurePolicy Fail (the default in admissionregistration/v1) that calls an in-cluster
service: the Service exists and its Endpoints have at least one ready address. Webhooks
with failurePolicy Ignore are not judged; those calling a URL are named (warn), since only
the API server's network can tell whether they answer. With an install: its own Fail webhooks
that intercept objects it creates (or the pods its workloads start) are named (warn) — those
creates fail until the webhook's backend is ready.

Fix (manual; deleting a webhook configuration is the operator's call): bring the
webhook's pods back (`kubectl -n <ns> get pods`, `kubectl -n <ns> get endpoints <svc>`),
or, if its operator was uninstalled, delete the configuration it left behind.

Parameters: none"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhooks {}

struct Hook {
    config_kind: &'static str,
    config: String,
    webhook: String,
    service: ServiceReference,
}

/// A webhook with failurePolicy Fail: its clientConfig service, or its URL.
type Called = (String, Option<String>, Option<ServiceReference>, Option<String>);

/// The webhooks that must answer: failurePolicy Fail (v1's default); those calling an
/// in-cluster service go to `out`, those calling a URL (which this check cannot probe as the
/// API server would) to `urls`, so they are named instead of passed.
fn collect(
    config_kind: &'static str,
    config: Option<String>,
    webhooks: impl Iterator<Item = Called>,
    out: &mut Vec<Hook>,
    urls: &mut Vec<Finding>,
) {
    let config = config.unwrap_or_default();
    for (webhook, policy, service, url) in webhooks {
        if policy.as_deref().unwrap_or("Fail") != "Fail" {
            continue;
        }
        match (service, url) {
            (Some(service), _) => out.push(Hook {
                config_kind,
                config: config.clone(),
                webhook,
                service,
            }),
            (None, Some(url)) => urls.push(Finding::warn(
                &URL_NOT_PROBED,
                Subject::object(config_kind, None, &config),
                format!("{config_kind} {config} webhook \"{webhook}\" (failurePolicy Fail) calls {url}, which is not probed from here (only the API server's network can tell whether it answers)"),
            )),
            (None, None) => {}
        }
    }
}

enum Backend {
    Ready,
    NoEndpoints,
    NoService,
}

/// `Pod` → `pods`, `Ingress` → `ingresses`, `NetworkPolicy` → `networkpolicies`.
fn plural(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    if k.ends_with('s') {
        format!("{k}es")
    } else if let Some(stem) = k.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{k}s")
    }
}

/// The install's own `Fail` webhooks that intercept what the install itself creates (or
/// the pods its workloads start) before the webhook's backend can be ready.
fn own_webhooks(install: &Install) -> Vec<Finding> {
    let mut out = Vec::new();
    let runs_pods = install
        .created_objects()
        .any(|o| crate::install::pod_spec(o).is_some());
    for cfg in install
        .created_objects()
        .filter(|o| o.kind == "ValidatingWebhookConfiguration" || o.kind == "MutatingWebhookConfiguration")
    {
        for w in cfg
            .value
            .get("webhooks")
            .and_then(|w| w.as_array())
            .into_iter()
            .flatten()
        {
            if w.get("failurePolicy").and_then(|p| p.as_str()).unwrap_or("Fail") != "Fail" {
                continue;
            }
            let mut resources: Vec<String> = Vec::new();
            for rule in w.get("rules").and_then(|r| r.as_array()).into_iter().flatten() {
                let ops: Vec<&str> = rule
                    .get("operations")
                    .and_then(|o| o.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o.as_str())
                    .collect();
                if !ops.iter().any(|o| *o == "CREATE" || *o == "*") {
                    continue;
                }
                resources.extend(
                    rule.get("resources")
                        .and_then(|r| r.as_array())
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.as_str().map(String::from)),
                );
            }
            let hits = |res: &str| resources.iter().any(|r| r == "*" || r == "*/*" || r == res);
            let mut intercepted: Vec<String> = install
                .created_objects()
                .filter(|o| o.kind != cfg.kind && hits(&plural(&o.kind)))
                .map(|o| format!("{} {}", o.kind, o.name))
                .collect();
            if runs_pods && hits("pods") {
                intercepted.push("the pods its workloads start".to_string());
            }
            if intercepted.is_empty() {
                continue;
            }
            let name = w.get("name").and_then(|n| n.as_str()).unwrap_or("?");
            let more = intercepted.len().saturating_sub(4);
            intercepted.truncate(4);
            out.push(Finding::warn(&OWN_WEBHOOK, install.subject(cfg), format!(
                "the install's own {} {} webhook {name:?} ({}) has failurePolicy Fail and intercepts what the install creates ({}{}): until its backend is ready, those creates fail (\"failed calling webhook\")",
                cfg.kind,
                cfg.name,
                install.provenance(cfg),
                intercepted.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            )));
        }
    }
    out
}

impl Webhooks {
    async fn backend(
        &self,
        ctx: &Ctx,
        client: &kube::Client,
        svc: &ServiceReference,
    ) -> Result<Backend, ApiError> {
        let services: Api<Service> = Api::namespaced(client.clone(), &svc.namespace);
        let what = format!("GET service {}/{}", svc.namespace, svc.name);
        if ctx.kube.call(&what, services.get_opt(&svc.name)).await?.is_none() {
            return Ok(Backend::NoService);
        }
        let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), &svc.namespace);
        let what = format!("GET endpoints {}/{}", svc.namespace, svc.name);
        let ready = ctx
            .kube
            .call(&what, endpoints.get_opt(&svc.name))
            .await?
            .and_then(|e| e.subsets)
            .unwrap_or_default()
            .iter()
            .any(|s| s.addresses.as_ref().is_some_and(|a| !a.is_empty()));
        Ok(if ready {
            Backend::Ready
        } else {
            Backend::NoEndpoints
        })
    }
}

impl Check for Webhooks {
    fn access(&self) -> Vec<Access> {
        vec![
            Access::new(
                "list",
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
            ),
            Access::new(
                "list",
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
            ),
            Access::new("get", "", "services"),
            Access::new("get", "", "endpoints"),
        ]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let client = crate::or_return!(client(ctx).await);
            let mut hooks = Vec::new();
            let mut urls = Vec::new();
            let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
            match ctx
                .kube
                .call(
                    "list validatingwebhookconfigurations",
                    validating.list(&ListParams::default()),
                )
                .await
            {
                Ok(l) => {
                    for c in l.items {
                        let hooks_of = c.webhooks.unwrap_or_default().into_iter();
                        let called = hooks_of.map(|w| {
                            (
                                w.name,
                                w.failure_policy,
                                w.client_config.service,
                                w.client_config.url,
                            )
                        });
                        collect(
                            "ValidatingWebhookConfiguration",
                            c.metadata.name,
                            called,
                            &mut hooks,
                            &mut urls,
                        );
                    }
                }
                Err(e) => return undecided(e),
            }
            let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
            match ctx
                .kube
                .call(
                    "list mutatingwebhookconfigurations",
                    mutating.list(&ListParams::default()),
                )
                .await
            {
                Ok(l) => {
                    for c in l.items {
                        let hooks_of = c.webhooks.unwrap_or_default().into_iter();
                        let called = hooks_of.map(|w| {
                            (
                                w.name,
                                w.failure_policy,
                                w.client_config.service,
                                w.client_config.url,
                            )
                        });
                        collect(
                            "MutatingWebhookConfiguration",
                            c.metadata.name,
                            called,
                            &mut hooks,
                            &mut urls,
                        );
                    }
                }
                Err(e) => return undecided(e),
            }
            // Named, never passed: what cannot be probed from here.
            let mut notes = urls;
            if let Some(install) = crate::or_return!(ctx.rendered()) {
                notes.extend(own_webhooks(install));
            }
            if hooks.is_empty() {
                let summary = if notes.is_empty() {
                    "no webhook with failurePolicy Fail calls an in-cluster service"
                } else {
                    ""
                };
                return Outcome::found(notes, summary);
            }
            // One lookup per service, however many webhooks share it.
            let mut seen: HashMap<(String, String), Backend> = HashMap::new();
            let mut broken = Vec::new();
            let mut commands = Vec::new();
            for h in &hooks {
                let key = (h.service.namespace.clone(), h.service.name.clone());
                if !seen.contains_key(&key) {
                    match self.backend(ctx, &client, &h.service).await {
                        Ok(b) => {
                            seen.insert(key.clone(), b);
                        }
                        Err(e) => return undecided(e),
                    }
                }
                let (ns, svc) = (&h.service.namespace, &h.service.name);
                let problem = match seen.get(&key) {
                    Some(Backend::Ready) | None => continue,
                    Some(Backend::NoEndpoints) => format!("no endpoints available for service \"{svc}\""),
                    Some(Backend::NoService) => format!("service \"{ns}/{svc}\" does not exist"),
                };
                broken.push(Finding::fail(
                    &WEBHOOK_BACKEND_DOWN,
                    Subject::object(h.config_kind, None, &h.config),
                    format!(
                        "{} {} webhook \"{}\" (failurePolicy Fail) calls {ns}/{svc}: {problem}; every request it matches fails (\"failed calling webhook \\\"{}\\\"\")",
                        h.config_kind, h.config, h.webhook, h.webhook
                    ),
                ));
                let cmds = [
                    format!("kubectl -n {ns} get endpoints {svc}"),
                    format!("kubectl -n {ns} get pods"),
                    format!(
                        "kubectl delete {} {}   # only if its operator is gone",
                        h.config_kind.to_ascii_lowercase(),
                        h.config
                    ),
                ];
                for c in cmds {
                    if !commands.contains(&c) {
                        commands.push(c);
                    }
                }
            }
            if broken.is_empty() {
                let all = format!(
                    "{} webhook(s) with failurePolicy Fail, all with ready endpoints",
                    hooks.len()
                );
                return Outcome::found(notes, all);
            }
            broken.extend(notes);
            Outcome::found(broken, "").with_fix(Fix::manual(
                "bring the webhook's pods back; delete the configuration only if its operator was uninstalled (operator's call)",
                commands,
            ))
        })
    }
}
