use std::collections::HashMap;

use console::Style;

use super::{fixable, Summary};
use crate::check::{Phase, Safety, Status};
use crate::vocab::{lines_then, merge_fixes, CheckReport, Finding, Fix};

/// linkerd-check style: grouped by phase, one line per check, reason and fix indented.
pub struct Human {
    color: bool,
}

impl Human {
    pub fn new(color: bool) -> Self {
        Human { color }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            style.force_styling(true).apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }

    fn symbol(&self, status: Status) -> String {
        let (sym, style) = match status {
            Status::Pass => ("✓", Style::new().green()),
            Status::Warn => ("‼", Style::new().yellow()),
            Status::Fail => ("×", Style::new().red()),
            Status::Skip => ("–", Style::new().dim()),
            Status::Error => ("?", Style::new().magenta()),
        };
        self.paint(style, sym)
    }

    pub fn phase(&self, phase: Phase, reports: &[CheckReport]) -> String {
        self.section(phase.name(), reports)
    }

    /// A titled block of check lines (a phase, or the checks again after --fix).
    pub fn section(&self, name: &str, reports: &[CheckReport]) -> String {
        let mut out = format!("{name}\n{}\n", "-".repeat(name.chars().count()));
        for r in reports {
            out.push_str(&format!(
                "{} {} {}{}\n",
                self.symbol(r.status),
                r.title,
                self.paint(
                    Style::new().dim(),
                    &match &r.node {
                        Some(n) => format!("[{}@{n}]", r.id),
                        None => format!("[{}]", r.id),
                    }
                ),
                if r.fixed { " (fixed)" } else { "" }
            ));
            if r.status == Status::Pass {
                continue;
            }
            // Findings of different codes with fixes of their own: each code's lines, then
            // its fix under them; the check's own fix (the fallback) after the summary.
            if own_fixes(r) > 1 {
                let mut codes: Vec<&str> = Vec::new();
                for f in &r.findings {
                    if !codes.contains(&f.code.as_str()) {
                        codes.push(&f.code);
                    }
                }
                for code in codes {
                    let these: Vec<&Finding> = r.findings.iter().filter(|f| f.code == code).collect();
                    for line in shown_lines(&these) {
                        out.push_str(&format!("    {line}\n"));
                    }
                    out.push_str(&self.fixes(&merge_fixes(these.iter().filter_map(|f| f.fix.as_ref()))));
                }
                if !r.message.is_empty() {
                    out.push_str(&format!("    {}\n", r.message));
                }
                out.push_str(&self.fixes(&merge_fixes(r.fix.iter())));
                continue;
            }
            for line in shown_text(r).lines() {
                out.push_str(&format!("    {line}\n"));
            }
            out.push_str(&self.fixes(&r.fixes()));
        }
        out.push('\n');
        out
    }

    fn fixes(&self, fixes: &[Fix]) -> String {
        let mut out = String::new();
        for fix in fixes {
            let tag = match (fix.automatic, fix.safety) {
                (true, Safety::Safe) => " [--fix]",
                (true, Safety::Unsafe) => " [--unsafe-fixes]",
                (false, _) => "",
            };
            out.push_str(&format!(
                "    {}{tag}: {}\n",
                self.paint(Style::new().cyan(), "fix"),
                fix.summary
            ));
            for cmd in &fix.commands {
                out.push_str(&format!("        $ {cmd}\n"));
            }
        }
        out
    }

    pub fn summary(&self, reports: &[CheckReport]) -> String {
        let s = Summary::of(reports);
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let verdict = if s.fail > 0 {
            self.paint(Style::new().red().bold(), "preflight failed")
        } else if s.error > 0 {
            self.paint(
                Style::new().magenta().bold(),
                "preflight could not decide every check",
            )
        } else {
            self.paint(Style::new().green().bold(), "preflight passed")
        };
        let mut out = format!(
            "{verdict}: {}, {}, {}, {}, {}\n",
            plural(s.pass, "passed", "passed"),
            plural(s.warn, "warning", "warnings"),
            plural(s.fail, "failed", "failed"),
            plural(s.skip, "skipped", "skipped"),
            plural(s.error, "error", "errors"),
        );
        out.push_str(&fix_hint(fixable(reports, false), "with --fix"));
        // In the pods nothing can be confirmed: those fixes need --yes.
        out.push_str(&fix_hint(fixable(reports, true), "on the nodes with --fix --yes"));
        out
    }
}

