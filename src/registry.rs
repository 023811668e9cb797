//! One way to reach a container registry, for every check that talks to one
//! (network.registry, network.images, network.chart-repos for oci://, network.runtime-mirrors):
//! the profile's `registries:` section (joined by every check's own list), docker's rules for
//! what is insecure and whose credentials apply, `GET /v2/`, and the manifest lookup with the
//! token flow. A failure is named with its own fix; only the registry's own "manifest unknown"
//! means an image is missing.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use crate::net::{self, Failure, Trust};
use crate::resolve::ResolveError;
use crate::resolve::Resolver;

/// What a probe of a registry needs of the run: the resolver and the bound of one probe.
pub struct Probe<'a> {
    pub resolver: &'a Resolver,
    pub timeout: std::time::Duration,
}

/// One registry as a profile writes it (top-level `registries:`, or a check's own list).
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    pub host: String,
    /// Unset: insecure only for `localhost` and 127.0.0.0/8, as docker treats them.
    #[serde(default)]
    pub insecure: Option<bool>,
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The addresses the name must resolve to (a pin).
    #[serde(default)]
    pub ip: Vec<IpAddr>,
}

impl RegistrySettings {
    pub fn host(host: &str) -> Self {
        RegistrySettings {
            host: host.to_string(),
            ..Default::default()
        }
    }

    /// Docker: `--insecure-registry` plus the loopback registries it always trusts.
    pub fn is_insecure(&self) -> bool {
        self.insecure.unwrap_or_else(|| is_loopback(&self.host))
    }

    pub fn trust(&self) -> Trust<'_> {
        if self.is_insecure() {
            Trust::SkipVerify
        } else {
            Trust::Verify {
                ca_file: self.ca_file.as_deref().map(Path::new),
            }
        }
    }

    /// What another entry for the same host adds: an explicit setting fills an unset one.
    fn join(&mut self, other: &RegistrySettings) {
        self.insecure = match (self.insecure, other.insecure) {
            (Some(a), Some(b)) => Some(a || b),
            (a, b) => a.or(b),
        };
        if self.ca_file.is_none() {
            self.ca_file.clone_from(&other.ca_file);
        }
        if self.username.is_none() && self.password.is_none() {
            self.username.clone_from(&other.username);
            self.password.clone_from(&other.password);
        }
        for ip in &other.ip {
            if !self.ip.contains(ip) {
                self.ip.push(*ip);
            }
        }
    }
}

/// `localhost[:port]`, `127.x.y.z[:port]`, `[::1][:port]`.
pub fn is_loopback(host: &str) -> bool {
    let name = net::hostname(host);
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The registries of the profile: the top-level section joined by every check's own list.
#[derive(Clone, Debug, Default)]
pub struct Registries {
    list: Vec<RegistrySettings>,
}

impl Registries {
    pub fn add(&mut self, s: &RegistrySettings) {
        let key = canonical_host(&s.host);
        match self.list.iter_mut().find(|r| canonical_host(&r.host) == key) {
            Some(r) => r.join(s),
            None => self.list.push(RegistrySettings {
                host: key,
                ..s.clone()
            }),
        }
    }

    pub fn all(&self) -> &[RegistrySettings] {
        &self.list
    }

    /// The settings of an image's registry, addressed where its API answers (Docker Hub's
    /// is not `docker.io`).
    pub fn for_image(&self, image: &crate::install::ImageRef) -> RegistrySettings {
        RegistrySettings {
            host: image.api_host().to_string(),
            ..self.get(&image.registry)
        }
    }

    /// The settings for `host`, or docker's defaults for a registry the profile does not name.
    pub fn get(&self, host: &str) -> RegistrySettings {
        let key = canonical_host(host);
        self.list
            .iter()
            .find(|r| r.host == key)
            .cloned()
            .unwrap_or_else(|| RegistrySettings::host(&key))
    }
}

/// Docker's spelling of a registry host: `index.docker.io` and `registry-1.docker.io` are
/// `docker.io`; no scheme, no path, no trailing slash.
pub fn canonical_host(host: &str) -> String {
    let h = host
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let h = h.split('/').next().unwrap_or(h).to_ascii_lowercase();
    match h.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".to_string(),
        _ => h,
    }
}

