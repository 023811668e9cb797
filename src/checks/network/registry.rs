use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use futures::future::join_all;
use serde::Deserialize;

use crate::check::{Check, CheckDef, CheckFuture, Ctx, Fix, Meta, Outcome, Phase};
use crate::net::{self, Failure, Trust};
use crate::resolve::ResolveError;

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "network.registry",
        phase: Phase::Network,
        title: "container registries answer",
        requires: &[],
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
                         {host: reg.local, ca_file: /etc/pki/reg-ca.pem, ip: ["10.0.0.5"]}]"#,
    },
};

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RegistryRef {
    pub host: String,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub ca_file: Option<String>,
    /// The addresses the name must resolve to (a pin).
    #[serde(default)]
    pub ip: Vec<IpAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    #[serde(default)]
    registries: Vec<RegistryRef>,
}

pub(crate) enum Finding {
    Ok(String),
    Bad { line: String, fix: Vec<String> },
}

fn bad(line: String, fix: Vec<String>) -> Finding {
    Finding::Bad { line, fix }
}

/// What to do about a transport failure of `host`.
fn transport_fix(f: &Failure, host: &str) -> Vec<String> {
    match f {
        Failure::UnknownAuthority => vec![
            format!("mkdir -p /etc/docker/certs.d/{host} && cp <registry-ca.crt> /etc/docker/certs.d/{host}/ca.crt"),
            format!("# or trust it without verification: docker daemon.json \"insecure-registries\": [\"{host}\"]; containerd: skip_verify = true for {host}; and insecure: true in the profile"),
        ],
        Failure::PlainHttp => vec![format!(
            "# {host} speaks plain HTTP: insecure: true in the profile; docker daemon.json \"insecure-registries\": [\"{host}\"]; containerd endpoint \"http://{host}\""
        )],
        Failure::Refused => vec![format!("# start the registry or fix the port of {host}")],
        Failure::ConnectTimeout | Failure::NoAnswer => vec![
            format!("curl -v https://{host}/v2/   # from this node: firewall? air-gapped? HTTPS_PROXY/NO_PROXY?"),
        ],
        _ => vec![],
    }
}

async fn get_v2(
    ctx: &Ctx,
    reg: &RegistryRef,
    scheme: &str,
    trust: Trust<'_>,
) -> Result<reqwest::Response, Failure> {
    let client = net::client(&ctx.resolver, &trust, ctx.probe_timeout).map_err(Failure::Other)?;
    client
        .get(format!("{scheme}://{}/v2/", reg.host))
        .send()
        .await
        .map_err(|e| net::classify(&e))
}

