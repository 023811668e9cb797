use kube::api::ObjectMeta;
use serde::Deserialize;

use super::undecided;
use crate::check::{
    Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};

const RELEASE_PENDING: Code = Code {
    code: "release-pending",
    explain: "the release's latest revision is pending-install/upgrade/rollback (an interrupted helm): helm fails with \"another operation (install/upgrade/rollback) is in progress\" (seed 001)",
};
const FIRST_INSTALL_FAILED: Code = Code {
    code: "first-install-failed",
    explain: "the release's only revision failed: helm install says \"cannot re-use a name that is still in use\"; helm upgrade --install works",
};

const NAME_IN_USE: Code = Code {
    code: "name-in-use",
    explain: "the installer's command is helm install and the release already exists: helm says \"cannot re-use a name that is still in use\" (helm upgrade --install upgrades it)",
};
const NO_DEPLOYED_RELEASE: Code = Code {
    code: "no-deployed-release",
    explain: "the installer's command is helm upgrade without --install and the release does not exist: helm says \"UPGRADE FAILED: … has no deployed releases\"",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.release-state",
        phase: Phase::Cluster,
        title: "no earlier operation left a release half-done",
        requires: &["cluster.api"],
        install: InstallUse::Fed,
        codes: &[
            super::API_ERROR,
            RELEASE_PENDING,
            FIRST_INSTALL_FAILED,
            NAME_IN_USE,
            NO_DEPLOYED_RELEASE,
        ],
        host_network: false,
        roll_up: None,
        explain: r#"Why: an install or upgrade that was interrupted (a killed installer, a lost
connection, a timeout) leaves its release `pending-*`, and every later helm operation on it
stops at once. DaoCloud users had an app stuck "installing" that could not be removed
(seed 001); helm says:

    Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress

and a first install that failed blocks `helm install` of the same name:

    Error: INSTALLATION FAILED: cannot re-use a name that is still in use

What it looks at: with an install (--chart / --helmfile), each release's history as helm
stores it: the Secrets `sh.helm.release.v1.<name>.v<N>` (label owner=helm, name=<name>;
ConfigMaps when HELM_DRIVER=configmap) in the release's namespace, read by their labels
(status, version) — no payload is decoded. The newest revision decides: pending-install,
pending-upgrade or pending-rollback fail; a failed first install warns (helm install
refuses the name, helm upgrade --install works); deployed is an upgrade (pass); none is a
first install (pass). When the installer's command is given (`-- helm install|upgrade …`,
the helm plugin) it decides exactly: `helm install` of a release that exists fails
(`name-in-use`; a failed first install too), `helm upgrade` without `--install` of one that
does not fails (`Error: UPGRADE FAILED: "NAME" has no deployed releases`), `helm upgrade
--install` over a failed first install passes; helmfile always runs `upgrade --install`.

Fix: after an interrupted upgrade, `helm rollback <name> <last deployed revision> -n <ns>`;
after an interrupted first install, `helm uninstall <name> -n <ns>` (unsafe: it deletes
what the install created).

Parameters: none"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseState {}

/// One stored revision: (version, status).
fn revision(meta: &ObjectMeta) -> Option<(u64, String)> {
    let labels = meta.labels.as_ref()?;
    Some((
        labels.get("version")?.parse().ok()?,
        labels.get("status")?.clone(),
    ))
}