/// The `auths` key docker login writes for `host` (docker.io's is the v1 index URL).
fn docker_config_key(key: &str) -> String {
    let h = canonical_host(key);
    if h == "docker.io" {
        "https://index.docker.io/v1/".to_string()
    } else {
        h
    }
}

/// Credentials for `host`: the profile's, else `~/.docker/config.json` matched exactly as
/// docker matches (`10.0.0.5` never gets `10.0.0.50:5000`'s).
pub fn credentials(settings: &RegistrySettings, docker_config: Option<&Path>) -> Option<(String, String)> {
    if let (Some(u), Some(p)) = (&settings.username, &settings.password) {
        return Some((u.clone(), p.clone()));
    }
    let path = match docker_config {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".docker/config.json"),
    };
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let auths = v.get("auths")?.as_object()?;
    let want = docker_config_key(&settings.host);
    let entry = auths.iter().find(|(k, _)| docker_config_key(k) == want)?.1;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(entry.get("auth")?.as_str()?)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// A registry's answer, or why there was none, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probed {
    Ok(String),
    Bad { line: String, fix: Vec<String> },
}

fn bad(line: String, fix: Vec<String>) -> Probed {
    Probed::Bad { line, fix }
}

/// What to do about a transport failure of `host`.
pub fn transport_fix(f: &Failure, host: &str) -> Vec<String> {
    match f {
        Failure::UnknownAuthority => vec![
            format!("mkdir -p /etc/docker/certs.d/{host} && cp <registry-ca.crt> /etc/docker/certs.d/{host}/ca.crt   # and ca_file: in the profile's registries:"),
            format!("# or trust it without verification: docker daemon.json \"insecure-registries\": [\"{host}\"]; containerd: skip_verify = true for {host}; and insecure: true in the profile's registries:"),
        ],
        Failure::PlainHttp => vec![format!(
            "# {host} speaks plain HTTP: insecure: true in the profile's registries:; docker daemon.json \"insecure-registries\": [\"{host}\"]; containerd endpoint \"http://{host}\""
        )],
        Failure::Refused => vec![format!("# start the registry or fix the port of {host}")],
        Failure::ConnectTimeout | Failure::NoAnswer => vec![format!(
            "curl -v https://{host}/v2/   # from this node: firewall? air-gapped? HTTPS_PROXY/NO_PROXY?"
        )],
        _ => vec![],
    }
}

/// A pin for a name that does not resolve (or resolves wrong).
fn pin_fix(name: &str, pin: &str) -> String {
    format!("# pin it: node.hosts: {{pins: {{{name}: [\"{pin}\"]}}}} in the profile, then preflight --fix")
}

/// Resolve the registry's name (checking its pin); `Err` is the finding to report.
async fn resolve(via: &Probe<'_>, reg: &RegistrySettings) -> Result<String, Probed> {
    let host = &reg.host;
    let name = net::hostname(host);
    if net::is_ip(name) {
        return Ok(String::new());
    }
    match via.resolver.resolve(name).await {
        Ok(r) => {
            let seen: Vec<String> = r.addrs.iter().map(|a| a.to_string()).collect();
            if !reg.ip.is_empty() && r.addrs.iter().any(|a| !reg.ip.contains(a)) {
                let want: Vec<String> = reg.ip.iter().map(|a| a.to_string()).collect();
                return Err(bad(
                    format!(
                        "{host}: resolves to {} via {}, expected {}",
                        seen.join(", "),
                        r.source,
                        want.join(", ")
                    ),
                    vec![pin_fix(name, &want[0])],
                ));
            }
            Ok(format!(" ({} via {})", seen.join(", "), r.source))
        }
        Err(e) => {
            let pin = reg
                .ip
                .first()
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| "<registry IP>".to_string());
            let fix = match &e {
                ResolveError::NoSuchHost { .. }
                | ResolveError::Timeout { .. }
                | ResolveError::NoNameservers { .. } => {
                    vec![pin_fix(name, &pin)]
                }
                ResolveError::Other { .. } => vec![],
            };
            Err(bad(format!("{host}: {e}"), fix))
        }
    }
}

