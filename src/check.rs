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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Safety {
    Safe,
    Unsafe,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
}

impl Outcome {
    fn new(status: Status, message: impl Into<String>) -> Self {
        Outcome {
            status,
            message: message.into(),
            fix: None,
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
}

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
}

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
}

impl Ctx {
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
