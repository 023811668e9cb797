use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::check::Installer;
use crate::check::{
    Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::exec;
use crate::install::HelmfileCommand;

const PLUGIN_MISSING: Code = Code {
    code: "plugin-missing",
    explain: "a helm plugin the installer's command needs (`helmfile apply`/`diff`: diff) or the profile requires is not installed",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "tools.helm-plugins",
        phase: Phase::Tools,
        title: "helm plugins the installer needs are installed",
        requires: &["tools.helm-version"],
        install: InstallUse::No,
        codes: &[PLUGIN_MISSING],
        host_network: false,
        roll_up: None,
        explain: r#"Why: `helmfile apply` and `helmfile diff` shell out to the helm-diff plugin; without it
helmfile stops with `Error: unknown command "diff" for "helm"` after the release
files have been read, half-way through an install.

What it looks at: helm's plugin directories as helm finds them — `$HELM_PLUGINS` (a
`:`-separated list), else `$HELM_DATA_HOME/plugins`, else
`${XDG_DATA_HOME:-~/.local/share}/helm/plugins` — and each `<dir>/*/plugin.yaml`'s name
and version, without starting helm again. Only when a directory or a plugin.yaml cannot be
read does it run `helm plugin list`, reading the NAME column by its header (helm 3 prints
NAME/VERSION/DESCRIPTION, helm 4 NAME/VERSION/TYPE/APIVERSION/PROVENANCE/SOURCE). Skipped
when helm itself failed tools.helm-version.

Which plugins: what the installer's command needs — `helmfile apply` and `helmfile diff`
need diff (`-- helmfile … apply`, or `install: {helmfile: …, command: apply}`); `helm
install`/`upgrade` and `helmfile sync`/`template` need none — plus the profile's
`required`. With nothing needed the check is skipped, saying so.

Fix: `helm plugin install https://github.com/databus23/helm-diff` (offline: unpack the
plugin tarball shipped with the installer into `$(helm env HELM_PLUGINS)`).

Parameters: required: [plugin, ...] (default none)"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmPlugins {
    /// Plugins the installer needs besides those its command needs.
    #[serde(default)]
    required: Vec<String>,
}

/// Why the installer's command needs a plugin: `helmfile apply` and `helmfile diff` run
/// `helm diff`; `helm install` and `helmfile sync` / `template` call no plugin.
fn needed_by(installer: Option<Installer>) -> Vec<(&'static str, &'static str)> {
    match installer {
        Some(Installer::Helmfile(c @ (HelmfileCommand::Apply | HelmfileCommand::Diff))) => {
            vec![(
                "diff",
                if c == HelmfileCommand::Apply {
                    "`helmfile apply` runs `helm diff` first"
                } else {
                    "`helmfile diff` runs `helm diff`"
                },
            )]
        }
        _ => Vec::new(),
    }
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

/// helm's plugin directories (helmpath.DataPath("plugins"), or `$HELM_PLUGINS`).
fn plugin_dirs(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Vec<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(list) = set("HELM_PLUGINS") {
        return std::env::split_paths(&list).collect();
    }
    let data = match (set("HELM_DATA_HOME"), set("XDG_DATA_HOME"), set("HOME")) {
        (Some(d), _, _) => PathBuf::from(d),
        (None, Some(x), _) => PathBuf::from(x).join("helm"),
        (None, None, Some(h)) => PathBuf::from(h).join(".local/share/helm"),
        (None, None, None) => return Vec::new(),
    };
    vec![data.join("plugins")]
}

#[derive(Deserialize)]
struct PluginYaml {
    name: String,
    #[serde(default)]
    version: Option<serde_yaml_ng::Value>,
}

/// name → version from each `<dir>/*/plugin.yaml`; Err when something there cannot be
/// read (then helm itself is asked).
fn read_plugin_dirs(dirs: &[PathBuf]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            // No directory: no plugins there (helm says the same).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        };
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let file = entry.path().join("plugin.yaml");
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                // Not a plugin (helm globs */plugin.yaml).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("{}: {e}", file.display())),
            };
            let p: PluginYaml =
                serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let version = match p.version {
                Some(serde_yaml_ng::Value::String(s)) => s,
                Some(serde_yaml_ng::Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            out.entry(p.name).or_insert(version);
        }
    }
    Ok(out)
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
            let wanted = self.wanted(ctx.installer());
            if wanted.is_empty() {
                return Outcome::skip(match ctx.installer() {
                    Some(Installer::Helm) => "helm install/upgrade needs no helm plugin, and the profile requires none",
                    Some(Installer::Helmfile(HelmfileCommand::Sync)) => {
                        "helmfile sync needs no helm plugin (apply and diff need diff), and the profile requires none"
                    }
                    Some(Installer::Helmfile(_)) => "this helmfile command needs no helm plugin, and the profile requires none",
                    None => "no install given and the profile requires no helm plugin",
                });
            }
            let Some(helm) = ctx.which("helm") else {
                return Outcome::skip("helm is not on PATH (see tools.helm-version)");
            };
            // helm's own directories first: no second helm process on the tools phase's
            // critical path (tools.helm-version already runs one).
            let dirs = plugin_dirs(|k| std::env::var_os(k));
            let installed = match read_plugin_dirs(&dirs) {
                Ok(m) => m,
                Err(_) => match self.ask_helm(ctx, &helm).await {
                    Ok(m) => m,
                    Err(o) => return o,
                },
            };
            judge(&wanted, &installed)
        })
    }
}

