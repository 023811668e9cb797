//! The words every layer speaks — phase, status, fix, finding, access, release — and
//! nothing else: a leaf that the install model, the cluster access, the checks, the engine
//! and the reports all take from, so none of them need another to say what a result is.

use serde::{Deserialize, Serialize};

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

/// The release the install creates: objects carrying its Helm ownership count as "ours".
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub name: String,
    pub namespace: String,
}

/// One check's line in the report.
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub id: &'static str,
    pub phase: Phase,
    pub title: &'static str,
    pub status: Status,
    pub message: String,
    pub fix: Option<Fix>,
    pub fixed: bool,
    /// `--fix` tried this check's fix and it failed: why.
    pub fix_error: Option<String>,
    pub duration_ms: u64,
    /// What this check told its dependents it starves (kept for a re-run after --fix).
    pub starved: Vec<Starved>,
    /// The node it ran on, for node checks run in a pod per node (`preflight nodes`).
    pub node: Option<String>,
    /// `Outcome::facts`: only the termination message carries them (to the roll-up).
    pub facts: Option<serde_json::Value>,
}

impl CheckReport {
    /// The fix `--fix` would apply: a problem (fail or warn) with an automatic fix.
    pub fn auto_fix(&self) -> Option<&Fix> {
        match self.status {
            Status::Fail | Status::Warn => self.fix.as_ref().filter(|f| f.automatic),
            _ => None,
        }
    }
}
