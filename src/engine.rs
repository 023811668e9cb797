//! Runs the planned checks phase by phase; inside a phase, concurrently, each under its own
//! deadline. Knows no check by name: ordering and prerequisites come from each check's Meta.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::check::{check_deadline, Check, CheckDef, Ctx, Outcome, Phase, Starved, Status};
pub use crate::vocab::CheckReport;

pub struct Planned {
    pub def: &'static CheckDef,
    pub check: Arc<dyn Check>,
}

/// A finding's code is a contract with the scripts that branch on it: one its check does
/// not declare (and `preflight explain` does not document) is the check's own bug, said as
/// `error` rather than shipped.
fn codes_declared(def: &CheckDef, outcome: Outcome) -> Outcome {
    let stray: Vec<&str> = outcome
        .findings
        .iter()
        .map(|f| f.code.as_str())
        .filter(|c| !def.meta.codes.iter().any(|d| d.code == *c))
        .collect();
    if stray.is_empty() {
        return outcome;
    }
    Outcome::error(format!(
        "internal: finding code(s) {} not declared by {}; what it found: {}",
        stray.join(", "),
        def.meta.id,
        outcome.text()
    ))
}

/// A check that read the install looked only at the releases that rendered: a pass or a
/// warning says which it did not see (their failure is the render check's, not repeated).
fn partial_install_noted(def: &CheckDef, ctx: &Ctx, mut outcome: Outcome) -> Outcome {
    let Some(Ok(install)) = ctx.install() else {
        return outcome;
    };
    if !def.meta.install.reads()
        || def.meta.id == crate::check::RENDER_CHECK
        || !install.any_rendered()
        || !matches!(outcome.status, Status::Pass | Status::Warn)
    {
        return outcome;
    }
    let missing: Vec<&str> = install.unrendered().map(|(r, _)| r.name.as_str()).collect();
    if !missing.is_empty() {
        outcome.message.push_str(&format!(
            "\n(not checked: release {} did not render; see {})",
            missing.join(", "),
            crate::check::RENDER_CHECK
        ));
    }
    outcome
}

/// Registry order is run order.
pub fn sort(plan: &mut [Planned]) {
    plan.sort_by_key(|p| crate::checks::run_order(p.def.meta.id));
}