/// A check's findings as a person reads them. Findings whose sentences differ only in
/// their subject's name (thousands of leftovers of one release) are one sentence and a list
/// of names; of more than `SHOWN_ALL` lines, the first `SHOWN` and how many more (`-o json`
/// lists every one).
const SHOWN: usize = 20;
const SHOWN_ALL: usize = 25;
/// Alike findings are folded from this many on (two are read as easily as one).
const FOLD_FROM: usize = 3;
const NAMES_SHOWN: usize = 10;

/// How many different fixes (by their words) the findings carry themselves.
fn own_fixes(r: &CheckReport) -> usize {
    let mut seen: Vec<&str> = Vec::new();
    for f in r.findings.iter().filter_map(|f| f.fix.as_ref()) {
        if !seen.contains(&f.summary.as_str()) {
            seen.push(&f.summary);
        }
    }
    seen.len()
}

fn shown_text(r: &CheckReport) -> String {
    let findings: Vec<&Finding> = r.findings.iter().collect();
    let lines = shown_lines(&findings);
    lines_then(lines.iter().map(String::as_str), &r.message)
}

/// The findings' lines: alike ones folded, many cut.
fn shown_lines(findings: &[&Finding]) -> Vec<String> {
    // Alike: same code, and the same sentence once the subject's name is taken out.
    let key = |f: &Finding| {
        let name = f.subject.name();
        let text = if name.is_empty() {
            f.message.clone()
        } else {
            f.message.replace(&name, "\u{0}")
        };
        (f.code.clone(), text)
    };
    // In the order first seen; the index keeps thousands of findings linear.
    let mut groups: Vec<Vec<&Finding>> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for f in findings.iter().copied() {
        let next = groups.len();
        let i = *index.entry(key(f)).or_insert(next);
        if i == next {
            groups.push(Vec::new());
        }
        groups[i].push(f);
    }
    let mut lines: Vec<String> = Vec::new();
    for members in &groups {
        if members.len() < FOLD_FROM {
            lines.extend(members.iter().map(|f| f.message.clone()));
            continue;
        }
        lines.push(members[0].message.clone());
        let rest = &members[1..];
        let names: Vec<String> = rest.iter().take(NAMES_SHOWN).map(|f| f.subject.name()).collect();
        let more = rest.len().saturating_sub(NAMES_SHOWN);
        lines.push(format!(
            "{} more like it: {}{}",
            rest.len(),
            names.join(", "),
            if more > 0 {
                format!(", … ({more} more)")
            } else {
                String::new()
            }
        ));
    }
    if lines.len() > SHOWN_ALL {
        let cut = lines.len() - SHOWN;
        lines.truncate(SHOWN);
        lines.push(format!(
            "… and {cut} more line(s) like these (-o json lists every finding)"
        ));
    }
    lines
}

