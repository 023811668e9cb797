use serde::Deserialize;
use serde_json::Value;

use super::{client, undecided};
use crate::check::{Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase};
use crate::install::Origin;
use crate::kube::ApiError;
use crate::openapi_v2::{aggregate, Schemas};

const SCHEMA_INVALID: Code = Code {
    code: "schema-invalid",
    explain: "an object fails helm's client-side validation against the server's OpenAPI schema (unknown field, wrong type, missing required field): helm stops before creating anything",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.openapi-validation",
        phase: Phase::Cluster,
        title: "every object passes helm's client-side OpenAPI validation",
        requires: &["cluster.api"],
        install: InstallUse::Fed,
        codes: &[super::API_ERROR, SCHEMA_INVALID],
        host_network: false,
        roll_up: None,
        explain: r#"Why: before it creates anything, helm validates every object of the release against
the API server's OpenAPI schema (`/openapi/v2`, which includes the schemas of installed
CustomResourceDefinitions), unless it runs with --disable-openapi-validation. The
server's own dry-run does not catch this on older servers (v1.20 drops unknown fields
silently). BlueKing CE 7's 03-bcs step failed so:

    Error: unable to build kubernetes objects from release manifest: error validating "":
    error validating data: ValidationError(BkGatewayResource.spec): unknown field "http" in
    com.tencent.bk.gateway.v1beta1.BkGatewayResource.spec

What it looks at: with an install, the server's OpenAPI v2 document (once) and every object
helm builds at install (templates and install/upgrade hooks; not crds/, which helm does not
validate), judged with kubectl's validator's rules and words: unknown fields, wrong types
(any scalar passes for a string; any number for an integer), required fields missing; a
kind the server publishes no schema for is not judged (helm skips it too: the install's own
CRDs, whose custom resources cluster.dry-run checks against their schema). Releases
installed with --disable-openapi-validation (helmfile: disableOpenAPIValidation) are not
judged.

Fix: correct the values that produce the field (or the chart), upgrade the CRD whose schema
lacks it, or — knowingly — install with --disable-openapi-validation.

Parameters: none"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenapiValidation {}

impl Check for OpenapiValidation {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let install = crate::or_return!(ctx.install_given());
            let judged: Vec<_> = install
                .created_objects()
                .filter(|o| o.origin != Origin::Crd)
                .filter(|o| install.release(o).is_some_and(|r| r.openapi_validation))
                .collect();
            if judged.is_empty() {
                return Outcome::skip("no object of the install is validated by helm (none rendered, or --disable-openapi-validation)");
            }
            let client = crate::or_return!(client(ctx).await);
            let doc = match openapi_v2(ctx, &client).await {
                Ok(d) => d,
                Err(e) => return undecided(e),
            };
            let schemas = match Schemas::new(doc) {
                Ok(s) => s,
                Err(e) => return Outcome::error(e),
            };
            let mut bad = Vec::new();
            let mut unpublished = 0;
            for o in &judged {
                if !schemas.has(&o.api_version, &o.kind) {
                    unpublished += 1;
                    continue;
                }
                let errors = schemas.validate(&o.value);
                if !errors.is_empty() {
                    bad.push(Finding::fail(
                        &SCHEMA_INVALID,
                        install.subject(o),
                        format!(
                            "{} {} ({}): helm fails with \"unable to build kubernetes objects from release manifest: error validating \"\": error validating data: {}\"",
                            o.kind,
                            o.name,
                            install.provenance(o),
                            aggregate(&errors)
                        ),
                    ));
                }
            }
            let judged_n = judged.len() - unpublished;
            let not_judged = if unpublished > 0 {
                format!(
                    "; {unpublished} of kinds the server publishes no schema for are not judged (as helm)"
                )
            } else {
                String::new()
            };
            if bad.is_empty() {
                return Outcome::pass(format!(
                    "{judged_n} object(s) pass the server's OpenAPI schema{not_judged}"
                ));
            }
            let summary = format!(
                "{} of {judged_n} object(s) fail helm's validation against the server's OpenAPI schema{not_judged}",
                bad.len()
            );
            Outcome::found(bad, summary).with_fix(Fix::manual(
                "correct the values (or chart) that produce the field, or upgrade the CRD whose schema lacks it; --disable-openapi-validation skips this check in helm",
                vec!["kubectl explain <kind>.<field>   # what the server's schema allows".to_string()],
            ))
        })
    }
}

/// The server's `/openapi/v2`, as helm's kube client fetches it.
async fn openapi_v2(ctx: &Ctx, client: &kube::Client) -> Result<Value, ApiError> {
    let req = http::Request::get("/openapi/v2")
        .header("Accept", "application/json")
        .body(Vec::new())
        .map_err(|e| ApiError::Other(format!("GET /openapi/v2: {e}")))?;
    let text = ctx.kube.call("GET /openapi/v2", client.request_text(req)).await?;
    serde_json::from_str(&text).map_err(|e| ApiError::Other(format!("GET /openapi/v2: {e}")))
}
