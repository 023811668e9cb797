use std::io::ErrorKind;
use std::path::PathBuf;

use serde::Deserialize;

use crate::check::{Check, CheckDef, CheckFuture, Ctx, Fix, Meta, Outcome, Phase};
use crate::quantity::Bytes;

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "node.localpv-disk",
        phase: Phase::Node,
        title: "local-PV host directories have enough free space",
        requires: &[],
        explain: r#"Why: local-PV provisioners bind a claim only on a node whose host directory has room
for it. When none has, pods never schedule. BlueKing CE 7 users saw (seed 004):

    0/5 nodes are available: 1 node(s) had taint {node-role.kubernetes.io/master: },
    that the pod didn't tolerate, 4 node(s) didn't find available persistent volumes to bind.

The cause was the localpv host directory's filesystem lacking space (mysql needs
50 GB, bkrepo 90 GB).

What it looks at: statvfs of each path (under --host-root), space available to
unprivileged users, against `need` — or, given `claims`, the largest claim, or their sum
when `shared: true` (all claims land on this node's one filesystem). Reports GiB free vs
needed. A missing directory fails.

Fix: create the directory on (or mount there) a filesystem with enough free space.

Parameters: paths: [{path: /mnt/blueking, need: 90Gi}] or
            [{path: ..., claims: [50Gi, 90Gi], shared: true}]"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiskReq {
    path: String,
    #[serde(default)]
    need: Option<Bytes>,
    #[serde(default)]
    claims: Vec<Bytes>,
    #[serde(default)]
    shared: bool,
}

/// A path and what it must hold: `need`, or the `claims` it serves — never neither, which
/// would read as "needs 0 bytes" and pass without having looked at anything.
#[derive(Deserialize)]
#[serde(try_from = "RawDiskReq")]
struct DiskReq {
    path: String,
    #[serde(default)]
    need: Option<Bytes>,
    #[serde(default)]
    claims: Vec<Bytes>,
    #[serde(default)]
    shared: bool,
}

impl TryFrom<RawDiskReq> for DiskReq {
    type Error = String;
    fn try_from(r: RawDiskReq) -> Result<Self, String> {
        match (&r.need, r.claims.is_empty()) {
            (None, true) => Err(format!(
                "{}: give `need` (e.g. need: 90Gi) or the `claims` this directory serves",
                r.path
            )),
            (Some(_), false) => Err(format!("{}: give either `need` or `claims`, not both", r.path)),
            _ => Ok(DiskReq {
                path: r.path,
                need: r.need,
                claims: r.claims,
                shared: r.shared,
            }),
        }
    }
}

impl DiskReq {
    fn needed(&self) -> Bytes {
        self.need.unwrap_or_else(|| {
            if self.shared {
                Bytes(self.claims.iter().map(|b| b.0).sum())
            } else {
                self.claims.iter().copied().max().unwrap_or(Bytes(0))
            }
        })
    }
}

fn default_paths() -> Vec<DiskReq> {
    vec![DiskReq {
        path: "/mnt/blueking".to_string(),
        need: Some(Bytes(90 << 30)),
        claims: Vec::new(),
        shared: false,
    }]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalPvDisk {
    #[serde(default = "default_paths")]
    paths: Vec<DiskReq>,
}

enum Finding {
    Enough(String),
    Short { line: String, fix: Vec<String> },
    Undecided(String),
}

async fn free_bytes(path: PathBuf, timeout: std::time::Duration) -> Result<u64, std::io::Error> {
    // statvfs can hang on a dead network mount: bound it.
    let task = tokio::task::spawn_blocking(move || nix::sys::statvfs::statvfs(&path));
    match tokio::time::timeout(timeout, task).await {
        Err(_) => Err(std::io::Error::new(ErrorKind::TimedOut, "statvfs did not return")),
        Ok(Err(join)) => Err(std::io::Error::other(join.to_string())),
        Ok(Ok(Err(errno))) => Err(std::io::Error::from(errno)),
        Ok(Ok(Ok(st))) => Ok(st.blocks_available().saturating_mul(st.fragment_size())),
    }
}

impl LocalPvDisk {
    async fn look(&self, ctx: &Ctx, req: &DiskReq) -> Finding {
        let need = req.needed();
        let host = ctx.host_path(&req.path);
        match free_bytes(host.clone(), ctx.exec_timeout()).await {
            Ok(free) if free >= need.0 => {
                Finding::Enough(format!("{}: {} free, {} needed", req.path, Bytes(free), need))
            }
            Ok(free) => Finding::Short {
                line: format!("{}: {} free, {} needed", req.path, Bytes(free), need),
                fix: vec![
                    format!("df -h {}", req.path),
                    format!("du -xsh {}/* | sort -h | tail", req.path),
                ],
            },
            Err(e) if e.kind() == ErrorKind::NotFound => Finding::Short {
                line: format!("{}: does not exist ({} needed)", req.path, need),
                fix: vec![
                    format!("mkdir -p {}", req.path),
                    format!(
                        "mount /dev/<disk> {}   # a filesystem with at least {} free",
                        req.path, need
                    ),
                ],
            },
            Err(e) => Finding::Undecided(format!("{}: cannot statvfs {}: {e}", req.path, host.display())),
        }
    }
}

impl Check for LocalPvDisk {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            if self.paths.is_empty() {
                return Outcome::skip("the profile lists no local-PV paths");
            }
            let mut ok = Vec::new();
            let mut short = Vec::new();
            let mut fixes = Vec::new();
            let mut undecided = Vec::new();
            for req in &self.paths {
                match self.look(ctx, req).await {
                    Finding::Enough(l) => ok.push(l),
                    Finding::Short { line, fix } => {
                        short.push(line);
                        fixes.extend(fix);
                    }
                    Finding::Undecided(l) => undecided.push(l),
                }
            }
            if !short.is_empty() {
                let mut lines = short;
                lines.extend(undecided);
                return Outcome::fail(lines.join("\n")).with_fix(Fix::manual(
                    "free space in, or mount a larger filesystem at, each local-PV directory",
                    fixes,
                ));
            }
            if !undecided.is_empty() {
                return Outcome::error(undecided.join("\n"));
            }
            Outcome::pass(ok.join("\n"))
        })
    }
}
