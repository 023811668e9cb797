//! What the container runtimes on this host are configured with: docker's daemon.json and
//! containerd's config.toml (with its certs.d hosts.toml files), read under --host-root.
//! Files only: node.container-runtime-registries judges the trust settings without a packet,
//! network.runtime-mirrors probes the mirrors they name.

use std::net::IpAddr;
use std::path::Path;

use crate::check::Ctx;
use crate::registry::RegistrySettings;

/// Both runtimes' configuration; `None` where the file does not exist.
pub struct RuntimeConfig {
    pub docker: Option<Docker>,
    pub containerd: Option<Containerd>,
}

impl RuntimeConfig {
    pub fn read(ctx: &Ctx) -> Result<RuntimeConfig, String> {
        Ok(RuntimeConfig {
            docker: read_docker(&ctx.host_path(DAEMON_JSON))?,
            containerd: read_containerd(ctx, &ctx.host_path(CONTAINERD_TOML))?,
        })
    }

    /// The configuration, or the outcome of a check that has none to look at (`skip`) or
    /// cannot read it (`error`).
    pub fn present(ctx: &Ctx) -> Result<RuntimeConfig, crate::check::Outcome> {
        let config = Self::read(ctx).map_err(crate::check::Outcome::error)?;
        if config.is_empty() {
            return Err(crate::check::Outcome::skip(format!(
                "neither {DAEMON_JSON} nor {CONTAINERD_TOML} exists under {}",
                ctx.host_root.display()
            )));
        }
        Ok(config)
    }

    pub fn is_empty(&self) -> bool {
        self.docker.is_none() && self.containerd.is_none()
    }

    /// Every configured mirror: (where it is configured, URL).
    pub fn mirrors(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        if let Some(d) = &self.docker {
            out.extend(d.mirrors.iter().map(|m| (DAEMON_JSON.to_string(), m.clone())));
        }
        if let Some(c) = &self.containerd {
            out.extend(
                c.mirrors
                    .iter()
                    .map(|(h, m)| (format!("containerd mirror of {h}"), m.clone())),
            );
        }
        out
    }
}

pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";
pub const CONTAINERD_TOML: &str = "/etc/containerd/config.toml";
pub const CRI: &str = "io.containerd.grpc.v1.cri";

/// What docker's daemon.json says.
#[derive(Default)]
pub struct Docker {
    pub mirrors: Vec<String>,
    pub insecure: Vec<String>,
}

/// What containerd's config (and its certs.d) says.
#[derive(Default)]
pub struct Containerd {
    /// (registry, endpoint URL)
    pub mirrors: Vec<(String, String)>,
    /// registries with TLS verification off or an http:// endpoint
    pub insecure: Vec<String>,
    pub config_path: Option<String>,
}

pub fn read_docker(path: &Path) -> Result<Option<Docker>, String> {
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

pub fn read_containerd(ctx: &Ctx, path: &Path) -> Result<Option<Containerd>, String> {
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
pub fn docker_trusts(insecure: &[String], host: &str) -> bool {
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
pub fn mirror_ref(url: &str) -> RegistrySettings {
    let insecure = url.starts_with("http://");
    let host = url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .split('/')
        .next()
        .unwrap_or(url)
        .to_string();
    RegistrySettings {
        insecure: Some(insecure),
        ..RegistrySettings::host(&host)
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
