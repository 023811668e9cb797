//! The vocabulary every check speaks: metadata, outcome, fix, and the context it runs in.
//! The engine only ever sees these types; it never names a particular check.

use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use crate::resolve::Resolver;
pub use crate::vocab::{
    Access, Code, Finding, Fix, Outcome, Phase, Release, Safety, Starved, Status, Subject,
};

/// The check that owns the install's render: a release that does not render is its
/// finding, and the other checks that read the install cite it.
pub const RENDER_CHECK: &str = "tools.install-render";

/// What `preflight list` and `preflight explain` print, kept next to the check's code.
pub struct Meta {
    pub id: &'static str,
    pub phase: Phase,
    pub title: &'static str,
    /// Why the check exists (quoting the field report), what it looks at, the fix.
    pub explain: &'static str,
    /// Checks that must pass (or warn) first; otherwise this one reports `skip` naming them.
    /// Only earlier checks in the registry may be named, so there are no cycles.
    pub requires: &'static [&'static str],
    /// What the install (`--chart` / `--helmfile`) is to it: the install is rendered only
    /// when a planned check reads it, and the checks it feeds join the default profile
    /// whenever one is given.
    pub install: InstallUse,
    /// The codes of its findings, each with the line `preflight explain CODE` prints.
    pub codes: &'static [Code],
    /// It reads the host's network namespace (/proc/sys/net): run in a pod per node
    /// (`preflight nodes`), that pod needs `hostNetwork`.
    pub host_network: bool,
    /// Run on every node, its verdict over all of them when that is not the worst node's:
    /// room for a local-PV claim is needed on *some* node, as the scheduler asks (seed 004).
    /// `None`: the worst status over the nodes.
    pub roll_up: Option<RollUp>,
}

/// How a check uses the install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallUse {
    /// It never reads it.
    No,
    /// It reads it when its parameters ask (node.localpv-disk's `storage_class`).
    Optional,
    /// The install is its input: planned whenever an install is given without --profile.
    Fed,
}

impl InstallUse {
    pub fn reads(self) -> bool {
        self != InstallUse::No
    }
}

/// One node's answer to a check, for its roll-up.
pub struct OnNode<'a> {
    pub node: &'a str,
    pub status: Status,
    /// The check's `Outcome::facts` from that node; `None` when the node did not answer.
    pub facts: Option<&'a serde_json::Value>,
}

/// A check's verdict over every node, from what each node measured.
pub type RollUp = fn(&[OnNode<'_>]) -> Outcome;

/// Everything a check may look at besides its own parameters.
pub struct Ctx {
    /// `/` normally; `/host` when running in a pod with the host mounted.
    pub host_root: PathBuf,
    /// Bound for one network probe (`--timeout`).
    pub probe_timeout: Duration,
    /// `PATH` as the installer script sees it.
    pub path_env: Option<OsString>,
    pub release: Option<Release>,
    pub resolver: Resolver,
    /// The cluster, connected on first use and shared by every cluster check.
    pub kube: crate::kube::KubeAccess,
    /// The profile's registries (top-level section joined by every check's own list).
    pub registries: crate::registry::Registries,
    /// Every planned check's declared API access, for cluster.api to review up front.
    pub planned_access: Vec<(&'static str, Vec<Access>)>,
    /// Cleanups a check started that must finish even when its deadline cut it off.
    pub cleanups: Cleanups,
    /// The install (`--chart` / `--helmfile` / `install:`), rendered once before any check
    /// runs: `None` when none was given, `Err` with helm's own message when it did not render.
    pub install: Option<Result<std::sync::Arc<crate::install::Install>, String>>,
    /// The install as the installer's command gives it (known before any render): which
    /// tool runs it, with which command, decides what the tools phase asks for.
    pub install_spec: Option<crate::install::InstallSpec>,
}

/// The tool and command that run the install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Installer {
    /// helm install / upgrade: needs neither helmfile nor a plugin.
    Helm,
    Helmfile(crate::install::HelmfileCommand),
}

/// Tasks that undo what a check created (a probe object), awaited before the process exits
/// so that a check's deadline never leaks what it made.
#[derive(Clone, Default)]
pub struct Cleanups(std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>);

impl Cleanups {
    /// Run `fut` now, outside any check's deadline, and remember to wait for it.
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let task = handle.spawn(fut);
        if let Ok(mut tasks) = self.0.lock() {
            tasks.push(task);
        }
    }

    /// Wait for every cleanup (each bounds itself); `bound` caps the whole wait.
    pub async fn finish(&self, bound: Duration) {
        let tasks: Vec<_> = match self.0.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(_) => return,
        };
        let _ = tokio::time::timeout(bound, futures::future::join_all(tasks)).await;
    }
}

impl Ctx {
    /// The install, if one was given; `Err` says why nothing of it could be rendered
    /// (helm or helmfile missing, the helmfile's state unreadable). Releases that did not
    /// render are in it with their `RenderState`, without objects.
    pub fn install(&self) -> Option<Result<&crate::install::Install, &str>> {
        self.install
            .as_ref()
            .map(|r| r.as_ref().map(|i| i.as_ref()).map_err(String::as_str))
    }

