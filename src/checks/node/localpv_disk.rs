use std::io::ErrorKind;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::check::{
    Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, OnNode, Outcome, Phase, Subject,
};
use crate::quantity::Bytes;

const DISK_SHORT: Code = Code {
    code: "disk-short",
    explain: "a local-PV directory is missing or has less free space than its claims need: the claims stay Pending (\"didn't find available persistent volumes to bind\", seed 004)",
};
const DISK_UNDECIDED: Code = Code {
    code: "disk-undecided",
    explain: "the free space of a local-PV directory could not be read (statvfs failed): not judged",
};

const PLACEMENT_UNSURE: Code = Code {
    code: "placement-unsure",
    explain: "claims sharing a directory fit in the nodes' free space together, but placing the largest first left some without room: another placement may exist, so a warning (preflight nodes)",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "node.localpv-disk",
        phase: Phase::Node,
        title: "local-PV host directories have enough free space",
        requires: &[],
        install: InstallUse::Optional,
        codes: &[DISK_SHORT, DISK_UNDECIDED, PLACEMENT_UNSURE],
        host_network: false,
        roll_up: Some(over_nodes),
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

On every node (--all-nodes, preflight nodes) the question is the scheduler's: does each
claim fit on *some* node? The roll-up answers it per claim from each node's free space
(claims that share the filesystem are placed together, largest first), naming the nodes.

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

enum Looked {
    Enough(String),
    Short { line: String, fix: Vec<String> },
    Undecided(String),
}

/// What one node measured for one path: the roll-up over the nodes reads these.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct PathFacts {
    path: String,
    /// Bytes free; `None` when it could not be read (or the claims not known).
    free: Option<u64>,
    /// The directory does not exist: nothing can be bound there.
    #[serde(default)]
    missing: bool,
    /// The claims' sizes; `need` is one claim of that size.
    claims: Vec<u64>,
    #[serde(default)]
    shared: bool,
}

