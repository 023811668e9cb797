use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::ByteString;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::Api;
use serde::Deserialize;

use super::{client, undecided};
use crate::check::check_deadline;
use crate::check::Cleanups;
use crate::check::{
    Access, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::values::{parse_version, Dur, Version};

/// Deletes the probe CSR when dropped armed: the engine's deadline drops a check's future,
/// and the cleanup must outlive it.
struct ProbeGuard {
    api: Api<CertificateSigningRequest>,
    name: String,
    timeout: Duration,
    cleanups: Cleanups,
    armed: bool,
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (api, name, timeout) = (self.api.clone(), self.name.clone(), self.timeout);
        self.cleanups.spawn(async move {
            let _ = tokio::time::timeout(timeout, api.delete(&name, &DeleteParams::default())).await;
        });
    }
}

const CONTROLLERS_OFF: Code = Code {
    code: "controllers-off",
    explain: "kube-controller-manager's --controllers leaves a CSR signing/approving controller (or bootstrapsigner) off: the add-ons' certificate requests are never signed",
};
const CSR_NOT_SIGNED: Code = Code {
    code: "csr-not-signed",
    explain: "the live probe's CertificateSigningRequest was approved but not signed in time",
};
const CLUSTER_TOO_OLD: Code = Code {
    code: "cluster-too-old",
    explain: "the server is older than min_version: the CSR API and signing controllers the add-ons need are missing",
};

const CONTROLLERS_UNKNOWN: Code = Code {
    code: "controllers-unknown",
    explain: "no kube-controller-manager pod in kube-system (a managed control plane): its --controllers cannot be read, and live_probe is off, so signing is not known to work",
};
const PROBE_UNDECIDED: Code = Code {
    code: "probe-undecided",
    explain: "the live probe's CertificateSigningRequest could not be created, approved or read back: whether the cluster signs is not known",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "cluster.csr-controllers",
        phase: Phase::Cluster,
        title: "certificate signing requests get approved and signed",
        requires: &["cluster.api"],
        install: InstallUse::No,
        codes: &[
            super::API_ERROR,
            CONTROLLERS_OFF,
            CSR_NOT_SIGNED,
            CLUSTER_TOO_OLD,
            CONTROLLERS_UNKNOWN,
            PROBE_UNDECIDED,
        ],
        host_network: false,
        roll_up: None,
        explain: r#"Why: add-ons that issue client certificates through the CSR API hang when the
cluster is too old or kube-controller-manager does not run the CSR controllers. DaoCloud
users could not open the console (seed 001): the CSR request failed because the cluster was
below v1.18, or kube-controller-manager lacked

    ttl-after-finished,bootstrapsigner,csrapproving,csrcleaner,csrsigning

What it looks at: the server version (≥ `min_version`, default 1.18.0); the --controllers
flag of the kube-controller-manager pod in kube-system (label
component=kube-controller-manager), which must enable csrapproving, csrsigning, csrcleaner
and bootstrapsigner — under the old names or the new ones
(certificatesigningrequest-signing-controller, …, bootstrap-signer-controller). `*` turns on
only the default-on controllers: bootstrapsigner is default-off. With no such pod (managed
control planes) it cannot read the flags; with `live_probe: true` it then decides (or
confirms) by creating a CSR for signer kubernetes.io/kube-apiserver-client, approving it,
waiting (up to `probe_wait`, and never past the check's own deadline) for the
certificate, and deleting it — always: a cleanup that outlives the check deletes it even
when the deadline cuts the check off.

Fix: run kube-controller-manager with `--controllers=*,bootstrapsigner` (edit
/etc/kubernetes/manifests/kube-controller-manager.yaml; drop any -csr… entries) and the
cluster signing key (--cluster-signing-cert-file/--cluster-signing-key-file); upgrade
clusters older than 1.18.

Parameters: min_version: "1.18.0", live_probe: false, probe_wait: 30s"#,
    },
};

fn default_min() -> Version {
    Version(semver::Version::new(1, 18, 0))
}

