use std::net::IpAddr;
use std::path::{Path, PathBuf};

use futures::future::join_all;
use serde::Deserialize;

use crate::check::{Check, CheckDef, CheckFuture, Ctx, Fix, Meta, Outcome, Phase};
use crate::checks::network::registry::{probe, Finding, RegistryRef};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "node.container-runtime-registries",
        phase: Phase::Node,
        title: "the container runtime's mirrors answer and private registries are trusted",
        requires: &[],
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
and the certs.d hosts.toml files of its config_path). Every configured mirror is probed
like network.registry (all at once, bounded by --timeout). Every registry of the profile
marked `insecure: true` must be configured as insecure in each runtime present; the message
names the file and key to change.

Fix: remove or replace dead mirrors; add the private registry to "insecure-registries"
(docker) or set insecure_skip_verify = true / skip_verify = true (containerd), then restart
the runtime.

Parameters: registries: [{host: "10.0.0.5:5000", insecure: true}], probe_mirrors: true"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrivateRegistry {
    host: String,
    #[serde(default)]
    insecure: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerRuntimeRegistries {
    #[serde(default)]
    registries: Vec<PrivateRegistry>,
    #[serde(default = "yes")]
    probe_mirrors: bool,
}

const DAEMON_JSON: &str = "/etc/docker/daemon.json";
const CONTAINERD_TOML: &str = "/etc/containerd/config.toml";
const CRI: &str = "io.containerd.grpc.v1.cri";

/// What docker's daemon.json says.
#[derive(Default)]
struct Docker {
    mirrors: Vec<String>,
    insecure: Vec<String>,
}

/// What containerd's config (and its certs.d) says.
#[derive(Default)]
struct Containerd {
    /// (registry, endpoint URL)
    mirrors: Vec<(String, String)>,
    /// registries with TLS verification off or an http:// endpoint
    insecure: Vec<String>,
    config_path: Option<String>,
}

fn read_docker(path: &Path) -> Result<Option<Docker>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let list = |k: &str| -> Vec<String> {
        v.get(k)
            .and_then(|x| x.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    Ok(Some(Docker {
        mirrors: list("registry-mirrors"),
        insecure: list("insecure-registries"),
    }))
}

fn read_containerd(ctx: &Ctx, path: &Path) -> Result<Option<Containerd>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let v: toml::Table = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", path.display()))?;
    let mut out = Containerd::default();
    let registry = v
        .get("plugins")
        .and_then(|p| p.get(CRI))
        .and_then(|c| c.get("registry"))
        .or_else(|| {
            v.get("plugins")
                .and_then(|p| p.get("io.containerd.cri.v1.images"))
                .and_then(|c| c.get("registry"))
        });
    if let Some(reg) = registry {
        out.config_path = reg.get("config_path").and_then(|c| c.as_str()).map(String::from);
        if let Some(mirrors) = reg.get("mirrors").and_then(|m| m.as_table()) {
            for (host, m) in mirrors {
                for ep in m.get("endpoint").and_then(|e| e.as_array()).into_iter().flatten() {
                    if let Some(url) = ep.as_str() {
                        if url.starts_with("http://") {
                            out.insecure.push(host.clone());
                        }
                        out.mirrors.push((host.clone(), url.to_string()));
                    }
                }
            }
        }
        if let Some(configs) = reg.get("configs").and_then(|c| c.as_table()) {
            for (host, c) in configs {
                let skip = c
                    .get("tls")
                    .and_then(|t| t.get("insecure_skip_verify"))
                    .and_then(|b| b.as_bool());
                if skip == Some(true) {
                    out.insecure.push(
                        host.trim_start_matches("http://")
                            .trim_start_matches("https://")
                            .to_string(),
                    );
                }
            }
        }
    }
    // certs.d/<host>/hosts.toml (containerd >= 1.5)
    if let Some(dir) = &out.config_path {
        let dir = ctx.host_path(dir);
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let host = entry.file_name().to_string_lossy().to_string();
            let Ok(text) = std::fs::read_to_string(entry.path().join("hosts.toml")) else {
                continue;
            };
            let Ok(t) = text.parse::<toml::Table>() else {
                return Err(format!("{}/hosts.toml is not valid TOML", entry.path().display()));
            };
            if t.get("server")
                .and_then(|s| s.as_str())
                .is_some_and(|s| s.starts_with("http://"))
            {
                out.insecure.push(host.clone());
            }
            for (url, h) in t.get("host").and_then(|h| h.as_table()).into_iter().flatten() {
                if h.get("skip_verify").and_then(|b| b.as_bool()) == Some(true) || url.starts_with("http://")
                {
                    out.insecure.push(host.clone());
                }
                out.mirrors.push((host.clone(), url.clone()));
            }
        }
    }
    Ok(Some(out))
}