/// Run everything (in `sort` order); `on_phase` sees each phase's reports when it is done.
/// `prior` holds reports of checks not in `plan` that its checks may require (the first run,
/// when `--fix` re-runs the fixed checks and their dependents).
pub async fn run(
    plan: &[Planned],
    ctx: Arc<Ctx>,
    prior: &[CheckReport],
    mut on_phase: impl FnMut(Phase, &[CheckReport]),
    progress: &crate::report::Progress,
) -> Vec<CheckReport> {
    let mut senders: HashMap<&'static str, watch::Sender<Option<Reported>>> = HashMap::new();
    for r in prior {
        let reported = (r.status, Arc::new(r.starved.clone()));
        senders.insert(r.id, watch::channel(Some(reported)).0);
    }
    for p in plan {
        senders.insert(p.def.meta.id, watch::channel(None).0);
    }
    let deadline = check_deadline(ctx.probe_timeout);
    let mut all = Vec::with_capacity(plan.len());

    for phase in Phase::ALL {
        let in_phase: Vec<&Planned> = plan.iter().filter(|p| p.def.meta.phase == phase).collect();
        if in_phase.is_empty() {
            continue;
        }
        progress.start_phase(phase, in_phase.len());
        let mut handles = Vec::new();
        for p in &in_phase {
            let def = p.def;
            let check = Arc::clone(&p.check);
            let ctx = Arc::clone(&ctx);
            let prereqs: Vec<(&'static str, watch::Receiver<Option<Reported>>)> = def
                .meta
                .requires
                .iter()
                .filter_map(|r| senders.get(r).map(|s| (*r, s.subscribe())))
                .collect();
            let done = senders.get(def.meta.id).cloned();
            let progress = progress.clone();
            handles.push(tokio::spawn(async move {
                let started = Instant::now();
                let outcome = match blocked_by(def.meta.id, prereqs).await {
                    Some(why) => Outcome::skip(why),
                    None => match tokio::time::timeout(deadline, check.run(&ctx)).await {
                        Ok(o) => o,
                        Err(_) => Outcome::error(format!(
                            "the check did not finish within {}",
                            humantime::format_duration(deadline)
                        )),
                    },
                };
                let outcome = partial_install_noted(def, &ctx, codes_declared(def, outcome));
                if let Some(tx) = done {
                    tx.send_replace(Some((outcome.status, Arc::new(outcome.starved.clone()))));
                }
                progress.check_done(def.meta.id);
                CheckReport {
                    id: def.meta.id,
                    phase: def.meta.phase,
                    title: def.meta.title,
                    status: outcome.status,
                    message: outcome.message,
                    findings: outcome.findings,
                    fix: outcome.fix,
                    fixed: false,
                    fix_error: None,
                    duration_ms: started.elapsed().as_millis() as u64,
                    starved: outcome.starved,
                    node: None,
                    facts: outcome.facts.map(|f| *f),
                }
            }));
        }
        let mut reports = Vec::with_capacity(handles.len());
        for (h, def) in handles.into_iter().zip(&in_phase) {
            reports.push(h.await.unwrap_or_else(|e| CheckReport {
                id: def.def.meta.id,
                phase,
                title: def.def.meta.title,
                status: Status::Error,
                message: format!("the check crashed: {e}"),
                findings: Vec::new(),
                fix: None,
                fixed: false,
                fix_error: None,
                duration_ms: 0,
                starved: Vec::new(),
                node: None,
                facts: None,
            }));
        }
        progress.finish_phase();
        on_phase(phase, &reports);
        all.extend(reports);
    }
    all
}

/// What a finished check tells its dependents.
type Reported = (Status, Arc<Vec<Starved>>);

/// `Some(reason)` when a prerequisite did not pass, or passed judgement on this very check
/// (cluster.api naming the permissions it lacks); waits for prerequisites still running.
async fn blocked_by(
    me: &'static str,
    prereqs: Vec<(&'static str, watch::Receiver<Option<Reported>>)>,
) -> Option<String> {
    for (id, mut rx) in prereqs {
        let reported = match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone(),
            Err(_) => None,
        };
        match reported {
            Some((_, starved)) if starved.iter().any(|s| s.check == me) => {
                let reason = starved
                    .iter()
                    .filter(|s| s.check == me)
                    .map(|s| s.reason.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                return Some(format!("skipped: {id}: {reason}"));
            }
            Some((s, _)) if s.lets_dependents_run() => {}
            // The prerequisite answered and named the checks it starves: the rest may run.
            Some((Status::Error, starved)) if !starved.is_empty() => {}
            Some((s, _)) => return Some(format!("skipped: prerequisite {id} did not pass ({})", s.name())),
            None => return Some(format!("skipped: prerequisite {id} did not report")),
        }
    }
    None
}

/// The ids of `fixed` and of every check in `plan` that requires one of them, directly or
/// through another: what must run again after a fix.
pub fn with_dependents(plan: &[Planned], fixed: &[&'static str]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = fixed.to_vec();
    loop {
        let before = out.len();
        for p in plan {
            let id = p.def.meta.id;
            if !out.contains(&id) && p.def.meta.requires.iter().any(|r| out.contains(r)) {
                out.push(id);
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// 0 nothing failed; 1 something failed; 3 something could not be decided and nothing failed.
pub fn exit_code(reports: &[CheckReport]) -> i32 {
    if reports.iter().any(|r| r.status == Status::Fail) {
        1
    } else if reports.iter().any(|r| r.status == Status::Error) {
        3
    } else {
        0
    }
}
