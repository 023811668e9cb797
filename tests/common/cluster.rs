//! The REAL test control plane (scripts/test-cluster.sh): started on first use, reused
//! when already up. Two of them: the main one, and one whose kube-controller-manager runs
//! without the csrsigning controller.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Clone)]
pub struct Cluster {
    pub kubeconfig: PathBuf,
}

fn root() -> PathBuf {
    std::env::var_os("K8S_TEST_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/preflight-test-cluster")
        })
}

/// Per-cluster settings for scripts/test-cluster.sh.
fn settings(nosign: bool) -> (u16, Vec<(&'static str, String)>) {
    if !nosign {
        return (6443, vec![]);
    }
    let run = root().join("run-nosign").display().to_string();
    (
        6445,
        vec![
            ("APISERVER_PORT", "6445".into()),
            ("ETCD_PORT", "23795".into()),
            ("ETCD_PEER_PORT", "23805".into()),
            ("KCM_PORT", "10260".into()),
            ("K8S_TEST_RUN_DIR", run),
            ("KCM_CONTROLLERS", "*,-csrsigning".into()),
        ],
    )
}

fn kubeconfig_path(nosign: bool) -> PathBuf {
    root()
        .join(if nosign { "run-nosign" } else { "run" })
        .join("kubeconfig")
}

fn ready(port: u16, kubeconfig: &Path) -> bool {
    kubeconfig.exists()
        && TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_ok()
}

fn ensure(nosign: bool) -> Option<Cluster> {
    // One starter per test process; flock serialises test processes.
    static START: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = START.lock().unwrap_or_else(|e| e.into_inner());
    let (port, env) = settings(nosign);
    let kubeconfig = kubeconfig_path(nosign);
    if ready(port, &kubeconfig) {
        return Some(Cluster { kubeconfig });
    }
    if skip_requested() {
        record_skip(port);
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-cluster.sh");
    std::fs::create_dir_all(root()).expect("cache dir");
    let lock = root().join(format!(".start-{port}.lock"));
    // -o: the daemons the script starts must not inherit (and hold) the lock.
    let status = Command::new("flock")
        .arg("-o")
        .arg(&lock)
        .arg("bash")
        .arg(&script)
        .arg("up")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .status()
        .expect("run scripts/test-cluster.sh");
    assert!(
        status.success() && ready(port, &kubeconfig),
        "scripts/test-cluster.sh up failed (port {port})"
    );
    Some(Cluster { kubeconfig })
}

/// `PREFLIGHT_SKIP_CLUSTER=1`: the only way a cluster test may return without running.
fn skip_requested() -> bool {
    std::env::var("PREFLIGHT_SKIP_CLUSTER").is_ok_and(|v| v == "1")
}

/// Counted by scripts/test.sh (PREFLIGHT_SKIP_LOG) and said in its closing summary, so a
/// skipped cluster test never reads as a passed one.
fn record_skip(port: u16) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("SKIP (PREFLIGHT_SKIP_CLUSTER=1): {test} needs the test cluster on 127.0.0.1:{port}");
    if let Some(log) = std::env::var_os("PREFLIGHT_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{test}");
        }
    }
}

/// The main test cluster, started when it is not up; None only with PREFLIGHT_SKIP_CLUSTER=1.
pub fn cluster() -> Option<Cluster> {
    ensure(false)
}

/// A second control plane whose kube-controller-manager runs --controllers=*,-csrsigning.
pub fn nosign_cluster() -> Option<Cluster> {
    ensure(true)
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}

impl Cluster {
    /// The real kubectl (v1.32, from the tools cache) against this cluster.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        use std::io::Write;
        let mut cmd = Command::new(super::real_tool("kubectl-1.32/kubectl"));
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl");
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// `kubectl apply -f -`; the test fails if the API refuses.
    pub fn apply(&self, yaml: &str) {
        let (ok, out) = self.kubectl(&["apply", "-f", "-"], Some(yaml));
        assert!(ok, "kubectl apply failed: {out}\n{yaml}");
    }

    pub fn delete(&self, args: &[&str]) {
        let mut a = vec!["delete", "--ignore-not-found", "--wait=false"];
        a.extend_from_slice(args);
        let _ = self.kubectl(&a, None);
    }

    /// A CRD `echoes.<group>` (kind Echo, v1) whose `spec` keeps any field, established: what
    /// the API server echoes of a custom resource is what it decoded (the YAML tests).
    pub fn echo_crd(&self, group: &str) {
        self.apply(&format!("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: echoes.{group}}}\nspec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: echoes, singular: echo, kind: Echo}}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec: {{type: object, x-kubernetes-preserve-unknown-fields: true}}\n"));
        let (ok, out) = self.kubectl(
            &[
                "wait",
                "--for=condition=Established",
                &format!("crd/echoes.{group}"),
                "--timeout=30s",
            ],
            None,
        );
        assert!(ok, "{out}");
    }

    /// Grant `user` the cluster-wide `rules` (the YAML list items of a ClusterRole's rules):
    /// a ClusterRole and a ClusterRoleBinding, both named after the user.
    pub fn grant(&self, user: &str, rules: &str) {
        self.apply(&format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {user}}}\nrules:\n{rules}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {user}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {user}}}\nsubjects:\n- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}\n"
        ));
    }

    /// A kubeconfig of the admin that impersonates `user` (kubectl's `--as`), written into
    /// `dir`: a user with exactly the RBAC a test grants.
    pub fn kubeconfig_as(&self, dir: &Path, user: &str) -> String {
        let (ok, out) = self.kubectl(
            &[
                "config",
                "view",
                "--raw",
                "--flatten",
                "--minify",
                "--context",
                "test-token",
                "-o",
                "json",
            ],
            None,
        );
        assert!(ok, "{out}");
        let mut v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["users"][0]["user"]["as"] = user.into();
        let p = dir.join(format!("{user}.kubeconfig"));
        std::fs::write(&p, v.to_string()).unwrap();
        p.display().to_string()
    }

    pub fn kubeconfig(&self) -> String {
        self.kubeconfig.display().to_string()
    }
}