/// Send a request built by `build` for `path`: HTTPS (verified, or not for an insecure
/// registry), then plain HTTP for an insecure registry whose HTTPS failed, as docker does.
/// Returns the response and the base URL that answered.
async fn send(
    via: &Probe<'_>,
    reg: &RegistrySettings,
    path: &str,
    build: impl Fn(&reqwest::Client, String) -> reqwest::RequestBuilder,
) -> Result<(reqwest::Response, String, reqwest::Client), (Failure, String)> {
    let client = net::client(via.resolver, &reg.trust(), via.timeout)
        .map_err(|e| (Failure::Other(e), format!("https://{}{path}", reg.host)))?;
    let https = format!("https://{}", reg.host);
    match build(&client, format!("{https}{path}")).send().await {
        Ok(r) => Ok((r, https, client)),
        Err(e) => {
            let f = net::classify(&e);
            if reg.is_insecure() && f.retry_over_http() {
                let http = format!("http://{}", reg.host);
                match build(&client, format!("{http}{path}")).send().await {
                    Ok(r) => Ok((r, http, client)),
                    Err(e) => Err((net::classify(&e), format!("http(s)://{}{path}", reg.host))),
                }
            } else {
                Err((f, format!("https://{}{path}", reg.host)))
            }
        }
    }
}

/// DNS (and pin), TCP, TLS (or plain HTTP for an insecure registry), `GET /v2/`.
pub async fn probe(run: &Probe<'_>, reg: &RegistrySettings) -> Probed {
    let host = &reg.host;
    let via = match resolve(run, reg).await {
        Ok(v) => v,
        Err(f) => return f,
    };
    let (resp, base) = match send(run, reg, "/v2/", |c, url| c.get(url)).await {
        Ok((r, base, _)) => (r, base),
        Err((f, url)) => {
            let fix = transport_fix(&f, host);
            return bad(f.describe(&url, run.timeout), fix);
        }
    };
    let scheme = match (base.starts_with("http://"), reg.is_insecure()) {
        (true, _) => "http",
        (false, true) => "https, not verified",
        (false, false) => "https",
    };
    match resp.status().as_u16() {
        200 => Probed::Ok(format!("{host}: registry API answers 200 over {scheme}{via}")),
        401 => Probed::Ok(format!(
            "{host}: registry API answers 401 over {scheme} (pulls need a login or token){via}"
        )),
        403 => bad(
            format!("{host}: GET /v2/ answers 403 Forbidden: the registry or mirror refuses this client{via}"),
            vec![format!("# replace or remove the mirror {host} (docker daemon.json registry-mirrors / containerd hosts.toml)")],
        ),
        404 => bad(
            format!("{host}: GET /v2/ answers 404: not a registry API (wrong host, port or path?){via}"),
            vec![],
        ),
        429 => {
            let body = tokio::time::timeout(Duration::from_secs(2), resp.text())
                .await
                .ok()
                .and_then(|r| r.ok())
                .unwrap_or_default();
            bad(
                format!("{host}: GET /v2/ answers 429 {}{via}", rate_limit_words(&body)),
                rate_limit_fix(host),
            )
        }
        other => bad(format!("{host}: GET /v2/ answers HTTP {other}{via}"), vec![]),
    }
}

fn rate_limit_words(body: &str) -> &'static str {
    let lower = body.to_ascii_lowercase();
    if lower.contains("toomanyrequests") || lower.contains("pull rate limit") {
        "toomanyrequests: pull rate limit reached"
    } else {
        "Too Many Requests"
    }
}

