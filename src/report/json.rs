use serde::Serialize;

use super::Summary;
use crate::check::{Fix, Phase, Status};
use crate::engine::CheckReport;

#[derive(Serialize)]
struct Document<'a> {
    schema: u32,
    profile: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    install: Option<InstallSummary>,
    checks: Vec<Entry<'a>>,
    summary: Summary,
}

/// What was rendered, and for which cluster (present only when an install was given).
#[derive(Serialize)]
pub struct InstallSummary {
    /// `chart ./x as release r in namespace n` / `helmfile ./helmfile.yaml`
    pub what: Option<String>,
    pub releases: usize,
    pub objects: usize,
    /// `Kubernetes v1.20.2` when rendered with the cluster's capabilities.
    pub rendered_for: Option<String>,
    /// Why the cluster's capabilities were not used.
    pub rendered_without_cluster: Option<String>,
    /// helm's / helmfile's own error when the install did not render.
    pub error: Option<String>,
}

impl InstallSummary {
    pub fn of(install: Result<&crate::install::Install, &str>) -> Self {
        match install {
            Ok(i) => InstallSummary {
                what: Some(i.what.clone()),
                releases: i.releases.len(),
                objects: i.objects.len(),
                rendered_for: i.rendered_for.as_ref().ok().cloned(),
                rendered_without_cluster: i.rendered_for.as_ref().err().cloned(),
                error: None,
            },
            Err(e) => InstallSummary {
                what: None,
                releases: 0,
                objects: 0,
                rendered_for: None,
                rendered_without_cluster: None,
                error: Some(e.to_string()),
            },
        }
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    phase: Phase,
    title: &'a str,
    status: Status,
    message: &'a str,
    fix: Option<&'a Fix>,
    fixed: bool,
    duration_ms: u64,
}

/// The one JSON document `-o json` prints (schema 1; see README).
pub fn render(profile: &str, install: Option<InstallSummary>, reports: &[CheckReport]) -> String {
    let doc = Document {
        schema: 1,
        profile,
        install,
        checks: reports
            .iter()
            .map(|r| Entry {
                id: r.id,
                phase: r.phase,
                title: r.title,
                status: r.status,
                message: &r.message,
                fix: r.fix.as_ref(),
                fixed: r.fixed,
                duration_ms: r.duration_ms,
            })
            .collect(),
        summary: Summary::of(reports),
    };
    // Serialising plain structs of strings and numbers cannot fail.
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"schema\":1,\"error\":\"{e}\"}}"))
}
