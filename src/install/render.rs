//! Runs the real `helm template` / `helmfile template` (never a Helm library), once per run,
//! bounded, with `--include-crds` and — when the cluster answered — its `--kube-version` and
//! `--api-versions`, so charts that branch on `.Capabilities` render as they will install.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use futures::StreamExt;

use super::helmfile_errors;
use super::{
    manifest, ChartRepo, ChartSpec, HelmBinary, HelmfileHook, HelmfileSpec, Install, InstallSpec, Object,
    ReleaseInfo, RenderState,
};
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
    /// A line on the terminal saying how far a long render is (`None`: no terminal).
    pub progress: Option<indicatif::ProgressBar>,
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

/// Why there is no install model at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The command line itself is wrong (no such chart path or values file, a malformed
    /// `--set`, an invalid release name): helm's sentence; a usage error (exit 2).
    Usage(String),
    /// Nothing could be rendered (helm or helmfile missing, the helmfile's state unreadable).
    Other(String),
}

/// Render `spec`: every release on its own. A release helm or helmfile refuses is that
/// release's `RenderState::Failed` (a prediction); the others are rendered as usual.
pub async fn render(
    spec: &InstallSpec,
    tools: &Tools,
    caps: Result<Capabilities, String>,
) -> Result<Install, RenderError> {
    let rendered_for = caps
        .as_ref()
        .map(|c| format!("Kubernetes {}", c.kube_version))
        .map_err(Clone::clone);
    let say = |m: String| {
        if let Some(b) = &tools.progress {
            b.set_message(m);
        }
    };
    say(match spec {
        InstallSpec::Chart(c) => format!("rendering chart {} (helm template)", c.chart),
        InstallSpec::Helmfile(h) => format!("reading helmfile {}", h.file.display()),
    });
    let mut install = match spec {
        InstallSpec::Chart(c) => chart(c, tools, caps.as_ref().ok()).await?,
        InstallSpec::Helmfile(h) => helmfile(h, tools, caps.as_ref().ok())
            .await
            .map_err(RenderError::Other)?,
    };
    install.rendered_for = rendered_for;
    Ok(install)
}

/// Progress lines helmfile prints on stderr while it works: never the error.
const PROGRESS: &[&str] = &[
    "Building dependency",
    "Templating release",
    "wrote ",
    "skipping missing values file",
    "Adding repo",
    "Updating repo",
    "Listing releases",
    "Fetching ",
    "Pulling ",
    "Affected releases",
    "hook[",
    "WARNING:",
    "walk.go:",
    "Use --debug flag",
];

/// The one sentence of a failed helm / helmfile run that says why: helm's `Error:` line
/// (helmfile repeats it after a dump of the arguments it ran), otherwise helmfile's own
/// `in ./file: …` line, otherwise its last line that is not progress output.
pub fn one_sentence(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut errors: Vec<&str> = Vec::new();
    for l in &lines {
        if let Some(e) = l.strip_prefix("Error:") {
            let e = e.trim();
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
    if !errors.is_empty() {
        return errors.join("; ");
    }
    if let Some(l) = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("in ") && l.contains(": "))
    {
        return l.to_string();
    }
    // helmfile panics on some errors (a helmBinary that is not there): the panic's line,
    // not its goroutine dump.
    if let Some(l) = lines.iter().find_map(|l| l.strip_prefix("panic: ")) {
        return l.trim_start_matches("unexpected error: ").to_string();
    }
    lines
        .iter()
        .rev()
        .find(|l| !PROGRESS.iter().any(|p| l.starts_with(p)))
        .map(|l| l.to_string())
        .unwrap_or_else(|| "it failed, saying nothing on stderr".to_string())
}

/// helm's refusal of a chart for the cluster's version.
pub fn refused_kube_version(sentence: &str) -> bool {
    sentence.contains("chart requires kubeVersion:")
}

/// The chart's `crds/` (`helm show crds`): `helm install` creates them *before* it judges
/// the chart's kubeVersion, so a chart refused for the cluster's version still leaves them
/// behind. Empty when helm cannot show them.
async fn crds_of(
    helm: &Path,
    chart: &str,
    version: Option<&str>,
    tools: &Tools,
    release: usize,
) -> Vec<Object> {
    let mut args = vec!["show".to_string(), "crds".to_string(), chart.to_string()];
    if let Some(v) = version {
        args.extend(["--version".to_string(), v.to_string()]);
    }
    let Ok(out) = exec::run(helm, &args, tools.path_env.as_deref(), tools.timeout).await else {
        return Vec::new();
    };
    if !out.success {
        return Vec::new();
    }
    let mut objects = manifest::parse(&out.stdout, release).unwrap_or_default();
    for o in &mut objects {
        o.origin = super::Origin::Crd;
        if o.source.is_empty() {
            o.source = format!("{chart} crds/");
        }
    }
    objects
}

/// helm's sentences for a mistake on the command line rather than in the install.
fn is_usage(sentence: &str) -> bool {
    (sentence.starts_with("path \"") && sentence.ends_with("\" not found"))
        || (sentence.starts_with("open ") && sentence.ends_with("no such file or directory"))
        || sentence.starts_with("failed parsing --set")
        || sentence.contains("invalid release name")
        || (sentence.starts_with("release name") && sentence.contains("exceeds max length"))
        || sentence.starts_with("non-absolute URLs should be in form of repo_name/path_to_chart")
}

async fn chart(c: &ChartSpec, tools: &Tools, caps: Option<&Capabilities>) -> Result<Install, RenderError> {
    let helm = tools.helm.as_ref().ok_or_else(|| {
        RenderError::Other("cannot render the chart: helm is not on PATH (see tools.helm-version)".into())
    })?;
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
    if c.is_upgrade {
        args.push("--is-upgrade".into());
    }
    args.extend(c.template_args.iter().cloned());
    if let Some(caps) = caps {
        args.extend(["--kube-version".into(), caps.kube_version.clone()]);
        for av in &caps.api_versions {
            args.extend(["--api-versions".into(), av.clone()]);
        }
    }
    let out = exec::run(helm, &args, tools.path_env.as_deref(), tools.timeout)
        .await
        .map_err(RenderError::Other)?;
    let (render, objects) = if out.success {
        (
            RenderState::Rendered,
            manifest::parse(&out.stdout, 0).map_err(RenderError::Other)?,
        )
    } else {
        let sentence = one_sentence(&out.stderr);
        if is_usage(&sentence) {
            return Err(RenderError::Usage(format!("helm template: {sentence}")));
        }
        let crds = if refused_kube_version(&sentence) && !c.skip_crds {
            crds_of(helm, &c.chart, c.version.as_deref(), tools, 0).await
        } else {
            Vec::new()
        };
        (RenderState::Failed(sentence), crds)
    };
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
            file: None,
            chart_dir: None,
            chart_has_dependencies: false,
            openapi_validation: !c.disable_openapi_validation,
            render,
            blocked_by: Vec::new(),
        }],
        objects,
        repositories: Vec::new(),
        rendered_for: Err(String::new()),
        hooks: Vec::new(),
        helm_binary: None,
        hook_namespaces: Vec::new(),
    })
}

