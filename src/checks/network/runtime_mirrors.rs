use futures::future::join_all;
use serde::Deserialize;

use crate::check::{
    Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::registry::{probe, Probed};
use crate::runtime_config::{mirror_ref, RuntimeConfig};

const MIRROR_BROKEN: Code = Code {
    code: "mirror-broken",
    explain: "a registry mirror the container runtime is configured with does not work (403, timeout, not a registry: seed 004): pulls stall or fall back",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "network.runtime-mirrors",
        phase: Phase::Network,
        title: "the container runtime's registry mirrors answer",
        requires: &[],
        install: InstallUse::No,
        codes: &[MIRROR_BROKEN],
        host_network: false,
        roll_up: None,
        explain: r#"Why: the container runtime, not helm, pulls the images, through the mirrors it is
configured with. BlueKing CE 7 users had registry-mirrors configured that no longer worked
(seed 004):

    skopeo --debug inspect docker://docker.mirrors.ustc.edu.cn/library/busybox   -> 403
    skopeo --debug inspect docker://registry.docker-cn.com/library/busybox        -> timeout

so dockerd fell back to Docker Hub and timed out:

    Error response from daemon: Get https://registry-1.docker.io/v2/: net/http: request
    canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)

What it looks at: the mirrors named in /etc/docker/daemon.json (registry-mirrors) and
/etc/containerd/config.toml (CRI registry mirrors, certs.d hosts.toml), read under
--host-root exactly as node.container-runtime-registries reads them; each is probed like
network.registry (name, TCP, TLS or plain HTTP for http:// mirrors, GET /v2/), all at once,
each bounded by --timeout. A mirror that refuses (403), is not a registry (404), or does
not answer is named with the file that configures it.

Fix: remove or replace the dead mirrors in the file named, then restart the runtime.

Parameters: none"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeMirrors {}

impl Check for RuntimeMirrors {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let config = crate::or_return!(RuntimeConfig::present(ctx));
            let mirrors = config.mirrors();
            if mirrors.is_empty() {
                return Outcome::skip("the container runtime configures no registry mirrors");
            }
            let deadline = ctx.probe_timeout + std::time::Duration::from_millis(500);
            let found = join_all(mirrors.iter().map(|(from, url)| async move {
                let r = mirror_ref(url);
                (
                    from,
                    url,
                    tokio::time::timeout(deadline, probe(&ctx.probe(), &r)).await,
                )
            }))
            .await;
            let (mut ok, mut bad, mut cmds) = (Vec::new(), Vec::new(), Vec::new());
            for (from, url, f) in found {
                match f {
                    Ok(Probed::Ok(line)) => ok.push(format!("mirror {url} ({from}): {line}")),
                    Ok(Probed::Bad { line, .. }) => {
                        bad.push(Finding::fail(
                            &MIRROR_BROKEN,
                            Subject::Url { url: url.to_string() },
                            format!("mirror {url} ({from}) does not work: {line}"),
                        ));
                        cmds.push(format!(
                            "# remove or replace {url} in {from}, then restart the runtime"
                        ));
                    }
                    Err(_) => {
                        bad.push(Finding::fail(
                            &MIRROR_BROKEN,
                            Subject::Url { url: url.to_string() },
                            format!("mirror {url} ({from}) does not work: no answer"),
                        ));
                        cmds.push(format!(
                            "# remove or replace {url} in {from}, then restart the runtime"
                        ));
                    }
                }
            }
            if bad.is_empty() {
                return Outcome::pass(ok.join("\n"));
            }
            Outcome::found(bad, "").with_fix(Fix::manual(
                "remove or replace the mirrors that do not work, then restart the runtime",
                cmds,
            ))
        })
    }
}
