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
        reads_install: true,
        host_network: false,
        any_node: true,
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

With an install (--chart / --helmfile) and `storage_class`, the claims are the install's
claims of that StorageClass (PVCs and StatefulSet volumeClaimTemplates, with their sizes).

Parameters: paths: [{path: /mnt/blueking, need: 90Gi}] or
            [{path: ..., claims: [50Gi, 90Gi], shared: true}] or
            [{path: /mnt/blueking, storage_class: local-storage, shared: true}]"#,
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
    /// The StorageClass this directory backs: with an install, its claims of that class are
    /// the claims.
    #[serde(default)]
    storage_class: Option<String>,
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
    #[serde(default)]
    storage_class: Option<String>,
}

impl TryFrom<RawDiskReq> for DiskReq {
    type Error = String;
    fn try_from(r: RawDiskReq) -> Result<Self, String> {
        let derived = !r.claims.is_empty() || r.storage_class.is_some();
        match (&r.need, derived) {
            (None, false) => Err(format!(
                "{}: give `need` (e.g. need: 90Gi), the `claims` this directory serves, or the `storage_class` it backs",
                r.path
            )),
            (Some(_), true) => Err(format!(
                "{}: give either `need` or `claims`/`storage_class`, not both",
                r.path
            )),
            _ => Ok(DiskReq {
                path: r.path,
                need: r.need,
                claims: r.claims,
                shared: r.shared,
                storage_class: r.storage_class,
            }),
        }
    }
}

impl DiskReq {
    /// `need`, or from the claims: their sum when they share the filesystem, else the largest.
    fn needed(&self, claims: &[Bytes]) -> Bytes {
        self.need.unwrap_or_else(|| {
            if self.shared {
                Bytes(claims.iter().map(|b| b.0).sum())
            } else {
                claims.iter().copied().max().unwrap_or(Bytes(0))
            }
        })
    }

    /// The profile's claims plus, with `storage_class`, the install's claims of that class.
    fn claims(&self, ctx: &Ctx) -> Result<(Vec<Bytes>, String), String> {
        let mut claims = self.claims.clone();
        let Some(class) = &self.storage_class else {
            return Ok((claims, String::new()));
        };
        let install = match ctx.install() {
            Some(Ok(i)) => i,
            Some(Err(e)) => return Err(format!("the install could not be rendered: {e}")),
            None if !claims.is_empty() => return Ok((claims, String::new())),
            None => {
                return Err(format!(
                    "no install given (--chart / --helmfile) to take the claims of StorageClass {class} from"
                ))
            }
        };
        let mut from = Vec::new();
        for c in install
            .claims()
            .iter()
            .filter(|c| c.storage_class.as_deref() == Some(class))
        {
            let size = c.size.as_deref().unwrap_or("0");
            let bytes = Bytes::parse_lossy(size).map_err(|e| format!("{}: {e}", c.what))?;
            claims.push(bytes);
            from.push(format!("{} {size}", c.what));
        }
        let note = format!(
            " ({} claim(s) of StorageClass {class} from the install{})",
            from.len(),
            if from.is_empty() {
                String::new()
            } else {
                format!(": {}", from.join(", "))
            }
        );
        Ok((claims, note))
    }
}

fn default_paths() -> Vec<DiskReq> {
    vec![DiskReq {
        path: "/mnt/blueking".to_string(),
        need: Some(Bytes(90 << 30)),
        claims: Vec::new(),
        shared: false,
        storage_class: None,
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
        let (claims, from) = match req.claims(ctx) {
            Ok(c) => c,
            Err(e) => return Finding::Undecided(format!("{}: {e}", req.path)),
        };
        let need = req.needed(&claims);
        let host = ctx.host_path(&req.path);
        match free_bytes(host.clone(), ctx.exec_timeout()).await {
            Ok(free) if free >= need.0 => Finding::Enough(format!(
                "{}: {} free, {} needed{from}",
                req.path,
                Bytes(free),
                need
            )),
            Ok(free) => Finding::Short {
                line: format!("{}: {} free, {} needed{from}", req.path, Bytes(free), need),
                fix: vec![
                    format!("df -h {}", req.path),
                    format!("du -xsh {}/* | sort -h | tail", req.path),
                ],
            },
            Err(e) if e.kind() == ErrorKind::NotFound => Finding::Short {
                line: format!("{}: does not exist ({} needed){from}", req.path, need),
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