/// One release as `helmfile list --output json` prints it.
#[derive(Deserialize)]
struct Listed {
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "yes")]
    installed: bool,
    #[serde(default)]
    chart: String,
    #[serde(default)]
    version: String,
}

fn yes() -> bool {
    true
}

/// One rendered part of a helmfile state file, from `helmfile --debug`: the YAML helmfile
/// itself goes on to read, templates already rendered.
struct Part {
    file: String,
    dir: PathBuf,
    value: serde_yaml_ng::Value,
}

/// The rendered parts in `helmfile --debug`'s log: after `changing working directory to
/// "DIR"` and `processing file "F"`, each `second-pass rendering result of "F.part.N":`
/// (or the first pass's output, when there is no second) is followed by its lines,
/// numbered `  N: text`.
fn state_parts(log: &str) -> Result<Vec<Part>, String> {
    let mut parts: Vec<(String, String, PathBuf, String)> = Vec::new();
    let (mut file, mut dir) = (String::new(), PathBuf::new());
    let mut lines = log.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("processing file \"") {
            // `processing file "helmfile.yaml" in directory "sub"`
            let mut quoted = rest.split('"');
            let name = quoted.next().unwrap_or_default();
            let in_dir = quoted.nth(1).unwrap_or(".");
            file = if in_dir.is_empty() || in_dir == "." {
                name.to_string()
            } else {
                format!("{}/{name}", in_dir.trim_end_matches('/'))
            };
            continue;
        }
        if let Some(rest) = line.strip_prefix("changing working directory to \"") {
            dir = PathBuf::from(rest.split('"').next().unwrap_or_default());
            continue;
        }
        let key = line
            .strip_prefix("second-pass rendering result of \"")
            .or_else(|| line.strip_prefix("first-pass rendering output of \""))
            .and_then(|r| r.strip_suffix("\":"));
        let Some(key) = key else { continue };
        let mut text = String::new();
        while let Some(next) = lines.peek() {
            let t = next.trim_start();
            let Some((n, rest)) = t.split_once(':') else { break };
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                break;
            }
            text.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            text.push('\n');
            lines.next();
        }
        // The second pass replaces the first of the same part (of the same file: nested
        // helmfiles share part names).
        let key = format!("{file}: {key}");
        parts.retain(|(k, ..)| *k != key);
        parts.push((key, file.clone(), dir.clone(), text));
    }
    let mut out = Vec::new();
    for (key, file, dir, text) in parts {
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = serde_yaml_ng::Value::deserialize(doc)
                .map_err(|e| format!("cannot read helmfile's rendering of {key}: {e}"))?;
            out.push(Part {
                file: file.clone(),
                dir: dir.clone(),
                value,
            });
        }
    }
    Ok(out)
}

fn ystr(v: &serde_yaml_ng::Value, key: &str) -> Option<String> {
    match v.get(key)? {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn ylist<'a>(v: &'a serde_yaml_ng::Value, key: &str) -> impl Iterator<Item = &'a serde_yaml_ng::Value> {
    v.get(key)
        .and_then(serde_yaml_ng::Value::as_sequence)
        .into_iter()
        .flatten()
}

