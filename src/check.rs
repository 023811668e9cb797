//! The vocabulary every check speaks: metadata, outcome, fix, and the context it runs in.
//! The engine only ever sees these types; it never names a particular check.

use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::resolve::Resolver;

/// Phases run in this order; checks inside a phase run concurrently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Tools,
    Node,
    Network,
    Cluster,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Tools, Phase::Node, Phase::Network, Phase::Cluster];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Tools => "tools",
            Phase::Node => "node",
            Phase::Network => "network",
            Phase::Cluster => "cluster",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
    Error,
}

impl Status {
    /// A prerequisite in this state lets its dependents run.
    pub fn lets_dependents_run(self) -> bool {
        matches!(self, Status::Pass | Status::Warn)
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
            Status::Error => "error",
        }
    }
}

/// ruff's applicability: `safe` fixes are reversible and touch only what the check owns;
/// `unsafe` ones delete or overwrite and need `--unsafe-fixes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Safety {
    Safe,
    Unsafe,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fix {
    pub summary: String,
    pub commands: Vec<String>,
    /// `--fix` can apply it (otherwise the commands are for a person to run).
    pub automatic: bool,
    pub safety: Safety,
}

impl Fix {
    /// A fix a person applies by running the commands shown.
    pub fn manual(summary: impl Into<String>, commands: Vec<String>) -> Self {
        Fix {
            summary: summary.into(),
            commands,
            automatic: false,
            safety: Safety::Safe,
        }
    }

    /// A fix `--fix` applies through the check's `apply`; the commands say what it does.
    pub fn automatic(summary: impl Into<String>, commands: Vec<String>) -> Self {
        Fix {
            automatic: true,
            ..Self::manual(summary, commands)
        }
    }

    pub fn unsafe_(mut self) -> Self {
        self.safety = Safety::Unsafe;
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub message: String,
    pub fix: Option<Fix>,
    /// Dependents this prerequisite knows cannot run (their reason); the others still run.
    pub starved: Vec<Starved>,
    /// What it measured, for its `roll_up` over the nodes (`preflight nodes`): travels in
    /// the pod's termination message, not in the report.
    pub facts: Option<Box<serde_json::Value>>,
}

/// A dependent check a prerequisite found it cannot run, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Starved {
    pub check: &'static str,
    pub reason: String,
}

/// Read access a cluster check needs, declared so that cluster.api can ask the API server
/// for all of it at once (SelfSubjectAccessReview) before the checks start.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    pub verb: String,
    pub group: String,
    pub resource: String,
    /// `None`: cluster-wide (for a namespaced resource: in every namespace).
    pub namespace: Option<String>,
}

impl Access {
    pub fn new(verb: &str, group: &str, resource: &str) -> Self {
        Access {
            verb: verb.to_string(),
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: None,
        }
    }

    pub fn in_namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.to_string());
        self
    }

    /// `resource.group`, as kubectl names it.
    pub fn resource_name(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `list apiservices.apiregistration.k8s.io`, `list pods in namespace kube-system`.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {} in namespace {ns}", self.verb, self.resource_name()),
            None => format!("{} {}", self.verb, self.resource_name()),
        }
    }

    /// `kubectl auth can-i list pods -n kube-system`
    pub fn can_i(&self) -> String {
        let ns = match &self.namespace {
            Some(n) => format!(" -n {n}"),
            None => " -A".to_string(),
        };
        format!("kubectl auth can-i {} {}{ns}", self.verb, self.resource_name())
    }
}

impl Outcome {
    fn new(status: Status, message: impl Into<String>) -> Self {
        Outcome {
            status,
            message: message.into(),
            fix: None,
            starved: Vec::new(),
            facts: None,
        }
    }
    pub fn pass(message: impl Into<String>) -> Self {
        Self::new(Status::Pass, message)
    }
    pub fn warn(message: impl Into<String>) -> Self {
        Self::new(Status::Warn, message)
    }
    pub fn fail(message: impl Into<String>) -> Self {
        Self::new(Status::Fail, message)
    }
    pub fn skip(message: impl Into<String>) -> Self {
        Self::new(Status::Skip, message)
    }
    /// The check could not decide (permission denied, unreachable, timeout): never a pass.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Status::Error, message)
    }
    pub fn with_fix(mut self, fix: Fix) -> Self {
        self.fix = Some(fix);
        self
    }
    pub fn with_facts(mut self, facts: serde_json::Value) -> Self {
        self.facts = Some(Box::new(facts));
        self
    }
}

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
    /// It reads the install (`--chart` / `--helmfile`): the install is rendered only when a
    /// planned check does.
    pub reads_install: bool,
    /// It reads the host's network namespace (/proc/sys/net): run in a pod per node
    /// (`preflight nodes`), that pod needs `hostNetwork`.
    pub host_network: bool,
    /// Run on every node, its verdict over all of them when that is not the worst node's:
    /// room for a local-PV claim is needed on *some* node, as the scheduler asks (seed 004).
    /// `None`: the worst status over the nodes.
    pub roll_up: Option<RollUp>,
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

/// The release the install creates: objects carrying its Helm ownership count as "ours".
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub name: String,
    pub namespace: String,
}

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
