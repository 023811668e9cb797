use std::collections::BTreeMap;
use std::net::IpAddr;

use futures::future::join_all;
use serde::Deserialize;

use super::hosts_block::{planned, shell, with_block};
use crate::check::{
    ApplyFuture, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Observed, Outcome,
    Phase, Subject,
};
use crate::fsutil::{backup_once, write_atomic};
use crate::resolve::ResolveError;

const NAME_MISRESOLVES: Code = Code {
    code: "name-misresolves",
    explain: "a pinned name resolves to an address other than the pin's, or not at all: helm and the runtime reach the wrong host (--fix pins it in /etc/hosts)",
};
const NAME_UNDECIDED: Code = Code {
    code: "name-undecided",
    explain: "a pinned name could not be looked up (no nameserver answered, resolver unreadable): neither right nor wrong",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "node.hosts",
        phase: Phase::Node,
        title: "pinned names resolve to the expected IPs",
        requires: &[],
        install: InstallUse::No,
        codes: &[NAME_MISRESOLVES, NAME_UNDECIDED],
        host_network: false,
        roll_up: None,
        explain: r#"Why: when a registry or chart-repo domain resolves to the wrong place, helm fails with
an error that says nothing about DNS. BlueKing CE 7 users outside China saw (seed 004):

    STDERR:
      Error: failed to download "<chart>" at version "<version>"

because hub.bktencent.com resolved to the Singapore node; pinning it in /etc/hosts
(`49.234.165.79 hub.bktencent.com`) fixed it. TKEStack users saw the name not resolve at
all (seed 002):

    dial tcp: lookup defult.registry.tke.com on 183.60.83.19:53: no such host

What it looks at: each name in `pins`, resolved as the host resolver does by default:
<host-root>/etc/hosts first, then the nameservers of <host-root>/etc/resolv.conf
(bounded by --timeout). Every address it resolves to must be one of the expected IPs.
The message names the IP seen, the IP expected and where the answer came from (hosts
file line, or DNS and which nameserver).

Fix (safe, `--fix`): pin the names in preflight's own marked block at the top of /etc/hosts
(`# BEGIN preflight` ... `# END preflight`): the first line naming a host wins, so the block
overrides a wrong line further down without touching it. Re-running rewrites the block in
place; the file is written atomically (temp file + rename) keeping its mode and owner, and
the original is saved once as /etc/hosts.preflight.bak.

Parameters: pins: {hub.bktencent.com: ["49.234.165.79"]}"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hosts {
    #[serde(default)]
    pins: BTreeMap<String, Vec<IpAddr>>,
    /// The pins the last run found wrong: what `--fix` writes.
    #[serde(skip)]
    observed: Observed<Vec<(String, IpAddr)>>,
}

enum Looked {
    Right(String),
    /// Wrong or unresolvable.
    Wrong(String),
    Undecided(String),
}

fn ips(v: &[IpAddr]) -> String {
    v.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

async fn look(ctx: &Ctx, name: &str, expected: &[IpAddr]) -> Looked {
    match ctx.resolver.resolve(name).await {
        Ok(r) => {
            let unexpected: Vec<IpAddr> = r
                .addrs
                .iter()
                .copied()
                .filter(|a| !expected.contains(a))
                .collect();
            if unexpected.is_empty() {
                return Looked::Right(format!("{name} → {} ({})", ips(&r.addrs), r.source));
            }
            Looked::Wrong(format!(
                "{name} resolves to {} via {}, expected {}",
                ips(&r.addrs),
                r.source,
                ips(expected)
            ))
        }
        Err(ResolveError::Other { servers, detail }) if servers.is_empty() => {
            Looked::Undecided(format!("{name}: {detail}"))
        }
        // Unresolvable here means unresolvable for the installer too: a pin fixes it.
        Err(e) => Looked::Wrong(format!(
            "{name} does not resolve: {e}; expected {}",
            ips(expected)
        )),
    }
}

impl Check for Hosts {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            self.observed.set(None);
            if self.pins.is_empty() {
                return Outcome::skip("the profile pins no names");
            }
            // Every pin at once, so N dead names cost one timeout, not N.
            let findings = join_all(self.pins.iter().map(|(name, want)| look(ctx, name, want))).await;
            let mut right = Vec::new();
            let mut wrong = Vec::new();
            let mut undecided = Vec::new();
            let mut to_pin = Vec::new();
            for ((name, want), finding) in self.pins.iter().zip(findings) {
                match finding {
                    Looked::Right(l) => right.push(l),
                    Looked::Wrong(l) => {
                        wrong.push(Finding::fail(
                            &NAME_MISRESOLVES,
                            Subject::Host { host: name.clone() },
                            l,
                        ));
                        if let Some(ip) = want.first() {
                            to_pin.push((name.clone(), *ip));
                        }
                    }
                    Looked::Undecided(l) => undecided.push(Finding::error(
                        &NAME_UNDECIDED,
                        Subject::Host { host: name.clone() },
                        l,
                    )),
                }
            }
            if !wrong.is_empty() {
                let block: Vec<String> = to_pin.iter().map(|(n, ip)| format!("{ip} {n}")).collect();
                // The commands come from the same computation `apply` makes on this file.
                let content = std::fs::read(ctx.resolver.hosts_file()).ok();
                let (had_block, lines) = planned(content.as_deref().unwrap_or_default(), &to_pin);
                let commands = shell(
                    "/etc/hosts",
                    "/etc/hosts.preflight.bak",
                    had_block,
                    content.as_deref(),
                    &lines,
                );
                self.observed.set(Some(to_pin));
                let mut found = wrong;
                found.extend(undecided);
                return Outcome::found(found, "").with_fix(Fix::automatic(
                    format!(
                        "pin {} in preflight's block at the top of /etc/hosts (backup: /etc/hosts.preflight.bak)",
                        block.join(", ")
                    ),
                    commands,
                ));
            }
            if !undecided.is_empty() {
                return Outcome::found(undecided, "");
            }
            Outcome::pass(right.join("\n"))
        })
    }

    fn apply<'a>(&'a self, ctx: &'a Ctx) -> ApplyFuture<'a> {
        Box::pin(async move {
            let pins = self.observed.get().ok_or("nothing was observed to fix")?;
            let path = ctx.resolver.hosts_file().to_path_buf();
            let before = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            };
            let after = with_block(&before, &pins);
            if after == before {
                return Ok(format!("{} already holds the block", path.display()));
            }
            let backup = path.with_file_name("hosts.preflight.bak");
            backup_once(&path, &backup)?;
            write_atomic(&path, &after, 0o644)?;
            let names: Vec<String> = pins.iter().map(|(n, ip)| format!("{n} → {ip}")).collect();
            Ok(format!("pinned {} in {}", names.join(", "), path.display()))
        })
    }
}