#[derive(Serialize, Deserialize, Debug)]
struct Facts {
    paths: Vec<PathFacts>,
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
    async fn look(&self, ctx: &Ctx, req: &DiskReq) -> (Looked, PathFacts) {
        let mut facts = PathFacts {
            path: req.path.clone(),
            free: None,
            missing: false,
            claims: Vec::new(),
            shared: req.shared,
        };
        let (claims, from) = match req.claims(ctx) {
            Ok(c) => c,
            Err(e) => return (Looked::Undecided(format!("{}: {e}", req.path)), facts),
        };
        let need = req.needed(&claims);
        facts.claims = match req.need {
            Some(n) => vec![n.0],
            None => claims.iter().map(|b| b.0).collect(),
        };
        let host = ctx.host_path(&req.path);
        let free = free_bytes(host.clone(), ctx.exec_timeout()).await;
        match &free {
            Ok(f) => facts.free = Some(*f),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                facts.free = Some(0);
                facts.missing = true;
            }
            Err(_) => {}
        }
        let finding = match free {
            Ok(free) if free >= need.0 => Looked::Enough(format!(
                "{}: {} free, {} needed{from}",
                req.path,
                Bytes(free),
                need
            )),
            Ok(free) => Looked::Short {
                line: format!("{}: {} free, {} needed{from}", req.path, Bytes(free), need),
                fix: vec![
                    format!("df -h {}", req.path),
                    format!("du -xsh {}/* | sort -h | tail", req.path),
                ],
            },
            Err(e) if e.kind() == ErrorKind::NotFound => Looked::Short {
                line: format!("{}: does not exist ({} needed){from}", req.path, need),
                fix: vec![
                    format!("mkdir -p {}", req.path),
                    format!(
                        "mount /dev/<disk> {}   # a filesystem with at least {} free",
                        req.path, need
                    ),
                ],
            },
            Err(e) => Looked::Undecided(format!("{}: cannot statvfs {}: {e}", req.path, host.display())),
        };
        (finding, facts)
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
            let mut facts = Vec::new();
            for req in &self.paths {
                let (finding, measured) = self.look(ctx, req).await;
                facts.push(measured);
                match finding {
                    Looked::Enough(l) => ok.push(l),
                    Looked::Short { line, fix } => {
                        short.push(Finding::fail(&DISK_SHORT, Subject::path(req.path.as_str()), line));
                        fixes.extend(fix);
                    }
                    Looked::Undecided(l) => undecided.push(Finding::error(
                        &DISK_UNDECIDED,
                        Subject::path(req.path.as_str()),
                        l,
                    )),
                }
            }
            let facts = serde_json::to_value(Facts { paths: facts }).unwrap_or_default();
            if !short.is_empty() {
                let mut found = short;
                found.extend(undecided);
                return Outcome::found(found, "")
                    .with_fix(Fix::manual(
                        "free space in, or mount a larger filesystem at, each local-PV directory",
                        fixes,
                    ))
                    .with_facts(facts);
            }
            if !undecided.is_empty() {
                return Outcome::found(undecided, "").with_facts(facts);
            }
            Outcome::pass(ok.join("\n")).with_facts(facts)
        })
    }

    /// The pods do not render the install: its claims of `storage_class` go as `claims`.
    fn params_for_nodes(&self, ctx: &Ctx) -> Result<Option<serde_yaml_ng::Value>, String> {
        if self.paths.iter().all(|p| p.storage_class.is_none()) {
            return Ok(None);
        }
        let mut paths = Vec::new();
        for req in &self.paths {
            let mut m = serde_yaml_ng::Mapping::new();
            m.insert("path".into(), req.path.clone().into());
            match req.need {
                Some(n) => {
                    m.insert("need".into(), n.0.to_string().into());
                }
                None => {
                    // The profile's claims, plus the install's of `storage_class`.
                    let (claims, _) = req.claims(ctx).map_err(|e| format!("{}: {e}", req.path))?;
                    if claims.is_empty() {
                        // No claim of that class: nothing needs room, as on this host.
                        m.insert("need".into(), "0".into());
                    } else {
                        let claims: Vec<serde_yaml_ng::Value> =
                            claims.iter().map(|b| b.0.to_string().into()).collect();
                        m.insert("claims".into(), claims.into());
                    }
                }
            }
            m.insert("shared".into(), req.shared.into());
            paths.push(serde_yaml_ng::Value::Mapping(m));
        }
        let mut params = serde_yaml_ng::Mapping::new();
        params.insert("paths".into(), paths.into());
        Ok(Some(serde_yaml_ng::Value::Mapping(params)))
    }
}

