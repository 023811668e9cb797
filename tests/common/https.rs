//! A small HTTPS server on 127.0.0.x for the components a test plays behind the API server
//! (an aggregated API's backend, a kubelet's /healthz, an admission webhook): a certificate
//! of the test CA, one handler answering `(status, JSON body)` for each request's path and
//! body, on kept-alive connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct HttpsServer {
    pub port: u16,
    /// The CA that signed its certificate (a webhook's caBundle).
    pub ca: std::path::PathBuf,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl HttpsServer {
    pub fn start(
        ip: &str,
        handler: impl Fn(&str, &[u8]) -> (u16, String) + Send + Sync + 'static,
    ) -> HttpsServer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let ca = super::registry::test_ca(dir.path());
        let certs = vec![CertificateDer::from_pem_file(&ca.cert_pem).unwrap()];
        let key = PrivateKeyDer::from_pem_file(&ca.key_pem).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((tcp, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                };
                let config = Arc::clone(&config);
                let handler = Arc::clone(&handler);
                std::thread::spawn(move || {
                    tcp.set_nonblocking(false).unwrap();
                    tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))
                        .unwrap();
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut reader = BufReader::new(rustls::StreamOwned::new(conn, tcp));
                    loop {
                        let mut request = String::new();
                        if reader.read_line(&mut request).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut length = 0usize;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let line = line.trim_end();
                            if line.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = line.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    length = v.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                        let mut request_body = vec![0; length];
                        if reader.read_exact(&mut request_body).is_err() {
                            return;
                        }
                        let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                        let (status, body) = handler(&path, &request_body);
                        let out = reader.get_mut();
                        let _ = write!(
                            out,
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = out.flush();
                    }
                });
            }
        });
        HttpsServer {
            port,
            ca: ca.ca_pem,
            stop,
            _dir: dir,
        }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
