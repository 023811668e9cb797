use serde::Serialize;

use super::Summary;
use crate::check::{Finding, Fix, Phase, Status};
use crate::vocab::CheckReport;

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
    /// Each release and how its render ended (`releases` stays the count in schema 1).
    pub releases_rendered: Vec<ReleaseRender>,
    /// The installer's command as checked: `helm install`, `helm upgrade --install`,
    /// `helmfile sync`, `helmfile apply`…
    pub command: Option<String>,
    /// Flags of the installer's command that were accepted and change nothing preflight
    /// models (`--atomic`, `--timeout=10m`), as written.
    pub not_modeled: Vec<String>,
}

#[derive(Serialize)]
pub struct ReleaseRender {
    pub name: String,
    pub namespace: String,
    pub chart: String,
    /// The helmfile file that declares it.
    pub file: Option<String>,
    pub rendered: bool,
    /// helm's or helmfile's sentence (`rendered: false`), or why preflight did not render it.
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
                releases_rendered: i
                    .releases
                    .iter()
                    .map(|r| {
                        let error = match &r.render {
                            crate::install::RenderState::Rendered => None,
                            crate::install::RenderState::Failed(e)
                            | crate::install::RenderState::NotRendered(e) => Some(e.clone()),
                        };
                        ReleaseRender {
                            name: r.name.clone(),
                            namespace: r.namespace.clone(),
                            chart: r.chart.clone(),
                            file: r.file.clone(),
                            rendered: error.is_none(),
                            error,
                        }
                    })
                    .collect(),
                command: None,
                not_modeled: Vec::new(),
            },
            Err(e) => InstallSummary {
                what: None,
                releases: 0,
                objects: 0,
                rendered_for: None,
                rendered_without_cluster: None,
                error: Some(e.to_string()),
                releases_rendered: Vec::new(),
                command: None,
                not_modeled: Vec::new(),
            },
        }
    }

    /// The installer's command as it was given.
    pub fn with_command(mut self, spec: Option<&crate::install::InstallSpec>) -> Self {
        use crate::install::{HelmCommand, InstallSpec};
        if let Some(spec) = spec {
            self.command = Some(match spec {
                InstallSpec::Chart(c) => match c.command {
                    Some(HelmCommand::Install) => "helm install",
                    Some(HelmCommand::Upgrade { install: true }) => "helm upgrade --install",
                    Some(HelmCommand::Upgrade { install: false }) => "helm upgrade",
                    None => "helm install or upgrade (--chart)",
                }
                .to_string(),
                InstallSpec::Helmfile(h) => format!("helmfile {}", h.command.name()),
            });
            self.not_modeled = spec.not_modeled().to_vec();
        }
        self
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    phase: Phase,
    title: &'a str,
    status: Status,
    message: std::borrow::Cow<'a, str>,
    fix: Option<&'a Fix>,
    fixed: bool,
    duration_ms: u64,
    /// Only on node checks run on every node (`preflight nodes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    /// Schema 2: each problem with its code and subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    findings: Option<&'a [Finding]>,
}

/// The JSON schemas `-o json` can print: 2 (findings) and 1 (one message per check).
pub const SCHEMAS: [u32; 2] = [1, 2];

/// The one JSON document `-o json` prints (see README "JSON"). Schema 2 gives each check's
/// findings and its summary as `message`; schema 1, for scripts written against it, has no
/// findings and the whole text as `message`.
pub fn render(
    profile: &str,
    install: Option<InstallSummary>,
    reports: &[CheckReport],
    schema: u32,
) -> String {
    let doc = Document {
        schema,
        profile,
        install,
        checks: reports
            .iter()
            .map(|r| Entry {
                id: r.id,
                phase: r.phase,
                title: r.title,
                status: r.status,
                message: if schema == 1 {
                    std::borrow::Cow::Owned(r.text())
                } else {
                    std::borrow::Cow::Borrowed(&r.message)
                },
                fix: r.fix.as_ref(),
                fixed: r.fixed,
                duration_ms: r.duration_ms,
                node: r.node.as_deref(),
                findings: (schema != 1).then_some(r.findings.as_slice()),
            })
            .collect(),
        summary: Summary::of(reports),
    };
    // Serialising plain structs of strings and numbers cannot fail.
    serde_json::to_string_pretty(&doc)
        .unwrap_or_else(|e| format!("{{\"schema\":{schema},\"error\":\"{e}\"}}"))
}

/// One check's result as a node pod reports it through its termination message.
#[derive(Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Compact {
    pub id: String,
    pub status: crate::check::Status,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    pub fix: Option<crate::check::Fix>,
    /// `--fix` applied it on the node (`--all-nodes --fix --yes`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fixed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_error: Option<String>,
    /// What the check measured, for its roll-up over the nodes (`Outcome::facts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<serde_json::Value>,
}

/// The kubelet keeps at most 4096 bytes of a termination message.
pub const TERMINATION_LIMIT: usize = 4096;