pub(crate) async fn probe(ctx: &Ctx, reg: &RegistryRef) -> Finding {
    let host = &reg.host;
    let name = net::hostname(host);
    let mut via = String::new();
    if !net::is_ip(name) {
        match ctx.resolver.resolve(name).await {
            Ok(r) => {
                let unexpected: Vec<&IpAddr> = r.addrs.iter().filter(|a| !reg.ip.contains(a)).collect();
                if !reg.ip.is_empty() && !unexpected.is_empty() {
                    let seen: Vec<String> = r.addrs.iter().map(|a| a.to_string()).collect();
                    let want: Vec<String> = reg.ip.iter().map(|a| a.to_string()).collect();
                    return bad(
                        format!("{host}: resolves to {} via {}, expected {}", seen.join(", "), r.source, want.join(", ")),
                        vec![format!("# pin it: node.hosts: {{pins: {{{name}: [\"{}\"]}}}} in the profile, then preflight --fix", want[0])],
                    );
                }
                via = format!(
                    " ({} via {})",
                    r.addrs
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    r.source
                );
            }
            Err(e) => {
                let pin = reg
                    .ip
                    .first()
                    .map(|ip| ip.to_string())
                    .unwrap_or_else(|| "<registry IP>".to_string());
                let fix = match &e {
                    ResolveError::NoSuchHost { .. }
                    | ResolveError::Timeout { .. }
                    | ResolveError::NoNameservers { .. } => {
                        vec![format!("# pin it: node.hosts: {{pins: {{{name}: [\"{pin}\"]}}}} in the profile, then preflight --fix")]
                    }
                    ResolveError::Other { .. } => vec![],
                };
                return bad(format!("{host}: {e}"), fix);
            }
        }
    }
    let ca = reg.ca_file.as_deref().map(Path::new);
    let attempt = if reg.insecure {
        match get_v2(ctx, reg, "https", Trust::SkipVerify).await {
            // Docker's insecure-registries: HTTPS without verification, else plain HTTP.
            Err(f) if f.retry_over_http() => get_v2(ctx, reg, "http", Trust::SkipVerify)
                .await
                .map(|r| (r, "http")),
            other => other.map(|r| (r, "https, not verified")),
        }
    } else {
        get_v2(ctx, reg, "https", Trust::Verify { ca_file: ca })
            .await
            .map(|r| (r, "https"))
    };
    let (resp, scheme) = match attempt {
        Ok(r) => r,
        Err(f) => {
            let url = format!("{}://{host}/v2/", if reg.insecure { "http(s)" } else { "https" });
            let fix = transport_fix(&f, host);
            return bad(f.describe(&url, ctx.probe_timeout), fix);
        }
    };
    let status = resp.status().as_u16();
    match status {
        200 => Finding::Ok(format!("{host}: registry API answers 200 over {scheme}{via}")),
        401 => Finding::Ok(format!("{host}: registry API answers 401 over {scheme} (pulls need a login or token){via}")),
        403 => bad(
            format!("{host}: GET /v2/ answers 403 Forbidden: the registry or mirror refuses this client{via}"),
            vec![format!("# replace or remove the mirror {host} (docker daemon.json registry-mirrors / containerd hosts.toml)")],
        ),
        404 => bad(
            format!("{host}: GET /v2/ answers 404: not a registry API (wrong host, port or path?){via}"),
            vec![],
        ),
        429 => {
            let body = tokio::time::timeout(Duration::from_secs(2), resp.text()).await.ok().and_then(|r| r.ok()).unwrap_or_default();
            let lower = body.to_ascii_lowercase();
            let why = if lower.contains("toomanyrequests") || lower.contains("pull rate limit") {
                "toomanyrequests: pull rate limit reached"
            } else {
                "Too Many Requests"
            };
            bad(
                format!("{host}: GET /v2/ answers 429 {why}{via}"),
                vec![
                    format!("docker login {host}   # authenticated pulls have a higher limit"),
                    "# or pull through a mirror / the private registry of the site".to_string(),
                ],
            )
        }
        other => bad(format!("{host}: GET /v2/ answers HTTP {other}{via}"), vec![]),
    }
}

impl Check for Registry {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            if self.registries.is_empty() {
                return Outcome::skip("the profile lists no registries");
            }
            let deadline = ctx.probe_timeout + Duration::from_millis(500);
            let findings = join_all(self.registries.iter().map(|r| async move {
                match tokio::time::timeout(deadline, probe(ctx, r)).await {
                    Ok(f) => f,
                    Err(_) => bad(
                        format!(
                            "{}: no answer within {}",
                            r.host,
                            humantime::format_duration(ctx.probe_timeout)
                        ),
                        transport_fix(&Failure::NoAnswer, &r.host),
                    ),
                }
            }))
            .await;
            let mut ok = Vec::new();
            let mut badl = Vec::new();
            let mut commands: Vec<String> = Vec::new();
            for f in findings {
                match f {
                    Finding::Ok(l) => ok.push(l),
                    Finding::Bad { line, fix } => {
                        badl.push(line);
                        for c in fix {
                            if !commands.contains(&c) {
                                commands.push(c);
                            }
                        }
                    }
                }
            }
            if badl.is_empty() {
                return Outcome::pass(ok.join("\n"));
            }
            Outcome::fail(badl.join("\n")).with_fix(Fix::manual(
                "make each registry reachable from this node as the lines above say",
                commands,
            ))
        })
    }
}
