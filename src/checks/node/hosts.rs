use std::collections::BTreeMap;
use std::net::IpAddr;

use futures::future::join_all;
use serde::Deserialize;

use crate::check::{Check, CheckDef, CheckFuture, Ctx, Fix, Meta, Outcome, Phase};
use crate::resolve::{ResolveError, Source};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "node.hosts",
        phase: Phase::Node,
        title: "pinned names resolve to the expected IPs",
        requires: &[],
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

Fix (safe): pin the names in a marked block in /etc/hosts
(`# BEGIN preflight` ... `# END preflight`), commenting out hosts lines that pin the name
to another IP.

Parameters: pins: {hub.bktencent.com: ["49.234.165.79"]}"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hosts {
    #[serde(default)]
    pins: BTreeMap<String, Vec<IpAddr>>,
}

enum Finding {
    Right(String),
    /// Wrong or unresolvable; hosts-file lines that pin it elsewhere.
    Wrong {
        line: String,
        bad_lines: Vec<usize>,
    },
    Undecided(String),
}

fn ips(v: &[IpAddr]) -> String {
    v.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

async fn look(ctx: &Ctx, name: &str, expected: &[IpAddr]) -> Finding {
    match ctx.resolver.resolve(name).await {
        Ok(r) => {
            let unexpected: Vec<IpAddr> = r
                .addrs
                .iter()
                .copied()
                .filter(|a| !expected.contains(a))
                .collect();
            if unexpected.is_empty() {
                return Finding::Right(format!("{name} → {} ({})", ips(&r.addrs), r.source));
            }
            let bad_lines = match &r.source {
                Source::HostsFile { entries, .. } => entries
                    .iter()
                    .filter(|e| !expected.contains(&e.ip))
                    .map(|e| e.line)
                    .collect(),
                _ => Vec::new(),
            };
            Finding::Wrong {
                line: format!(
                    "{name} resolves to {} via {}, expected {}",
                    ips(&r.addrs),
                    r.source,
                    ips(expected)
                ),
                bad_lines,
            }
        }
        Err(ResolveError::Other { servers, detail }) if servers.is_empty() => {
            Finding::Undecided(format!("{name}: {detail}"))
        }
        // Unresolvable here means unresolvable for the installer too: a pin fixes it.
        Err(e) => Finding::Wrong {
            line: format!("{name} does not resolve: {e}; expected {}", ips(expected)),
            bad_lines: Vec::new(),
        },
    }
}

impl Check for Hosts {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            if self.pins.is_empty() {
                return Outcome::skip("the profile pins no names");
            }
            // Every pin at once, so N dead names cost one timeout, not N.
            let findings = join_all(self.pins.iter().map(|(name, want)| look(ctx, name, want))).await;
            let mut right = Vec::new();
            let mut wrong = Vec::new();
            let mut undecided = Vec::new();
            let mut bad_lines = Vec::new();
            let mut block = Vec::new();
            for ((name, want), finding) in self.pins.iter().zip(findings) {
                match finding {
                    Finding::Right(l) => right.push(l),
                    Finding::Wrong { line, bad_lines: b } => {
                        wrong.push(line);
                        bad_lines.extend(b);
                        if let Some(ip) = want.first() {
                            block.push(format!("{ip} {name}"));
                        }
                    }
                    Finding::Undecided(l) => undecided.push(l),
                }
            }
            if !wrong.is_empty() {
                bad_lines.sort_unstable();
                bad_lines.dedup();
                let mut commands: Vec<String> = bad_lines
                    .iter()
                    .map(|n| format!("sed -i '{n}s/^/# /' /etc/hosts"))
                    .collect();
                let mut printf = vec!["'# BEGIN preflight'".to_string()];
                printf.extend(block.iter().map(|l| format!("'{l}'")));
                printf.push("'# END preflight'".to_string());
                commands.push(format!("printf '%s\\n' {} >> /etc/hosts", printf.join(" ")));
                let mut lines = wrong;
                lines.extend(undecided);
                return Outcome::fail(lines.join("\n")).with_fix(Fix::manual(
                    format!("pin {} in /etc/hosts", block.join(", ")),
                    commands,
                ));
            }
            if !undecided.is_empty() {
                return Outcome::error(undecided.join("\n"));
            }
            Outcome::pass(right.join("\n"))
        })
    }
}