fn hooks_in(list: &serde_yaml_ng::Value, release: Option<&str>, part: &Part) -> Vec<HelmfileHook> {
    let mut out = Vec::new();
    for h in ylist(list, "hooks") {
        // kubectlApply: helmfile runs `kubectl apply -f|-k …`.
        let (command, args) = match h.get("kubectlApply") {
            Some(k) => {
                let (flag, what) = match (ystr(k, "filename"), ystr(k, "kustomize")) {
                    (Some(f), _) => ("-f", f),
                    (None, Some(k)) => ("-k", k),
                    (None, None) => ("-f", String::new()),
                };
                (
                    "kubectl".to_string(),
                    vec!["apply".to_string(), flag.to_string(), what],
                )
            }
            None => (
                ystr(h, "command").unwrap_or_default(),
                ylist(h, "args")
                    .map(|a| match a {
                        serde_yaml_ng::Value::String(s) => s.clone(),
                        other => serde_yaml_ng::to_string(other)
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    })
                    .collect(),
            ),
        };
        out.push(HelmfileHook {
            release: release.map(String::from),
            file: part.file.clone(),
            dir: part.dir.clone(),
            name: ystr(h, "name").filter(|n| !n.is_empty()),
            events: ylist(h, "events")
                .filter_map(|e| e.as_str().map(String::from))
                .collect(),
            command,
            args,
        });
    }
    out
}

/// The events `helmfile template` fires while it prepares charts; every other event
/// belongs to sync/apply/diff/destroy.
const TEMPLATE_EVENTS: &[&str] = &["prepare", "cleanup"];

/// Stand-ins for the commands of the hooks `helmfile template` would fire, each a link to
/// this binary, which exits 0 at once when started under another name with
/// `PREFLIGHT_HOOK_SHIM` set. A bare command is stood in for by a link first on PATH; a
/// relative path (helmfile runs it from its file's directory) by a link at that path in a
/// mirror of the tree that helmfile then reads instead. A command that is absolute or a
/// template cannot be stood in for: `Err` names it.
struct Shims {
    dir: Option<TempDir>,
    mirror: Option<Mirror>,
}

impl Shims {
    fn any(&self) -> bool {
        self.dir.is_some() || self.mirror.is_some()
    }
}

pub const SHIM_ENV: &str = "PREFLIGHT_HOOK_SHIM";

