use std::collections::BTreeMap;
use std::path::Path;

use futures::future::join_all;
use serde::Deserialize;

use crate::check::{
    Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::install::ImageRef;
use crate::net::Failure;
use crate::registry::{self, transport_fix, Manifest, RegistrySettings};

const IMAGE_MISSING: Code = Code {
    code: "image-missing",
    explain: "the registry answers for the image's repository but says MANIFEST_UNKNOWN / NAME_UNKNOWN: the pod will sit in ImagePullBackOff",
};
const IMAGE_LOOKUP_FAILED: Code = Code {
    code: "image-lookup-failed",
    explain: "the image could not be looked up (registry unreachable, TLS, credentials, rate limit): not known to be missing, so error",
};
const IMAGE_REFERENCE_INVALID: Code = Code {
    code: "image-reference-invalid",
    explain: "the text in an image field is no image reference (empty, spaces): the kubelet cannot pull it",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "network.images",
        phase: Phase::Network,
        title: "every image the install needs is in its registry",
        requires: &[],
        install: InstallUse::Fed,
        codes: &[IMAGE_MISSING, IMAGE_LOOKUP_FAILED, IMAGE_REFERENCE_INVALID],
        host_network: false,
        roll_up: None,
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
All images at once; each missing one is its own finding (image-missing). Only the registry's own
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

impl Check for Images {
    fn registries(&self) -> Vec<RegistrySettings> {
        self.registries.clone()
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let install = crate::or_return!(ctx.rendered());
            // Each image once, with where it is used (the install's releases and templates).
            let mut wanted: BTreeMap<ImageRef, Vec<String>> = BTreeMap::new();
            let mut unparsable: Vec<(String, String)> = Vec::new();
            for image in &self.images {
                match ImageRef::parse(image) {
                    Ok(r) => {
                        wanted.entry(r).or_default();
                    }
                    Err(e) => unparsable.push((image.clone(), format!("{e} (profile)"))),
                }
            }
            let mut from_install = 0;
            if let Some(i) = install {
                let (images, bad) = i.images();
                from_install = images.len();
                for (r, used) in images {
                    wanted.entry(r).or_default().extend(used);
                }
                unparsable.extend(bad);
            }
            if wanted.is_empty() && unparsable.is_empty() {
                return Outcome::skip(match install {
                    Some(_) => "the install runs no container images and the profile lists none",
                    None => "the profile lists no images",
                });
            }
            // The token flow is up to three round trips.
            let deadline = ctx.probe_timeout * 3;
            let docker_config = self.docker_config.as_deref().map(Path::new);
            let verdicts = join_all(wanted.iter().map(|(image, used)| async move {
                let settings = ctx.registries.for_image(image);
                let v = tokio::time::timeout(
                    deadline,
                    registry::manifest(
                        &ctx.probe(),
                        &settings,
                        &image.repository,
                        &image.reference,
                        docker_config,
                    ),
                )
                .await
                .unwrap_or_else(|_| Manifest::Problem {
                    line: format!(
                        "{}: no answer within {}",
                        image.registry,
                        humantime::format_duration(deadline)
                    ),
                    fix: transport_fix(&Failure::NoAnswer, &image.registry),
                });
                let shown = if used.is_empty() {
                    image.to_string()
                } else {
                    format!("{image} (used by {})", used.join("; "))
                };
                (shown, image, v)
            }))
            .await;
            let total = wanted.len();
            let (mut present, mut missing, mut unknown) = (0, 0, 0);
            let mut findings = Vec::new();
            for (shown, image, v) in verdicts {
                match v {
                    Manifest::Present => present += 1,
                    Manifest::Missing(code) => {
                        missing += 1;
                        findings.push(
                            Finding::fail(
                                &IMAGE_MISSING,
                                Subject::image(image.to_string()),
                                format!("{shown}: missing (the registry says {code})"),
                            )
                            .with_fix(Fix::manual(
                                "push the missing images into the registry before installing",
                                vec![format!("skopeo copy docker://<source>/{image} docker://{image}")],
                            )),
                        );
                    }
                    Manifest::Problem { line, fix } => {
                        unknown += 1;
                        // Shown once however many images share it (same words: one fix).
                        findings.push(
                            Finding::error(
                                &IMAGE_LOOKUP_FAILED,
                                Subject::image(image.to_string()),
                                format!("{shown}: {line}"),
                            )
                            .with_fix(Fix::manual(
                                "make the registries answer for these images (reachability, TLS trust, credentials) as the lines above say",
                                fix,
                            )),
                        );
                    }
                }
            }
            for (raw, why) in unparsable {
                unknown += 1;
                findings.push(Finding::error(&IMAGE_REFERENCE_INVALID, Subject::image(raw), why));
            }
            let counted = match install {
                Some(i) if from_install > 0 => format!(" ({})", i.counted(from_install, "images")),
                _ => String::new(),
            };
            if findings.is_empty() {
                return Outcome::pass(format!("all {present} images are in their registries{counted}"));
            }
            let mut said = Vec::new();
            if missing > 0 {
                said.push(format!("{missing} of {total} images are missing"));
            }
            if unknown > 0 {
                said.push(format!("{unknown} could not be looked up"));
            }
            Outcome::found(findings, format!("{}{counted}", said.join(", ")))
        })
    }
}
