//! Rendering the results: human (linkerd-style), JSON (schema 1), JUnit. And the progress
//! spinner, which only ever goes to stderr.

mod human;
mod json;
mod junit;

pub use human::Human;
pub use json::{render as json, termination, Compact, InstallSummary, SCHEMAS, TERMINATION_LIMIT};
pub use junit::render as junit;

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::check::{Phase, Safety, Status};
use crate::vocab::CheckReport;

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
}

impl Summary {
    pub fn of(reports: &[CheckReport]) -> Self {
        let mut s = Summary::default();
        for r in reports {
            match r.status {
                Status::Pass => s.pass += 1,
                Status::Warn => s.warn += 1,
                Status::Fail => s.fail += 1,
                Status::Skip => s.skip += 1,
                Status::Error => s.error += 1,
            }
        }
        s
    }
}

/// How many problems `--fix` could repair, and how many more `--unsafe-fixes` would.
/// Automatic fixes (safe, unsafe) among `reports`: here (`on_nodes` false) or in the pods on
/// the nodes, where `--fix` needs `--yes`.
pub fn fixable(reports: &[CheckReport], on_nodes: bool) -> (usize, usize) {
    let (mut safe, mut unsafe_) = (0, 0);
    for f in reports
        .iter()
        .filter(|r| r.node.is_some() == on_nodes)
        .filter_map(CheckReport::auto_fix)
    {
        match f.safety {
            Safety::Safe => safe += 1,
            Safety::Unsafe => unsafe_ += 1,
        }
    }
    (safe, unsafe_)
}

/// A spinner on stderr while a phase runs; a no-op unless stderr is a terminal.
#[derive(Clone)]
pub struct Progress(Option<(MultiProgress, ProgressBar)>);

impl Progress {
    pub fn new(enabled: bool) -> Self {
        if !enabled {
            return Progress(None);
        }
        let multi = MultiProgress::new();
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Progress(Some((multi, bar)))
    }

    /// Another line under the phases' (the nodes' pods): `None` when there is no terminal.
    pub fn line(&self) -> Option<ProgressBar> {
        let (multi, _) = self.0.as_ref()?;
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        Some(bar)
    }

    pub fn start_phase(&self, phase: Phase, checks: usize) {
        if let Some((_, b)) = &self.0 {
            b.reset();
            b.set_length(checks as u64);
            b.set_message(format!("{}: running {checks} checks", phase.name()));
            b.enable_steady_tick(Duration::from_millis(100));
        }
    }

    pub fn check_done(&self, id: &str) {
        if let Some((_, b)) = &self.0 {
            b.inc(1);
            b.set_message(format!("{} done", id));
        }
    }

    pub fn finish_phase(&self) {
        if let Some((_, b)) = &self.0 {
            b.disable_steady_tick();
            b.finish_and_clear();
        }
    }
}