impl Check for ReleaseState {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let install = crate::or_return!(ctx.install_given());
            let (mut ok, mut warn, mut bad, mut cmds) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            use crate::install::{HelmCommand, InstallSpec};
            let command = match &ctx.install_spec {
                Some(InstallSpec::Chart(c)) => c.command,
                Some(InstallSpec::Helmfile(_)) => Some(HelmCommand::Upgrade { install: true }),
                None => None,
            };
            for r in &install.releases {
                let metas = match ctx.kube.helm_revisions(&r.namespace, &r.name).await {
                    Ok(m) => m,
                    Err(e) => return undecided(e),
                };
                let mut revisions: Vec<(u64, String)> = metas.iter().filter_map(revision).collect();
                revisions.sort();
                let who = format!("release {}/{}", r.namespace, r.name);
                let Some((latest, status)) = revisions.last().cloned() else {
                    if command == Some(HelmCommand::Upgrade { install: false }) {
                        bad.push(Finding::fail(
                            &NO_DEPLOYED_RELEASE,
                            Subject::release(r.name.as_str(), Some(r.namespace.as_str())),
                            format!(
                                "{who}: does not exist, and the installer runs helm upgrade without --install: helm fails with \"UPGRADE FAILED: \\\"{}\\\" has no deployed releases\"",
                                r.name
                            ),
                        ).with_fix(Fix::manual(
                            "for a first install, run helm upgrade --install (or helm install)",
                            vec![format!("helm upgrade --install {} <chart> -n {}", r.name, r.namespace)],
                        )));
                    } else {
                        ok.push(format!("{who}: a first install"));
                    }
                    continue;
                };
                let last_deployed = revisions
                    .iter()
                    .rev()
                    .find(|(_, s)| s == "deployed" || s == "superseded")
                    .map(|(v, _)| *v);
                match status.as_str() {
                    s if s.starts_with("pending-") => {
                        bad.push(Finding::fail(
                            &RELEASE_PENDING,
                            Subject::release(r.name.as_str(), Some(r.namespace.as_str())),
                            format!(
                                "{who}: revision {latest} is {s}: helm fails with \"another operation (install/upgrade/rollback) is in progress\""
                            ),
                        ));
                        cmds.push(match last_deployed {
                            Some(v) => format!("helm rollback {} {v} -n {}", r.name, r.namespace),
                            None => format!("helm uninstall {} -n {}   # unsafe: deletes what the interrupted install created", r.name, r.namespace),
                        });
                    }
                    _ if command == Some(HelmCommand::Install) => {
                        let code = if status == "failed" && last_deployed.is_none() {
                            &FIRST_INSTALL_FAILED
                        } else {
                            &NAME_IN_USE
                        };
                        bad.push(Finding::fail(
                            code,
                            Subject::release(r.name.as_str(), Some(r.namespace.as_str())),
                            format!(
                                "{who}: exists (revision {latest} is {status}), and the installer runs helm install: helm fails with \"INSTALLATION FAILED: cannot re-use a name that is still in use\""
                            ),
                        ).with_fix(Fix::manual(
                            "upgrade the release with helm upgrade --install, or uninstall it to install it anew (unsafe: deletes what it created)",
                            vec![
                                format!("helm upgrade --install {} <chart> -n {}", r.name, r.namespace),
                                format!("helm uninstall {} -n {}", r.name, r.namespace),
                            ],
                        )));
                    }
                    "failed" if last_deployed.is_none() && command.is_some() => {
                        ok.push(format!(
                            "{who}: its first install failed (revision {latest}); helm upgrade replaces it"
                        ));
                    }
                    "failed" if last_deployed.is_none() => {
                        warn.push(Finding::warn(
                            &FIRST_INSTALL_FAILED,
                            Subject::release(r.name.as_str(), Some(r.namespace.as_str())),
                            format!(
                                "{who}: its first install failed (revision {latest}): helm install says \"cannot re-use a name that is still in use\"; helm upgrade --install (as helmfile runs it) works"
                            ),
                        ));
                        cmds.push(format!(
                            "helm uninstall {} -n {}   # to use helm install again",
                            r.name, r.namespace
                        ));
                    }
                    "deployed" => ok.push(format!("{who}: an upgrade of revision {latest} (deployed)")),
                    other => ok.push(format!("{who}: an upgrade; revision {latest} is {other}")),
                }
            }
            if !bad.is_empty() {
                bad.extend(warn);
                let found = Outcome::found(bad, "");
                // The findings that carry no fix of their own are the interrupted operations.
                return if cmds.is_empty() {
                    found
                } else {
                    found.with_fix(Fix::manual(
                        "finish or undo the interrupted operation before installing",
                        cmds,
                    ))
                };
            }
            if !warn.is_empty() {
                return Outcome::found(warn, "").with_fix(Fix::manual(
                    "clear the failed first install, or install with helm upgrade --install",
                    cmds,
                ));
            }
            Outcome::pass(ok.join("\n"))
        })
    }
}
