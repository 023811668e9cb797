use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Unreadable, HOST_FILE_UNREADABLE};
use crate::check::{
    Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};

const PORT_TAKEN: Code = Code {
    code: "port-taken",
    explain: "a port the install binds on the node (hostNetwork, hostPort, a nodePort) is already held by a listener there: the pod fails with \"bind: address already in use\"",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "node.host-ports",
        phase: Phase::Node,
        title: "the ports the install binds on the nodes are free",
        requires: &[],
        install: InstallUse::Fed,
        codes: &[PORT_TAKEN, HOST_FILE_UNREADABLE],
        // /proc/net/* shows the reader's network namespace: the host's, in a node pod.
        host_network: true,
        roll_up: None,
        explain: r#"Why: charts bind ports on the nodes themselves: ingress-nginx with `hostNetwork: true`
(80 and 443 on every node it runs on; BlueKing CE 7's 00-ingress-nginx step does this),
node-exporter (9100), `hostPort` containers, NodePort Services (bkce7: 32080, 32443, 30180,
30543). A process of the host already listening there makes the pod crash-loop with
`bind: address already in use`.

What it looks at, read under --host-root (no packet): the listening TCP sockets and bound UDP
sockets of /proc/net/tcp, tcp6, udp and udp6, against the ports the install binds (its
hostNetwork pods' container ports, its containers' hostPorts, its Services' nodePorts; hooks
that never run at install left out) and the profile's `ports`. A taken port names the port,
what of the install wants it (release, template) and, when /proc lets this host see it, the
process that holds it (/proc/PID/fd → socket inode, /proc/PID/comm). With --all-nodes it
runs in each node's pod (hostNetwork), the install's ports sent along.

Fix: stop or move the process that holds the port, or change the chart's port (values) or
run the workload elsewhere (nodeSelector).

Parameters: ports: [{port: 80, protocol: TCP, what: "…"}] (besides the install's)"#,
    },
};

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortReq {
    port: u16,
    #[serde(default = "tcp")]
    protocol: String,
    /// Who wants it, for the message.
    #[serde(default)]
    what: Option<String>,
}

fn tcp() -> String {
    "TCP".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPorts {
    #[serde(default)]
    ports: Vec<PortReq>,
}

/// A socket of the host holding a port: its protocol table, local address and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    protocol: &'static str,
    address: String,
    port: u16,
    inode: u64,
}

/// `/proc/net/{tcp,tcp6,udp,udp6}`: the listening TCP sockets (state 0A) and bound UDP
/// sockets (state 07).
/// What listens on the host, or the outcome that says why it is not known.
fn held(ctx: &Ctx) -> Result<Vec<Held>, Outcome> {
    let mut out = Vec::new();
    let mut read_any = false;
    for (file, protocol, state) in [
        ("tcp", "TCP", "0A"),
        ("tcp6", "TCP", "0A"),
        ("udp", "UDP", "07"),
        ("udp6", "UDP", "07"),
    ] {
        let node_path = format!("/proc/net/{file}");
        let text = match std::fs::read_to_string(ctx.host_path(&node_path)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Unreadable::new(ctx, &node_path, &e).outcome()),
        };
        read_any = true;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != state {
                continue;
            }
            let Some((addr, port)) = f[1].rsplit_once(':') else {
                continue;
            };
            let Ok(port) = u16::from_str_radix(port, 16) else {
                continue;
            };
            out.push(Held {
                protocol,
                address: addr_text(addr),
                port,
                inode: f[9].parse().unwrap_or(0),
            });
        }
    }
    if !read_any {
        return Err(Outcome::error(format!(
            "{} does not exist: this is not a Linux /proc of a host",
            ctx.host_path("/proc/net/tcp").display()
        )));
    }
    Ok(out)
}

/// `0100007F` → `127.0.0.1`; IPv6 as the kernel's hex, shortened to `[::]` when all zero.
fn addr_text(hex: &str) -> String {
    if hex.len() == 8 {
        if let Ok(v) = u32::from_str_radix(hex, 16) {
            let b = v.to_le_bytes();
            return format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
        }
    }
    if hex.chars().all(|c| c == '0') {
        return "[::]".to_string();
    }
    format!("[{hex}]")
}

