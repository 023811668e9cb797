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

    /// How bad it is, for the worst of several (a check's findings, a check over the
    /// nodes): a predicted failure outweighs what could not be decided (as the exit code has
    /// it), which outweighs a warning.
    pub fn weight(self) -> u8 {
        match self {
            Status::Fail => 4,
            Status::Error => 3,
            Status::Warn => 2,
            Status::Skip => 1,
            Status::Pass => 0,
        }
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

/// What a finding is about, typed, so a script can act on it (`.subject.image`) without
/// reading the sentence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Subject {
    /// The cluster as a whole (the API server, its APIs).
    Cluster,
    /// An object of the install (with the release and template it comes from) or of the
    /// cluster.
    Object {
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        release: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template: Option<String>,
    },
    /// An image reference as the install writes it.
    Image {
        image: String,
    },
    /// A registry host (`host[:port]`).
    Registry {
        host: String,
    },
    /// A chart repository or other URL.
    Url {
        url: String,
    },
    /// A host name to resolve.
    Host {
        host: String,
    },
    Node {
        node: String,
    },
    /// A file or directory on the host.
    Path {
        path: String,
    },
    Release {
        release: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// A program the install runs (helm, helmfile, a plugin, a hook's command).
    Tool {
        tool: String,
    },
    /// A port on the nodes.
    Port {
        port: u16,
        protocol: String,
    },
    /// A kernel setting or module (`net.ipv4.ip_forward`, `br_netfilter`).
    Setting {
        setting: String,
    },
    /// A permission of the kubeconfig's user: `verb` on `resource` (`resource.group`), in
    /// `namespace` or cluster-wide.
    Access {
        verb: String,
        resource: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
}

impl Subject {
    /// What it is called, in a word (an object's name, an image, a node): for a list of
    /// subjects that share one sentence.
    pub fn name(&self) -> String {
        match self {
            Subject::Cluster => "the cluster".to_string(),
            Subject::Object { name, .. } => name.clone(),
            Subject::Image { image } => image.clone(),
            Subject::Registry { host } | Subject::Host { host } => host.clone(),
            Subject::Url { url } => url.clone(),
            Subject::Node { node } => node.clone(),
            Subject::Path { path } => path.clone(),
            Subject::Release { release, .. } => release.clone(),
            Subject::Tool { tool } => tool.clone(),
            Subject::Port { port, protocol } => format!("{port}/{protocol}"),
            Subject::Setting { setting } => setting.clone(),
            Subject::Access { verb, resource, .. } => format!("{verb} {resource}"),
        }
    }

    pub fn object(kind: &str, namespace: Option<&str>, name: &str) -> Subject {
        Subject::Object {
            kind: kind.to_string(),
            namespace: namespace.filter(|n| !n.is_empty()).map(String::from),
            name: name.to_string(),
            release: None,
            template: None,
        }
    }
    /// An object subject, as the object a release wants (other subjects stay as they are).
    pub fn of_release(mut self, release_name: &str) -> Subject {
        if let Subject::Object { release, .. } = &mut self {
            *release = Some(release_name.to_string());
        }
        self
    }
    pub fn image(image: impl Into<String>) -> Subject {
        Subject::Image { image: image.into() }
    }
    pub fn registry(host: impl Into<String>) -> Subject {
        Subject::Registry { host: host.into() }
    }
    pub fn node(node: impl Into<String>) -> Subject {
        Subject::Node { node: node.into() }
    }
    pub fn path(path: impl Into<String>) -> Subject {
        Subject::Path { path: path.into() }
    }
    pub fn tool(tool: impl Into<String>) -> Subject {
        Subject::Tool { tool: tool.into() }
    }
    pub fn setting(setting: impl Into<String>) -> Subject {
        Subject::Setting {
            setting: setting.into(),
        }
    }
    pub fn release(release: impl Into<String>, namespace: Option<&str>) -> Subject {
        Subject::Release {
            release: release.into(),
            namespace: namespace.map(String::from),
        }
    }
}

/// A stable name for one kind of problem a check finds (kebab-case, unique in its check),
/// with the line `preflight explain CODE` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    pub code: &'static str,
    pub explain: &'static str,
}

/// One problem a check found: a stable code, how bad, what it is about, the sentence users
/// read (helm's and the API server's words kept), and its own fix when it has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: String,
    pub severity: Status,
    pub subject: Subject,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<Fix>,
}

