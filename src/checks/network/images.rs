use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use futures::future::join_all;
use serde::Deserialize;

use crate::check::{Check, CheckDef, CheckFuture, Ctx, Fix, Meta, Outcome, Phase};
use crate::net::{self, Trust};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "network.images",
        phase: Phase::Network,
        title: "every image the install needs is in its registry",
        requires: &[],
        explain: r#"Why: an offline install finds a missing image only when a pod sits in
ImagePullBackOff, one image per retry. OpenKruise's offline guide says every image must be
mirrored to the private registry first (seed 003); BlueKing CE 7 users saw (seed 004):

    Failed to pull image "...": rpc error: code = Unknown desc = Error response from daemon:
    manifest for ... not found: manifest unknown: manifest unknown

What it looks at: for each image reference (registry/repo:tag or @sha256:), `HEAD
/v2/<repo>/manifests/<tag>` with the Accept headers for OCI and Docker manifests and indexes,
following the registry's WWW-Authenticate challenge (Bearer token flow, anonymous or with
credentials; or Basic) with credentials from the profile (`registries`) or
~/.docker/config.json. All images at once; every missing one is named in one message.

Fix: push (or `skopeo copy`) the missing images into the registry before installing.

Parameters: images: ["hub.bktencent.com/blueking/bk-repo:1.0.0"],
            registries: [{host: "127.0.0.1:5000", insecure: true, ca_file: ..., username: ..., password: ...}],
            docker_config: ~/.docker/config.json"#,
    },
};

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct HostSettings {
    host: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Images {
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    registries: Vec<HostSettings>,
    #[serde(default)]
    docker_config: Option<String>,
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// `registry/repo:tag` → (registry host, repository, tag or digest), as docker reads it.
pub fn parse_ref(image: &str) -> (String, String, String) {
    let (name, reference) = match image.split_once('@') {
        Some((n, d)) => (n, d.to_string()),
        None => match image.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, t.to_string()),
            _ => (image, "latest".to_string()),
        },
    };
    let (host, repo) = match name.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let repo = if host == "docker.io" && !repo.contains('/') {
        format!("library/{repo}")
    } else {
        repo
    };
    (host, repo, reference)
}

enum Verdict {
    Present,
    Missing,
    Problem(String),
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

impl Images {
    /// Manifests to look up in one registry (chart-repos' oci:// references).
    pub(crate) fn for_refs(
        images: Vec<String>,
        host: &str,
        insecure: bool,
        ca_file: Option<String>,
    ) -> Images {
        Images {
            images,
            registries: vec![HostSettings {
                host: host.to_string(),
                insecure,
                ca_file,
                username: None,
                password: None,
            }],
            docker_config: None,
        }
    }

    fn settings(&self, host: &str) -> Option<&HostSettings> {
        self.registries.iter().find(|r| r.host == host)
    }

    fn credentials(&self, host: &str) -> Option<(String, String)> {
        if let Some(s) = self.settings(host) {
            if let (Some(u), Some(p)) = (&s.username, &s.password) {
                return Some((u.clone(), p.clone()));
            }
        }
        let path = match &self.docker_config {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".docker/config.json"),
        };
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        let auths = v.get("auths")?.as_object()?;
        let entry = auths
            .iter()
            .find(|(k, _)| {
                k.as_str() == host
                    || k.trim_start_matches("https://")
                        .trim_start_matches("http://")
                        .starts_with(host)
            })?
            .1;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(entry.get("auth")?.as_str()?)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (u, p) = text.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    }