fn rate_limit_fix(host: &str) -> Vec<String> {
    vec![
        format!("docker login {host}   # authenticated pulls have a higher limit"),
        "# or pull through a mirror / the private registry of the site".to_string(),
    ]
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Whether one manifest is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Manifest {
    Present,
    /// The registry said so in its own words (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`).
    Missing(String),
    /// No decision: transport, auth, rate limit, a 404 that is not the registry's.
    Problem {
        line: String,
        fix: Vec<String>,
    },
}

fn problem(line: String, fix: Vec<String>) -> Manifest {
    Manifest::Problem { line, fix }
}

/// `Bearer realm="…",service="…",scope="…"` → its parameters.
fn challenge(header: &str) -> (String, BTreeMap<String, String>) {
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = BTreeMap::new();
    for part in rest.split(',') {
        if let Some((k, v)) = part.split_once('=') {
            params.insert(
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            );
        }
    }
    (scheme.to_ascii_lowercase(), params)
}

fn login_fix(host: &str) -> Vec<String> {
    vec![
        format!("docker login {host}   # preflight reads ~/.docker/config.json"),
        format!("# or username/password for {host} in the profile's registries:"),
    ]
}

/// A 401's `WWW-Authenticate` challenge ("" when there is none).
pub(crate) fn challenge_of(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("www-authenticate")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The `Authorization` header the registry's challenge asks for, or the problem; `actions`
/// is the token scope's (`pull`, or `pull,push` to upload).
pub(crate) async fn authorize(
    client: &reqwest::Client,
    reg: &RegistrySettings,
    repo: &str,
    actions: &str,
    header: &str,
    docker_config: Option<&Path>,
    timeout: Duration,
) -> Result<String, Manifest> {
    let host = &reg.host;
    let (scheme, params) = challenge(header);
    let creds = credentials(reg, docker_config);
    match scheme.as_str() {
        "bearer" => {
            let Some(realm) = params.get("realm") else {
                return Err(problem(
                    format!("{host}: 401 with a Bearer challenge without realm"),
                    vec![],
                ));
            };
            let url = reqwest::Url::parse_with_params(
                realm,
                &[
                    ("service", params.get("service").cloned().unwrap_or_default()),
                    ("scope", format!("repository:{repo}:{actions}")),
                ],
            )
            .map_err(|_| problem(format!("{host}: token realm {realm:?} is not a URL"), vec![]))?;
            let mut req = client.get(url);
            if let Some((u, p)) = &creds {
                req = req.basic_auth(u, Some(p));
            }
            let token: serde_json::Value = match req.send().await {
                Ok(r) if r.status().is_success() => {
                    serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or_default()
                }
                Ok(r) => {
                    return Err(problem(
                        format!("{host}: token service {realm} answers {}", r.status()),
                        login_fix(host),
                    ))
                }
                Err(e) => {
                    let f = net::classify(&e);
                    return Err(problem(f.describe(realm, timeout), transport_fix(&f, host)));
                }
            };
            let t = token
                .get("token")
                .or_else(|| token.get("access_token"))
                .and_then(|t| t.as_str())
                .unwrap_or("");
            Ok(format!("Bearer {t}"))
        }
        "basic" => match &creds {
            Some((u, p)) => Ok(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )),
            None => Err(problem(
                format!("{host}: needs credentials (401, Basic auth) and none are configured"),
                login_fix(host),
            )),
        },
        _ => Err(problem(
            format!("{host}: 401 without a usable WWW-Authenticate challenge"),
            vec![],
        )),
    }
}

/// The registry error codes of a distribution API error body.
fn error_codes(body: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errors")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.get("code")?.as_str().map(String::from))
        .collect()
}

/// `HEAD /v2/<repo>/manifests/<reference>` with the token flow; a 404 is read again with
/// GET, because only the registry's error body tells "not there" from "not a registry".
pub async fn manifest(
    via: &Probe<'_>,
    reg: &RegistrySettings,
    repo: &str,
    reference: &str,
    docker_config: Option<&Path>,
) -> Manifest {
    let host = &reg.host;
    let path = format!("/v2/{repo}/manifests/{reference}");
    let (resp, base, client) =
        match send(via, reg, &path, |c, url| c.head(url).header("Accept", ACCEPT)).await {
            Ok(x) => x,
            Err((f, url)) => return problem(f.describe(&url, via.timeout), transport_fix(&f, host)),
        };
    let url = format!("{base}{path}");
    let mut auth = None;
    let resp = if resp.status().as_u16() == 401 {
        let header = challenge_of(&resp);
        let a = match authorize(&client, reg, repo, "pull", &header, docker_config, via.timeout).await {
            Ok(a) => a,
            Err(p) => return p,
        };
        let r = client
            .head(&url)
            .header("Accept", ACCEPT)
            .header("Authorization", &a)
            .send()
            .await;
        auth = Some(a);
        match r {
            Ok(r) => r,
            Err(e) => {
                let f = net::classify(&e);
                return problem(f.describe(&url, via.timeout), transport_fix(&f, host));
            }
        }
    } else {
        resp
    };
    match resp.status().as_u16() {
        200 => Manifest::Present,
        404 => {
            let mut get = client.get(&url).header("Accept", ACCEPT);
            if let Some(a) = &auth {
                get = get.header("Authorization", a);
            }
            let body = match get.send().await {
                Ok(r) => tokio::time::timeout(via.timeout, r.text())
                    .await
                    .ok()
                    .and_then(|t| t.ok())
                    .unwrap_or_default(),
                Err(e) => {
                    let f = net::classify(&e);
                    return problem(f.describe(&url, via.timeout), transport_fix(&f, host));
                }
            };
            let codes = error_codes(&body);
            match codes
                .iter()
                .find(|c| c.as_str() == "MANIFEST_UNKNOWN" || c.as_str() == "NAME_UNKNOWN")
            {
                Some(code) => Manifest::Missing(code.clone()),
                None => problem(
                    format!(
                        "{host}: GET {path} answers 404 without the registry's MANIFEST_UNKNOWN: not a registry API (wrong host, port or path?)"
                    ),
                    vec![],
                ),
            }
        }
        401 => problem(
            format!("{host}: credentials rejected (401) for {repo}"),
            login_fix(host),
        ),
        403 => problem(
            format!("{host}: 403 Forbidden for {repo}: this client may not pull it"),
            login_fix(host),
        ),
        429 => problem(
            format!("{host}: 429 toomanyrequests: pull rate limit reached"),
            rate_limit_fix(host),
        ),
        other => problem(format!("{host}: HEAD {path} answers HTTP {other}"), vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_insecure_unless_said_otherwise() {
        assert!(RegistrySettings::host("127.0.0.1:5000").is_insecure());
        assert!(RegistrySettings::host("127.3.4.5").is_insecure());
        assert!(RegistrySettings::host("localhost:5000").is_insecure());
        assert!(RegistrySettings::host("[::1]:5000").is_insecure());
        assert!(!RegistrySettings::host("10.0.0.5:5000").is_insecure());
        assert!(!RegistrySettings::host("localhost.example.com").is_insecure());
        let mut explicit = RegistrySettings::host("127.0.0.1:5000");
        explicit.insecure = Some(false);
        assert!(!explicit.is_insecure());
    }

    #[test]
    fn entries_for_one_host_join() {
        let mut r = Registries::default();
        r.add(&RegistrySettings {
            insecure: Some(true),
            ..RegistrySettings::host("Reg.local:5000")
        });
        r.add(&RegistrySettings {
            username: Some("u".into()),
            password: Some("p".into()),
            ..RegistrySettings::host("https://reg.local:5000/")
        });
        assert_eq!(r.all().len(), 1);
        let s = r.get("reg.local:5000");
        assert!(s.is_insecure());
        assert_eq!(s.username.as_deref(), Some("u"));
        assert!(!r.get("other:5000").is_insecure());
    }

    #[test]
    fn docker_config_matches_the_host_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.json");
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        std::fs::write(
            &cfg,
            format!(
                r#"{{"auths": {{"10.0.0.50:5000": {{"auth": "{}"}}, "https://index.docker.io/v1/": {{"auth": "{}"}}, "http://reg.local/v2/": {{"auth": "{}"}}}}}}"#,
                b64("fifty:x"),
                b64("hub:y"),
                b64("local:z")
            ),
        )
        .unwrap();
        let get = |h: &str| credentials(&RegistrySettings::host(h), Some(&cfg)).map(|c| c.0);
        assert_eq!(get("10.0.0.5"), None, "a prefix is not a match");
        assert_eq!(get("10.0.0.50"), None, "the port is part of the host");
        assert_eq!(get("10.0.0.50:5000").as_deref(), Some("fifty"));
        assert_eq!(get("docker.io").as_deref(), Some("hub"));
        assert_eq!(get("registry-1.docker.io").as_deref(), Some("hub"));
        assert_eq!(
            get("reg.local").as_deref(),
            Some("local"),
            "scheme and path stripped"
        );
    }

    #[test]
    fn registry_error_codes() {
        assert_eq!(
            error_codes(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#),
            vec!["MANIFEST_UNKNOWN"]
        );
        assert!(error_codes("<html>404</html>").is_empty());
    }
}
