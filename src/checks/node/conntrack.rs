use std::io::ErrorKind;

use serde::Deserialize;

use super::{Unreadable, HOST_FILE_UNREADABLE};
use crate::check::{
    ApplyFuture, Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Observed, Outcome,
    Phase, Subject,
};
use crate::exec;
use crate::fsutil::write_atomic;

const CONNTRACK_NOT_LOADED: Code = Code {
    code: "conntrack-not-loaded",
    explain: "nf_conntrack is neither loaded nor built in: kube-proxy fails (--fix loads it and keeps it loaded at boot)",
};
const CONNTRACK_UNLOADABLE: Code = Code {
    code: "conntrack-unloadable",
    explain: "nf_conntrack is not loaded and /lib/modules of the running kernel is gone (modules upgraded under it, seed 001): reboot into the new kernel",
};
const MODULES_MISSING: Code = Code {
    code: "kernel-modules-missing",
    explain: "conntrack works, but /lib/modules of the running kernel is gone: no other module can be loaded until a reboot",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "node.conntrack",
        phase: Phase::Node,
        title: "the conntrack kernel module is available",
        requires: &[],
        install: InstallUse::No,
        codes: &[
            CONNTRACK_NOT_LOADED,
            CONNTRACK_UNLOADABLE,
            MODULES_MISSING,
            HOST_FILE_UNREADABLE,
        ],
        host_network: true,
        roll_up: None,
        explain: r#"Why: kube-proxy and CNI plugins need connection tracking. DaoCloud (kpanda) users
had cluster creation fail with kernel tuning enabled (seed 001); the diagnosis was

    lsmod |grep conntrack

printing nothing, and the fix `modprobe ip_conntrack`. The same report warns that
upgrading kernel modules under a running kernel also breaks cluster creation: the
running kernel's /lib/modules/$(uname -r) is gone, so no module can be loaded.

What it looks at (under --host-root): /proc/modules for nf_conntrack (or the old
ip_conntrack); /lib/modules/<release>/modules.builtin for a built-in
kernel/net/netfilter/nf_conntrack.ko; /proc/sys/net/netfilter/nf_conntrack_max. Any of
these passes. <release> is /proc/sys/kernel/osrelease. It warns when
/lib/modules/<release> is missing even though conntrack is there now.

Fix (safe, `--fix`): `modprobe nf_conntrack` (older kernels: `modprobe ip_conntrack`), and
persist it in /etc/modules-load.d/preflight-conntrack.conf (idempotent). With --host-root
other than /, the file is written under it but the module load is only printed: it must
run on the host's own kernel. When the running kernel's modules are missing: reboot into
the installed kernel (not automatic)."#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conntrack {
    /// The last run found conntrack unloaded but loadable.
    #[serde(skip)]
    loadable: Observed<bool>,
}

const PERSIST: &str = "/etc/modules-load.d/preflight-conntrack.conf";

const MODULES: [&str; 2] = ["nf_conntrack", "ip_conntrack"];