    async fn head(&self, ctx: &Ctx, host: &str, repo: &str, reference: &str) -> Verdict {
        let api_host = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        let s = self.settings(host);
        let insecure = s.is_some_and(|s| s.insecure);
        let trust = if insecure {
            Trust::SkipVerify
        } else {
            Trust::Verify {
                ca_file: s.and_then(|s| s.ca_file.as_deref()).map(Path::new),
            }
        };
        let client = match net::client(&ctx.resolver, &trust, ctx.probe_timeout) {
            Ok(c) => c,
            Err(e) => return Verdict::Problem(e),
        };
        let path = format!("/v2/{repo}/manifests/{reference}");
        let mut base = format!("https://{api_host}");
        let mut resp = client
            .head(format!("{base}{path}"))
            .header("Accept", ACCEPT)
            .send()
            .await;
        if insecure && matches!(&resp, Err(e) if net::classify(e).retry_over_http()) {
            base = format!("http://{api_host}");
            resp = client
                .head(format!("{base}{path}"))
                .header("Accept", ACCEPT)
                .send()
                .await;
        }
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                return Verdict::Problem(
                    net::classify(&e).describe(&format!("{base}{path}"), ctx.probe_timeout),
                )
            }
        };
        let resp = if resp.status().as_u16() == 401 {
            let header = resp
                .headers()
                .get("www-authenticate")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("")
                .to_string();
            let (scheme, params) = challenge(&header);
            let creds = self.credentials(host);
            let auth = match scheme.as_str() {
                "bearer" => {
                    let Some(realm) = params.get("realm") else {
                        return Verdict::Problem(format!("{host}: 401 with a Bearer challenge without realm"));
                    };
                    let url = reqwest::Url::parse_with_params(
                        realm,
                        &[
                            ("service", params.get("service").cloned().unwrap_or_default()),
                            ("scope", format!("repository:{repo}:pull")),
                        ],
                    );
                    let Ok(url) = url else {
                        return Verdict::Problem(format!("{host}: token realm {realm:?} is not a URL"));
                    };
                    let mut req = client.get(url);
                    if let Some((u, p)) = &creds {
                        req = req.basic_auth(u, Some(p));
                    }
                    let token: serde_json::Value = match req.send().await {
                        Ok(r) if r.status().is_success() => {
                            serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or_default()
                        }
                        Ok(r) => return Verdict::Problem(format!("{host}: token service {realm} answers {}", r.status())),
                        Err(e) => return Verdict::Problem(net::classify(&e).describe(realm, ctx.probe_timeout)),
                    };
                    let t = token.get("token").or_else(|| token.get("access_token")).and_then(|t| t.as_str()).unwrap_or("");
                    format!("Bearer {t}")
                }
                "basic" => match &creds {
                    Some((u, p)) => format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))),
                    None => {
                        return Verdict::Problem(format!(
                            "{host}: needs credentials (401, Basic auth): give username/password in the profile or docker login {host}"
                        ))
                    }
                },
                _ => return Verdict::Problem(format!("{host}: 401 without a usable WWW-Authenticate challenge")),
            };
            match client
                .head(format!("{base}{path}"))
                .header("Accept", ACCEPT)
                .header("Authorization", auth)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    return Verdict::Problem(
                        net::classify(&e).describe(&format!("{base}{path}"), ctx.probe_timeout),
                    )
                }
            }
        } else {
            resp
        };
        match resp.status().as_u16() {
            200 => Verdict::Present,
            404 => Verdict::Missing,
            401 => Verdict::Problem(format!("{host}: credentials rejected (401) for {repo}")),
            403 => Verdict::Problem(format!("{host}: 403 Forbidden for {repo}")),
            429 => Verdict::Problem(format!("{host}: 429 toomanyrequests: pull rate limit reached")),
            other => Verdict::Problem(format!("{host}: HEAD {path} answers HTTP {other}")),
        }
    }
}

impl Check for Images {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            if self.images.is_empty() {
                return Outcome::skip("the profile lists no images");
            }
            let deadline = ctx.probe_timeout * 3;
            let verdicts = join_all(self.images.iter().map(|image| async move {
                let (host, repo, reference) = parse_ref(image);
                let v = tokio::time::timeout(deadline, self.head(ctx, &host, &repo, &reference))
                    .await
                    .unwrap_or_else(|_| {
                        Verdict::Problem(format!(
                            "{host}: no answer within {}",
                            humantime::format_duration(deadline)
                        ))
                    });
                (image, v)
            }))
            .await;
            let mut present = 0;
            let mut missing = Vec::new();
            let mut problems = Vec::new();
            for (image, v) in verdicts {
                match v {
                    Verdict::Present => present += 1,
                    Verdict::Missing => missing.push(image.clone()),
                    Verdict::Problem(p) => problems.push(format!("{image}: {p}")),
                }
            }
            if missing.is_empty() && problems.is_empty() {
                return Outcome::pass(format!("all {present} images are in their registries"));
            }
            let mut lines = Vec::new();
            if !missing.is_empty() {
                lines.push(format!(
                    "{} of {} images are missing (manifest unknown): {}",
                    missing.len(),
                    self.images.len(),
                    missing.join(", ")
                ));
            }
            lines.extend(problems);
            let cmds = missing
                .iter()
                .map(|m| format!("skopeo copy docker://<source>/{m} docker://{m}"))
                .collect();
            let outcome = Outcome::fail(lines.join("\n"));
            outcome.with_fix(Fix::manual(
                "push the missing images into the registry before installing",
                cmds,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ref;

    #[test]
    fn references_as_docker_reads_them() {
        let p = |s: &str| {
            let (h, r, t) = parse_ref(s);
            format!("{h} {r} {t}")
        };
        assert_eq!(
            p("hub.bktencent.com/blueking/bk-repo:1.0.0"),
            "hub.bktencent.com blueking/bk-repo 1.0.0"
        );
        assert_eq!(p("busybox"), "docker.io library/busybox latest");
        assert_eq!(p("oamdev/vela-core:v1.9"), "docker.io oamdev/vela-core v1.9");
        assert_eq!(
            p("127.0.0.1:5000/app@sha256:abc"),
            "127.0.0.1:5000 app sha256:abc"
        );
        assert_eq!(p("localhost/x/y"), "localhost x/y latest");
    }
}