fn shims_for(hooks: &[HelmfileHook], releases: &mut [ReleaseInfo], top: &Path) -> Result<Shims, String> {
    // helmfile runs `helm dependency build` in a local chart that declares dependencies,
    // which writes its charts/ (and Chart.lock): such a chart is templated from a copy.
    let mut charts: Vec<PathBuf> = releases
        .iter()
        .filter(|r| r.render == RenderState::Rendered)
        .filter(|r| r.chart_has_dependencies)
        .filter_map(|r| r.chart_dir.as_deref())
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .collect();
    charts.sort();
    charts.dedup();
    let firing: Vec<&HelmfileHook> = hooks
        .iter()
        .filter(|h| h.events.iter().any(|e| TEMPLATE_EVENTS.contains(&e.as_str())))
        .collect();
    let why = |h: &HelmfileHook| {
        format!(
            "`helmfile template` would run the {} hook `{}`{} ({}), and preflight runs no hook",
            h.events.join("/"),
            h.command,
            h.release
                .as_ref()
                .map(|r| format!(" of release {r}"))
                .unwrap_or_default(),
            h.file
        )
    };
    let (mut bare, mut paths) = (Vec::new(), Vec::new());
    for h in firing {
        if h.command.is_empty() || h.command.contains("{{") || h.command.starts_with('/') {
            // A release's own prepare hook fires only when that release is templated.
            match &h.release {
                None => return Err(why(h)),
                Some(name) => {
                    for r in releases.iter_mut().filter(|r| &r.name == name) {
                        r.render = RenderState::NotRendered(why(h));
                    }
                }
            }
        } else if h.command.contains('/') {
            paths.push(h);
        } else {
            bare.push(h);
        }
    }
    if bare.is_empty() && paths.is_empty() && charts.is_empty() {
        return Ok(Shims {
            dir: None,
            mirror: None,
        });
    }
    let me =
        std::env::current_exe().map_err(|e| format!("cannot find this binary to stand in for hooks: {e}"))?;
    let dir = if bare.is_empty() {
        None
    } else {
        let dir = temp_dir()?;
        for h in bare {
            let link = dir.0.join(&h.command);
            if !link.exists() {
                std::os::unix::fs::symlink(&me, &link)
                    .map_err(|e| format!("cannot make {}: {e}", link.display()))?;
            }
        }
        Some(dir)
    };
    let mirror = if paths.is_empty() && charts.is_empty() {
        None
    } else {
        let canon =
            |p: &Path| std::fs::canonicalize(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let top = canon(top)?;
        let mut copies = Vec::new();
        if top.is_file() {
            copies.push(top.clone());
        }
        let mut targets = Vec::new();
        for h in paths {
            let dir = canon(&h.dir)?;
            if let Some(name) = Path::new(&h.file).file_name() {
                copies.push(dir.join(name));
            }
            targets.push(lexical(&dir.join(&h.command)));
        }
        Some(Mirror::build(&me, top, &copies, &targets, &charts)?)
    };
    Ok(Shims { dir, mirror })
}

/// A directory copied with its files; links stay links.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    let fail = |p: &Path, e: std::io::Error| format!("cannot copy {} to {}: {e}", p.display(), to.display());
    std::fs::create_dir_all(to).map_err(|e| fail(from, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| fail(from, e))? {
        let entry = entry.map_err(|e| fail(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(|e| fail(&src, e))?;
        if kind.is_symlink() {
            let target = std::fs::read_link(&src).map_err(|e| fail(&src, e))?;
            std::os::unix::fs::symlink(target, &dst).map_err(|e| fail(&src, e))?;
        } else if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| fail(&src, e))?;
        }
    }
    Ok(())
}

/// `a/./b/../c` as Go's `filepath.Clean` reads it, without asking the file system.
fn lexical(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The user's tree as helmfile will read it while templating, with a link to this binary
/// at the path of each hook command: real directories from `/` down to the helmfile and
/// to each hook, a link to every other entry, and the state files that declare those
/// hooks copied (helmfile's working directory must not lead back into the real tree,
/// where the real script is), and the local charts whose dependencies helmfile builds
/// copied whole (it writes there). Nothing of the user's tree is written.
struct Mirror {
    root: TempDir,
    /// The helmfile (file or directory) as helmfile is to be given it.
    file: PathBuf,
}

impl Mirror {
    fn at(root: &Path, real: &Path) -> PathBuf {
        root.join(real.strip_prefix("/").unwrap_or(real))
    }

    fn build(
        me: &Path,
        top: PathBuf,
        copies: &[PathBuf],
        targets: &[PathBuf],
        charts: &[PathBuf],
    ) -> Result<Mirror, String> {
        let root = temp_dir()?;
        let top_dir = if top.is_dir() {
            top.clone()
        } else {
            top.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let mut real: std::collections::BTreeSet<PathBuf> = std::collections::BTreeSet::new();
        let wanted = std::iter::once(top_dir.as_path()).chain(
            copies
                .iter()
                .chain(targets)
                .chain(charts)
                .filter_map(|p| p.parent()),
        );
        for d in wanted {
            real.extend(d.ancestors().map(Path::to_path_buf));
        }
        let fail = |p: &Path, e: std::io::Error| format!("cannot make {}: {e}", p.display());
        // Shallow first, so each directory exists before its entries.
        let mut dirs: Vec<&PathBuf> = real.iter().collect();
        dirs.sort_by_key(|d| d.components().count());
        for d in dirs {
            let m = Mirror::at(&root.0, d);
            std::fs::create_dir_all(&m).map_err(|e| fail(&m, e))?;
            for entry in std::fs::read_dir(d).into_iter().flatten().flatten() {
                let child = entry.path();
                if real.contains(&child) || targets.contains(&child) {
                    continue;
                }
                let at = m.join(entry.file_name());
                if charts.contains(&child) {
                    copy_tree(&child, &at)?;
                } else if copies.contains(&child) {
                    std::fs::copy(&child, &at).map_err(|e| fail(&at, e))?;
                } else {
                    std::os::unix::fs::symlink(&child, &at).map_err(|e| fail(&at, e))?;
                }
            }
        }
        for t in targets {
            let at = Mirror::at(&root.0, t);
            if std::fs::symlink_metadata(&at).is_err() {
                std::os::unix::fs::symlink(me, &at).map_err(|e| fail(&at, e))?;
            }
        }
        let file = Mirror::at(&root.0, &top);
        Ok(Mirror { root, file })
    }

    /// A sentence of helmfile's with the mirror's paths put back to the user's.
    fn unmirror(&self, s: &str) -> String {
        s.replace(&self.root.0.display().to_string(), "")
    }
}

/// Called first thing in `main`: started as a hook's stand-in, do nothing.
pub fn is_hook_shim() -> bool {
    if std::env::var_os(SHIM_ENV).is_none() {
        return false;
    }
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = Path::new(&argv0).file_name().map(|n| n.to_owned());
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_owned()));
    name.is_some() && name != me
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
    // The installer's global flags that change the state (--state-values-set, --namespace…).
    base.extend(h.state_args.iter().cloned());
    if let Some(b) = &h.helm_binary {
        base.extend(["--helm-binary".into(), b.display().to_string()]);
    }
    // The state as helmfile reads it, without firing a hook: `list --skip-charts` prepares
    // no chart, and only preparing charts fires `prepare`/`cleanup` (build, template,
    // write-values all do). `--debug` logs each rendered part, hooks and repositories included.
    let mut args = base.clone();
    for s in &h.selectors {
        args.extend(["--selector".into(), s.clone()]);
    }
    args.extend(["--debug", "list", "--skip-charts", "--output", "json"].map(String::from));
    // The repositories added and updated once, beside the state's reading (`helmfile repos`
    // fires no hook), not by every share's `helmfile template`: each would run `helm repo
    // update` and fetch every index.yaml again.
    let mut repos_args = base.clone();
    repos_args.push("repos".into());
    let (out, repos) = futures::join!(
        exec::run(bin, &args, tools.path_env.as_deref(), tools.timeout),
        exec::run(bin, &repos_args, tools.path_env.as_deref(), tools.timeout)
    );
    let out = out?;
    let repos_updated = repos.is_ok_and(|o| o.success);
    if !out.success {
        return Err(format!(
            "helmfile --file {} list: {}",
            h.file.display(),
            one_sentence(&out.stderr)
        ));
    }
    let json = out
        .stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('['))
        .unwrap_or("[]");
    let listed: Vec<Listed> =
        serde_json::from_str(json).map_err(|e| format!("helmfile list --output json: {e}"))?;
    let mut parts = state_parts(&out.stderr)?;
    // Files named relative to the helmfile's directory, however helmfile logged them.
    let top = h.file.parent().map(Path::to_path_buf).unwrap_or_default();
    for p in &mut parts {
        if let Ok(rel) = Path::new(&p.file).strip_prefix(&top) {
            p.file = rel.display().to_string();
        }
    }
    let mut hooks = Vec::new();
    let mut repositories: Vec<ChartRepo> = Vec::new();
    let mut default_create = true;
    let mut default_validation = true;
    for p in &parts {
        hooks.extend(hooks_in(&p.value, None, p));
        if let Some(c) = p
            .value
            .get("helmDefaults")
            .and_then(|d| d.get("createNamespace"))
            .and_then(serde_yaml_ng::Value::as_bool)
        {
            default_create = c;
        }
        if let Some(d) = p
            .value
            .get("helmDefaults")
            .and_then(|d| d.get("disableOpenAPIValidation"))
            .and_then(serde_yaml_ng::Value::as_bool)
        {
            default_validation = !d;
        }
        for r in ylist(&p.value, "repositories") {
            let (Some(name), Some(url)) = (ystr(r, "name"), ystr(r, "url")) else {
                continue;
            };
            let oci = r.get("oci").and_then(serde_yaml_ng::Value::as_bool) == Some(true);
            let url = if oci && !url.starts_with("oci://") {
                format!("oci://{url}")
            } else {
                url
            };
            if !repositories.iter().any(|x| x.name == name) {
                repositories.push(ChartRepo { name, url });
            }
        }
        for r in ylist(&p.value, "releases") {
            if let Some(name) = ystr(r, "name") {
                hooks.extend(hooks_in(r, Some(&name), p));
            }
        }
    }
    let declared = |name: &str, ns: &str| {
        parts.iter().find_map(|p| {
            ylist(&p.value, "releases")
                .find(|r| {
                    ystr(r, "name").as_deref() == Some(name)
                        && ystr(r, "namespace").is_none_or(|n| n.is_empty() || n == ns)
                })
                .map(|r| (p, r))
        })
    };
    let mut releases = Vec::new();
    for l in listed {
        if !l.enabled || !l.installed {
            continue;
        }
        let ns = if l.namespace.is_empty() {
            "default".to_string()
        } else {
            l.namespace.clone()
        };
        let found = declared(&l.name, &l.namespace);
        // A local chart, as helmfile resolves it: relative to its file's directory.
        let chart_dir = found
            .map(|(p, _)| p.dir.join(&l.chart))
            .filter(|d| d.join("Chart.yaml").is_file());
        releases.push(ReleaseInfo {
            needs: found
                .map(|(_, r)| {
                    ylist(r, "needs")
                        .filter_map(|n| n.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            create_namespace: found
                .and_then(|(_, r)| r.get("createNamespace").and_then(serde_yaml_ng::Value::as_bool))
                .unwrap_or(default_create),
            file: found.map(|(p, _)| p.file.clone()),
            openapi_validation: found
                .and_then(|(_, r)| {
                    r.get("disableOpenAPIValidation")
                        .and_then(serde_yaml_ng::Value::as_bool)
                })
                .map(|d| !d)
                .unwrap_or(default_validation),
            chart_has_dependencies: chart_dir.as_deref().is_some_and(declares_dependencies),
            chart_dir,
            name: l.name,
            namespace: ns,
            chart: l.chart,
            version: Some(l.version).filter(|v| !v.is_empty()),
            render: RenderState::Rendered,
            blocked_by: Vec::new(),
        });
    }
    let releases = in_needs_order(releases);
    // Hooks of releases this run does not sync (left out by the selectors, `installed:
    // false`, a false `condition:`) are not this run's: helmfile runs only the selected
    // releases' hooks.
    hooks.retain(|h| match &h.release {
        None => true,
        Some(name) => releases.iter().any(|r| &r.name == name),
    });
    // helmBinary: what helmfile itself runs (the last part that says wins, as helmfile
    // layers them); a bare name resolves on PATH, a path against its file's directory.
    let from_flag = h.helm_binary.as_ref().map(|b| {
        let written = b.display().to_string();
        HelmBinary {
            path: resolve_helm(&written, Path::new(""), tools.path_env.as_deref()),
            written,
            file: "--helm-binary".to_string(),
        }
    });
    let helm_binary = from_flag.or_else(|| {
        parts.iter().rev().find_map(|p| {
            let written = ystr(&p.value, "helmBinary").filter(|b| !b.is_empty() && b != "helm")?;
            Some(HelmBinary {
                path: resolve_helm(
                    written.trim_start_matches("./"),
                    &p.dir,
                    tools.path_env.as_deref(),
                ),
                written,
                file: p.file.clone(),
            })
        })
    });
    let mut install = Install {
        what: format!("helmfile {}", h.file.display()),
        releases,
        objects: Vec::new(),
        repositories,
        rendered_for: Err(String::new()),
        hook_namespaces: crate::install::HookNamespace::of(&hooks),
        hooks,
        helm_binary,
    };
    let shims = match shims_for(&install.hooks, &mut install.releases, &h.file) {
        Ok(s) => s,
        Err(why) => {
            for r in &mut install.releases {
                r.render = RenderState::NotRendered(why.clone());
            }
            return Ok(install);
        }
    };
    // A few helmfile processes at once, each templating a share of the releases; a share
    // that fails is templated again release by release, so one release's error is that
    // release's and the others render as usual.
    let parallel = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8);
    let dir = temp_dir()?;
    // Hooks run from a mirror of the tree read from there.
    if let Some(m) = &shims.mirror {
        base[1] = m.file.display().to_string();
    }
    // With the repositories updated, shares of charts from an HTTP repository skip it
    // (`--skip-deps`; helm pulls the packaged chart with its dependencies). OCI charts are
    // pulled by helmfile itself: left as they are.
    let repos_ready = repos_updated && !install.repositories.is_empty();
    let from_http_repo = |r: &ReleaseInfo| {
        r.chart_dir.is_none()
            && r.chart.split_once('/').is_some_and(|(repo, _)| {
                install
                    .repositories
                    .iter()
                    .any(|x| x.name == repo && !x.url.starts_with("oci://"))
            })
    };
    let todo: Vec<Member> = install
        .releases
        .iter()
        .enumerate()
        .filter(|(_, r)| r.render == RenderState::Rendered)
        .map(|(index, r)| Member {
            index,
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            skip_deps: (r.chart_dir.is_some() && !r.chart_has_dependencies)
                || (repos_ready && from_http_repo(r)),
        })
        .collect();
    let todo_count = todo.len();
    // Releases whose chart needs no `helm dependency build` share apart from the others, so
    // their shares can skip it.
    let (plain, deps): (Vec<Member>, Vec<Member>) = todo.into_iter().partition(|m| m.skip_deps);
    let mut shares: Vec<Vec<Member>> = Vec::new();
    for group in [plain, deps] {
        let mut these: Vec<Vec<Member>> = (0..parallel.min(group.len())).map(|_| Vec::new()).collect();
        for (i, m) in group.into_iter().enumerate() {
            these[i % parallel].push(m);
        }
        shares.extend(these);
    }
    // A stand-in may be named helm (a hook running `helm repo add`): helmfile's own helm
    // is then named by its path.
    let helm = match (&shims.dir, &install.helm_binary) {
        (None, _) => None,
        (Some(_), Some(HelmBinary { path: Some(p), .. })) => Some(p.clone()),
        (Some(_), _) => tools.helm.clone(),
    };
    let run = |share: Vec<Member>, slot: usize| {
        let args = template_args(
            &base,
            &share,
            &dir.0.join(slot.to_string()),
            caps,
            helm.as_deref(),
            &h.template_args,
        );
        let out_dir = dir.0.join(slot.to_string());
        let shims = &shims;
        async move {
            let result = render_share(bin, args, &out_dir, &share, tools, shims).await;
            (share, result)
        }
    };
    let total = todo_count;
    let said = std::sync::atomic::AtomicUsize::new(0);
    let tell = |n: usize| {
        if let Some(b) = &tools.progress {
            let done = said.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
            b.set_message(format!(
                "rendering {}: {done} of {total} release(s) templated",
                h.file.display()
            ));
        }
    };
    tell(0);
    let first: Vec<ShareRendered> = futures::stream::iter(shares.into_iter().enumerate())
        .map(|(slot, share)| run(share, slot))
        .buffer_unordered(parallel)
        .inspect(|(share, result)| {
            if result.is_ok() || share.len() == 1 {
                tell(share.len());
            }
        })
        .collect()
        .await;
    let mut done: Vec<(usize, Result<Vec<Object>, RenderState>)> = Vec::new();
    let mut again = Vec::new();
    for (share, result) in first {
        match result {
            Ok(objects) => done.extend(objects.into_iter().map(|(i, o)| (i, Ok(o)))),
            Err(state) if share.len() == 1 => done.push((share[0].index, Err(state))),
            Err(_) => again.extend(share),
        }
    }
    let slots = parallel;
    let second: Vec<ShareRendered> = futures::stream::iter(again.into_iter().enumerate())
        .map(|(i, m)| run(vec![m], slots + i))
        .buffer_unordered(parallel)
        .inspect(|_| tell(1))
        .collect()
        .await;
    for (share, result) in second {
        match result {
            Ok(objects) => done.extend(objects.into_iter().map(|(i, o)| (i, Ok(o)))),
            Err(state) => done.push((share[0].index, Err(state))),
        }
    }
    done.sort_by_key(|(i, _)| *i);
    for (index, result) in done {
        match result {
            Ok(objects) => install.objects.extend(objects),
            Err(state) => install.releases[index].render = state,
        }
    }
    // helmfile prepares a file's releases together: one whose values fail stops the others
    // of its file from syncing (those of other files still sync).
    let culprits: Vec<(String, String)> = install
        .releases
        .iter()
        .filter_map(|r| match (&r.render, &r.file) {
            (RenderState::Failed(e), Some(f)) if helmfile_errors::blocks_its_file(e) => {
                Some((f.clone(), r.name.clone()))
            }
            _ => None,
        })
        .collect();
    for r in &mut install.releases {
        if r.render != RenderState::Rendered {
            continue;
        }
        r.blocked_by = culprits
            .iter()
            .filter(|(f, _)| r.file.as_ref() == Some(f))
            .map(|(_, n)| n.clone())
            .collect();
    }
    // A release refused for the cluster's version still gets its crds/ created first.
    let show_with = match &install.helm_binary {
        Some(HelmBinary { path: Some(p), .. }) => Some(p.clone()),
        _ => tools.helm.clone(),
    };
    if let Some(helm) = show_with.as_deref() {
        for index in 0..install.releases.len() {
            let r = &install.releases[index];
            let RenderState::Failed(sentence) = &r.render else {
                continue;
            };
            if !refused_kube_version(sentence) {
                continue;
            }
            let chart = match &r.chart_dir {
                Some(d) => d.display().to_string(),
                None => r.chart.clone(),
            };
            let crds = crds_of(helm, &chart, r.version.as_deref(), tools, index).await;
            install.objects.extend(crds);
        }
    }
    Ok(install)
}

/// Where a helm named as `written` is: a path (it has a `/`) relative to `dir`, a bare name
/// on `path_env`, as helmfile and the installer's shell find it.
pub fn resolve_helm(written: &str, dir: &Path, path_env: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    if written.contains('/') {
        Some(dir.join(written)).filter(|f| f.is_file())
    } else {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        which::which_in(written, path_env, cwd).ok()
    }
}

/// A share and how its template ended: each member's objects, or why not.
type ShareRendered = (Vec<Member>, Result<Vec<(usize, Vec<Object>)>, RenderState>);

/// A release templated in a share: its place in `Install::releases` and its name.
struct Member {
    index: usize,
    name: String,
    namespace: String,
    /// A local chart that declares no dependencies: `helm dependency build`, which helmfile
    /// runs on every local chart, does nothing for it but cost a helm process (and, for a
    /// chart with dependencies, writes into the chart's `charts/`).
    skip_deps: bool,
}

/// A local chart that lists dependencies (Chart.yaml `dependencies:`, or a v1 chart's
/// requirements.yaml): helmfile builds them before templating. Unreadable counts as yes,
/// so helmfile decides as it would.
fn declares_dependencies(chart: &Path) -> bool {
    if chart.join("requirements.yaml").exists() {
        return true;
    }
    let Ok(text) = std::fs::read_to_string(chart.join("Chart.yaml")) else {
        return true;
    };
    match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) {
        Ok(v) => match v.get("dependencies") {
            None | Some(serde_yaml_ng::Value::Null) => false,
            Some(serde_yaml_ng::Value::Sequence(d)) => !d.is_empty(),
            Some(_) => true,
        },
        Err(_) => true,
    }
}

fn template_args(
    base: &[String],
    share: &[Member],
    out_dir: &Path,
    caps: Option<&Capabilities>,
    helm: Option<&Path>,
    installer: &[String],
) -> Vec<String> {
    let mut args = base.to_vec();
    if let Some(helm) = helm {
        args.extend(["--helm-binary".into(), helm.display().to_string()]);
    }
    // Several --selector flags select any of them.
    for m in share {
        let mut selector = format!("name={}", m.name);
        // A release written without a namespace is in "default" here but has none for
        // helmfile's selector.
        if !m.namespace.is_empty() && m.namespace != "default" {
            selector.push_str(&format!(",namespace={}", m.namespace));
        }
        args.extend(["--selector".into(), selector]);
    }
    if !share.is_empty() && share.iter().all(|m| m.skip_deps) {
        args.push("--skip-deps".into());
    }
    args.extend([
        "template".into(),
        "--include-crds".into(),
        "--output-dir".into(),
        out_dir.display().to_string(),
        "--output-dir-template".into(),
        "{{ .OutputDir }}/{{ .Release.Name }}@{{ .Release.Namespace }}".into(),
    ]);
    // The installer's own --args is one string helmfile splits: ours join it, not replace it.
    let mut helm_args: Vec<String> = Vec::new();
    let mut it = installer.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--args" => helm_args.extend(it.next().cloned()),
            _ if a.starts_with("--args=") => helm_args.push(a["--args=".len()..].to_string()),
            _ => args.push(a.clone()),
        }
    }
    if let Some(caps) = caps {
        args.extend([
            "--kube-version".into(),
            caps.kube_version.trim_start_matches('v').to_string(),
        ]);
        helm_args.extend(caps.api_versions.iter().map(|a| format!("--api-versions {a}")));
    }
    if !helm_args.is_empty() {
        args.extend(["--args".into(), helm_args.join(" ")]);
    }
    args
}