/// `[*] 2 fixable with --fix (1 more with --unsafe-fixes)`, or nothing when none is.
fn fix_hint((safe, unsafe_): (usize, usize), how: &str) -> String {
    if safe == 0 && unsafe_ == 0 {
        return String::new();
    }
    let mut line = format!("[*] {safe} fixable {how}");
    if unsafe_ > 0 {
        line.push_str(&format!(" ({unsafe_} more with --unsafe-fixes)"));
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Fix, Status};

    fn failed(node: Option<&str>) -> CheckReport {
        CheckReport {
            id: "node.conntrack",
            phase: Phase::Node,
            title: "t",
            status: Status::Fail,
            message: "m".into(),
            findings: Vec::new(),
            fix: Some(Fix::automatic("load it", vec!["modprobe nf_conntrack".into()])),
            fixed: false,
            fix_error: None,
            duration_ms: 0,
            starved: Vec::new(),
            node: node.map(String::from),
            facts: None,
        }
    }

    #[test]
    fn fixes_in_the_pods_are_counted_apart_because_they_need_yes() {
        let h = Human::new(false);
        let out = h.summary(&[failed(None), failed(Some("w1")), failed(Some("w2"))]);
        assert!(out.contains("[*] 1 fixable with --fix\n"), "{out}");
        assert!(
            out.contains("[*] 2 fixable on the nodes with --fix --yes\n"),
            "{out}"
        );
        let out = h.summary(&[failed(Some("w1"))]);
        assert!(!out.contains("fixable with --fix\n"), "{out}");
    }

    #[test]
    fn each_findings_fix_is_under_its_code_and_the_checks_after_the_summary() {
        use crate::vocab::{Code, Finding, Subject};
        const A: Code = Code {
            code: "kind-not-served",
            explain: "e",
        };
        const B: Code = Code {
            code: "api-removed-later",
            explain: "e",
        };
        let mut r = failed(None);
        r.fix = Some(Fix::manual("the check's own", vec![]));
        r.findings = vec![
            Finding::fail(&A, Subject::node("a"), "a is not served").with_fix(Fix::manual(
                "install its CRD first",
                vec!["kubectl api-resources".into()],
            )),
            Finding::warn(&B, Subject::node("b"), "b goes in 1.25")
                .with_fix(Fix::manual("render the newer version", vec![])),
            Finding::fail(&A, Subject::node("c"), "c is not served").with_fix(Fix::manual(
                "install its CRD first",
                vec!["kubectl api-resources".into()],
            )),
        ];
        let out = Human::new(false).section("cluster", &[r]);
        assert!(
            out.contains("    a is not served\n    c is not served\n    fix: install its CRD first\n        $ kubectl api-resources\n    b goes in 1.25\n    fix: render the newer version\n    m\n    fix: the check's own\n"),
            "{out}"
        );
    }

    #[test]
    fn alike_findings_are_one_sentence_and_names_and_a_long_list_is_cut() {
        use crate::vocab::{Code, Finding, Subject};
        const C: Code = Code {
            code: "c",
            explain: "e",
        };
        let mut r = failed(None);
        let leftover = |i: usize| {
            let name = format!("sd-{i:04}");
            Finding::fail(
                &C,
                Subject::object("ScopeDefinition", None, &name),
                format!("ScopeDefinition \"{name}\" exists and cannot be imported"),
            )
        };
        r.findings = (0..2000).map(leftover).collect();
        let out = Human::new(false).section("cluster", &[r.clone()]);
        assert!(out.contains("    ScopeDefinition \"sd-0000\" exists and cannot be imported\n    1999 more like it: sd-0001, sd-0002, sd-0003, sd-0004, sd-0005, sd-0006, sd-0007, sd-0008, sd-0009, sd-0010, … (1989 more)\n    m\n"), "{out}");
        // Two alike are both said; what differs beyond the name is never folded.
        r.findings.truncate(2);
        r.findings
            .push(Finding::fail(&C, Subject::node("n1"), "n1: clock ahead by 40s"));
        r.findings
            .push(Finding::fail(&C, Subject::node("n2"), "n2: clock behind by 50s"));
        r.findings
            .push(Finding::fail(&C, Subject::node("n3"), "n3: clock ahead by 60s"));
        let out = Human::new(false).section("cluster", &[r.clone()]);
        assert!(out.contains("sd-0001\" exists and cannot be imported\n    n1: clock ahead by 40s\n    n2: clock behind by 50s\n    n3: clock ahead by 60s\n    m\n"), "{out}");
        // Thirty different ones: the first twenty, then how many more.
        r.findings = (0..30)
            .map(|i| {
                Finding::fail(
                    &C,
                    Subject::node(format!("n{i}")),
                    format!("node n{i}: {i} seconds off"),
                )
            })
            .collect();
        let out = Human::new(false).section("cluster", &[r]);
        assert!(out.contains("    node n19: 19 seconds off\n    … and 10 more line(s) like these (-o json lists every finding)\n    m\n"), "{out}");
    }
}
