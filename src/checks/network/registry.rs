use std::time::Duration;

use futures::future::join_all;
use serde::Deserialize;

use crate::check::{
    Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::net::Failure;
use crate::registry::{probe, transport_fix, Probed, RegistrySettings};

const REGISTRY_UNREACHABLE: Code = Code {
    code: "registry-unreachable",
    explain: "the registry does not answer its API from this node: name, pin, connection, TLS trust, HTTP status (403, 404, 429), each named",
};
const IMAGE_OUTSIDE_REGISTRIES: Code = Code {
    code: "image-outside-registries",
    explain: "airgap: true and an image of the install comes from a registry outside the profile's registries: it will never pull on the site",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "network.registry",
        phase: Phase::Network,
        title: "container registries answer",
        requires: &[],
        install: InstallUse::Fed,
        codes: &[REGISTRY_UNREACHABLE, IMAGE_OUTSIDE_REGISTRIES],
        host_network: false,
        roll_up: None,
        explain: r#"Why: every image pull of the install goes through these registries, and the ways they
fail look alike from helm's side (pods in ErrImagePull). The field reports:

    dial tcp: lookup defult.registry.tke.com on 183.60.83.19:53: no such host          (seed 002)
    Error response from daemon: Get https://registry-1.docker.io/v2/: net/http: request
    canceled while waiting for connection (Client.Timeout exceeded while awaiting headers) (seed 004)
    skopeo ... docker.mirrors.ustc.edu.cn ... 403; registry.docker-cn.com ... timeout    (seed 004)
    toomanyrequests: You have reached your pull rate limit.                              (seed 000)
    offline installs need the private registry configured as insecure in docker/containerd (seed 001)

What it looks at, for each registry of the profile, all at once and each bounded by
--timeout: the name resolved as the host resolves it (<host-root>/etc/hosts, then DNS) and,
when `ip` is given, compared with it; TCP connect; the TLS handshake (system roots plus
`ca_file`; `insecure: true` skips verification and falls back to plain HTTP, as docker's
insecure-registries does); `GET /v2/` must answer 200 or 401. HTTPS_PROXY / NO_PROXY are
honoured. Each failure is named: no such host, wrong IP, connection refused, timed out,
certificate signed by unknown authority, plain HTTP on an HTTPS port, 403 (mirror
refuses), 404 (not a registry API), 429 toomanyrequests (pull rate limit).

Fix: depends on the failure and is printed with it: pin the name (node.hosts), give the
CA (ca_file, /etc/docker/certs.d/<host>/ca.crt) or mark the registry insecure in
docker/containerd, replace a dead mirror, log in or use a mirror against rate limits.

Parameters: registries: [{host: hub.bktencent.com}, {host: "127.0.0.1:5000", insecure: true},
                         {host: reg.local, ca_file: /etc/pki/reg-ca.pem, ip: ["10.0.0.5"]}]
            (these join the profile's top-level `registries:` section; the check probes
            every registry of that section, and with an install every registry its images
            name. localhost and 127.0.0.0/8 are insecure unless `insecure: false`, as docker
            treats them), airgap: false (true: the install's images from any registry not in
            `registries:` are listed as a warning — they will never pull on the site)"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Joins the profile's `registries:` section; the check probes the whole section.
    #[serde(default)]
    registries: Vec<RegistrySettings>,
    /// The site pulls only from the profile's registries: images of the install from any
    /// other registry will never pull there.
    #[serde(default)]
    airgap: bool,
}

impl Check for Registry {
    fn registries(&self) -> Vec<RegistrySettings> {
        self.registries.clone()
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let install = crate::or_return!(ctx.rendered());
            let mut all: Vec<RegistrySettings> = ctx.registries.all().to_vec();
            let mut leaks = Vec::new();
            if let Some(i) = install {
                let private = ctx.registries.all();
                for (image, used) in i.images().0 {
                    // On an air-gapped site, images from registries outside the profile's
                    // never pull.
                    if self.airgap
                        && !private
                            .iter()
                            .any(|r| r.host == image.registry || r.host == image.api_host())
                    {
                        leaks.push(
                            Finding::warn(
                                &IMAGE_OUTSIDE_REGISTRIES,
                                Subject::image(image.to_string()),
                                format!("{image} (used by {})", used.join("; ")),
                            )
                            .with_fix(Fix::manual(
                                "mirror these images into the private registry and point the charts' values at it",
                                vec![format!(
                                    "skopeo copy docker://{image} docker://<private registry>/{}",
                                    image.repository
                                )],
                            )),
                        );
                    }
                    // Every registry the install's images are pulled from, with its settings.
                    let s = ctx.registries.for_image(&image);
                    if !all.iter().any(|r| r.host == s.host) {
                        all.push(s);
                    }
                }
            }
            if all.is_empty() {
                return Outcome::skip(match install {
                    Some(_) => "the install pulls no images and the profile lists no registries",
                    None => "the profile lists no registries",
                });
            }
            let deadline = ctx.probe_timeout + Duration::from_millis(500);
            let probed = join_all(all.iter().map(|r| async move {
                match tokio::time::timeout(deadline, probe(&ctx.probe(), r)).await {
                    Ok(f) => f,
                    Err(_) => Probed::Bad {
                        line: format!(
                            "{}: no answer within {}",
                            r.host,
                            humantime::format_duration(ctx.probe_timeout)
                        ),
                        fix: transport_fix(&Failure::NoAnswer, &r.host),
                    },
                }
            }))
            .await;
            let mut ok = Vec::new();
            let mut findings = Vec::new();
            for (r, f) in all.iter().zip(probed) {
                match f {
                    Probed::Ok(l) => ok.push(l),
                    Probed::Bad { line, fix } => findings.push(
                        Finding::fail(&REGISTRY_UNREACHABLE, Subject::registry(r.host.as_str()), line)
                            .with_fix(Fix::manual(
                                "make each registry reachable from this node as the lines above say",
                                fix,
                            )),
                    ),
                }
            }
            let mut summary = Vec::new();
            if !leaks.is_empty() {
                summary.push(format!(
                    "airgap: {} image(s) come from registries outside the profile's registries: and will never pull here",
                    leaks.len()
                ));
            }
            if findings.is_empty() {
                summary.extend(ok);
            }
            findings.extend(leaks);
            Outcome::found(findings, summary.join("\n"))
        })
    }
}
