//! The REAL distribution registry (Debian's docker-registry) on 127.0.0.1, one per test,
//! and a tiny fault server for what a real registry won't do on demand (429, 403, 404, a hang).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A test CA and a server certificate for 127.0.0.1 / localhost, as PEM files.
pub struct TestCa {
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

pub fn test_ca(dir: &Path) -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "preflight test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let ca = TestCa {
        ca_pem: dir.join("ca.pem"),
        cert_pem: dir.join("server.pem"),
        key_pem: dir.join("server.key"),
    };
    std::fs::write(&ca.ca_pem, ca_cert.pem()).unwrap();
    std::fs::write(&ca.cert_pem, leaf_cert.pem()).unwrap();
    std::fs::write(&ca.key_pem, leaf_key.serialize_pem()).unwrap();
    ca
}

pub struct Registry {
    pub port: u16,
    pub dir: TempDir,
    child: Child,
}

#[derive(Default)]
pub struct RegistryOpts {
    pub tls: bool,
    /// (user, password) for htpasswd basic auth.
    pub htpasswd: Option<(String, String)>,
}

impl Registry {
    pub fn start(opts: RegistryOpts) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        // free_port's port can be taken again before docker-registry binds it (tests run
        // in parallel): then docker-registry exits and the connect below may have reached
        // whoever holds the port. A registry that is not alive and answering as itself is
        // started again on another port.
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = Self::spawn(dir.path(), port, &opts) {
                return Registry { port, dir, child };
            }
        }
        panic!(
            "docker-registry did not start (log: {})",
            std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    fn spawn(dir: &Path, port: u16, opts: &RegistryOpts) -> Option<Child> {
        let mut config = format!(
            "version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        if opts.tls {
            let ca = test_ca(dir);
            config.push_str(&format!(
                "  tls: {{certificate: {}, key: {}}}\n",
                ca.cert_pem.display(),
                ca.key_pem.display()
            ));
        }
        if let Some((user, pass)) = &opts.htpasswd {
            let hash = bcrypt::hash_with_result(pass, 4)
                .unwrap()
                .format_for_version(bcrypt::Version::TwoY);
            std::fs::write(dir.join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd: {{realm: preflight-test, path: {}}}\n",
                dir.join("htpasswd").display()
            ));
        }
        let cfg = dir.join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docker-registry (Debian package docker-registry; .ci/run installs it)");
        let started = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                return None;
            }
            if let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) {
                // Ours answers a plain GET /v2/ with its API-version header (over TLS
                // it answers 400 in plain HTTP), and is still running afterwards.
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let _ = conn.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut answer = String::new();
                let _ = conn.read_to_string(&mut answer);
                let ours = if opts.tls {
                    answer.starts_with("HTTP/1.0 400")
                } else {
                    answer.contains("Docker-Distribution-Api-Version")
                };
                std::thread::sleep(Duration::from_millis(50));
                if ours && child.try_wait().unwrap().is_none() {
                    return Some(child);
                }
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "docker-registry did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the fault server does with each connection.
#[derive(Clone)]
pub enum Fault {
    /// Answer with this status line, extra headers and body.
    Answer(&'static str, &'static str, &'static str),
    /// Serve these files (path → body) with 200, anything else 404.
    Files(Vec<(String, Vec<u8>)>),
    /// Accept, read, and never answer.
    Hang,
    /// Docker Hub's token flow: 401 + `WWW-Authenticate: Bearer realm=<this server>/token`,
    /// a token endpoint, and manifests (`repo:tag`) that exist once the token is shown.
    TokenRegistry(Vec<String>),
}

pub struct FaultServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl FaultServer {
    pub fn start(fault: Fault) -> FaultServer {
        Self::start_on(0, fault)
    }

    pub fn start_on(port: u16, fault: Fault) -> FaultServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let fault = fault.clone();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut held = Vec::new();
            // Bounded: never outlives its test by much.
            while !flag.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(120) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 4096];
                        let _ = s.read(&mut buf);
                        match &fault {
                            Fault::Answer(status, headers, body) => {
                                let _ = write!(
                                    s,
                                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                    body.len()
                                );
                            }
                            Fault::Files(files) => {
                                let req = String::from_utf8_lossy(&buf);
                                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                                let (status, body): (&str, &[u8]) =
                                    match files.iter().find(|(p, _)| *p == path) {
                                        Some((_, b)) => ("200 OK", b),
                                        None => ("404 Not Found", b"not found"),
                                    };
                                let _ = write!(
                                    s,
                                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                    body.len()
                                );
                                let _ = s.write_all(body);
                            }
                            Fault::TokenRegistry(present) => {
                                let req = String::from_utf8_lossy(&buf).to_string();
                                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                                let authorized = req
                                    .to_ascii_lowercase()
                                    .contains("authorization: bearer good-token");
                                let (status, headers, body) = if path.starts_with("/token?") {
                                    ("200 OK", String::new(), "{\"token\":\"good-token\"}".to_string())
                                } else if !authorized {
                                    let challenge = format!(
                                        "Www-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test-registry\"\r\n"
                                    );
                                    ("401 Unauthorized", challenge, "{}".to_string())
                                } else {
                                    let wanted = path
                                        .strip_prefix("/v2/")
                                        .map(|p| p.replacen("/manifests/", ":", 1))
                                        .unwrap_or_default();
                                    if present.contains(&wanted) {
                                        ("200 OK", String::new(), String::new())
                                    } else if req.starts_with("HEAD ") {
                                        ("404 Not Found", String::new(), String::new())
                                    } else {
                                        // Docker Hub's own body for a tag it does not have.
                                        let tag = wanted.rsplit(':').next().unwrap_or("");
                                        (
                                            "404 Not Found",
                                            String::new(),
                                            format!("{{\"errors\":[{{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\",\"detail\":{{\"Tag\":\"{tag}\"}}}}]}}"),
                                        )
                                    }
                                };
                                let _ = write!(
                                    s,
                                    "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                    body.len()
                                );
                            }
                            Fault::Hang => held.push(s),
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        FaultServer { port, stop }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Docker Hub's answer when the anonymous pull limit is reached (seed 000).
pub const DOCKER_HUB_429: &str = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}"#;

/// A port on 127.0.0.1 with nothing listening.
pub fn closed_port() -> u16 {
    free_port()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// Push a small real image (one layer) through the registry HTTP API: blob uploads, then
/// the OCI manifest under `tag`.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// GET from a registry as a client would (optionally with basic auth): status and body.
pub fn registry_get(url: &str, accept: &str, auth: Option<(&str, &str)>) -> (u16, Vec<u8>) {
    block_on(async {
        let c = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut rb = c.get(url).header("Accept", accept);
        if let Some((u, p)) = auth {
            rb = rb.basic_auth(u, Some(p));
        }
        let r = rb.send().await.unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    })
}

pub fn push_image(registry: &str, repo: &str, tag: &str, auth: Option<(&str, &str)>) {
    block_on(async {
        let c = reqwest::Client::builder().no_proxy().build().unwrap();
        let base = format!("http://{registry}");
        let with_auth = |rb: reqwest::RequestBuilder| match auth {
            Some((u, p)) => rb.basic_auth(u, Some(p)),
            None => rb,
        };
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
        let layer = format!("layer of {repo}:{tag}").into_bytes();
        for blob in [&config, &layer] {
            let r = with_auth(c.post(format!("{base}/v2/{repo}/blobs/uploads/")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 202, "start upload");
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            let loc = if loc.starts_with("http") {
                loc
            } else {
                format!("{base}{loc}")
            };
            let sep = if loc.contains('?') { '&' } else { '?' };
            let r = with_auth(c.put(format!("{loc}{sep}digest={}", sha256(blob))))
                .header("Content-Type", "application/octet-stream")
                .body(blob.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201, "finish upload");
        }
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
            sha256(&config),
            config.len(),
            sha256(&layer),
            layer.len()
        );
        let r = with_auth(c.put(format!("{base}/v2/{repo}/manifests/{tag}")))
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            201,
            "manifest: {}",
            r.text().await.unwrap_or_default()
        );
    });
}
