use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use serde::Deserialize;

use super::{client, undecided};
use crate::check::{
    Access, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};

const NAMESPACE_MAYBE_BY_HOOK: Code = Code {
    code: "namespace-maybe-by-hook",
    explain: "the release's namespace does not exist, and a prepare/presync hook creates a namespace whose name a reading of its script cannot tell: not known to be there, so a warning",
};
const NAMESPACE_MISSING: Code = Code {
    code: "namespace-missing",
    explain: "the release's namespace does not exist and nothing creates it: helm fails with \"create: failed to create: namespaces … not found\"",
};
const NAMESPACE_TERMINATING: Code = Code {
    code: "namespace-terminating",
    explain: "the release's namespace is being deleted: helm fails with \"unable to create new content in namespace X because it is being terminated\"",
};
const NAMESPACE_CREATED_TWICE: Code = Code {
    code: "namespace-created-twice",
    explain: "--create-namespace (helmfile createNamespace) and the chart's own Namespace both create it: \"already exists\"",
};
const CHART_RENDERS_NAMESPACE: Code = Code {
    code: "chart-renders-release-namespace",
    explain: "the chart renders its own release namespace (OpenKruise's kruise-system): helm's release record needs it first, and one that exists cannot be imported; install into another namespace",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.release-namespace",
        phase: Phase::Cluster,
        title: "each release's namespace exists or will be created, and only once",
        requires: &["cluster.api"],
        install: InstallUse::Fed,
        codes: &[
            super::API_ERROR,
            NAMESPACE_MISSING,
            NAMESPACE_MAYBE_BY_HOOK,
            NAMESPACE_TERMINATING,
            NAMESPACE_CREATED_TWICE,
            CHART_RENDERS_NAMESPACE,
        ],
        host_network: false,
        roll_up: None,
        explain: r#"Why: helm installs a release into a namespace that must exist (or that
--create-namespace / helmfile's createNamespace makes first), that is not being deleted, and
that the chart does not also create: helm writes the release record (a Secret in the
release namespace, status pending-install) *before* it creates any object, so a Namespace
the chart renders never helps, and a pre-created one then clashes with it. The only way
through for a chart that creates its own namespace (OpenKruise's `kruise-system`, seed 003)
is a release namespace other than that one. Measured on a v1.20 cluster with the real helm:

    Error: INSTALLATION FAILED: create: failed to create: namespaces "kruise-system" not found
    Error: INSTALLATION FAILED: namespaces "kruise-system" already exists        (--create-namespace
                                                         and a chart that renders that Namespace)
    Error: ... unable to create new content in namespace cert-manager because it is being
    terminated                                                                   (seed 000)

What it looks at: with an install (--chart / --helmfile), for each release: GET its namespace;
whether the release creates it (--create-namespace; helmfile's createNamespace, true unless
set false) and whether the chart renders a Namespace of the same name. A helmfile hook that
runs before the sync (`prepare`, `presync`) and creates the namespace counts as creating it:
its script is read, never run, with the hook's args put in for `$1`… (bkce7's 03-bcs:
`bash ./scripts/create_bcs_namespace.sh bcs-system` pipes a `kind: Namespace` into `kubectl
apply -f -`); a script whose namespace name the reading cannot tell is a warning, never a
pass.

Fix: create the namespace or add --create-namespace; drop --create-namespace (helmfile:
createNamespace: false) when the chart brings the Namespace itself; wait for (or repair) a
Terminating namespace (see cluster.terminating-namespaces).

Parameters: none"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseNamespace {}

impl Check for ReleaseNamespace {
    fn access(&self) -> Vec<Access> {
        vec![Access::new("get", "", "namespaces")]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let install = crate::or_return!(ctx.install_given());
            let client = crate::or_return!(client(ctx).await);
            let api: Api<Namespace> = Api::all(client);
            let mut ok = Vec::new();
            let mut bad = Vec::new();
            let mut cmds = Vec::new();
            for (i, r) in install.releases.iter().enumerate() {
                let ns = &r.namespace;
                let renders_it = install.objects.iter().find(|o| {
                    o.release == i && o.kind == "Namespace" && o.api_version == "v1" && &o.name == ns
                });
                let found = match ctx
                    .kube
                    .call(&format!("GET namespace {ns}"), api.get_opt(ns))
                    .await
                {
                    Ok(f) => f,
                    Err(e) => return undecided(e),
                };
                let who = format!("release {} (namespace {ns})", r.name);
                // A hook that runs before the sync may create it (its script read, not run).
                let by_hook = install.hook_creates(ns);
                let unsure = install.unsure_hook_namespaces();
                match found {
                    Some(n) if n.metadata.deletion_timestamp.is_some() => {
                        bad.push(Finding::fail(&NAMESPACE_TERMINATING, Subject::release(r.name.as_str(), Some(ns.as_str())), format!("{who}: the namespace is being deleted: helm fails with \"unable to create new content in namespace {ns} because it is being terminated\"")));
                        cmds.push(format!(
                            "kubectl get namespace {ns} -o jsonpath='{{.status.conditions}}'"
                        ));
                    }
                    Some(n) => match renders_it {
                        None => ok.push(format!("{who}: exists")),
                        Some(o) => {
                            // The chart's own Namespace: helm adopts it only if it is already
                            // this release's (an upgrade); otherwise helm install refuses it.
                            let empty = Default::default();
                            let problem = crate::kube::ownership_problem(
                                n.metadata.labels.as_ref().unwrap_or(&empty),
                                n.metadata.annotations.as_ref().unwrap_or(&empty),
                                &r.as_release(),
                            );
                            match problem {
                                None => ok.push(format!(
                                    "{who}: exists, and is already this release's own Namespace ({})",
                                    o.source
                                )),
                                Some(p) => {
                                    bad.push(Finding::fail(&CHART_RENDERS_NAMESPACE, Subject::release(r.name.as_str(), Some(ns.as_str())), format!(
                                        "{who}: exists, and the chart renders that Namespace itself ({}): helm fails with: {}; the chart creates {ns} itself, so install the release into another namespace (its docs use default)",
                                        o.source,
                                        crate::kube::cannot_import("Namespace", ns, None, &p)
                                    )));
                                    cmds.push(format!("# install {} with --namespace default (or another namespace that exists): the chart creates {ns} itself", r.name));
                                }
                            }
                        }
                    },
                    None => match (r.create_namespace, renders_it) {
                        (true, Some(o)) => {
                            bad.push(Finding::fail(&NAMESPACE_CREATED_TWICE, Subject::release(r.name.as_str(), Some(ns.as_str())), format!(
                                "{who}: created first because of --create-namespace / createNamespace, then the chart's own Namespace ({}) fails with \"namespaces \\\"{ns}\\\" already exists\"",
                                o.source
                            )));
                            cmds.push(format!("# drop --create-namespace for {} (helmfile: createNamespace: false): the chart creates {ns} itself", r.name));
                        }
                        (true, None) => ok.push(format!("{who}: will be created (--create-namespace)")),
                        // helm writes the release record (a Secret in the release
                        // namespace, pending-install) before it creates any object: the
                        // chart's Namespace comes too late.
                        (false, Some(o)) => {
                            bad.push(Finding::fail(&CHART_RENDERS_NAMESPACE, Subject::release(r.name.as_str(), Some(ns.as_str())), format!(
                                "{who}: does not exist; the chart renders it ({}), but helm writes the release record (a Secret in {ns}) before it creates any object, so it fails with \"create: failed to create: namespaces \\\"{ns}\\\" not found\"; creating {ns} first makes the chart's Namespace fail as \"exists and cannot be imported\": install the release into another namespace (its docs use default), and the chart creates {ns} itself",
                                o.source
                            )));
                            cmds.push(format!("# install {} with --namespace default (or another namespace that exists): the chart creates {ns} itself", r.name));
                        }
                        (false, None) if by_hook.is_some() => {
                            let hook = by_hook.map(|h| h.hook.as_str()).unwrap_or_default();
                            ok.push(format!("{who}: will be created by {hook} (read, not run)"));
                        }
                        (false, None) if !unsure.is_empty() => {
                            let hooks = &unsure;
                            bad.push(Finding::warn(&NAMESPACE_MAYBE_BY_HOOK, Subject::release(r.name.as_str(), Some(ns.as_str())), format!("{who}: does not exist; {} creates a namespace whose name a reading of it cannot tell (read, not run): unless that is {ns}, helm fails with \"create: failed to create: namespaces \\\"{ns}\\\" not found\"", hooks.join(", "))));
                        }
                        (false, None) => {
                            bad.push(Finding::fail(&NAMESPACE_MISSING, Subject::release(r.name.as_str(), Some(ns.as_str())), format!("{who}: does not exist and nothing creates it: helm fails with \"create: failed to create: namespaces \\\"{ns}\\\" not found\"")));
                            cmds.push(format!(
                                "kubectl create namespace {ns}   # or install with --create-namespace"
                            ));
                        }
                    },
                }
            }
            if bad.is_empty() {
                return Outcome::pass(ok.join("\n"));
            }
            Outcome::found(bad, "").with_fix(Fix::manual(
                "give each release a namespace that exists or is created exactly once",
                cmds,
            ))
        })
    }
}