/// Docker matches insecure-registries by host[:port] or by CIDR.
fn docker_trusts(insecure: &[String], host: &str) -> bool {
    let ip: Option<IpAddr> = crate::net::hostname(host).parse().ok();
    insecure.iter().any(|entry| {
        if entry == host {
            return true;
        }
        match (entry.split_once('/'), ip) {
            (Some((net, bits)), Some(ip)) => cidr_contains(net, bits, ip),
            _ => false,
        }
    })
}

fn cidr_contains(net: &str, bits: &str, ip: IpAddr) -> bool {
    match (net.parse::<IpAddr>(), bits.parse::<u32>(), ip) {
        (Ok(IpAddr::V4(n)), Ok(b), IpAddr::V4(i)) if b <= 32 => {
            let mask = if b == 0 { 0 } else { u32::MAX << (32 - b) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        _ => false,
    }
}

/// A mirror URL as a registry to probe.
fn mirror_ref(url: &str) -> RegistryRef {
    let insecure = url.starts_with("http://");
    let host = url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .split('/')
        .next()
        .unwrap_or(url)
        .to_string();
    RegistryRef {
        host,
        insecure,
        ca_file: None,
        ip: Vec::new(),
    }
}

impl Check for ContainerRuntimeRegistries {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let docker_path: PathBuf = ctx.host_path(DAEMON_JSON);
            let containerd_path: PathBuf = ctx.host_path(CONTAINERD_TOML);
            let docker = match read_docker(&docker_path) {
                Ok(d) => d,
                Err(e) => return Outcome::error(e),
            };
            let containerd = match read_containerd(ctx, &containerd_path) {
                Ok(c) => c,
                Err(e) => return Outcome::error(e),
            };
            if docker.is_none() && containerd.is_none() {
                return Outcome::skip(format!(
                    "neither {DAEMON_JSON} nor {CONTAINERD_TOML} exists under {}",
                    ctx.host_root.display()
                ));
            }
            let mut bad = Vec::new();
            let mut cmds = Vec::new();
            for r in self.registries.iter().filter(|r| r.insecure) {
                if let Some(d) = &docker {
                    if !docker_trusts(&d.insecure, &r.host) {
                        bad.push(format!("{DAEMON_JSON}: \"insecure-registries\" lacks {} (docker will insist on verified HTTPS)", r.host));
                        cmds.push(format!("# {DAEMON_JSON}: \"insecure-registries\": [\"{}\"], then: systemctl restart docker", r.host));
                    }
                }
                if let Some(c) = &containerd {
                    if !c.insecure.iter().any(|h| h == &r.host) {
                        bad.push(format!(
                            "{CONTAINERD_TOML}: {} is not configured insecure (no insecure_skip_verify, no http:// endpoint, no skip_verify in certs.d)",
                            r.host
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
            let mut mirrors: Vec<(String, String)> = Vec::new();
            if let Some(d) = &docker {
                mirrors.extend(d.mirrors.iter().map(|m| (DAEMON_JSON.to_string(), m.clone())));
            }
            if let Some(c) = &containerd {
                mirrors.extend(
                    c.mirrors
                        .iter()
                        .map(|(h, m)| (format!("containerd mirror of {h}"), m.clone())),
                );
            }
            let mut ok = Vec::new();
            if self.probe_mirrors && !mirrors.is_empty() {
                let deadline = ctx.probe_timeout + std::time::Duration::from_millis(500);
                let found = join_all(mirrors.iter().map(|(from, url)| async move {
                    let r = mirror_ref(url);
                    let f = tokio::time::timeout(deadline, probe(ctx, &r)).await;
                    (from, url, f)
                }))
                .await;
                for (from, url, f) in found {
                    match f {
                        Ok(Finding::Ok(line)) => ok.push(format!("mirror {url} ({from}): {line}")),
                        Ok(Finding::Bad { line, .. }) => {
                            bad.push(format!("mirror {url} ({from}) does not work: {line}"));
                            cmds.push(format!(
                                "# remove or replace {url} in {from}, then restart the runtime"
                            ));
                        }
                        Err(_) => bad.push(format!("mirror {url} ({from}) does not work: no answer")),
                    }
                }
            }
            if bad.is_empty() {
                let mut msg = format!(
                    "{} mirror(s) answer; {} insecure registr(ies) configured",
                    ok.len(),
                    self.registries.iter().filter(|r| r.insecure).count()
                );
                if !ok.is_empty() {
                    msg = format!("{msg}\n{}", ok.join("\n"));
                }
                return Outcome::pass(msg);
            }
            Outcome::fail(bad.join("\n")).with_fix(Fix::manual(
                "fix the runtime's registry configuration as the lines above say, then restart it",
                cmds,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_insecure_registries_by_host_or_cidr() {
        let list = vec!["10.0.0.0/8".to_string(), "reg.local:5000".to_string()];
        assert!(docker_trusts(&list, "10.1.2.3:5000"));
        assert!(docker_trusts(&list, "reg.local:5000"));
        assert!(!docker_trusts(&list, "reg.local"));
        assert!(!docker_trusts(&list, "192.168.1.1:5000"));
    }
}