/// The processes holding each socket inode, when /proc lets us see them.
fn owners(ctx: &Ctx, inodes: &[u64]) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    let Ok(procs) = std::fs::read_dir(ctx.host_path("/proc")) else {
        return out;
    };
    for p in procs.flatten() {
        let pid = p.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|i| i.parse::<u64>().ok())
            else {
                continue;
            };
            if inodes.contains(&inode) && !out.contains_key(&inode) {
                let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
                out.insert(inode, format!("{} (pid {pid})", comm.trim()));
            }
        }
    }
    out
}

impl HostPorts {
    /// The profile's ports and the install's.
    fn wanted(&self, ctx: &Ctx) -> Result<Vec<PortReq>, Outcome> {
        let mut all = self.ports.clone();
        if let Some(install) = ctx.rendered()? {
            for p in install.host_ports() {
                all.push(PortReq {
                    port: p.port,
                    protocol: p.protocol,
                    what: Some(p.what),
                });
            }
        }
        Ok(all)
    }
}

impl Check for HostPorts {
    fn params_for_nodes(&self, ctx: &Ctx) -> Result<Option<serde_yaml_ng::Value>, String> {
        let wanted = self.wanted(ctx).map_err(|o| o.message)?;
        let mut params = serde_yaml_ng::Mapping::new();
        params.insert(
            "ports".into(),
            serde_yaml_ng::to_value(&wanted).map_err(|e| e.to_string())?,
        );
        Ok(Some(serde_yaml_ng::Value::Mapping(params)))
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let wanted = crate::or_return!(self.wanted(ctx));
            if wanted.is_empty() {
                return Outcome::skip("the install binds no port on the nodes and the profile lists none");
            }
            let held = match held(ctx) {
                Ok(h) => h,
                Err(o) => return o,
            };
            let clashes: Vec<(&PortReq, &Held)> = wanted
                .iter()
                .filter_map(|w| {
                    held.iter()
                        .find(|h| h.port == w.port && h.protocol.eq_ignore_ascii_case(&w.protocol))
                        .map(|h| (w, h))
                })
                .collect();
            if clashes.is_empty() {
                let mut ports: Vec<(u16, &str)> =
                    wanted.iter().map(|w| (w.port, w.protocol.as_str())).collect();
                ports.sort();
                ports.dedup();
                let list: Vec<String> = ports.iter().map(|(p, proto)| format!("{p}/{proto}")).collect();
                return Outcome::pass(format!("{} free on this host", list.join(", ")));
            }
            let inodes: Vec<u64> = clashes.iter().map(|(_, h)| h.inode).collect();
            let by = owners(ctx, &inodes);
            let mut findings = Vec::new();
            let mut cmds = Vec::new();
            for (w, h) in &clashes {
                let holder = by.get(&h.inode).map(|p| format!(" by {p}")).unwrap_or_default();
                let who = w.what.clone().unwrap_or_else(|| "the profile".to_string());
                findings.push(Finding::fail(
                    &PORT_TAKEN,
                    Subject::Port {
                        port: w.port,
                        protocol: w.protocol.clone(),
                    },
                    format!(
                        "port {}/{} is taken on this host ({}:{}){holder}: wanted by {who}; its pod fails with \"bind: address already in use\"",
                        w.port, w.protocol, h.address, h.port
                    ),
                ));
                let flag = if h.protocol == "TCP" { "-ltnp" } else { "-lunp" };
                let cmd = format!("ss {flag} 'sport = :{}'", w.port);
                if !cmds.contains(&cmd) {
                    cmds.push(cmd);
                }
            }
            Outcome::found(findings, "").with_fix(Fix::manual(
                "stop or move what holds the port, or change the chart's port (values) or where the workload runs",
                cmds,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::addr_text;

    #[test]
    fn kernel_addresses() {
        assert_eq!(addr_text("0100007F"), "127.0.0.1");
        assert_eq!(addr_text("00000000"), "0.0.0.0");
        assert_eq!(addr_text("00000000000000000000000000000000"), "[::]");
    }
}