impl HelmPlugins {
    async fn ask_helm(&self, ctx: &Ctx, helm: &std::path::Path) -> Result<BTreeMap<String, String>, Outcome> {
        let out = match exec::run(
            helm,
            ["plugin", "list"],
            ctx.path_env.as_deref(),
            ctx.exec_timeout(),
        )
        .await
        {
            Ok(o) if o.success => o,
            Ok(o) => {
                return Err(Outcome::error(format!(
                    "`helm plugin list` failed: {}",
                    o.stderr_line()
                )))
            }
            Err(e) => return Err(Outcome::error(e)),
        };
        parse_plugin_list(&out.stdout).map_err(Outcome::error)
    }

    /// Each plugin wanted, with why: the command's, then the profile's.
    fn wanted(&self, installer: Option<Installer>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = needed_by(installer)
            .into_iter()
            .map(|(p, why)| (p.to_string(), why.to_string()))
            .collect();
        for p in &self.required {
            if !out.iter().any(|(n, _)| n == p) {
                out.push((p.clone(), "the profile requires it".to_string()));
            }
        }
        out
    }
}

fn judge(wanted: &[(String, String)], installed: &BTreeMap<String, String>) -> Outcome {
    let missing: Vec<&(String, String)> = wanted
        .iter()
        .filter(|(p, _)| !installed.contains_key(p))
        .collect();
    if missing.is_empty() {
        let found: Vec<String> = wanted
            .iter()
            .map(|(p, _)| {
                format!("{p} {}", installed.get(p).map(String::as_str).unwrap_or(""))
                    .trim()
                    .to_string()
            })
            .collect();
        return Outcome::pass(format!("installed: {}", found.join(", ")));
    }
    let found: Vec<Finding> = missing
        .iter()
        .map(|(n, why)| {
            Finding::fail(
                &PLUGIN_MISSING,
                Subject::tool(format!("helm-{n}")),
                format!("helm plugin not installed: {n} ({why})"),
            )
        })
        .collect();
    // One missing plugin says it all; of several, how many of the required.
    let summary = if found.len() > 1 {
        format!("{} of {} required plugin(s) missing", found.len(), wanted.len())
    } else {
        String::new()
    };
    Outcome::found(found, summary).with_fix(Fix::manual(
                "install the plugins (offline: unpack the plugin tarball shipped with the installer into $(helm env HELM_PLUGINS))",
                missing.iter().map(|(p, _)| install_command(p)).collect(),
            ))
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
