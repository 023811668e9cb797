use console::Style;

use super::{fixable, Summary};
use crate::check::{Phase, Safety, Status};
use crate::vocab::{full_text, CheckReport};

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
            for line in shown_text(r).lines() {
                out.push_str(&format!("    {line}\n"));
            }
            for fix in r.fixes() {
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
        }
        out.push('\n');
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

/// `[*] 2 fixable with --fix (1 more with --unsafe-fixes)`, or nothing when none is.
/// A check's findings as a person reads them: the first `SHOWN`, then how many more (a
/// cluster with thousands of leftovers stays one screen; `-o json` lists every one).
const SHOWN: usize = 10;

fn shown_text(r: &CheckReport) -> String {
    if r.findings.len() <= SHOWN + 1 {
        return r.text();
    }
    let mut text = full_text(&r.findings[..SHOWN], "");
    text.push_str(&format!(
        "\n… and {} more finding(s) like these (-o json lists every one)",
        r.findings.len() - SHOWN
    ));
    if !r.message.is_empty() {
        text.push('\n');
        text.push_str(&r.message);
    }
    text
}

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
    fn thousands_of_findings_show_the_first_ten_and_a_count() {
        use crate::vocab::{Code, Finding, Subject};
        const C: Code = Code {
            code: "c",
            explain: "e",
        };
        let mut r = failed(None);
        r.findings = (0..2000)
            .map(|i| Finding::fail(&C, Subject::node(format!("n{i}")), format!("finding {i}")))
            .collect();
        let out = Human::new(false).section("cluster", &[r.clone()]);
        assert!(
            out.contains(
                "    finding 9\n    … and 1990 more finding(s) like these (-o json lists every one)\n    m\n"
            ),
            "{out}"
        );
        assert!(!out.contains("finding 10\n"), "{out}");
        // Eleven are all shown: a line saying "1 more" would hide nothing.
        r.findings.truncate(11);
        let out = Human::new(false).section("cluster", &[r]);
        assert!(out.contains("    finding 10\n    m\n"), "{out}");
    }
}
