use serde::Deserialize;

use super::{apply_bundled, offer_bundled};
use super::{default_search_dirs, locate, off_path_problem, path_display, Located};
use crate::check::{
    ApplyFuture, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Observed, Outcome,
    Phase, Subject,
};
use crate::exec;

const HELMFILE_MISSING: Code = Code {
    code: "helmfile-missing",
    explain: "helmfile is neither on PATH nor in the usual directories: the installer's `helmfile sync` cannot start",
};
const HELMFILE_NOT_ON_PATH: Code = Code {
    code: "helmfile-not-on-path",
    explain: "helmfile is in a directory that is not on PATH (seed 004: /usr/local/bin missing from root's PATH), or not executable",
};
const HELMFILE_BROKEN: Code = Code {
    code: "helmfile-broken",
    explain: "the helmfile found does not run (wrong architecture, truncated download)",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "tools.helmfile-on-path",
        phase: Phase::Tools,
        title: "helmfile is on PATH",
        requires: &[],
        install: InstallUse::No,
        codes: &[HELMFILE_MISSING, HELMFILE_NOT_ON_PATH, HELMFILE_BROKEN],
        host_network: false,
        roll_up: None,
        explain: r#"Why: installers call `helmfile sync` from a script. When the shell cannot find
helmfile the install stops at once. BlueKing CE 7 users saw (seed 004):

    scripts/setup_bkce7.sh: line 568: helmfile: command not found
    [ERROR] fail to install local-pv

The installer had copied helmfile to /usr/local/bin, but the user's PATH had
/usr/local/sbin and not /usr/local/bin, so `command -v helmfile` failed.

What it looks at: `helmfile` on PATH (as the installer's shell resolves it), and its
version from the build information Go embeds in the binary (what `go version -m` shows:
an ELF for this machine whose `-X ….version=` stamp names it), without starting it; only
when that cannot be read (a wrapper script, another architecture, a damaged file) does it
run `helmfile --version` to see whether it runs at all. When it is not on PATH it looks in the usual install
directories (`search_dirs`, default /usr/local/bin, /usr/bin, /bin, /usr/local/sbin,
/usr/sbin, /opt/bin, /snap/bin, under --host-root) and says exactly which directory
PATH lacks.

Fix: add that directory to PATH (`export PATH="$PATH:/usr/local/bin"`, and the same line
in ~/.bashrc), or install helmfile into a directory on PATH.

Skipped when the install is a chart for `helm install` / `helm upgrade` (`--chart`, `--
helm …`): helm needs no helmfile (`always: true` checks it anyway).

Parameters: search_dirs: [dir, ...], always: false"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmfileOnPath {
    #[serde(default = "default_search_dirs")]
    search_dirs: Vec<String>,
    /// The installer's own bin directory (seed 004's installer ships helm and helmfile).
    #[serde(default)]
    bundled_bin_dir: Option<String>,
    /// Check helmfile even when the install is a chart for helm (which needs none).
    #[serde(default)]
    always: bool,
    /// The bundled binary the last run offered to install.
    #[serde(skip)]
    offered: Observed<super::BundledInstall>,
}

impl Check for HelmfileOnPath {
    fn apply<'a>(&'a self, ctx: &'a Ctx) -> ApplyFuture<'a> {
        Box::pin(async move { apply_bundled(ctx, &self.offered) })
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            if !self.always && ctx.installer() == Some(crate::check::Installer::Helm) {
                return Outcome::skip("the install runs with helm install/upgrade, which needs no helmfile");
            }
            let checked = self.check(ctx).await;
            offer_bundled(ctx, &self.bundled_bin_dir, &self.offered, "helmfile", checked)
        })
    }
}

impl HelmfileOnPath {
    /// The outcome, and whether a newer binary in /usr/local/bin would fix it.
    async fn check(&self, ctx: &Ctx) -> (Outcome, bool) {
        match locate(ctx, "helmfile", &self.search_dirs) {
            Located::OnPath(path) => {
                // Go stamps the version into the binary: read there, helmfile need not start
                // (the tools phase then waits on one process, helm's).
                if let Some(v) = crate::gobin::read(&path).and_then(|b| b.program_version()) {
                    return (
                        Outcome::pass(format!(
                            "helmfile version {v} at {} (its Go build info; not started)",
                            path.display()
                        )),
                        false,
                    );
                }
                let broken = match exec::run(&path, ["--version"], ctx.path_env.as_deref(), ctx.exec_timeout()).await {
                    Ok(o) if o.success => {
                        let version = o.stdout.lines().next().unwrap_or("").trim().to_string();
                        return (Outcome::pass(format!("{version} at {}", path.display())), false);
                    }
                    Ok(o) => format!(
                        "`helmfile --version` exited with {} {}",
                        o.code.map_or("a signal".to_string(), |c| c.to_string()),
                        o.stderr_line()
                    ),
                    Err(e) => e,
                };
                let fix = Fix::manual(
                    format!("replace {} with a working linux-amd64 helmfile", path.display()),
                    vec![format!("file {}", path.display())],
                );
                (
                    Outcome::problem(Finding::fail(
                        &HELMFILE_BROKEN,
                        Subject::tool(path.display().to_string()),
                        format!("helmfile at {} does not run: {broken}", path.display()),
                    ))
                    .with_fix(fix),
                    true,
                )
            }
            Located::OffPath { dir, executable } => {
                let (message, fix) = off_path_problem(ctx, "helmfile", &dir, executable);
                (
                    Outcome::problem(Finding::fail(&HELMFILE_NOT_ON_PATH, Subject::tool("helmfile"), message)).with_fix(fix),
                    false,
                )
            }
            Located::Missing => (
                Outcome::problem(Finding::fail(
                    &HELMFILE_MISSING,
                    Subject::tool("helmfile"),
                    format!(
                        "helmfile is not on PATH ({}) nor in {}",
                        path_display(ctx),
                        self.search_dirs.join(", ")
                    ),
                ))
                .with_fix(Fix::manual(
                    "install helmfile into /usr/local/bin (offline: copy the helmfile binary shipped with the installer; online: the linux_amd64 tarball from github.com/helmfile/helmfile/releases)",
                    vec!["install -m 0755 ./helmfile /usr/local/bin/helmfile".to_string()],
                )),
                true,
            ),
        }
    }
}
