use std::collections::BTreeMap;

use serde::Deserialize;

use crate::check::{Check, CheckDef, CheckFuture, Ctx, Fix, Meta, Outcome, Phase};
use crate::exec;

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "tools.helm-plugins",
        phase: Phase::Tools,
        title: "helm plugins the installer needs are installed",
        requires: &["tools.helm-version"],
        reads_install: false,
        explain: r#"Why: `helmfile apply` and `helmfile diff` shell out to the helm-diff plugin; without it
helmfile stops with `Error: unknown command "diff" for "helm"` after the release
files have been read, half-way through an install.

What it looks at: `helm plugin list` (which honours HELM_PLUGINS), reading the NAME
column by its header, because helm 3 prints NAME/VERSION/DESCRIPTION and helm 4
prints NAME/VERSION/TYPE/APIVERSION/PROVENANCE/SOURCE. Skipped when helm itself
failed tools.helm-version.

Fix: `helm plugin install https://github.com/databus23/helm-diff` (offline: unpack the
plugin tarball shipped with the installer into `$(helm env HELM_PLUGINS)`).

Parameters: required: [diff]"#,
    },
};

fn default_required() -> Vec<String> {
    vec!["diff".to_string()]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmPlugins {
    #[serde(default = "default_required")]
    required: Vec<String>,
}

/// `helm plugin list` → name → version, reading columns by their header names.
pub fn parse_plugin_list(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .ok_or("`helm plugin list` printed nothing")?
        .split('\t')
        .map(|c| c.trim().to_ascii_uppercase())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let name_col =
        col("NAME").ok_or_else(|| format!("no NAME column in `helm plugin list` header {header:?}"))?;
    let version_col = col("VERSION");
    Ok(lines
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('\t').map(str::trim).collect();
            let name = cells.get(name_col)?.to_string();
            let version = version_col.and_then(|c| cells.get(c)).unwrap_or(&"").to_string();
            Some((name, version))
        })
        .collect())
}

fn install_command(plugin: &str) -> String {
    match plugin {
        "diff" => "helm plugin install https://github.com/databus23/helm-diff".to_string(),
        "secrets" => "helm plugin install https://github.com/jkroepke/helm-secrets".to_string(),
        "s3" => "helm plugin install https://github.com/hypnoglow/helm-s3".to_string(),
        "git" => "helm plugin install https://github.com/aslafy-z/helm-git".to_string(),
        other => format!("helm plugin install <path or URL of the {other} plugin>"),
    }
}

impl Check for HelmPlugins {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            if self.required.is_empty() {
                return Outcome::skip("the profile requires no helm plugins");
            }
            let Some(helm) = ctx.which("helm") else {
                return Outcome::skip("helm is not on PATH (see tools.helm-version)");
            };
            let out = match exec::run(
                &helm,
                ["plugin", "list"],
                ctx.path_env.as_deref(),
                ctx.exec_timeout(),
            )
            .await
            {
                Ok(o) if o.success => o,
                Ok(o) => return Outcome::error(format!("`helm plugin list` failed: {}", o.stderr_line())),
                Err(e) => return Outcome::error(e),
            };
            let installed = match parse_plugin_list(&out.stdout) {
                Ok(m) => m,
                Err(e) => return Outcome::error(e),
            };
            let missing: Vec<&String> = self
                .required
                .iter()
                .filter(|p| !installed.contains_key(*p))
                .collect();
            if missing.is_empty() {
                let found: Vec<String> = self
                    .required
                    .iter()
                    .map(|p| {
                        format!("{p} {}", installed.get(p).map(String::as_str).unwrap_or(""))
                            .trim()
                            .to_string()
                    })
                    .collect();
                return Outcome::pass(format!("installed: {}", found.join(", ")));
            }
            let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            let why = if names.contains(&"diff") {
                " (`helmfile apply` and `helmfile diff` need diff)"
            } else {
                ""
            };
            Outcome::fail(format!("helm plugin not installed: {}{why}", names.join(", "))).with_fix(Fix::manual(
                "install the plugins (offline: unpack the plugin tarball shipped with the installer into $(helm env HELM_PLUGINS))",
                missing.iter().map(|p| install_command(p)).collect(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_plugin_list;

    #[test]
    fn helm3_and_helm4_layouts() {
        let h3 = "NAME\tVERSION\tDESCRIPTION                           \ndiff\t3.9.4  \tPreview helm upgrade changes as a diff\n";
        let h4 = "NAME\tVERSION\tTYPE  \tAPIVERSION\tPROVENANCE\tSOURCE \ndiff\t3.9.4  \tcli/v1\tlegacy    \tunknown   \tunknown\n";
        for t in [h3, h4] {
            let m = parse_plugin_list(t).unwrap();
            assert_eq!(m.get("diff").map(String::as_str), Some("3.9.4"));
            assert_eq!(m.len(), 1);
        }
        assert!(parse_plugin_list("NAME\tVERSION\tDESCRIPTION\n")
            .unwrap()
            .is_empty());
        assert!(parse_plugin_list("").is_err());
    }
}