/// Why a share did not render, in helmfile's words: each of its errors (a list's `err K:`
/// lines, not its `N errors:` header) that names a member of the share or no release at
/// all, with the values file and line, and the missing values file helmfile skipped that
/// would have defined a missing key.
fn share_failure(stderr: &str, share: &[Member]) -> String {
    let errors = helmfile_errors::parse(stderr);
    let own: Vec<&helmfile_errors::HelmfileError> = errors
        .iter()
        .filter(|e| {
            e.release
                .as_ref()
                .is_none_or(|r| share.iter().any(|m| &m.name == r))
        })
        .collect();
    // helm itself failed (`command "…/helm" exited with non-zero status:`): its `Error:`
    // sentence, not helmfile's wrapper.
    if own.is_empty() || own.iter().any(|e| e.text.starts_with("command \"")) {
        // helm's `Error:` line (helmfile repeats it after its dump of helm's arguments).
        let sentence = one_sentence(stderr);
        return match sentence.strip_prefix("in ").and_then(|r| r.split_once(": ")) {
            Some((file, rest)) if !file.contains(' ') => helmfile_errors::parse(&sentence)
                .first()
                .map(helmfile_errors::said)
                .unwrap_or_else(|| rest.to_string()),
            _ => sentence,
        };
    }
    let skipped = helmfile_errors::skipped_files(stderr);
    let mut said: Vec<String> = Vec::new();
    for e in own {
        let mut line = helmfile_errors::said(e);
        if let Some(note) = helmfile_errors::skipped_note(e, &skipped) {
            line.push_str(&format!(" ({note})"));
        }
        if !said.contains(&line) {
            said.push(line);
        }
    }
    said.join("; ")
}