impl Finding {
    fn new(code: &Code, severity: Status, subject: Subject, message: impl Into<String>) -> Self {
        Finding {
            code: code.code.to_string(),
            severity,
            subject,
            message: message.into(),
            fix: None,
        }
    }
    pub fn fail(code: &Code, subject: Subject, message: impl Into<String>) -> Self {
        Self::new(code, Status::Fail, subject, message)
    }
    pub fn warn(code: &Code, subject: Subject, message: impl Into<String>) -> Self {
        Self::new(code, Status::Warn, subject, message)
    }
    /// This item could not be decided (denied, unreachable): never a pass.
    pub fn error(code: &Code, subject: Subject, message: impl Into<String>) -> Self {
        Self::new(code, Status::Error, subject, message)
    }
    pub fn with_fix(mut self, fix: Fix) -> Self {
        self.fix = Some(fix);
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    /// With findings: the summary line after them; without: the whole message.
    pub message: String,
    /// Each problem on its own (the status is the worst of them).
    pub findings: Vec<Finding>,
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
    /// This permission as a finding's subject.
    pub fn subject(&self) -> Subject {
        Subject::Access {
            verb: self.verb.clone(),
            resource: self.resource_name(),
            namespace: self.namespace.clone(),
        }
    }

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
            findings: Vec::new(),
            fix: None,
            starved: Vec::new(),
            facts: None,
        }
    }
    pub fn pass(message: impl Into<String>) -> Self {
        Self::new(Status::Pass, message)
    }
    // No `fail` or `warn` from a sentence: a problem is a finding with a code and a subject
    // (`found`, `problem`), so a script always has something to branch on.
    pub fn skip(message: impl Into<String>) -> Self {
        Self::new(Status::Skip, message)
    }
    /// The check could not decide (permission denied, unreachable, timeout): never a pass.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Status::Error, message)
    }
    /// One problem, nothing said after it.
    pub fn problem(finding: Finding) -> Self {
        Self::found(vec![finding], "")
    }

    /// The findings, and the line said after them (or alone when there are none: a pass).
    /// The status is the worst finding's.
    pub fn found(findings: Vec<Finding>, summary: impl Into<String>) -> Self {
        let status = findings
            .iter()
            .map(|f| f.severity)
            .max_by_key(|s| s.weight())
            .unwrap_or(Status::Pass);
        Outcome {
            findings,
            ..Self::new(status, summary)
        }
    }
    pub fn with_fix(mut self, fix: Fix) -> Self {
        self.fix = Some(fix);
        self
    }
    /// What the user reads: each finding's sentence, then the message.
    pub fn text(&self) -> String {
        full_text(&self.findings, &self.message)
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
    /// The summary after the findings (without findings: the whole message).
    pub message: String,
    pub findings: Vec<Finding>,
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
    /// What the user reads: each finding's sentence, then the summary.
    pub fn text(&self) -> String {
        full_text(&self.findings, &self.message)
    }

    /// The fixes to show: the check's own, then the findings'; fixes of the same words are
    /// one, with each command once (three missing images: one "push them" with three copies).
    pub fn fixes(&self) -> Vec<Fix> {
        merge_fixes(
            self.fix
                .iter()
                .chain(self.findings.iter().filter_map(|f| f.fix.as_ref())),
        )
    }

    /// The fix `--fix` would apply: a problem (fail or warn) with an automatic fix.
    pub fn auto_fix(&self) -> Option<&Fix> {
        match self.status {
            Status::Fail | Status::Warn => self.fix.as_ref().filter(|f| f.automatic),
            _ => None,
        }
    }
}

/// Fixes of the same words (and kind) as one, each command once.
pub fn merge_fixes<'a>(fixes: impl IntoIterator<Item = &'a Fix>) -> Vec<Fix> {
    let mut out: Vec<Fix> = Vec::new();
    for f in fixes {
        match out
            .iter_mut()
            .find(|o| o.summary == f.summary && o.automatic == f.automatic && o.safety == f.safety)
        {
            Some(o) => {
                for c in &f.commands {
                    if !o.commands.contains(c) {
                        o.commands.push(c.clone());
                    }
                }
            }
            None => out.push(f.clone()),
        }
    }
    out
}

/// The findings' sentences, one per line, then the summary (when there is one).
pub fn full_text(findings: &[Finding], summary: &str) -> String {
    lines_then(findings.iter().map(|f| f.message.as_str()), summary)
}

/// Lines said about a check (its findings' sentences, or a reader's folding of them), then
/// its summary when it has one.
pub fn lines_then<'a>(lines: impl IntoIterator<Item = &'a str>, summary: &'a str) -> String {
    let mut all: Vec<&str> = lines.into_iter().collect();
    if !summary.is_empty() {
        all.push(summary);
    }
    all.join("\n")
}
