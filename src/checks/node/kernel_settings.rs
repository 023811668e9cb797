use serde::Deserialize;

use super::{Unreadable, HOST_FILE_UNREADABLE};
use crate::check::{
    ApplyFuture, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Observed, Outcome,
    Phase, Subject,
};
use crate::exec;
use crate::fsutil::write_atomic;

const SETTING_WRONG: Code = Code {
    code: "setting-wrong",
    explain: "net.ipv4.ip_forward or a net.bridge.bridge-nf-call-* setting is not 1 (kubeadm's preflight refuses the node): Service traffic is not routed or bypasses iptables",
};
const MODULE_NOT_LOADED: Code = Code {
    code: "module-not-loaded",
    explain: "br_netfilter is neither loaded nor built in: bridged pod traffic bypasses kube-proxy's rules",
};
const LIMIT_LOW: Code = Code {
    code: "limit-low",
    explain: "an fs.inotify limit is below the profile's minimum: log collectors and watchers fail with \"too many open files\"",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "node.kernel-settings",
        phase: Phase::Node,
        title: "the kernel forwards and bridges packets as Kubernetes needs",
        requires: &[],
        install: InstallUse::No,
        codes: &[SETTING_WRONG, MODULE_NOT_LOADED, LIMIT_LOW, HOST_FILE_UNREADABLE],
        // ip_forward and the bridge sysctls are per network namespace: the host's.
        host_network: true,
        roll_up: None,
        explain: r#"Why: Service traffic between pods crosses the node's bridge and is routed: with
`net.ipv4.ip_forward=0`, or without `br_netfilter` (and `net.bridge.bridge-nf-call-iptables=1`),
kube-proxy's rules never see it and Services silently drop packets. kubeadm's own preflight
refuses such a node:

    [ERROR FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents are not set to 1
    [ERROR FileContent--proc-sys-net-bridge-bridge-nf-call-iptables]: /proc/sys/net/bridge/bridge-nf-call-iptables does not exist

Small inotify limits make log collectors and controllers that watch many files fail with
`too many open files` (BlueKing's log collection runs on every node).

What it looks at, read under --host-root (no packet, no command): /proc/sys/net/ipv4/ip_forward
(must be 1); br_netfilter loaded (/proc/modules), built in (modules.builtin) or present
(/proc/sys/net/bridge), and net.bridge.bridge-nf-call-iptables / -ip6tables (must be 1);
fs.inotify.max_user_instances and max_user_watches against `min_inotify_instances` (default
8192) and `min_inotify_watches` (default 524288), a warning.

Fix (safe, --fix): a file of preflight's own, /etc/sysctl.d/99-preflight-kubernetes.conf
(and /etc/modules-load.d/preflight-br_netfilter.conf) under --host-root, so the settings
survive a reboot; on a live host (--host-root /) also `modprobe br_netfilter` and `sysctl -w`
of each value. With another --host-root the files are written and the commands printed.

Parameters: min_inotify_instances: 8192, min_inotify_watches: 524288"#,
    },
};

fn default_instances() -> u64 {
    8192
}

fn default_watches() -> u64 {
    524288
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSettings {
    #[serde(default = "default_instances")]
    min_inotify_instances: u64,
    #[serde(default = "default_watches")]
    min_inotify_watches: u64,
    /// What the last run found wrong: the sysctls to set and whether to load br_netfilter.
    #[serde(skip)]
    planned: Observed<Plan>,
}

#[derive(Clone, Debug, Default)]
struct Plan {
    sysctls: Vec<(&'static str, String)>,
    load_br_netfilter: bool,
}

const SYSCTL_FILE: &str = "/etc/sysctl.d/99-preflight-kubernetes.conf";
const MODULES_FILE: &str = "/etc/modules-load.d/preflight-br_netfilter.conf";

/// `net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward`.
fn proc_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

impl Plan {
    fn commands(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.load_br_netfilter {
            out.push("modprobe br_netfilter".to_string());
            out.push(format!("echo br_netfilter > {MODULES_FILE}"));
        }
        let lines: Vec<String> = self.sysctls.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        out.push(format!("printf '{}\\n' > {SYSCTL_FILE}", lines.join("\\n")));
        let set: Vec<String> = self.sysctls.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push(format!("sysctl -w {}", set.join(" ")));
        out
    }

    fn file(&self) -> String {
        let mut text = String::from(
            "# Written by preflight (node.kernel-settings): what Kubernetes needs of this kernel.\n",
        );
        for (k, v) in &self.sysctls {
            text.push_str(&format!("{k} = {v}\n"));
        }
        text
    }
}

/// `--host-root /` (or a path to it): settings act on this kernel.
fn is_live_root(ctx: &Ctx) -> bool {
    std::fs::canonicalize(&ctx.host_root)
        .map(|p| p == std::path::Path::new("/"))
        .unwrap_or(false)
}

fn read(ctx: &Ctx, path: &str) -> Result<Option<String>, Unreadable> {
    match std::fs::read_to_string(ctx.host_path(path)) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Unreadable::new(ctx, path, &e)),
    }
}

impl KernelSettings {
    fn br_netfilter(&self, ctx: &Ctx) -> Result<bool, Unreadable> {
        if ctx.host_path("/proc/sys/net/bridge").is_dir() {
            return Ok(true);
        }
        if let Some(m) = read(ctx, "/proc/modules")? {
            if m.lines()
                .any(|l| l.split_whitespace().next() == Some("br_netfilter"))
            {
                return Ok(true);
            }
        }
        let release = read(ctx, "/proc/sys/kernel/osrelease")?.unwrap_or_default();
        if !release.is_empty() {
            if let Some(b) = read(ctx, &format!("/lib/modules/{release}/modules.builtin"))? {
                if b.lines().any(|l| l.ends_with("/br_netfilter.ko")) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

impl Check for KernelSettings {
    fn apply<'a>(&'a self, ctx: &'a Ctx) -> ApplyFuture<'a> {
        Box::pin(async move {
            let plan = self.planned.get().ok_or("nothing was observed to fix")?;
            let mut done = Vec::new();
            let write = |path: &str, text: &str| -> Result<String, String> {
                let p = ctx.host_path(path);
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                write_atomic(&p, text.as_bytes(), 0o644)?;
                Ok(format!("wrote {}", p.display()))
            };
            if plan.load_br_netfilter {
                done.push(write(MODULES_FILE, "br_netfilter\n")?);
            }
            if !plan.sysctls.is_empty() {
                done.push(write(SYSCTL_FILE, &plan.file())?);
            }
            if !is_live_root(ctx) {
                done.push(format!(
                    "not applied to the running kernel (--host-root is not /): on the host run {}",
                    plan.commands()
                        .iter()
                        .filter(|c| c.starts_with("modprobe") || c.starts_with("sysctl"))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
                return Ok(done.join("; "));
            }
            if plan.load_br_netfilter {
                let modprobe = ctx.which("modprobe").ok_or("modprobe is not on PATH")?;
                let out = exec::run(
                    &modprobe,
                    ["br_netfilter"],
                    ctx.path_env.as_deref(),
                    ctx.exec_timeout(),
                )
                .await?;
                if !out.success {
                    return Err(format!("modprobe br_netfilter: {}", out.stderr_line()));
                }
                done.push("modprobe br_netfilter".to_string());
            }
            // What `sysctl -w key=value` does: write the value to its /proc/sys file.
            for (k, v) in &plan.sysctls {
                let p = proc_path(k);
                std::fs::write(&p, format!("{v}\n")).map_err(|e| format!("sysctl -w {k}={v}: {e}"))?;
                done.push(format!("sysctl -w {k}={v}"));
            }
            Ok(done.join("; "))
        })
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            self.planned.set(None);
            let mut plan = Plan::default();
            let (mut bad, mut low, mut good) = (Vec::new(), Vec::new(), Vec::new());
            match read(ctx, "/proc/sys/net/ipv4/ip_forward") {
                Err(e) => return e.outcome(),
                Ok(None) => {
                    return Outcome::error(format!(
                        "{} does not exist: this is not a Linux /proc of a host",
                        ctx.host_path("/proc/sys/net/ipv4/ip_forward").display()
                    ))
                }
                Ok(Some(v)) if v == "1" => good.push("net.ipv4.ip_forward = 1".to_string()),
                Ok(Some(v)) => {
                    bad.push(Finding::fail(&SETTING_WRONG, Subject::setting("net.ipv4.ip_forward"), format!("net.ipv4.ip_forward is {v} (/proc/sys/net/ipv4/ip_forward contents are not set to 1): the node does not route Service traffic")));
                    plan.sysctls.push(("net.ipv4.ip_forward", "1".to_string()));
                }
            }
            let bridged = match self.br_netfilter(ctx) {
                Ok(b) => b,
                Err(e) => return e.outcome(),
            };
            if !bridged {
                bad.push(Finding::fail(&MODULE_NOT_LOADED, Subject::setting("br_netfilter"), "br_netfilter is not loaded (/proc/sys/net/bridge/bridge-nf-call-iptables does not exist): bridged pod traffic bypasses kube-proxy's rules"));
                plan.load_br_netfilter = true;
            }
            for key in [
                "net.bridge.bridge-nf-call-iptables",
                "net.bridge.bridge-nf-call-ip6tables",
            ] {
                match read(ctx, &proc_path(key)) {
                    Err(e) => return e.outcome(),
                    Ok(None) => {
                        if bridged {
                            bad.push(Finding::fail(
                                &SETTING_WRONG,
                                Subject::setting(key),
                                format!("{} does not exist although br_netfilter is there", proc_path(key)),
                            ));
                        }
                        // Otherwise br_netfilter is not loaded (said above): set once it is.
                        plan.sysctls.push((key, "1".to_string()));
                    }
                    Ok(Some(v)) if v == "1" => good.push(format!("{key} = 1")),
                    Ok(Some(v)) => {
                        bad.push(Finding::fail(
                            &SETTING_WRONG,
                            Subject::setting(key),
                            format!("{key} is {v}: bridged pod traffic bypasses iptables"),
                        ));
                        plan.sysctls.push((key, "1".to_string()));
                    }
                }
            }
            for (key, min) in [
                ("fs.inotify.max_user_instances", self.min_inotify_instances),
                ("fs.inotify.max_user_watches", self.min_inotify_watches),
            ] {
                match read(ctx, &proc_path(key)) {
                    Err(e) => return e.outcome(),
                    Ok(None) => low.push(Finding::warn(
                        &LIMIT_LOW,
                        Subject::setting(key),
                        format!("{key}: {} does not exist", proc_path(key)),
                    )),
                    Ok(Some(v)) => match v.parse::<u64>() {
                        Ok(n) if n >= min => good.push(format!("{key} = {n}")),
                        Ok(n) => {
                            low.push(Finding::warn(&LIMIT_LOW, Subject::setting(key), format!("{key} is {n}, below {min}: log collectors and watchers fail with \"too many open files\"")));
                            plan.sysctls.push((key, min.to_string()));
                        }
                        Err(_) => return Outcome::error(format!("{key}: {v:?} is not a number")),
                    },
                }
            }
            if bad.is_empty() && low.is_empty() {
                return Outcome::pass(good.join(", "));
            }
            let fix = Fix::automatic(
                "set what Kubernetes needs now and at every boot (preflight's own sysctl.d / modules-load.d files)",
                plan.commands(),
            );
            self.planned.set(Some(plan));
            let mut found = bad;
            found.extend(low);
            Outcome::found(found, "").with_fix(fix)
        })
    }
}
