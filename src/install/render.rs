//! Runs the real `helm template` / `helmfile template` (never a Helm library), once per run,
//! bounded, with `--include-crds` and — when the cluster answered — its `--kube-version` and
//! `--api-versions`, so charts that branch on `.Capabilities` render as they will install.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{manifest, ChartRepo, ChartSpec, HelmfileSpec, Install, InstallSpec, ReleaseInfo};
use crate::exec;

/// The target cluster's capabilities, as `helm install` will see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// `v1.20.2`
    pub kube_version: String,
    /// `apps/v1`, `cert-manager.io/v1`, …
    pub api_versions: Vec<String>,
}

/// How to run the tools.
pub struct Tools {
    pub helm: Option<PathBuf>,
    pub helmfile: Option<PathBuf>,
    pub path_env: Option<OsString>,
    pub timeout: Duration,
}

impl Tools {
    /// helm and helmfile as the installer's PATH finds them — run as a helm plugin, the helm
    /// that called us (`$HELM_BIN`), since that is the one that will install.
    pub fn from_ctx(ctx: &crate::check::Ctx, timeout: Duration) -> Tools {
        Tools {
            helm: std::env::var_os("HELM_BIN")
                .map(PathBuf::from)
                .filter(|p| p.is_file())
                .or_else(|| ctx.which("helm")),
            helmfile: ctx.which("helmfile"),
            path_env: ctx.path_env.clone(),
            timeout,
        }
    }
}

/// Render `spec`; `Err` is helm's or helmfile's own message (already a prediction).
pub async fn render(
    spec: &InstallSpec,
    tools: &Tools,
    caps: Result<Capabilities, String>,
) -> Result<Install, String> {
    let rendered_for = caps
        .as_ref()
        .map(|c| format!("Kubernetes {}", c.kube_version))
        .map_err(Clone::clone);
    let mut install = match spec {
        InstallSpec::Chart(c) => chart(c, tools, caps.as_ref().ok()).await?,
        InstallSpec::Helmfile(h) => helmfile(h, tools, caps.as_ref().ok()).await?,
    };
    install.rendered_for = rendered_for;
    Ok(install)
}

/// The last lines of a tool's stderr: its own error, as the user would see it.
fn tool_error(tool: &str, stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    // helm's own `Error: …` line; helmfile repeats it (STDERR, COMBINED OUTPUT) after a
    // dump of the helm arguments it ran, which users do not need.
    let mut errors: Vec<&str> = Vec::new();
    for l in &lines {
        let t = l.trim();
        if t.starts_with("Error:") && !errors.contains(&t) {
            errors.push(t);
        }
    }
    if !errors.is_empty() {
        return format!("{tool} failed:\n{}", errors.join("\n"));
    }
    if lines.is_empty() {
        return format!("{tool} failed, saying nothing on stderr");
    }
    let tail = &lines[lines.len().saturating_sub(12)..];
    format!("{tool} failed:\n{}", tail.join("\n"))
}

async fn chart(c: &ChartSpec, tools: &Tools, caps: Option<&Capabilities>) -> Result<Install, String> {
    let helm = tools
        .helm
        .as_ref()
        .ok_or("cannot render the chart: helm is not on PATH (see tools.helm-version)")?;
    let mut args: Vec<String> = vec![
        "template".into(),
        c.release.clone(),
        c.chart.clone(),
        "--namespace".into(),
        c.namespace.clone(),
    ];
    if let Some(v) = &c.version {
        args.extend(["--version".into(), v.clone()]);
    }
    for v in &c.values {
        args.extend(["--values".into(), v.display().to_string()]);
    }
    for s in &c.set {
        args.extend(["--set".into(), s.clone()]);
    }
    for s in &c.set_string {
        args.extend(["--set-string".into(), s.clone()]);
    }
    if !c.skip_crds {
        args.push("--include-crds".into());
    }
    if c.no_hooks {
        args.push("--no-hooks".into());
    }
    if let Some(caps) = caps {
        args.extend(["--kube-version".into(), caps.kube_version.clone()]);
        for av in &caps.api_versions {
            args.extend(["--api-versions".into(), av.clone()]);
        }
    }
    let out = exec::run(helm, &args, tools.path_env.as_deref(), tools.timeout).await?;
    if !out.success {
        return Err(tool_error(
            &format!("helm template {} {}", c.release, c.chart),
            &out.stderr,
        ));
    }
    Ok(Install {
        what: format!(
            "chart {} as release {} in namespace {}",
            c.chart, c.release, c.namespace
        ),
        releases: vec![ReleaseInfo {
            name: c.release.clone(),
            namespace: c.namespace.clone(),
            chart: c.chart.clone(),
            version: c.version.clone(),
            create_namespace: c.create_namespace,
            needs: Vec::new(),
        }],
        objects: manifest::parse(&out.stdout, 0)?,
        repositories: Vec::new(),
        rendered_for: Err(String::new()),
        failed: None,
    })
}

