//! `--fix`: plan, confirm, apply, check again. The safety rules of SPEC "Fixes": only what a
//! check just observed, the plan before any change, a prompt on a terminal, a refusal (by the command line, before anything runs) with
//! no terminal and no `--yes`, unsafe fixes only with `--unsafe-fixes`.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

use crate::check::{Ctx, Safety, Status};
use crate::engine::{self, CheckReport, Planned};

pub struct FixOptions {
    pub unsafe_fixes: bool,
    pub dry_run: bool,
    pub yes: bool,
}

pub enum FixRun {
    /// Nothing to apply, a dry run, or the operator said no: the reports stand as they are.
    Unchanged,
    Applied,
}

/// Plan lines go where the report goes for people, and to stderr when stdout is a document.
pub struct PlanOut {
    pub to_stdout: bool,
}

impl PlanOut {
    fn line(&self, s: &str) {
        if self.to_stdout {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{s}");
            let _ = o.flush();
        } else {
            eprintln!("{s}");
        }
    }
}

/// Apply the fixes of `reports`, re-run what was fixed, and update `reports` in place.
pub async fn run(
    plan: &[Planned],
    reports: &mut [CheckReport],
    ctx: &Arc<Ctx>,
    opts: &FixOptions,
    out: &PlanOut,
) -> FixRun {
    // A node's report (--all-nodes) was fixed, or not, in that node's pod.
    let fixable: Vec<usize> = (0..reports.len())
        .filter(|&i| reports[i].auto_fix().is_some() && reports[i].node.is_none())
        .collect();
    let (chosen, hidden): (Vec<usize>, Vec<usize>) = fixable.into_iter().partition(|&i| {
        reports[i]
            .fix
            .as_ref()
            .is_some_and(|f| f.safety == Safety::Safe || opts.unsafe_fixes)
    });
    if chosen.is_empty() && hidden.is_empty() {
        out.line("fix: nothing to fix automatically");
        return FixRun::Unchanged;
    }

    out.line("fix plan");
    out.line("--------");
    for &i in chosen.iter().chain(&hidden) {
        let r = &reports[i];
        let Some(fix) = &r.fix else { continue };
        let tag = match (fix.safety, chosen.contains(&i)) {
            (Safety::Safe, _) => "safe",
            (Safety::Unsafe, true) => "unsafe",
            (Safety::Unsafe, false) => "unsafe, skipped without --unsafe-fixes",
        };
        out.line(&format!("[{tag}] {}: {}", r.id, fix.summary));
        for c in &fix.commands {
            out.line(&format!("        {c}"));
        }
    }
    if chosen.is_empty() {
        out.line(&format!(
            "fix: nothing to fix automatically ({} unsafe fixes need --unsafe-fixes)",
            hidden.len()
        ));
        return FixRun::Unchanged;
    }
    if !hidden.is_empty() {
        out.line(&format!("{} more with --unsafe-fixes", hidden.len()));
    }
    if opts.dry_run {
        out.line("dry run: nothing was changed");
        return FixRun::Unchanged;
    }
    // Without --yes stdin is a terminal: the command line refused the run up front otherwise
    // (and an unanswered prompt reads as "no").
    if !opts.yes {
        eprint!(
            "Apply {} fix{}? [y/N] ",
            chosen.len(),
            if chosen.len() == 1 { "" } else { "es" }
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            out.line("nothing was changed");
            return FixRun::Unchanged;
        }
    }

    // Apply in run order, one at a time: a cluster delete may matter to a later check.
    let mut applied: Vec<&'static str> = Vec::new();
    for &i in &chosen {
        let Some(p) = plan.iter().find(|p| p.def.meta.id == reports[i].id) else {
            continue;
        };
        match apply_one(p, ctx).await {
            Ok(done) => {
                out.line(&format!("fixed {}: {done}", reports[i].id));
                applied.push(reports[i].id);
            }
            Err(e) => {
                out.line(&format!("fix of {} failed: {e}", reports[i].id));
                let r = &mut reports[i];
                r.status = Status::Fail;
                r.message = format!("{}\nfix failed: {e}", r.message);
                r.fix_error = Some(e);
            }
        }
    }
    if applied.is_empty() {
        return FixRun::Applied;
    }
    // Check again through the engine — deadlines, panic isolation, prerequisites — the fixed
    // checks and everything that depends on them, against the first run's other reports.
    let again_ids = engine::with_dependents(plan, &applied);
    let again: Vec<Planned> = plan
        .iter()
        .filter(|p| again_ids.contains(&p.def.meta.id))
        .map(|p| Planned {
            def: p.def,
            check: Arc::clone(&p.check),
        })
        .collect();
    let prior: Vec<CheckReport> = reports
        .iter()
        .filter(|r| !again_ids.contains(&r.id))
        .cloned()
        .collect();
    let quiet = crate::report::Progress::new(false);
    // The fixes changed the cluster: the re-check reads the objects again.
    ctx.kube.forget_objects();
    let fresh = engine::run(&again, Arc::clone(ctx), &prior, |_, _| {}, &quiet).await;
    for new in fresh {
        if let Some(r) = reports.iter_mut().find(|r| r.id == new.id) {
            let fixed = applied.contains(&new.id);
            let duration_ms = r.duration_ms + new.duration_ms;
            *r = CheckReport {
                fixed,
                duration_ms,
                ..new
            };
        }
    }
    FixRun::Applied
}

/// One check's `apply`, in its own task (a panic is a failed fix, not a crash) and under a
/// deadline: the check's own, plus the time a fix may wait for the cluster to settle.
async fn apply_one(p: &Planned, ctx: &Arc<Ctx>) -> Result<String, String> {
    let deadline = crate::check::check_deadline(ctx.probe_timeout) + Duration::from_secs(120);
    let check = Arc::clone(&p.check);
    let task_ctx = Arc::clone(ctx);
    let mut task = tokio::spawn(async move { check.apply(&task_ctx).await });
    match tokio::time::timeout(deadline, &mut task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(format!("the fix crashed: {e}")),
        Err(_) => {
            task.abort();
            Err(format!(
                "the fix did not finish within {}",
                humantime::format_duration(deadline)
            ))
        }
    }
}