/// How the kernel provides conntrack, if it does.
fn provided_by(ctx: &Ctx, release: Option<&str>) -> Result<Option<String>, Unreadable> {
    let proc_modules = ctx.host_path("/proc/modules");
    let mut read_error = None;
    match std::fs::read_to_string(&proc_modules) {
        Ok(text) => {
            if let Some(m) = text
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .find(|m| MODULES.contains(m))
            {
                return Ok(Some(format!("module {m} is loaded (/proc/modules)")));
            }
        }
        Err(e) => read_error = Some(Unreadable::new(ctx, "/proc/modules", &e)),
    }
    if let Some(release) = release {
        let builtin = ctx.host_path(format!("/lib/modules/{release}/modules.builtin"));
        if let Ok(text) = std::fs::read_to_string(&builtin) {
            if text.lines().any(|l| {
                let file = l.rsplit('/').next().unwrap_or("");
                MODULES.iter().any(|m| file == format!("{m}.ko"))
            }) {
                return Ok(Some(format!("built into kernel {release} (modules.builtin)")));
            }
        }
    }
    if ctx.host_path("/proc/sys/net/netfilter/nf_conntrack_max").exists() {
        return Ok(Some(
            "/proc/sys/net/netfilter/nf_conntrack_max exists".to_string(),
        ));
    }
    match read_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

fn load_fix() -> Fix {
    Fix::automatic(
        "load the conntrack module now and at every boot",
        vec![
            "modprobe nf_conntrack || modprobe ip_conntrack".to_string(),
            format!("echo nf_conntrack > {PERSIST}"),
        ],
    )
}

/// `--host-root /` (or a path to it): module loads act on this kernel.
fn is_live_root(ctx: &Ctx) -> bool {
    std::fs::canonicalize(&ctx.host_root)
        .map(|p| p == std::path::Path::new("/"))
        .unwrap_or(false)
}

fn reboot_fix(release: &str) -> Fix {
    Fix::manual(
        format!(
            "/lib/modules/{release} is gone when the kernel was upgraded without a reboot: reboot into the installed kernel (in a container, run with --host-root pointing at the host's / instead)"
        ),
        vec!["ls /lib/modules".to_string(), "reboot".to_string()],
    )
}

impl Check for Conntrack {
    fn apply<'a>(&'a self, ctx: &'a Ctx) -> ApplyFuture<'a> {
        Box::pin(async move {
            if self.loadable.get() != Some(true) {
                return Err("nothing was observed to fix".to_string());
            }
            let persist = ctx.host_path(PERSIST);
            if std::fs::read(&persist).ok().as_deref() != Some(b"nf_conntrack\n".as_slice()) {
                if let Some(dir) = persist.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                write_atomic(&persist, b"nf_conntrack\n", 0o644)?;
            }
            if !is_live_root(ctx) {
                return Ok(format!(
                    "wrote {}; load it on the host itself (not run, --host-root is not /): modprobe nf_conntrack",
                    persist.display()
                ));
            }
            let modprobe = ctx.which("modprobe").ok_or("modprobe is not on PATH")?;
            let mut last = String::new();
            for module in ["nf_conntrack", "ip_conntrack"] {
                match exec::run(&modprobe, [module], ctx.path_env.as_deref(), ctx.exec_timeout()).await {
                    Ok(o) if o.success => {
                        return Ok(format!("modprobe {module}; wrote {}", persist.display()))
                    }
                    Ok(o) => last = format!("modprobe {module}: {}", o.stderr_line()),
                    Err(e) => last = e,
                }
            }
            Err(last)
        })
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            self.loadable.set(Some(false));
            let osrelease = ctx.host_path("/proc/sys/kernel/osrelease");
            let release = match std::fs::read_to_string(&osrelease) {
                Ok(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
                Err(_) => None,
            };
            let modules_dir_missing = match &release {
                Some(r) => {
                    let dir = ctx.host_path(format!("/lib/modules/{r}"));
                    matches!(std::fs::metadata(&dir), Err(e) if e.kind() == ErrorKind::NotFound)
                }
                None => false,
            };
            let provided = match provided_by(ctx, release.as_deref()) {
                Ok(p) => p,
                Err(e) => return e.outcome(),
            };
            match (provided, release) {
                (Some(how), Some(r)) if modules_dir_missing => Outcome::problem(Finding::warn(
                    &MODULES_MISSING,
                    Subject::path(format!("/lib/modules/{r}")),
                    format!(
                        "conntrack is available ({how}), but /lib/modules/{r} is missing: the running kernel cannot load any other module"
                    ),
                ))
                .with_fix(reboot_fix(&r)),
                (Some(how), _) => Outcome::pass(how),
                (None, Some(r)) if modules_dir_missing => Outcome::problem(Finding::fail(
                    &CONNTRACK_UNLOADABLE,
                    Subject::setting("nf_conntrack"),
                    format!("conntrack is not loaded and cannot be: /lib/modules/{r} of the running kernel is missing"),
                ))
                .with_fix(reboot_fix(&r)),
                (None, release) => {
                    self.loadable.set(Some(true));
                    Outcome::problem(Finding::fail(
                        &CONNTRACK_NOT_LOADED,
                        Subject::setting("nf_conntrack"),
                        format!(
                            "conntrack is not loaded (no nf_conntrack or ip_conntrack in /proc/modules{}, no /proc/sys/net/netfilter/nf_conntrack_max)",
                            if release.is_some() { ", not built in" } else { "" }
                        ),
                    ))
                .with_fix(load_fix())
                }
            }
        })
    }
}
