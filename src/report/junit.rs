use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::check::{Phase, Status};
use crate::vocab::CheckReport;

/// One testsuite per phase, one testcase per check (for CI dashboards).
pub fn render(profile: &str, reports: &[CheckReport]) -> Result<String, String> {
    let mut report = Report::new(format!("preflight ({profile})"));
    for phase in Phase::ALL {
        let in_phase: Vec<&CheckReport> = reports.iter().filter(|r| r.phase == phase).collect();
        if in_phase.is_empty() {
            continue;
        }
        let mut suite = TestSuite::new(phase.name());
        for r in in_phase {
            // Each finding with its code, so a CI page shows what a script would branch on.
            let mut lines: Vec<String> = r
                .findings
                .iter()
                .map(|f| format!("[{}] {}", f.code, f.message))
                .collect();
            if !r.message.is_empty() {
                lines.push(r.message.clone());
            }
            let mut detail = lines.join("\n");
            for fix in r.fixes() {
                detail.push_str(&format!("\nfix: {}", fix.summary));
                for c in &fix.commands {
                    detail.push_str(&format!("\n  $ {c}"));
                }
            }
            let mut status = match r.status {
                Status::Pass | Status::Warn => TestCaseStatus::success(),
                Status::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
                Status::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
                Status::Skip => TestCaseStatus::skipped(),
            };
            status.set_message(r.text().lines().next().unwrap_or(""));
            status.set_description(detail.clone());
            let mut case = TestCase::new(r.id, status);
            case.set_classname(phase.name());
            case.set_time(Duration::from_millis(r.duration_ms));
            if matches!(r.status, Status::Pass | Status::Warn) {
                case.set_system_out(format!("{}: {detail}", r.status.name()));
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string().map_err(|e| e.to_string())
}
