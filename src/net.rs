//! HTTP(S) probes of registries and chart repositories: names resolved by our resolver
//! (never getaddrinfo), rustls with the system roots plus an optional CA file (or no
//! verification for registries marked insecure), HTTPS_PROXY / NO_PROXY honoured as
//! container runtimes do, and every failure named precisely.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::resolve::Resolver;

/// reqwest asks this for addresses: the one resolver, under --host-root.
struct Dns(Resolver);

impl reqwest::dns::Resolve for Dns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let r =
                resolver
                    .resolve(&host)
                    .await
                    .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> {
                        Box::new(std::io::Error::other(format!("lookup {host}: {e}")))
                    })?;
            let addrs: reqwest::dns::Addrs = Box::new(r.addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// TLS trust for one endpoint.
pub enum Trust<'a> {
    /// System roots, plus the PEM CA file when given.
    Verify { ca_file: Option<&'a Path> },
    /// `insecure: true`: what docker's insecure-registries / containerd's skip_verify do.
    SkipVerify,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(trust: &Trust<'_>) -> Result<rustls::ClientConfig, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    match trust {
        Trust::SkipVerify => Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
            .with_no_client_auth()),
        Trust::Verify { ca_file } => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if let Some(path) = ca_file {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!("ca_file {}: no PEM certificate in it", path.display()));
                }
                for c in certs {
                    roots
                        .add(c)
                        .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                }
            }
            Ok(builder.with_root_certificates(roots).with_no_client_auth())
        }
    }
}

/// A client for one endpoint, bounded by `timeout` as a whole.
pub fn client(resolver: &Resolver, trust: &Trust<'_>, timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config(trust)?)
        .dns_resolver(Arc::new(Dns(resolver.clone())))
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("preflight/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Why a request got no HTTP answer, named as an operator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Refused,
    ConnectTimeout,
    /// Connected, but no answer in time (a hung server, a black-holing proxy).
    NoAnswer,
    UnknownAuthority,
    /// Plain HTTP spoken on a port used as HTTPS.
    PlainHttp,
    Tls(String),
    Dns(String),
    Other(String),
}

impl Failure {
    /// An insecure registry that fails this way over HTTPS is tried again over plain HTTP,
    /// as docker does for insecure-registries.
    pub fn retry_over_http(&self) -> bool {
        matches!(self, Failure::PlainHttp | Failure::Tls(_) | Failure::Other(_))
    }

    pub fn describe(&self, url: &str, timeout: Duration) -> String {
        let t = humantime::format_duration(timeout);
        match self {
            Failure::Refused => format!("{url}: connection refused (nothing listens there)"),
            Failure::ConnectTimeout => {
                format!("{url}: connect timed out after {t} (air-gapped node? firewall? a proxy needed?)")
            }
            Failure::NoAnswer => format!("{url}: connected, but no answer within {t}"),
            Failure::UnknownAuthority => {
                format!("{url}: TLS: x509: certificate signed by unknown authority")
            }
            Failure::PlainHttp => format!("{url}: the server answered plain HTTP on an HTTPS port"),
            Failure::Tls(e) => format!("{url}: TLS handshake failed: {e}"),
            Failure::Dns(e) => format!("{url}: {e}"),
            Failure::Other(e) => format!("{url}: {e}"),
        }
    }
}

/// Walk reqwest's error chain down to the io / rustls cause.
pub fn classify(err: &reqwest::Error) -> Failure {
    let mut texts = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return tls_failure(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return tls_failure(tls);
            }
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Failure::Refused,
                std::io::ErrorKind::TimedOut if err.is_connect() => return Failure::ConnectTimeout,
                _ => {}
            }
            let text = io.to_string();
            if text.starts_with("lookup ") {
                return Failure::Dns(text);
            }
        }
        texts.push(e.to_string());
        cur = e.source();
    }
    if err.is_timeout() {
        return if err.is_connect() {
            Failure::ConnectTimeout
        } else {
            Failure::NoAnswer
        };
    }
    let joined = texts.join(": ");
    // hyper-util boxes the connector's error, so rustls' type may only show as text.
    if joined.contains("InvalidContentType") || joined.contains("corrupt message") {
        return Failure::PlainHttp;
    }
    if joined.contains("UnknownIssuer") {
        return Failure::UnknownAuthority;
    }
    if let Some(i) = joined.find("invalid peer certificate") {
        return Failure::Tls(joined[i..].to_string());
    }
    Failure::Other(joined)
}

fn tls_failure(e: &rustls::Error) -> Failure {
    match e {
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
            Failure::UnknownAuthority
        }
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => Failure::PlainHttp,
        other => Failure::Tls(other.to_string()),
    }
}

/// The host part of `host[:port]` (for resolving and pins).
pub fn hostname(host_port: &str) -> &str {
    if host_port.starts_with('[') {
        return host_port
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or(host_port);
    }
    match host_port.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
        _ => host_port,
    }
}

pub fn is_ip(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
}

/// Accepts any certificate: `insecure: true` registries only.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::hostname;

    #[test]
    fn host_of_host_port() {
        assert_eq!(hostname("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(hostname("hub.bktencent.com"), "hub.bktencent.com");
        assert_eq!(hostname("[::1]:5000"), "::1");
        assert_eq!(hostname("registry.local:443"), "registry.local");
    }
}
