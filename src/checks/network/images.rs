use std::path::Path;

use futures::future::join_all;
use serde::Deserialize;

use crate::check::{Check, CheckDef, CheckFuture, Ctx, Fix, Meta, Outcome, Phase};
use crate::net::Failure;
use crate::registry::{self, transport_fix, Manifest, RegistrySettings};

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
~/.docker/config.json (matched by exact host, docker.io as https://index.docker.io/v1/).
All images at once; every missing one is named in one message. Only the registry's own
404 MANIFEST_UNKNOWN / NAME_UNKNOWN counts as missing (fail); a registry that cannot be
reached, refuses the TLS handshake or the credentials, or rate-limits is `error` with its
real cause and its own fix — never "push the image".

Fix: push (or `skopeo copy`) the missing images into the registry before installing.

Parameters: images: ["hub.bktencent.com/blueking/bk-repo:1.0.0"],
            registries: [{host: "10.0.0.5:5000", insecure: true, ca_file: ..., username: ..., password: ...}]
              (joins the profile's top-level `registries:`; localhost/127.0.0.0/8 are insecure
              by default, as docker treats them),
            docker_config: ~/.docker/config.json"#,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Images {
    #[serde(default)]
    images: Vec<String>,
    /// Joins the profile's `registries:` section.
    #[serde(default)]
    registries: Vec<RegistrySettings>,
    #[serde(default)]
    docker_config: Option<String>,
}

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

/// The registry's own address for a host name as docker reads it.
fn api_host(host: &str) -> &str {
    if host == "docker.io" {
        "registry-1.docker.io"
    } else {
        host
    }
}

impl Check for Images {
    fn registries(&self) -> Vec<RegistrySettings> {
        self.registries.clone()
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            if self.images.is_empty() {
                return Outcome::skip("the profile lists no images");
            }
            // The token flow is up to three round trips.
            let deadline = ctx.probe_timeout * 3;
            let docker_config = self.docker_config.as_deref().map(Path::new);
            let verdicts = join_all(self.images.iter().map(|image| async move {
                let (host, repo, reference) = parse_ref(image);
                let mut settings = ctx.registries.get(&host);
                settings.host = api_host(&host).to_string();
                let v = tokio::time::timeout(
                    deadline,
                    registry::manifest(ctx, &settings, &repo, &reference, docker_config),
                )
                .await
                .unwrap_or_else(|_| Manifest::Problem {
                    line: format!(
                        "{host}: no answer within {}",
                        humantime::format_duration(deadline)
                    ),
                    fix: transport_fix(&Failure::NoAnswer, &host),
                });
                (image, v)
            }))
            .await;
            let mut present = 0;
            let mut missing = Vec::new();
            let mut problems = Vec::new();
            let mut problem_fixes: Vec<String> = Vec::new();
            for (image, v) in verdicts {
                match v {
                    Manifest::Present => present += 1,
                    Manifest::Missing(code) => missing.push((image.clone(), code)),
                    Manifest::Problem { line, fix } => {
                        problems.push(format!("{image}: {line}"));
                        for c in fix {
                            if !problem_fixes.contains(&c) {
                                problem_fixes.push(c);
                            }
                        }
                    }
                }
            }
            if missing.is_empty() && problems.is_empty() {
                return Outcome::pass(format!("all {present} images are in their registries"));
            }
            let mut lines = Vec::new();
            if !missing.is_empty() {
                lines.push(format!(
                    "{} of {} images are missing (the registry says manifest unknown): {}",
                    missing.len(),
                    self.images.len(),
                    missing
                        .iter()
                        .map(|(m, _)| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if !problems.is_empty() {
                lines.push(format!(
                    "{} of {} images could not be looked up:",
                    problems.len(),
                    self.images.len()
                ));
                lines.extend(problems);
            }
            if missing.is_empty() {
                // Nothing is known to be missing: this run could not decide.
                return Outcome::error(lines.join("\n")).with_fix(Fix::manual(
                    "make the registries answer for these images (reachability, TLS trust, credentials) as the lines above say",
                    problem_fixes,
                ));
            }
            let mut cmds: Vec<String> = missing
                .iter()
                .map(|(m, _)| format!("skopeo copy docker://<source>/{m} docker://{m}"))
                .collect();
            cmds.extend(problem_fixes);
            Outcome::fail(lines.join("\n")).with_fix(Fix::manual(
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
