use serde::Serialize;

use super::Summary;
use crate::check::{Fix, Phase, Status};
use crate::engine::CheckReport;

#[derive(Serialize)]
struct Document<'a> {
    schema: u32,
    profile: &'a str,
    checks: Vec<Entry<'a>>,
    summary: Summary,
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
pub fn render(profile: &str, reports: &[CheckReport]) -> String {
    let doc = Document {
        schema: 1,
        profile,
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