fn default_wait() -> Dur {
    Dur(Duration::from_secs(30))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrControllers {
    #[serde(default = "default_min")]
    min_version: Version,
    #[serde(default)]
    live_probe: bool,
    #[serde(default = "default_wait")]
    probe_wait: Dur,
}

/// (old name, new name, on by default under `*`)
const NEEDED: [(&str, &str, bool); 4] = [
    (
        "csrapproving",
        "certificatesigningrequest-approving-controller",
        true,
    ),
    ("csrsigning", "certificatesigningrequest-signing-controller", true),
    ("csrcleaner", "certificatesigningrequest-cleaner-controller", true),
    ("bootstrapsigner", "bootstrap-signer-controller", false),
];

/// kube-controller-manager's IsControllerEnabled: an explicit name wins, then `*`.
fn enabled(items: &[String], old: &str, new: &str, default_on: bool) -> bool {
    for item in items {
        if item == old || item == new {
            return true;
        }
        if let Some(off) = item.strip_prefix('-') {
            if off == old || off == new {
                return false;
            }
        }
    }
    items.iter().any(|i| i == "*") && default_on
}

/// The `--controllers` value of a command line (`*` when absent, the default).
pub fn controllers_flag(args: &[String]) -> Vec<String> {
    let mut value = None;
    let mut iter = args.iter();
    while let Some(a) = iter.next() {
        if let Some(v) = a.strip_prefix("--controllers=") {
            value = Some(v.to_string());
        } else if a == "--controllers" {
            value = iter.next().cloned();
        }
    }
    value
        .unwrap_or_else(|| "*".to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The needed controllers this flag leaves off.
pub fn missing(items: &[String]) -> Vec<&'static str> {
    NEEDED
        .iter()
        .filter(|(old, new, on)| !enabled(items, old, new, *on))
        .map(|(old, _, _)| *old)
        .collect()
}

enum Probe {
    Signed(Duration),
    NotSigned(String),
    Undecided(String),
}

fn unique_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("preflight-probe-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

impl CsrControllers {
    async fn live_probe(&self, ctx: &Ctx, client: &kube::Client, budget_end: Instant) -> Probe {
        let name = unique_name();
        let request = match rcgen::KeyPair::generate().and_then(|key| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name.clone());
            params.serialize_request(&key)?.pem()
        }) {
            Ok(pem) => pem,
            Err(e) => return Probe::Undecided(format!("cannot make a probe CSR: {e}")),
        };
        let api: Api<CertificateSigningRequest> = Api::all(client.clone());
        let csr = CertificateSigningRequest {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    [(
                        "app.kubernetes.io/created-by".to_string(),
                        "preflight".to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            spec: CertificateSigningRequestSpec {
                request: ByteString(request.into_bytes()),
                signer_name: "kubernetes.io/kube-apiserver-client".to_string(),
                usages: Some(vec!["client auth".to_string()]),
                ..Default::default()
            },
            status: None,
        };
        let created = match ctx
            .kube
            .call(
                &format!("create CSR {name}"),
                api.create(&PostParams::default(), &csr),
            )
            .await
        {
            Ok(c) => c,
            Err(e) => return Probe::Undecided(e.to_string()),
        };
        // From here on the CSR is deleted whatever happens: explicitly below, or by the
        // guard when the engine's deadline drops this future mid-wait.
        let mut guard = ProbeGuard {
            api: api.clone(),
            name: name.clone(),
            timeout: ctx.probe_timeout,
            cleanups: ctx.cleanups.clone(),
            armed: true,
        };
        let result = self.approve_and_wait(ctx, &api, created, budget_end).await;
        let _ = ctx
            .kube
            .call(
                &format!("delete CSR {name}"),
                api.delete(&name, &DeleteParams::default()),
            )
            .await;
        guard.armed = false;
        result
    }

    async fn approve_and_wait(
        &self,
        ctx: &Ctx,
        api: &Api<CertificateSigningRequest>,
        mut csr: CertificateSigningRequest,
        budget_end: Instant,
    ) -> Probe {
        let name = csr.metadata.name.clone().unwrap_or_default();
        csr.status = Some(CertificateSigningRequestStatus {
            conditions: Some(vec![CertificateSigningRequestCondition {
                type_: "Approved".to_string(),
                status: "True".to_string(),
                reason: Some("PreflightProbe".to_string()),
                message: Some("approved by preflight's live CSR probe".to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let what = format!("approve CSR {name}");
        if let Err(e) = ctx
            .kube
            .call(
                &what,
                api.replace_subresource("approval", &name, &PostParams::default(), &csr),
            )
            .await
        {
            return Probe::Undecided(e.to_string());
        }
        let started = Instant::now();
        // The wait ends inside the check's own deadline (leaving one GET), so the probe
        // reports what it saw instead of being cut off.
        let wait = self
            .probe_wait
            .0
            .min(budget_end.saturating_duration_since(started));
        loop {
            match ctx.kube.call(&format!("GET CSR {name}"), api.get(&name)).await {
                Ok(c) => {
                    if c.status
                        .as_ref()
                        .and_then(|s| s.certificate.as_ref())
                        .is_some_and(|b| !b.0.is_empty())
                    {
                        return Probe::Signed(started.elapsed());
                    }
                }
                Err(e) => return Probe::Undecided(e.to_string()),
            }
            if started.elapsed() >= wait {
                let capped = if wait < self.probe_wait.0 {
                    format!(
                        " (probe_wait {} capped to fit the check's deadline)",
                        humantime::format_duration(self.probe_wait.0)
                    )
                } else {
                    String::new()
                };
                return Probe::NotSigned(format!(
                    "the probe CSR {name} was approved but not signed within {}{capped}: the csrsigning controller is not running (or has no signing key)",
                    humantime::format_duration(Duration::from_secs(wait.as_secs()))
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn controllers_fix() -> Fix {
    Fix::manual(
        "run kube-controller-manager with the CSR controllers (and the cluster signing key)",
        vec![
            "grep -- --controllers /etc/kubernetes/manifests/kube-controller-manager.yaml".to_string(),
            "sed -i 's/--controllers=.*/--controllers=*,bootstrapsigner/' /etc/kubernetes/manifests/kube-controller-manager.yaml".to_string(),
        ],
    )
}

impl Check for CsrControllers {
    fn access(&self) -> Vec<Access> {
        {
            let mut a = vec![Access::new("list", "", "pods").in_namespace("kube-system")];
            if self.live_probe {
                a.push(Access::new(
                    "create",
                    "certificates.k8s.io",
                    "certificatesigningrequests",
                ));
                a.push(Access::new(
                    "delete",
                    "certificates.k8s.io",
                    "certificatesigningrequests",
                ));
            }
            a
        }
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let budget_end = Instant::now() + check_deadline(ctx.probe_timeout)
                - ctx.probe_timeout
                - Duration::from_secs(1);
            let client = crate::or_return!(client(ctx).await);
            let git_version = match ctx.kube.server_version().await {
                Ok(v) => v,
                Err(e) => return undecided(e),
            };
            let version = match parse_version(git_version) {
                Ok(v) => v,
                Err(e) => return Outcome::error(format!("server version: {e}")),
            };
            // Compare as released versions: v1.20.2-eks-1 is 1.20.2 here.
            let bare = semver::Version::new(version.major, version.minor, version.patch);
            if bare < self.min_version.0 {
                return Outcome::problem(Finding::fail(
                    &CLUSTER_TOO_OLD,
                    Subject::Cluster,
                    format!(
                        "Kubernetes {} is older than {}: the CSR API and signing controllers the add-ons need are missing",
                        git_version, self.min_version
                    ),
                ))
                .with_fix(Fix::manual(format!("upgrade the cluster to {} or newer", self.min_version), vec![]));
            }
            let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
            let lp = ListParams::default().labels("component=kube-controller-manager");
            let pods = match ctx
                .kube
                .call("list kube-controller-manager pods", pods.list(&lp))
                .await
            {
                Ok(l) => l.items,
                Err(e) => return undecided(e),
            };
            let mut flag_findings = Vec::new();
            for pod in &pods {
                let pod_name = pod.metadata.name.clone().unwrap_or_default();
                for c in pod
                    .spec
                    .as_ref()
                    .map(|s| s.containers.clone())
                    .unwrap_or_default()
                {
                    let mut argv = c.command.unwrap_or_default();
                    argv.extend(c.args.unwrap_or_default());
                    let items = controllers_flag(&argv);
                    let off = missing(&items);
                    if !off.is_empty() {
                        flag_findings.push(Finding::fail(
                            &CONTROLLERS_OFF,
                            Subject::object("Pod", Some("kube-system"), &pod_name),
                            format!(
                                "kube-controller-manager (pod kube-system/{pod_name}) runs --controllers={}: {} off{}",
                                items.join(","),
                                off.join(", "),
                                if off.contains(&"bootstrapsigner") && items.iter().any(|i| i == "*") {
                                    " (`*` enables only default-on controllers; bootstrapsigner is default-off)"
                                } else {
                                    ""
                                }
                            ),
                        ));
                    }
                }
            }
            if !flag_findings.is_empty() {
                return Outcome::found(flag_findings, "").with_fix(controllers_fix());
            }
            let from_flags = if pods.is_empty() {
                None
            } else {
                Some(format!(
                    "Kubernetes {}; kube-controller-manager enables csrapproving, csrsigning, csrcleaner, bootstrapsigner",
                    git_version
                ))
            };
            if !self.live_probe {
                return match from_flags {
                    Some(m) => Outcome::pass(m),
                    None => Outcome::problem(Finding::warn(
                        &CONTROLLERS_UNKNOWN,
                        Subject::Cluster,
                        format!(
                            "Kubernetes {git_version}; no kube-controller-manager pod in kube-system (managed control plane?): its --controllers cannot be read; set live_probe: true to test signing"
                        ),
                    )),
                };
            }
            match self.live_probe(ctx, &client, budget_end).await {
                Probe::Signed(took) => Outcome::pass(format!(
                    "{}; a probe CSR was approved and signed in {} ms",
                    from_flags.unwrap_or_else(|| format!("Kubernetes {}", git_version)),
                    took.as_millis()
                )),
                Probe::NotSigned(m) => Outcome::problem(Finding::fail(&CSR_NOT_SIGNED, Subject::Cluster, m))
                    .with_fix(controllers_fix()),
                Probe::Undecided(m) => Outcome::problem(Finding::error(
                    &PROBE_UNDECIDED,
                    Subject::Cluster,
                    format!("live CSR probe: {m}"),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(s: &str) -> Vec<String> {
        controllers_flag(&[format!("--controllers={s}")])
    }

    #[test]
    fn star_leaves_bootstrapsigner_off() {
        assert_eq!(missing(&flag("*")), vec!["bootstrapsigner"]);
        assert_eq!(
            missing(&controllers_flag(&["kube-controller-manager".into()])),
            vec!["bootstrapsigner"]
        );
        assert!(missing(&flag("*,bootstrapsigner")).is_empty());
    }

    #[test]
    fn old_and_new_names_and_disabling() {
        assert_eq!(
            missing(&flag("*,-csrsigning,bootstrapsigner")),
            vec!["csrsigning"]
        );
        assert_eq!(
            missing(&flag(
                "*,-certificatesigningrequest-signing-controller,bootstrap-signer-controller"
            )),
            vec!["csrsigning"]
        );
        assert!(missing(&flag("csrapproving,csrsigning,csrcleaner,bootstrapsigner")).is_empty());
        assert_eq!(
            controllers_flag(&["--controllers".into(), "a,b".into()]),
            vec!["a".to_string(), "b".to_string()]
        );
    }
}