/// Template one share of the releases; each member's objects, or why the share did not
/// render (for a share of one: that release's failure).
async fn render_share(
    bin: &Path,
    args: Vec<String>,
    out_dir: &Path,
    share: &[Member],
    tools: &Tools,
    shims: &Shims,
) -> Result<Vec<(usize, Vec<Object>)>, RenderState> {
    let mut path = tools.path_env.clone().unwrap_or_default();
    if let Some(s) = &shims.dir {
        let mut p = s.0.clone().into_os_string();
        p.push(":");
        p.push(&path);
        path = p;
    }
    let env: Vec<(&str, OsString)> = if shims.any() {
        vec![(SHIM_ENV, OsString::from("1"))]
    } else {
        Vec::new()
    };
    let out = exec::run_with(bin, &args, Some(&path), &env, tools.timeout)
        .await
        .map_err(RenderState::NotRendered)?;
    if !out.success {
        let stderr = match &shims.mirror {
            Some(m) => m.unmirror(&out.stderr),
            None => out.stderr.clone(),
        };
        return Err(RenderState::Failed(share_failure(&stderr, share)));
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(out_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    let mut out = Vec::new();
    for m in share {
        let mut objects = Vec::new();
        // A nested helmfile's own `selectors:` may template other releases beside it: only
        // the member's directory is read.
        for release_dir in &entries {
            let dir_name = release_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (n, d) = dir_name.rsplit_once('@').unwrap_or((dir_name.as_str(), ""));
            if n != m.name || (!d.is_empty() && d != m.namespace) {
                continue;
            }
            let mut files = Vec::new();
            yaml_files(release_dir, &mut files);
            files.sort();
            for f in files {
                let text = std::fs::read_to_string(&f)
                    .map_err(|e| RenderState::NotRendered(format!("cannot read {}: {e}", f.display())))?;
                objects.extend(manifest::parse(&text, m.index).map_err(RenderState::NotRendered)?);
            }
        }
        out.push((m.index, objects));
    }
    Ok(out)
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
            file: None,
            chart_dir: None,
            chart_has_dependencies: false,
            openapi_validation: true,
            render: RenderState::Rendered,
            blocked_by: Vec::new(),
        }
    }

    fn names(r: Vec<ReleaseInfo>) -> Vec<String> {
        r.into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn one_sentence_out_of_helmfiles_output() {
        let dump = "Building dependency release=kv, chart=charts/newkube\nTemplating release=kv, chart=charts/newkube\nin ./helmfile2.yaml: command \"/x/helm\" exited with non-zero status:\n\nPATH:\n  /x/helm\n\nARGS:\n  0: helm (4 bytes)\n\nSTDERR:\n  Error: chart requires kubeVersion: >=1.21.0-0 which is incompatible with Kubernetes v1.20.2\n  Use --debug flag to render out invalid YAML\n\nCOMBINED OUTPUT:\n  Error: chart requires kubeVersion: >=1.21.0-0 which is incompatible with Kubernetes v1.20.2\n  Use --debug flag to render out invalid YAML\n";
        assert_eq!(
            one_sentence(dump),
            "chart requires kubeVersion: >=1.21.0-0 which is incompatible with Kubernetes v1.20.2"
        );
        let values = "Building dependency release=badvals, chart=charts/mini-release\nskipping missing values file matching \"values/missing-generated.yaml\"\nin ./helmfile2.yaml: failed to render values files \"values/es.yaml.gotmpl\": map has no entry for key \"imageRegistry2\"\n";
        assert_eq!(
            one_sentence(values),
            "in ./helmfile2.yaml: failed to render values files \"values/es.yaml.gotmpl\": map has no entry for key \"imageRegistry2\""
        );
        assert_eq!(
            one_sentence("wrote /tmp/x\n"),
            "it failed, saying nothing on stderr"
        );
    }

    #[test]
    fn parts_of_nested_files_are_kept_apart_and_the_second_pass_wins() {
        let log = "processing file \"helmfile.yaml\" in directory \".\"\nchanging working directory to \"/a\"\nfirst-pass rendering output of \"helmfile.yaml.part.0\":\n 0: releases: [{name: old}]\n\nsecond-pass rendering result of \"helmfile.yaml.part.0\":\n 0: releases:\n 1: - name: top\n 2: \nprocessing file \"helmfile.yaml\" in directory \"sub\"\nchanging working directory to \"/a/sub\"\nsecond-pass rendering result of \"helmfile.yaml.part.0\":\n 0: hooks: [{events: [prepare], command: kubectl}]\n";
        let parts = state_parts(log).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].file, "helmfile.yaml");
        assert_eq!(
            ystr(&parts[0].value["releases"][0], "name").as_deref(),
            Some("top")
        );
        assert_eq!(parts[1].file, "sub/helmfile.yaml");
        assert_eq!(parts[1].dir, PathBuf::from("/a/sub"));
        let hooks = hooks_in(&parts[1].value, None, &parts[1]);
        assert_eq!(hooks[0].command, "kubectl");
        assert_eq!(hooks[0].events, ["prepare"]);
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
