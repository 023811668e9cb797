use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{ApiResource, ListParams};
use kube::Api;
use serde::Deserialize;

use super::{client, undecided};
use crate::check::{
    Access, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::values::Dur;

const USED_NAMESPACE_TERMINATING: Code = Code {
    code: "namespace-terminating",
    explain: "a namespace the install uses is Terminating: helm fails with \"unable to create new content in namespace X because it is being terminated\" (and the unavailable APIService that keeps it there is named)",
};

const NAMESPACE_STUCK: Code = Code {
    code: "namespace-stuck",
    explain: "a namespace is Terminating for longer than stuck_after, or the namespace controller says it cannot finish (NamespaceDeletion…Failure): whatever is installed into it later fails",
};
const NAMESPACE_DELETING: Code = Code {
    code: "namespace-deleting",
    explain:
        "a namespace outside the install is being deleted, not yet for long: worth a look, not a failure",
};
const APISERVICE_UNAVAILABLE: Code = Code {
    code: "apiservice-unavailable",
    explain: "an aggregated APIService is not Available (seed 001): the namespace controller cannot finish deleting any namespace while it stays so",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.terminating-namespaces",
        phase: Phase::Cluster,
        title: "no namespace is stuck Terminating",
        requires: &["cluster.api"],
        install: InstallUse::Fed,
        codes: &[
            super::API_ERROR,
            USED_NAMESPACE_TERMINATING,
            NAMESPACE_STUCK,
            NAMESPACE_DELETING,
            APISERVICE_UNAVAILABLE,
        ],
        host_network: false,
        roll_up: None,
        explain: r#"Why: a namespace that never finishes deleting blocks any install into it, and an
unavailable aggregated APIService is the usual reason: the namespace controller cannot
list that API's resources, so it never empties the namespace. DaoCloud users saw the
kpanda-system namespace stay Terminating after detaching a cluster (seed 001); the fix was

    kubectl get apiservices

and repairing or deleting the APIService whose status was False. KubeVela users saw the
install itself fail (seed 000): "unable to create new content in namespace cert-manager
because it is being terminated".

What it looks at: one list of namespace metadata (deletionTimestamp), one list of
APIServices (condition Available=False, with its reason). A namespace the install uses (the
release's namespace, `namespaces`, and with an install every namespace it renders into or
creates) that is Terminating fails at once, whatever its age,
with helm's own sentence — and, when an APIService is unavailable, names it as the reason
the deletion will never finish. Other namespaces fail when Terminating longer than
`stuck_after` (default 60s), naming the unavailable APIServices that block them; it warns
for namespaces being deleted right now, and for unavailable APIServices alone (the next
namespace deletion will hang). A Terminating namespace whose status conditions say the
namespace controller cannot finish (`NamespaceDeletionDiscoveryFailure`,
`NamespaceDeletionGroupVersionParsingFailure`, `NamespaceDeletionContentFailure` True)
fails at once, whatever its age, quoting the condition's message (seed 001: an APIService
that is unavailable makes discovery fail).

Fix: bring the APIService's backing service back, or delete the APIService
(`kubectl delete apiservice <name>`) if its add-on was removed.

Parameters: stuck_after: 60s, namespaces: [the install's namespaces],
            only: [look only at these (and the install's); default all]"#,
    },
};

fn default_stuck() -> Dur {
    Dur(std::time::Duration::from_secs(60))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminatingNamespaces {
    #[serde(default = "default_stuck")]
    stuck_after: Dur,
    /// The namespaces the install uses (with the release's): Terminating fails at once.
    #[serde(default)]
    namespaces: Vec<String>,
    /// Look only at these namespaces (and the install's); empty = every namespace.
    #[serde(default)]
    only: Vec<String>,
}

/// `name (reason: message)` of an APIService whose Available condition is False.
pub(crate) fn unavailable(svc: &APIService) -> Option<String> {
    let cond = svc
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Available" && c.status == "False")?;
    let name = svc.metadata.name.clone().unwrap_or_default();
    let why = [cond.reason.as_deref(), cond.message.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    Some(if why.is_empty() {
        name
    } else {
        format!("{name} ({why})")
    })
}

/// Status conditions with which the namespace controller says it cannot finish a deletion.
const BLOCKING: &[&str] = &[
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
];

impl Check for TerminatingNamespaces {
    fn access(&self) -> Vec<Access> {
        vec![
            Access::new("list", "", "namespaces"),
            Access::new("get", "", "namespaces"),
            Access::new("list", "apiregistration.k8s.io", "apiservices"),
        ]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let client = crate::or_return!(client(ctx).await);
            let rendered: Vec<String> = match crate::or_return!(ctx.rendered()) {
                Some(i) => i.namespaces().into_iter().collect(),
                None => Vec::new(),
            };
            let mut install: Vec<&str> = self.namespaces.iter().map(String::as_str).collect();
            install.extend(rendered.iter().map(String::as_str));
            if let Some(r) = &ctx.release {
                install.push(r.namespace.as_str());
            }
            // Only the Terminating ones that are watched are kept, page by page.
            let mut watched = Vec::new();
            let mut in_scope_count = 0;
            let listed = ctx
                .kube
                .list_meta(
                    &client,
                    &ApiResource::erase::<Namespace>(&()),
                    "list namespaces",
                    &ListParams::default(),
                    |m| {
                        let name = m.name.as_deref().unwrap_or_default();
                        let in_scope = self.only.is_empty()
                            || self.only.iter().any(|n| n == name)
                            || install.contains(&name);
                        in_scope_count += usize::from(in_scope);
                        if in_scope && m.deletion_timestamp.is_some() {
                            watched.push(m);
                        }
                    },
                )
                .await;
            if let Err(e) = listed {
                return undecided(e);
            }
            let services: Api<APIService> = Api::all(client.clone());
            let apiservices = match ctx
                .kube
                .call("list apiservices", services.list(&ListParams::default()))
                .await
            {
                Ok(l) => l,
                Err(e) => return undecided(e),
            };
            let broken: Vec<(String, String)> = apiservices
                .items
                .iter()
                .filter_map(|a| Some((a.metadata.name.clone().unwrap_or_default(), unavailable(a)?)))
                .collect();
            // The namespace controller's own verdict, from the Terminating ones' status: a
            // deletion it cannot finish says so at once, whatever its age.
            let full: Api<Namespace> = Api::all(client.clone());
            let mut blocked = std::collections::HashMap::new();
            for ns in &watched {
                let name = ns.name.clone().unwrap_or_default();
                let got = match ctx.kube.call("get namespace", full.get(&name)).await {
                    Ok(n) => n,
                    // Gone meanwhile: nothing holds it.
                    Err(crate::kube::ApiError::NotFound(_)) => continue,
                    Err(e) => return undecided(e),
                };
                let conditions = got.status.and_then(|s| s.conditions).unwrap_or_default();
                if let Some(c) = conditions
                    .iter()
                    .find(|c| c.status == "True" && BLOCKING.contains(&c.type_.as_str()))
                {
                    blocked.insert(
                        name,
                        format!("{}: {}", c.type_, c.message.clone().unwrap_or_default()),
                    );
                }
            }
            let now = Timestamp::now();
            let mut in_use = Vec::new();
            let mut stuck = Vec::new();
            let mut deleting = Vec::new();
            for ns in &watched {
                let Some(ts) = &ns.deletion_timestamp else {
                    continue;
                };
                let name = ns.name.clone().unwrap_or_default();
                let age = now.duration_since(ts.0).unsigned_abs();
                let finalizers = ns.finalizers.clone().unwrap_or_default();
                let extra = if finalizers.is_empty() {
                    String::new()
                } else {
                    format!(", finalizers {}", finalizers.join(", "))
                };
                let mut line = format!("{name} (Terminating for {}s{extra})", age.as_secs());
                let held = blocked.get(&name);
                if let Some(why) = held {
                    line.push_str(&format!(": the namespace controller cannot finish it: {why}"));
                }
                if install.contains(&name.as_str()) {
                    // Whatever its age: helm's next create in it fails right now.
                    in_use.push((name, line));
                } else if age >= self.stuck_after.0 || held.is_some() {
                    stuck.push((name, line));
                } else {
                    deleting.push((name, line));
                }
            }
            let mut found: Vec<Finding> = in_use
                .iter()
                .map(|(name, line)| {
                    Finding::fail(
                        &USED_NAMESPACE_TERMINATING,
                        Subject::object("Namespace", None, name),
                        format!(
                            "namespace {line} is used by the install: helm fails with \"unable to create new content in namespace {name} because it is being terminated\""
                        ),
                    )
                })
                .collect();
            found.extend(stuck.iter().map(|(name, line)| {
                Finding::fail(
                    &NAMESPACE_STUCK,
                    Subject::object("Namespace", None, name),
                    format!("namespace {line} is stuck Terminating"),
                )
            }));
            found.extend(deleting.iter().map(|(name, line)| {
                Finding::warn(
                    &NAMESPACE_DELETING,
                    Subject::object("Namespace", None, name),
                    format!("namespace {line} is being deleted"),
                )
            }));
            // A deletion this check fails on: the unavailable APIServices are named as its cause.
            let failing = !in_use.is_empty() || !stuck.is_empty();
            found.extend(broken.iter().map(|(name, text)| {
                let why = if failing {
                    "the deletion above never finishes while it stays so"
                } else {
                    "it will keep any namespace deleted from now on Terminating"
                };
                Finding::warn(
                    &APISERVICE_UNAVAILABLE,
                    Subject::object("APIService", None, name),
                    format!("APIService {text} is unavailable: {why}"),
                )
            }));
            if found.is_empty() {
                return Outcome::pass(format!("{in_scope_count} namespaces, none Terminating"));
            }
            if !broken.is_empty() {
                let mut cmds = vec!["kubectl get apiservices".to_string()];
                for (name, _) in &broken {
                    cmds.push(format!("kubectl delete apiservice {name}   # only if its add-on was removed; else repair its service"));
                }
                return Outcome::found(found, "").with_fix(Fix::manual(
                    "repair or delete the unavailable APIServices; the namespace controller then finishes the deletion",
                    cmds,
                ));
            }
            if !failing {
                return Outcome::found(found, "");
            }
            let names = in_use.iter().chain(stuck.iter()).map(|(n, _)| n);
            Outcome::found(
                found,
                "no APIService is unavailable: wait for the deletion to finish; if it stays, look at the namespaces' finalizers and status conditions",
            )
            .with_fix(Fix::manual(
                "wait for the deletion to finish (or find what holds it), then install",
                names
                    .map(|n| format!("kubectl get namespace {n} -o jsonpath='{{.status.conditions}}'"))
                    .collect(),
            ))
        })
    }
}
