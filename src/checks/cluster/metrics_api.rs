use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Api;
use serde::Deserialize;
use serde_json::Value;

use super::{client, undecided};
use crate::check::{
    Access, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::install::{Install, Object};

const METRICS_API_MISSING: Code = Code {
    code: "metrics-api-missing",
    explain: "no APIService v1beta1.metrics.k8s.io: HorizontalPodAutoscalers on resource metrics never scale (seed 000)",
};
const METRICS_API_UNJUDGED: Code = Code {
    code: "metrics-api-unjudged",
    explain: "APIService v1beta1.metrics.k8s.io has no Available condition yet (the aggregator has not judged it): whether autoscalers get metrics is not known",
};
const METRICS_API_UNAVAILABLE: Code = Code {
    code: "metrics-api-unavailable",
    explain: "APIService v1beta1.metrics.k8s.io is not Available (its condition quoted): autoscalers get no metrics",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.metrics-api",
        phase: Phase::Cluster,
        title: "the metrics API answers where the install autoscales",
        requires: &["cluster.api"],
        install: InstallUse::Fed,
        codes: &[
            super::API_ERROR,
            METRICS_API_MISSING,
            METRICS_API_UNAVAILABLE,
            METRICS_API_UNJUDGED,
        ],
        host_network: false,
        roll_up: None,
        explain: r#"Why: a HorizontalPodAutoscaler on CPU or memory reads the metrics API
(`metrics.k8s.io`, served by metrics-server through an aggregated APIService). Without it
autoscaling silently does nothing. KubeVela's FAQ (seed 000) says its autoscale trait
depends on metrics server and has users check it with `kubectl top nodes` / `kubectl top
pods` first; without it each HPA reports `unable to get metrics for resource cpu: unable to
fetch metrics from resource metrics API: the server could not find the requested resource
(get pods.metrics.k8s.io)`.

What it looks at: with an install that renders HorizontalPodAutoscalers on resource metrics
(autoscaling/v1 always; v2 with a Resource or ContainerResource metric, or with none, which
defaults to CPU) — or when the profile sets `required: true` — the APIService
v1beta1.metrics.k8s.io: it must exist and be Available; otherwise its condition is quoted
(`ServiceNotFound`, `FailedDiscoveryCheck`, …). No HPA of that kind and not required: skip.

Fix: install metrics-server (`kubectl apply -f components.yaml` of its release, from the
private registry on an air-gapped site), or repair the service its APIService points at.

Parameters: required: false"#,
    },
};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MetricsApi {
    /// Check the metrics API even when the install renders no HPA on resource metrics.
    #[serde(default)]
    required: bool,
}

const APISERVICE: &str = "v1beta1.metrics.k8s.io";

/// Whether an HPA reads resource metrics (CPU or memory through metrics.k8s.io).
fn on_resource_metrics(o: &Object) -> bool {
    if o.kind != "HorizontalPodAutoscaler" {
        return false;
    }
    if o.api_version == "autoscaling/v1" {
        return true;
    }
    match o.value.pointer("/spec/metrics").and_then(Value::as_array) {
        None => true,
        Some(m) if m.is_empty() => true,
        Some(m) => m.iter().any(|x| {
            matches!(
                x.get("type").and_then(Value::as_str),
                Some("Resource" | "ContainerResource")
            )
        }),
    }
}

fn autoscalers(install: &Install) -> Vec<String> {
    install
        .created_objects()
        .filter(|o| on_resource_metrics(o))
        .map(|o| format!("HorizontalPodAutoscaler {} ({})", o.name, install.provenance(o)))
        .collect()
}

impl Check for MetricsApi {
    fn access(&self) -> Vec<Access> {
        vec![Access::new("get", "apiregistration.k8s.io", "apiservices")]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let hpas = match crate::or_return!(ctx.rendered()) {
                Some(i) => autoscalers(i),
                None => Vec::new(),
            };
            if hpas.is_empty() && !self.required {
                return Outcome::skip(
                    "the install renders no HorizontalPodAutoscaler on resource metrics, and the profile does not require the metrics API",
                );
            }
            let who = if hpas.is_empty() {
                "the profile requires it".to_string()
            } else {
                format!("the install's {} need it", hpas.join(", "))
            };
            let client = crate::or_return!(client(ctx).await);
            let api: Api<APIService> = Api::all(client);
            let svc = match ctx
                .kube
                .call(&format!("GET apiservice {APISERVICE}"), api.get_opt(APISERVICE))
                .await
            {
                Ok(s) => s,
                Err(e) => return undecided(e),
            };
            let fix = || {
                Fix::manual(
                    "install metrics-server (from the private registry on an air-gapped site), or repair the service its APIService points at",
                    vec![
                        format!("kubectl get apiservice {APISERVICE} -o yaml"),
                        "kubectl top nodes".to_string(),
                    ],
                )
            };
            let Some(svc) = svc else {
                return Outcome::found(
                    vec![Finding::fail(
                        &METRICS_API_MISSING,
                        Subject::object("APIService", None, APISERVICE),
                        format!(
                            "the metrics API is not installed (no APIService {APISERVICE}); {who}: they will report \"unable to get metrics for resource cpu: … the server could not find the requested resource (get pods.metrics.k8s.io)\" and never scale"
                        ),
                    )],
                    "",
                )
                .with_fix(fix());
            };
            let available = svc
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Available"));
            match available {
                Some(c) if c.status == "True" => {
                    Outcome::pass(format!("APIService {APISERVICE} is Available; {who}"))
                }
                Some(c) => Outcome::found(
                    vec![Finding::fail(
                        &METRICS_API_UNAVAILABLE,
                        Subject::object("APIService", None, APISERVICE),
                        format!(
                            "APIService {APISERVICE} is not Available ({}: {}); {who}: they will not scale",
                            c.reason.clone().unwrap_or_default(),
                            c.message.clone().unwrap_or_default()
                        ),
                    )],
                    "",
                )
                .with_fix(fix()),
                None => Outcome::problem(Finding::error(
                    &METRICS_API_UNJUDGED,
                    Subject::object("APIService", None, APISERVICE),
                    format!("APIService {APISERVICE} has no Available condition yet: the aggregator has not judged it"),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_autoscalers_read_resource_metrics() {
        let objs = crate::install::manifest::parse(
            "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: v1}\nspec: {maxReplicas: 3}\n---\napiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: cpu}\nspec:\n  metrics: [{type: Resource, resource: {name: cpu}}]\n---\napiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: default}\nspec: {maxReplicas: 3}\n---\napiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: queue}\nspec:\n  metrics: [{type: External, external: {metric: {name: q}}}]\n",
            0,
        )
        .unwrap();
        let on: Vec<&str> = objs
            .iter()
            .filter(|o| on_resource_metrics(o))
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(on, ["v1", "cpu", "default"]);
    }
}