    /// The rendered install, when one was given. Nothing to look at ends the check: `error`
    /// when nothing could be rendered, `skip` citing the render's check when every release
    /// was refused (that check fails for them: a prediction, not this check's to repeat).
    pub fn rendered(&self) -> Result<Option<&crate::install::Install>, Outcome> {
        match self.install() {
            None => Ok(None),
            // Objects of a refused release still count: its crds/ are created regardless.
            Some(Ok(i)) if i.any_rendered() || !i.objects.is_empty() || i.releases.is_empty() => Ok(Some(i)),
            Some(Ok(i)) => Err(Outcome::skip(format!(
                "no release of the install rendered ({}): see {RENDER_CHECK}",
                i.unrendered()
                    .map(|(r, _)| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            Some(Err(e)) => Err(Outcome::error(format!("the install could not be rendered: {e}"))),
        }
    }

    /// For the checks that only judge an install: the rendered install, or `skip` when none
    /// was given (and `error`/`skip` when it did not render, as `rendered` says).
    pub fn install_given(&self) -> Result<&crate::install::Install, Outcome> {
        self.rendered()?
            .ok_or_else(|| Outcome::skip("no install given (--chart / --helmfile / install:)"))
    }

    /// `path` as seen on the host (`/etc/hosts` → `<host-root>/etc/hosts`).
    pub fn host_path(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        let rel = path.strip_prefix("/").unwrap_or(path);
        self.host_root.join(rel)
    }

    /// `name` as the installer's shell finds it on `PATH`.
    pub fn which(&self, name: &str) -> Option<PathBuf> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        which::which_in(name, self.path_env.as_ref(), cwd).ok()
    }

    /// helm and helmfile as the installer's PATH finds them — run as a helm plugin, the helm
    /// that called us (`$HELM_BIN`), since that is the one that will install.
    pub fn render_tools(&self, timeout: Duration) -> crate::install::render::Tools {
        crate::install::render::Tools {
            helm: self.installer_helm(),
            helmfile: self.which("helmfile"),
            path_env: self.path_env.clone(),
            timeout,
            progress: None,
        }
    }

    /// The helm that will install a chart: the one the installer's command names by path
    /// (`/opt/bk/helm install …`), else — run as a helm plugin — the helm that called us
    /// (`$HELM_BIN`), else helm on PATH.
    pub fn installer_helm(&self) -> Option<PathBuf> {
        if let Some(crate::install::InstallSpec::Chart(c)) = &self.install_spec {
            if let Some(b) = &c.helm_binary {
                return Some(b.clone());
            }
        }
        std::env::var_os("HELM_BIN")
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .or_else(|| self.which("helm"))
    }

    /// What runs the install: `None` without one.
    pub fn installer(&self) -> Option<Installer> {
        use crate::install::InstallSpec;
        Some(match self.install_spec.as_ref()? {
            InstallSpec::Chart(_) => Installer::Helm,
            InstallSpec::Helmfile(h) => Installer::Helmfile(h.command),
        })
    }

    /// How the registry probes go: this run's resolver and `--timeout`.
    pub fn probe(&self) -> crate::registry::Probe<'_> {
        crate::registry::Probe {
            resolver: &self.resolver,
            timeout: self.probe_timeout,
        }
    }

    /// Bound for running a local binary such as `helm version` (20s with the default
    /// `--timeout 5s`): a cold helm on a slow disk takes seconds, a hung one forever.
    pub fn exec_timeout(&self) -> Duration {
        self.probe_timeout * 4
    }
}

pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// What applying a fix did (Ok: a line for the report) or why it failed.
pub type ApplyFuture<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

/// A configured check: the value deserialised from its profile entry, ready to run.
pub trait Check: Send + Sync {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a>;

    /// Apply the automatic fix of the last `run`, changing only what that run observed.
    /// Only called when `run` returned a fix with `automatic: true`.
    fn apply<'a>(&'a self, _ctx: &'a Ctx) -> ApplyFuture<'a> {
        Box::pin(async { Err("this check has no automatic fix".to_string()) })
    }

    /// Registry settings written in this check's own parameters: they join the profile's
    /// `registries:` section, so every check that talks to a registry sees them.
    fn registries(&self) -> Vec<crate::registry::RegistrySettings> {
        Vec::new()
    }

    /// The API access this check needs to decide; cluster.api reviews it before it runs.
    fn access(&self) -> Vec<Access> {
        Vec::new()
    }

    /// An install written in this check's own parameters (cluster.helm-ownership's older
    /// `render:`): the profile loader makes it the profile's install, rendered once for all.
    fn implied_install(&self) -> Option<crate::install::RawInstall> {
        None
    }

    /// For a run in a pod on each node, where the install is not rendered: this check's
    /// parameters with what it reads from the install written out (`None`: as they are).
    fn params_for_nodes(&self, _ctx: &Ctx) -> Result<Option<serde_yaml_ng::Value>, String> {
        Ok(None)
    }
}

/// `let client = or_return!(client(ctx).await);` — helpers that return `Result<T, Outcome>`
/// end the check with their outcome.
#[macro_export]
macro_rules! or_return {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(outcome) => return outcome,
        }
    };
}

/// What a check's last `run` saw, kept for its `apply` (and replaced by the next run).
pub struct Observed<T>(std::sync::Mutex<Option<T>>);

impl<T: Clone> Observed<T> {
    pub fn set(&self, value: Option<T>) {
        if let Ok(mut g) = self.0.lock() {
            *g = value;
        }
    }

    pub fn get(&self) -> Option<T> {
        self.0.lock().ok().and_then(|g| g.clone())
    }
}

impl<T> Default for Observed<T> {
    fn default() -> Self {
        Observed(std::sync::Mutex::new(None))
    }
}

/// One entry of the registry. Parameters are deserialised by the typed `checks:` section
/// that `checks::registry!` generates, so profile errors carry exact lines.
pub struct CheckDef {
    pub meta: Meta,
}

/// A check's deadline: generous next to one probe, so only a hung check hits it.
pub fn check_deadline(probe_timeout: Duration) -> Duration {
    probe_timeout * 2 + Duration::from_secs(20)
}
