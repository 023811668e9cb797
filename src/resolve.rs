//! The one name resolver of the binary. A static glibc binary's `getaddrinfo` would load the
//! node's own NSS libraries, so names are resolved here in pure Rust, the way the host does
//! by default: `<host-root>/etc/hosts` first, then the nameservers of
//! `<host-root>/etc/resolv.conf` (hickory), bounded by `--timeout`.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use hickory_resolver::config::{ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::system_conf::parse_resolv_conf;

#[derive(Clone, Debug)]
pub struct Resolver {
    hosts_file: PathBuf,
    resolv_conf: PathBuf,
    timeout: Duration,
}

/// A line of the hosts file that names the host (1-based line number, for fixes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostsEntry {
    pub line: usize,
    pub ip: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Literal,
    HostsFile { path: String, entries: Vec<HostsEntry> },
    Dns { servers: Vec<IpAddr> },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Literal => f.write_str("an IP literal"),
            Source::HostsFile { path, entries } => match entries.first() {
                Some(first) => write!(f, "{path} line {}", first.line),
                None => write!(f, "{path}"),
            },
            Source::Dns { servers } => write!(f, "DNS server {}", join_ips(servers)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub addrs: Vec<IpAddr>,
    pub source: Source,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// NXDOMAIN or no A/AAAA records: Go's `no such host`.
    NoSuchHost {
        servers: Vec<IpAddr>,
    },
    /// No nameserver answered within the timeout.
    Timeout {
        servers: Vec<IpAddr>,
        after: Duration,
    },
    /// resolv.conf missing or naming no nameserver.
    NoNameservers {
        detail: String,
    },
    Other {
        servers: Vec<IpAddr>,
        detail: String,
    },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NoSuchHost { servers } => {
                write!(f, "no such host (DNS {})", join_ips(servers))
            }
            ResolveError::Timeout { servers, after } => write!(
                f,
                "DNS lookup timed out after {} (nameservers {} did not answer)",
                humantime::format_duration(*after),
                join_ips(servers)
            ),
            ResolveError::NoNameservers { detail } => write!(f, "no DNS nameserver: {detail}"),
            ResolveError::Other { servers, detail } => {
                write!(f, "DNS lookup failed ({}): {detail}", join_ips(servers))
            }
        }
    }
}

fn join_ips(ips: &[IpAddr]) -> String {
    ips.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

impl Resolver {
    pub fn new(host_root: &std::path::Path, timeout: Duration) -> Self {
        Resolver {
            hosts_file: host_root.join("etc/hosts"),
            resolv_conf: host_root.join("etc/resolv.conf"),
            timeout,
        }
    }

    pub fn hosts_file(&self) -> &std::path::Path {
        &self.hosts_file
    }

    /// Lines of the hosts file naming `name`. A missing hosts file has no entries.
    pub fn hosts_entries(&self, name: &str) -> std::io::Result<Vec<HostsEntry>> {
        match std::fs::read(&self.hosts_file) {
            Ok(bytes) => Ok(parse_hosts(&String::from_utf8_lossy(&bytes), name)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    pub async fn resolve(&self, name: &str) -> Result<Resolved, ResolveError> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(Resolved {
                addrs: vec![ip],
                source: Source::Literal,
            });
        }
        match self.hosts_entries(name) {
            // The first line naming the host wins, as with glibc's default (`multi off`).
            Ok(entries) if !entries.is_empty() => {
                return Ok(Resolved {
                    addrs: vec![entries[0].ip],
                    source: Source::HostsFile {
                        path: self.hosts_file.display().to_string(),
                        entries,
                    },
                })
            }
            Ok(_) => {}
            Err(e) => {
                return Err(ResolveError::Other {
                    servers: Vec::new(),
                    detail: format!("cannot read {}: {e}", self.hosts_file.display()),
                })
            }
        }
        self.resolve_dns(name).await
    }

    async fn resolve_dns(&self, name: &str) -> Result<Resolved, ResolveError> {
        let bytes = std::fs::read(&self.resolv_conf).map_err(|e| ResolveError::NoNameservers {
            detail: format!("cannot read {}: {e}", self.resolv_conf.display()),
        })?;
        let (config, mut opts): (ResolverConfig, ResolverOpts) =
            parse_resolv_conf(bytes).map_err(|e| ResolveError::NoNameservers {
                detail: format!("{}: {e}", self.resolv_conf.display()),
            })?;
        let servers: Vec<IpAddr> = {
            let mut v: Vec<IpAddr> = config.name_servers().iter().map(|n| n.ip).collect();
            v.dedup();
            v
        };
        opts.timeout = self.timeout;
        opts.attempts = 1;
        // The hosts file was consulted above, under --host-root, not the container's own.
        opts.use_hosts_file = ResolveHosts::Never;
        let resolver =
            hickory_resolver::Resolver::builder_with_config(config, TokioRuntimeProvider::default())
                .with_options(opts)
                .build()
                .map_err(|e| ResolveError::Other {
                    servers: servers.clone(),
                    detail: e.to_string(),
                })?;
        // hickory bounds each query; this bounds the whole lookup (search list included).
        let lookup = tokio::time::timeout(
            self.timeout + Duration::from_millis(250),
            resolver.lookup_ip(name),
        )
        .await;
        match lookup {
            Err(_) => Err(ResolveError::Timeout {
                servers,
                after: self.timeout,
            }),
            Ok(Ok(ips)) => {
                let addrs: Vec<IpAddr> = ips.iter().collect();
                if addrs.is_empty() {
                    Err(ResolveError::NoSuchHost { servers })
                } else {
                    Ok(Resolved {
                        addrs,
                        source: Source::Dns { servers },
                    })
                }
            }
            Ok(Err(e)) => Err(classify(e, servers, self.timeout)),
        }
    }
}

fn classify(e: NetError, servers: Vec<IpAddr>, after: Duration) -> ResolveError {
    if e.is_nx_domain() || e.is_no_records_found() {
        return ResolveError::NoSuchHost { servers };
    }
    match e {
        NetError::Timeout => ResolveError::Timeout { servers, after },
        other => ResolveError::Other {
            servers,
            detail: other.to_string(),
        },
    }
}

/// The hosts-file format (`addr name alias…`, `#` comments). Written here rather than using
/// hickory's `Hosts` because fixes need the line numbers.
pub fn parse_hosts(text: &str, name: &str) -> Vec<HostsEntry> {
    let want = name.trim_end_matches('.').to_ascii_lowercase();
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let line = line.trim_start_matches('\u{feff}');
        let content = line.split('#').next().unwrap_or("");
        let mut fields = content.split_whitespace();
        let Some(Ok(ip)) = fields.next().map(|a| a.parse::<IpAddr>()) else {
            continue;
        };
        if fields.any(|n| n.trim_end_matches('.').eq_ignore_ascii_case(&want)) {
            out.push(HostsEntry { line: idx + 1, ip });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lines_and_aliases() {
        let text = "127.0.0.1 localhost\n# 1.2.3.4 hub.bktencent.com\n\n43.1.1.1\tmirror HUB.bktencent.com. # wrong\r\nnot-an-ip hub.bktencent.com\n";
        assert_eq!(
            parse_hosts(text, "hub.bktencent.com"),
            vec![HostsEntry {
                line: 4,
                ip: "43.1.1.1".parse().unwrap()
            }]
        );
        assert!(parse_hosts(text, "bktencent.com").is_empty());
    }
}