/// `-o termination`: the checks as compact JSON that fits a pod's termination message;
/// long messages are cut (saying so) and fix commands dropped before anything is lost.
pub fn termination(reports: &[CheckReport]) -> String {
    let mut items: Vec<Compact> = reports
        .iter()
        .map(|r| Compact {
            id: r.id.to_string(),
            status: r.status,
            message: r.message.clone(),
            findings: r.findings.clone(),
            fix: r.fix.clone(),
            fixed: r.fixed,
            fix_error: r.fix_error.clone(),
            facts: r.facts.clone(),
        })
        .collect();
    let fits = |items: &[Compact]| {
        serde_json::to_string(items)
            .map(|t| t.len() < TERMINATION_LIMIT)
            .unwrap_or(false)
    };
    // Findings go first by count (the last of the longest list), said in the message.
    let mut cut: Vec<usize> = vec![0; items.len()];
    while !fits(&items) {
        let Some((i, _)) = items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.findings.len() > 1)
            .max_by_key(|(_, it)| it.findings.len())
        else {
            break;
        };
        items[i].findings.pop();
        cut[i] += 1;
    }
    for (it, n) in items.iter_mut().zip(cut) {
        if n > 0 {
            it.message = format!(
                "{} ({n} more finding(s) cut to fit the termination message)",
                it.message
            );
        }
    }
    let mut budget = 1024;
    while !fits(&items) && budget > 16 {
        for it in items.iter_mut() {
            if it.message.chars().count() > budget {
                it.message = it.message.chars().take(budget).collect::<String>() + " …(cut)";
            }
            for f in it.findings.iter_mut() {
                if f.message.chars().count() > budget {
                    f.message = f.message.chars().take(budget).collect::<String>() + " …(cut)";
                }
                f.fix = None;
            }
            if let Some(e) = it.fix_error.as_mut() {
                if e.chars().count() > budget {
                    *e = e.chars().take(budget).collect::<String>() + " …(cut)";
                }
            }
            if let Some(f) = it.fix.as_mut() {
                f.commands.truncate(2);
                if f.summary.chars().count() > budget / 2 {
                    f.summary = f.summary.chars().take(budget / 2).collect();
                }
                for c in f.commands.iter_mut() {
                    if c.chars().count() > budget {
                        *c = c.chars().take(budget).collect::<String>() + " …(cut)";
                    }
                }
            }
        }
        budget /= 2;
    }
    // The verdicts and facts matter more than the fixes, which the node's own run shows.
    if !fits(&items) {
        for it in items.iter_mut() {
            it.fix = None;
        }
    }
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Fix, Phase, Status};
    use crate::vocab::CheckReport;

    fn long(id: &'static str, n: usize) -> CheckReport {
        CheckReport {
            id,
            phase: Phase::Node,
            title: "t",
            status: Status::Fail,
            message: "m".repeat(n),
            findings: Vec::new(),
            fix: Some(Fix::manual("s".repeat(n), vec!["c".repeat(n); 5])),
            fixed: false,
            fix_error: Some("e".repeat(n)),
            duration_ms: 0,
            starved: Vec::new(),
            node: None,
            facts: Some(
                serde_json::json!({"paths": [{"path": "/d", "free": 1, "claims": [1], "shared": false}]}),
            ),
        }
    }

    #[test]
    fn the_termination_message_fits_the_kubelets_limit_and_keeps_every_check_and_its_facts() {
        let reports: Vec<CheckReport> = ["node.a", "node.b", "node.c"]
            .iter()
            .map(|id| long(id, 5000))
            .collect();
        let text = termination(&reports);
        assert!(text.len() < TERMINATION_LIMIT, "{}", text.len());
        let back: Vec<Compact> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.len(), 3);
        for (b, r) in back.iter().zip(&reports) {
            assert_eq!(b.id, r.id);
            assert_eq!(b.status, Status::Fail);
            assert!(b.message.ends_with(" …(cut)"), "{}", b.message);
            assert!(b.fix_error.as_deref().unwrap().ends_with(" …(cut)"));
            assert_eq!(b.facts, r.facts);
        }
        // A short one is left as it is.
        let short = long("node.a", 10);
        let back: Vec<Compact> = serde_json::from_str(&termination(std::slice::from_ref(&short))).unwrap();
        assert_eq!(back[0].message, short.message);
        assert_eq!(back[0].fix.as_ref().unwrap().commands.len(), 5);
    }

    #[test]
    fn findings_are_cut_by_count_and_the_count_is_said() {
        let code = crate::check::Code {
            code: "image-missing",
            explain: "x",
        };
        let mut r = long("node.a", 10);
        r.findings = (0..200)
            .map(|i| {
                crate::check::Finding::fail(
                    &code,
                    crate::check::Subject::image(format!("registry.example/app-{i}:1.0")),
                    format!("registry.example/app-{i}:1.0: manifest unknown"),
                )
            })
            .collect();
        let text = termination(std::slice::from_ref(&r));
        assert!(text.len() < TERMINATION_LIMIT, "{}", text.len());
        let back: Vec<Compact> = serde_json::from_str(&text).unwrap();
        let kept = back[0].findings.len();
        assert!(kept > 5 && kept < 200, "{kept}");
        assert_eq!(back[0].findings[..], r.findings[..kept]);
        assert!(
            back[0].message.ends_with(&format!(
                "({} more finding(s) cut to fit the termination message)",
                200 - kept
            )),
            "{}",
            back[0].message
        );
    }
}