/// The part of `helmfile build`'s state this model reads.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct State {
    #[serde(default)]
    releases: Vec<StateRelease>,
    #[serde(default)]
    repositories: Vec<StateRepo>,
    #[serde(default)]
    helm_defaults: Option<HelmDefaults>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateRelease {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    chart: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    create_namespace: Option<bool>,
    #[serde(default)]
    installed: Option<bool>,
    #[serde(default)]
    needs: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateRepo {
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    oci: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct HelmDefaults {
    #[serde(default)]
    create_namespace: Option<bool>,
}

/// helmfile's install order: a release after the releases it `needs`, otherwise as
/// written. A cycle or a need of no selected release leaves the rest as written (helmfile
/// itself reports those).
fn in_needs_order(releases: Vec<ReleaseInfo>) -> Vec<ReleaseInfo> {
    let matches = |need: &str, r: &ReleaseInfo| {
        let parts: Vec<&str> = need.split('/').collect();
        match parts.as_slice() {
            [name] => r.name == *name,
            [.., ns, name] => r.name == *name && (ns.is_empty() || r.namespace == *ns),
            [] => false,
        }
    };
    let mut placed: Vec<ReleaseInfo> = Vec::with_capacity(releases.len());
    let mut left = releases;
    while !left.is_empty() {
        let ready = left.iter().position(|r| {
            r.needs
                .iter()
                .all(|n| placed.iter().any(|p| matches(n, p)) || !left.iter().any(|o| matches(n, o)))
        });
        match ready {
            Some(i) => placed.push(left.remove(i)),
            None => {
                placed.append(&mut left);
            }
        }
    }
    placed
}

/// Removes the render directory however the render ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> Result<TempDir, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("preflight-render-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(TempDir(dir))
}

async fn helmfile(h: &HelmfileSpec, tools: &Tools, caps: Option<&Capabilities>) -> Result<Install, String> {
    let bin = tools
        .helmfile
        .as_ref()
        .ok_or("cannot render the helmfile: helmfile is not on PATH (see tools.helmfile-on-path)")?;
    let mut base: Vec<String> = vec!["--file".into(), h.file.display().to_string()];
    if let Some(e) = &h.environment {
        base.extend(["--environment".into(), e.clone()]);
    }
    for s in &h.selectors {
        base.extend(["--selector".into(), s.clone()]);
    }
    // The state as helmfile resolves it: releases (selected), repositories, defaults.
    let mut args = base.clone();
    args.push("build".into());
    let out = exec::run(bin, &args, tools.path_env.as_deref(), tools.timeout).await?;
    if !out.success {
        return Err(tool_error(
            &format!("helmfile --file {} build", h.file.display()),
            &out.stderr,
        ));
    }
    let mut releases = Vec::new();
    let mut repositories = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&out.stdout) {
        let state = State::deserialize(doc).map_err(|e| format!("helmfile build output: {e}"))?;
        let default_create = state
            .helm_defaults
            .and_then(|d| d.create_namespace)
            .unwrap_or(true);
        for r in state.releases {
            if r.installed == Some(false) {
                continue;
            }
            releases.push(ReleaseInfo {
                name: r.name,
                namespace: r
                    .namespace
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "default".to_string()),
                chart: r.chart,
                version: r.version.filter(|v| !v.is_empty()),
                create_namespace: r.create_namespace.unwrap_or(default_create),
                needs: r.needs,
            });
        }
        for r in state.repositories {
            let url = if r.oci && !r.url.starts_with("oci://") {
                format!("oci://{}", r.url)
            } else {
                r.url
            };
            repositories.push(ChartRepo { name: r.name, url });
        }
    }
    let releases = in_needs_order(releases);
    // One directory per release, named so each object is attributed to its release.
    let dir = temp_dir()?;
    let mut args = base;
    args.extend([
        "template".into(),
        "--include-crds".into(),
        "--output-dir".into(),
        dir.0.display().to_string(),
        "--output-dir-template".into(),
        "{{ .OutputDir }}/{{ .Release.Name }}@{{ .Release.Namespace }}".into(),
    ]);
    if let Some(caps) = caps {
        args.extend([
            "--kube-version".into(),
            caps.kube_version.trim_start_matches('v').to_string(),
        ]);
        if !caps.api_versions.is_empty() {
            let av: Vec<String> = caps
                .api_versions
                .iter()
                .map(|a| format!("--api-versions {a}"))
                .collect();
            args.extend(["--args".into(), av.join(" ")]);
        }
    }
    let out = exec::run(bin, &args, tools.path_env.as_deref(), tools.timeout).await?;
    if !out.success {
        // The releases and repositories are known: chart-repos can still say which
        // repository lacks which version.
        return Ok(Install {
            what: format!("helmfile {}", h.file.display()),
            releases,
            objects: Vec::new(),
            repositories,
            rendered_for: Err(String::new()),
            failed: Some(tool_error(
                &format!("helmfile --file {} template", h.file.display()),
                &out.stderr,
            )),
        });
    }
    let mut objects = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir.0)
        .map_err(|e| format!("cannot read {}: {e}", dir.0.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for release_dir in entries {
        let dir_name = release_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (name, ns) = dir_name.rsplit_once('@').unwrap_or((dir_name.as_str(), ""));
        let index = releases
            .iter()
            .position(|r| r.name == name && (ns.is_empty() || r.namespace == ns))
            .or_else(|| releases.iter().position(|r| r.name == name));
        let Some(index) = index else { continue };
        let mut files = Vec::new();
        yaml_files(&release_dir, &mut files);
        files.sort();
        for f in files {
            let text =
                std::fs::read_to_string(&f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
            objects.extend(manifest::parse(&text, index)?);
        }
    }
    Ok(Install {
        what: format!("helmfile {}", h.file.display()),
        releases,
        objects,
        repositories,
        rendered_for: Err(String::new()),
        failed: None,
    })
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(name: &str, ns: &str, needs: &[&str]) -> ReleaseInfo {
        ReleaseInfo {
            name: name.into(),
            namespace: ns.into(),
            chart: "c".into(),
            version: None,
            create_namespace: true,
            needs: needs.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn names(r: Vec<ReleaseInfo>) -> Vec<String> {
        r.into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn releases_follow_their_needs_and_otherwise_stay_as_written() {
        let order = in_needs_order(vec![
            rel("web", "app", &["db/mysql", "redis"]),
            rel("mysql", "db", &[]),
            rel("redis", "cache", &["kube/db/mysql"]),
            rel("docs", "app", &[]),
        ]);
        assert_eq!(names(order), ["mysql", "redis", "web", "docs"]);
        // A cycle, or a need of no selected release, leaves the rest as written.
        let order = in_needs_order(vec![
            rel("a", "x", &["b"]),
            rel("b", "x", &["a"]),
            rel("c", "x", &["gone"]),
        ]);
        assert_eq!(names(order), ["c", "a", "b"]);
        // Another namespace's release of the same name is not the one needed.
        let order = in_needs_order(vec![rel("web", "app", &["db/mysql"]), rel("mysql", "other", &[])]);
        assert_eq!(names(order), ["web", "mysql"]);
    }
}