/// Whether each claim fits on *some* node, from each node's free space per path. Claims
/// that share a filesystem are placed together (largest first, on the node where the
/// least room is left over), so two claims are never counted into the same free bytes.
fn over_nodes(on: &[OnNode<'_>]) -> Outcome {
    let measured: Vec<(&str, Facts)> = on
        .iter()
        .filter_map(|n| {
            let f = Facts::deserialize(n.facts?).ok()?;
            Some((n.node, f))
        })
        .collect();
    let Some((_, first)) = measured.first() else {
        return Outcome::error("no node reported the free space of its local-PV directories");
    };
    let silent: Vec<&str> = on
        .iter()
        .filter(|n| !measured.iter().any(|(m, _)| *m == n.node))
        .map(|n| n.node)
        .collect();
    let (mut ok, mut short, mut undecided, mut unsure) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for want in &first.paths {
        // Each node's free bytes for this path; `None`: that node could not say.
        let mut unknown: Vec<&str> = silent.clone();
        let mut rooms: Vec<(&str, u64)> = Vec::new();
        for (node, f) in &measured {
            match f.paths.iter().find(|p| p.path == want.path) {
                Some(p) if p.missing => {}
                Some(PathFacts { free: Some(b), .. }) => rooms.push((node, *b)),
                _ => unknown.push(node),
            }
        }
        if want.free.is_none() && want.claims.is_empty() && !want.missing {
            // The claims themselves were not known on the nodes (e.g. an install not given).
            undecided.push(Finding::error(
                &DISK_UNDECIDED,
                Subject::path(&want.path),
                format!("{}: the claims are not known", want.path),
            ));
            continue;
        }
        let unknown_note = if unknown.is_empty() {
            String::new()
        } else {
            format!(" ({} node(s) could not say: {})", unknown.len(), names(&unknown))
        };
        let mut claims = want.claims.clone();
        claims.sort_unstable_by(|a, b| b.cmp(a));
        if !want.shared {
            for c in &claims {
                let fits: Vec<&str> = rooms.iter().filter(|(_, b)| b >= c).map(|(n, _)| *n).collect();
                let line = format!("{}: a {} claim", want.path, Bytes(*c));
                if !fits.is_empty() {
                    ok.push(format!("{line} fits on {} node(s): {}", fits.len(), names(&fits)));
                } else if !unknown.is_empty() {
                    undecided.push(Finding::error(
                        &DISK_UNDECIDED,
                        Subject::path(&want.path),
                        format!("{line} fits on no node that answered{unknown_note}"),
                    ));
                } else {
                    short.push(Finding::fail(
                        &DISK_SHORT,
                        Subject::path(&want.path),
                        format!("{line} fits on no node{}", most_free(&rooms)),
                    ));
                }
            }
            continue;
        }
        // Shared: place the claims together, largest first, where the least room is left.
        let mut left = rooms.clone();
        let mut placed = Vec::new();
        let mut unplaced = Vec::new();
        for c in &claims {
            match left
                .iter_mut()
                .filter(|(_, b)| *b >= *c)
                .min_by_key(|(_, b)| *b - *c)
            {
                Some((node, b)) => {
                    *b -= *c;
                    placed.push(format!("{} on {node}", Bytes(*c)));
                }
                None => unplaced.push(*c),
            }
        }
        let all = format!(
            "{}: {} claim(s) sharing the directory ({} in all)",
            want.path,
            claims.len(),
            Bytes(claims.iter().sum())
        );
        if unplaced.is_empty() {
            ok.push(format!("{all} fit: {}", placed.join(", ")));
            continue;
        }
        let not = unplaced
            .iter()
            .map(|c| Bytes(*c).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        if !unknown.is_empty() {
            undecided.push(Finding::error(
                &DISK_UNDECIDED,
                Subject::path(&want.path),
                format!("{all}: {not} fit(s) on no node that answered{unknown_note}"),
            ));
        } else if unplaced.iter().any(|c| rooms.iter().all(|(_, b)| b < c))
            || claims.iter().sum::<u64>() > rooms.iter().map(|(_, b)| b).sum()
        {
            short.push(Finding::fail(
                &DISK_SHORT,
                Subject::path(&want.path),
                format!("{all}: {not} fit(s) on no node{}", most_free(&rooms)),
            ));
        } else {
            unsure.push(Finding::warn(
                &PLACEMENT_UNSURE,
                Subject::path(&want.path),
                format!(
                    "{all}: placing the largest first left {not} without room; another placement may exist{}",
                    most_free(&rooms)
                ),
            ));
        }
    }
    let mut found = short;
    found.extend(undecided);
    found.extend(unsure);
    Outcome::found(found, ok.join("\n"))
}

/// `a, b, c` — at most five, then how many more.
fn names(nodes: &[&str]) -> String {
    let mut s = nodes.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    if nodes.len() > 5 {
        s.push_str(&format!(", and {} more", nodes.len() - 5));
    }
    s
}

/// `; most free: 40.0 GiB on worker-2`
fn most_free(rooms: &[(&str, u64)]) -> String {
    match rooms.iter().max_by_key(|(_, b)| *b) {
        Some((n, b)) => format!("; most free: {} on {n}", Bytes(*b)),
        None => "; no node has the directory".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    const GI: u64 = 1 << 30;

    fn node(path: &str, free: Option<u64>, claims: &[u64], shared: bool) -> serde_json::Value {
        serde_json::json!({"paths": [{"path": path, "free": free, "claims": claims, "shared": shared}]})
    }

    fn verdict(nodes: &[(&str, Option<serde_json::Value>)]) -> Outcome {
        let on: Vec<OnNode<'_>> = nodes
            .iter()
            .map(|(n, f)| OnNode {
                node: n,
                status: Status::Pass,
                facts: f.as_ref(),
            })
            .collect();
        over_nodes(&on)
    }

    #[test]
    fn each_claim_needs_one_node_with_room() {
        let claims = [50 * GI, 90 * GI];
        let o = verdict(&[
            ("a", Some(node("/d", Some(60 * GI), &claims, false))),
            ("b", Some(node("/d", Some(100 * GI), &claims, false))),
        ]);
        assert_eq!(o.status, Status::Pass);
        assert_eq!(
            o.text(),
            "/d: a 90.0 GiB claim fits on 1 node(s): b\n/d: a 50.0 GiB claim fits on 2 node(s): a, b"
        );
        // No node has room for 90Gi: fail, naming the most free.
        let o = verdict(&[
            ("a", Some(node("/d", Some(60 * GI), &claims, false))),
            ("b", Some(node("/d", Some(70 * GI), &claims, false))),
        ]);
        assert_eq!(o.status, Status::Fail);
        let found: Vec<(&str, &Subject)> = o.findings.iter().map(|f| (f.code.as_str(), &f.subject)).collect();
        assert_eq!(found, [("disk-short", &Subject::path("/d"))]);
        assert!(
            o.text()
                .starts_with("/d: a 90.0 GiB claim fits on no node; most free: 70.0 GiB on b\n"),
            "{}",
            o.text()
        );
    }

    #[test]
    fn a_node_that_did_not_answer_leaves_a_claim_undecided_not_failed() {
        let claims = [90 * GI];
        let o = verdict(&[
            ("a", Some(node("/d", Some(60 * GI), &claims, false))),
            ("b", None),
        ]);
        assert_eq!(o.status, Status::Error);
        assert_eq!(o.findings[0].code, "disk-undecided");
        assert_eq!(
            o.text(),
            "/d: a 90.0 GiB claim fits on no node that answered (1 node(s) could not say: b)"
        );
        // But a claim that fits on one that answered is placed.
        let o = verdict(&[
            ("a", Some(node("/d", Some(100 * GI), &claims, false))),
            ("b", None),
        ]);
        assert_eq!(o.status, Status::Pass);
        let o = verdict(&[("a", None)]);
        assert_eq!(o.status, Status::Error);
        assert_eq!(
            o.text(),
            "no node reported the free space of its local-PV directories"
        );
    }

    #[test]
    fn shared_claims_are_placed_together_and_never_counted_twice() {
        let claims = [50 * GI, 50 * GI];
        let o = verdict(&[
            ("a", Some(node("/d", Some(60 * GI), &claims, true))),
            ("b", Some(node("/d", Some(60 * GI), &claims, true))),
        ]);
        assert_eq!(o.status, Status::Pass);
        assert_eq!(
            o.text(),
            "/d: 2 claim(s) sharing the directory (100.0 GiB in all) fit: 50.0 GiB on a, 50.0 GiB on b"
        );
        // 100Gi on one node with 90Gi: each fits alone, not both.
        let o = verdict(&[("a", Some(node("/d", Some(90 * GI), &claims, true)))]);
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.text(),
            "/d: 2 claim(s) sharing the directory (100.0 GiB in all): 50.0 GiB fit(s) on no node; most free: 90.0 GiB on a"
        );
    }

    #[test]
    fn a_missing_directory_hosts_nothing() {
        let facts = serde_json::json!({"paths": [{"path": "/d", "free": 0, "missing": true, "claims": [0], "shared": false}]});
        let o = verdict(&[("a", Some(facts))]);
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.text(),
            "/d: a 0.0 GiB claim fits on no node; no node has the directory"
        );
    }
}
