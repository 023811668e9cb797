use serde::Deserialize;

use crate::check::{
    Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::registry::{is_loopback, RegistrySettings};
use crate::runtime_config::{docker_trusts, RuntimeConfig, CONTAINERD_TOML, CRI, DAEMON_JSON};

const RUNTIME_DISTRUSTS_REGISTRY: Code = Code {
    code: "runtime-distrusts-registry",
    explain: "a registry the profile marks insecure is not configured insecure in docker's daemon.json or containerd's config: pulls fail with \"http: server gave HTTP response to HTTPS client\" (seed 001)",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "node.container-runtime-registries",
        phase: Phase::Node,
        title: "the container runtime trusts the private registries",
        requires: &[],
        install: InstallUse::No,
        codes: &[RUNTIME_DISTRUSTS_REGISTRY],
        host_network: false,
        roll_up: None,
        explain: r#"Why: the container runtime, not helm, pulls the images, with its own configuration.
BlueKing CE 7 users had registry-mirrors configured that no longer worked (seed 004):

    skopeo --debug inspect docker://docker.mirrors.ustc.edu.cn/library/busybox   -> 403
    skopeo --debug inspect docker://registry.docker-cn.com/library/busybox        -> timeout

so dockerd fell back to Docker Hub and timed out. DaoCloud's offline installs needed the
private registry configured as insecure for docker ("insecure-registries" in
/etc/docker/daemon.json) or containerd (insecure_skip_verify / an http:// endpoint) on every
node (seed 001).

What it looks at (under --host-root): /etc/docker/daemon.json (registry-mirrors,
insecure-registries) and /etc/containerd/config.toml (the CRI registry mirrors and configs,
and the certs.d hosts.toml files of its config_path). Files only: this check sends no
packet, so `--skip network` on an air-gapped node is silent (the configured mirrors are
probed by network.runtime-mirrors). Every registry of the profile's `registries:` marked
`insecure: true` must be configured as insecure in each runtime present (loopback
registries need nothing: the runtimes trust them); the message names the file and key to
change.

Fix: add the private registry to "insecure-registries" (docker) or set
insecure_skip_verify = true / skip_verify = true (containerd), then restart the runtime.

Parameters: registries: [{host: "10.0.0.5:5000", insecure: true}] (joins the profile's
            top-level `registries:`)"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerRuntimeRegistries {
    #[serde(default)]
    registries: Vec<RegistrySettings>,
}

impl Check for ContainerRuntimeRegistries {
    fn registries(&self) -> Vec<RegistrySettings> {
        self.registries.clone()
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let config = crate::or_return!(RuntimeConfig::present(ctx));
            // Loopback registries are trusted by both runtimes without configuration.
            let private: Vec<&RegistrySettings> = ctx
                .registries
                .all()
                .iter()
                .filter(|r| r.insecure == Some(true) && !is_loopback(&r.host))
                .collect();
            let mut bad = Vec::new();
            let mut cmds = Vec::new();
            for r in &private {
                if let Some(d) = &config.docker {
                    if !docker_trusts(&d.insecure, &r.host) {
                        bad.push(Finding::fail(
                            &RUNTIME_DISTRUSTS_REGISTRY,
                            Subject::registry(r.host.as_str()),
                            format!("{DAEMON_JSON}: \"insecure-registries\" lacks {} (docker will insist on verified HTTPS)", r.host),
                        ));
                        cmds.push(format!("# {DAEMON_JSON}: \"insecure-registries\": [\"{}\"], then: systemctl restart docker", r.host));
                    }
                }
                if let Some(c) = &config.containerd {
                    if !c.insecure.iter().any(|h| h == &r.host) {
                        bad.push(Finding::fail(
                            &RUNTIME_DISTRUSTS_REGISTRY,
                            Subject::registry(r.host.as_str()),
                            format!(
                                "{CONTAINERD_TOML}: {} is not configured insecure (no insecure_skip_verify, no http:// endpoint, no skip_verify in certs.d)",
                                r.host
                            ),
                        ));
                        cmds.push(match &c.config_path {
                            Some(dir) => format!(
                                "# {dir}/{h}/hosts.toml: server = \"http://{h}\" and [host.\"http://{h}\"] skip_verify = true, then: systemctl restart containerd",
                                h = r.host
                            ),
                            None => format!(
                                "# {CONTAINERD_TOML}: [plugins.\"{CRI}\".registry.configs.\"{}\".tls] insecure_skip_verify = true, then: systemctl restart containerd",
                                r.host
                            ),
                        });
                    }
                }
            }
            if bad.is_empty() {
                let runtimes: Vec<&str> = [
                    config.docker.as_ref().map(|_| "docker"),
                    config.containerd.as_ref().map(|_| "containerd"),
                ]
                .into_iter()
                .flatten()
                .collect();
                return Outcome::pass(format!(
                    "{} trust(s) the {} insecure private registr{} of the profile; {} mirror(s) configured (probed by network.runtime-mirrors)",
                    runtimes.join(" and "),
                    private.len(),
                    if private.len() == 1 { "y" } else { "ies" },
                    config.mirrors().len()
                ));
            }
            Outcome::found(bad, "").with_fix(Fix::manual(
                "configure the runtime to trust the private registries as the lines above say, then restart it",
                cmds,
            ))
        })
    }
}
