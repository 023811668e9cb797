use std::collections::BTreeMap;
use std::path::Path;

use futures::future::join_all;
use serde::Deserialize;

use crate::check::{
    Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::net::{self, Trust};
use crate::registry::{self, Manifest, RegistrySettings};

const REPO_UNREACHABLE: Code = Code {
    code: "repo-unreachable",
    explain: "the chart repository (index.yaml, or an oci:// registry) does not answer from here: name, connection, TLS, HTTP status, each named",
};
const NOT_A_REPO: Code = Code {
    code: "not-a-repo",
    explain: "the URL answers, but not with a helm repository index",
};
const CHART_VERSION_MISSING: Code = Code {
    code: "chart-version-missing",
    explain: "the repository lacks a chart version the install pins: helm says \"failed to download … at version …\"",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "network.chart-repos",
        phase: Phase::Network,
        title: "helm chart repositories serve the charts the install needs",
        requires: &[],
        install: InstallUse::Fed,
        codes: &[REPO_UNREACHABLE, NOT_A_REPO, CHART_VERSION_MISSING],
        host_network: false,
        roll_up: None,
        explain: r#"Why: helmfile downloads every chart at sync time; a repository that is unreachable,
answers the wrong node, or lacks a version fails the install half-way. BlueKing CE 7 users
saw (seed 004), because hub.bktencent.com resolved to the wrong node:

    STDERR:
      Error: failed to download "<chart>" at version "<version>"

What it looks at: for each repository, `GET <url>/index.yaml` (same resolver, TLS and
proxy rules as network.registry; all repositories at once, each bounded by --timeout), that
it parses as a helm repository index, and that every named chart version is listed in it.
`oci://host/path` repositories are registries: each chart is looked up as the manifest
`host/path/<chart>:<version>` (the registry client network.images uses, with the
settings of the profile's `registries:` for that host). Every missing version is
reported at once.

Fix: pin the repository's name (node.hosts), sync the missing chart versions into the
repository, or correct the versions in the helmfile.

Parameters: repos: [{name: blueking, url: "https://hub.bktencent.com/chartrepo/blueking",
                     charts: [{name: bk-repo, version: "1.0.0"}], insecure: false, ca_file: ...}]"#,
    },
};

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ChartRef {
    name: String,
    version: String,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Repo {
    name: String,
    url: String,
    #[serde(default)]
    charts: Vec<ChartRef>,
    #[serde(default)]
    insecure: Option<bool>,
    #[serde(default)]
    ca_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartRepos {
    #[serde(default)]
    repos: Vec<Repo>,
}

/// The part of a helm repository index.yaml this check reads.
#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    entries: BTreeMap<String, Vec<Entry>>,
}

#[derive(Deserialize)]
struct Entry {
    version: String,
}

/// A repository's answer: fine (what it holds), or its problems (each with its code) and
/// the commands that help.
enum Looked {
    Ok(String),
    Bad(Vec<(&'static Code, String)>, Vec<String>),
}

impl Repo {
    /// An `oci://host/path` repository is a registry: its settings join `registries:`.
    fn oci_host(&self) -> Option<&str> {
        let rest = self.url.strip_prefix("oci://")?;
        Some(rest.split('/').next().unwrap_or(rest))
    }
}

/// `oci://host/path`: each chart is the manifest `host/path/<chart>:<version>`.
async fn look_oci(ctx: &Ctx, repo: &Repo, rest: &str) -> Looked {
    let rest = rest.trim_end_matches('/');
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if repo.charts.is_empty() {
        return Looked::Ok(format!("{}: oci://{rest} (no charts named)", repo.name));
    }
    let settings = ctx.registries.get(host);
    let looked = join_all(repo.charts.iter().map(|c| {
        let settings = &settings;
        async move {
            let name = if path.is_empty() {
                c.name.clone()
            } else {
                format!("{path}/{}", c.name)
            };
            (
                c,
                registry::manifest(&ctx.probe(), settings, &name, &c.version, None).await,
            )
        }
    }))
    .await;
    let mut bad = Vec::new();
    let mut cmds = Vec::new();
    for (c, m) in looked {
        match m {
            Manifest::Present => {}
            Manifest::Missing(code) => bad.push((&CHART_VERSION_MISSING, format!(
                "{}: oci://{rest}/{}:{} is not there ({code}); helm would say: failed to download \"{}\" at version \"{}\"",
                repo.name, c.name, c.version, c.name, c.version
            ))),
            Manifest::Problem { line, fix } => {
                bad.push((
                    &REPO_UNREACHABLE,
                    format!("{}: oci://{rest}/{}:{}: {line}", repo.name, c.name, c.version),
                ));
                cmds.extend(fix);
            }
        }
    }
    if bad.is_empty() {
        Looked::Ok(format!(
            "{}: oci://{rest} holds the {} chart(s) needed",
            repo.name,
            repo.charts.len()
        ))
    } else {
        Looked::Bad(bad, cmds)
    }
}

async fn look(ctx: &Ctx, repo: &Repo) -> Looked {
    if let Some(rest) = repo.url.strip_prefix("oci://") {
        return look_oci(ctx, repo, rest).await;
    }
    let url = format!("{}/index.yaml", repo.url.trim_end_matches('/'));
    let trust = if repo.insecure == Some(true) {
        Trust::SkipVerify
    } else {
        Trust::Verify {
            ca_file: repo.ca_file.as_deref().map(Path::new),
        }
    };
    let client = match net::client(&ctx.resolver, &trust, ctx.probe_timeout) {
        Ok(c) => c,
        Err(e) => return Looked::Bad(vec![(&REPO_UNREACHABLE, format!("{}: {e}", repo.name))], vec![]),
    };
    let resp = match client.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            let f = net::classify(&e);
            return Looked::Bad(
                vec![(
                    &REPO_UNREACHABLE,
                    format!("{}: {}", repo.name, f.describe(&url, ctx.probe_timeout)),
                )],
                vec![],
            );
        }
    };
    let status = resp.status();
    if !status.is_success() {
        return Looked::Bad(
            vec![(
                &REPO_UNREACHABLE,
                format!("{}: GET {url} answers {status}", repo.name),
            )],
            vec![],
        );
    }
    let body = match resp.text().await {
        Ok(b) => b,
        Err(e) => {
            return Looked::Bad(
                vec![(&REPO_UNREACHABLE, format!("{}: reading {url}: {e}", repo.name))],
                vec![],
            )
        }
    };
    let index: Index = match serde_yaml_ng::from_str(&body) {
        Ok(i) => i,
        Err(e) => {
            return Looked::Bad(
                vec![(
                    &NOT_A_REPO,
                    format!("{}: {url} is not a helm repository index: {e}", repo.name),
                )],
                vec![],
            )
        }
    };
    let mut missing = Vec::new();
    for c in &repo.charts {
        let versions: Vec<&str> = index
            .entries
            .get(&c.name)
            .map(|v| v.iter().map(|e| e.version.as_str()).collect())
            .unwrap_or_default();
        if !versions
            .iter()
            .any(|v| v.trim_start_matches('v') == c.version.trim_start_matches('v'))
        {
            let there = if versions.is_empty() {
                "no versions of it there".to_string()
            } else {
                format!(
                    "versions there: {}",
                    versions.iter().take(5).copied().collect::<Vec<_>>().join(", ")
                )
            };
            missing.push((&CHART_VERSION_MISSING, format!(
                "{}: chart {} version {} is not in {url} ({there}); helm would say: failed to download \"{}\" at version \"{}\"",
                repo.name, c.name, c.version, c.name, c.version
            )));
        }
    }
    if missing.is_empty() {
        Looked::Ok(format!(
            "{}: {url} lists {} chart(s){}",
            repo.name,
            index.entries.len(),
            if repo.charts.is_empty() {
                String::new()
            } else {
                format!(", including the {} needed", repo.charts.len())
            }
        ))
    } else {
        Looked::Bad(
            missing,
            vec![format!(
                "helm search repo {} --versions   # after helm repo add {} {}",
                repo.name, repo.name, repo.url
            )],
        )
    }
}

impl Check for ChartRepos {
    fn registries(&self) -> Vec<RegistrySettings> {
        self.repos
            .iter()
            .filter_map(|r| {
                Some(RegistrySettings {
                    insecure: r.insecure,
                    ca_file: r.ca_file.clone(),
                    ..RegistrySettings::host(r.oci_host()?)
                })
            })
            .collect()
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let (install, failed) = match ctx.install() {
                None => (None, None),
                Some(Ok(i)) => {
                    let failed: Vec<String> = i
                        .unrendered()
                        .map(|(r, e)| format!("release {}: {e}", r.name))
                        .collect();
                    (Some(i), Some(failed.join("; ")).filter(|f| !f.is_empty()))
                }
                Some(Err(e)) => return Outcome::error(format!("the install could not be rendered: {e}")),
            };
            let failed = failed.as_deref();
            let mut repos: Vec<Repo> = self.repos.clone();
            if let Some(i) = install {
                for r in &i.repositories {
                    // Each release whose chart is `<repo>/<chart>`, at its version.
                    let charts = i
                        .releases
                        .iter()
                        .filter_map(|rel| {
                            let chart = rel.chart.strip_prefix(&format!("{}/", r.name))?;
                            Some(ChartRef {
                                name: chart.to_string(),
                                version: rel.version.clone()?,
                            })
                        })
                        .collect();
                    match repos.iter_mut().find(|p| p.name == r.name) {
                        Some(p) => p.charts.extend(charts),
                        None => repos.push(Repo {
                            name: r.name.clone(),
                            url: r.url.clone(),
                            charts,
                            insecure: None,
                            ca_file: None,
                        }),
                    }
                }
            }
            if repos.is_empty() {
                return Outcome::skip(match install {
                    Some(_) => "the install names no chart repositories and the profile lists none",
                    None => "the profile lists no chart repositories",
                });
            }
            let deadline = ctx.probe_timeout + std::time::Duration::from_millis(500);
            let findings = join_all(repos.iter().map(|r| async move {
                tokio::time::timeout(deadline, look(ctx, r))
                    .await
                    .unwrap_or_else(|_| {
                        Looked::Bad(
                            vec![(
                                &REPO_UNREACHABLE,
                                format!(
                                    "{}: no answer within {}",
                                    r.name,
                                    humantime::format_duration(ctx.probe_timeout)
                                ),
                            )],
                            vec![],
                        )
                    })
            }))
            .await;
            let (mut ok, mut bad, mut cmds) = (Vec::new(), Vec::new(), Vec::new());
            for (r, f) in repos.iter().zip(findings) {
                match f {
                    Looked::Ok(l) => ok.push(l),
                    Looked::Bad(found, c) => {
                        bad.extend(found.into_iter().map(|(code, line)| {
                            Finding::fail(code, Subject::Url { url: r.url.clone() }, line)
                        }));
                        cmds.extend(c);
                    }
                }
            }
            if bad.is_empty() {
                // A release that did not render for another reason is tools.install-render's.
                return Outcome::pass(ok.join("\n"));
            }
            let summary = failed
                .map(|e| format!("(and so the render fails: {e})"))
                .unwrap_or_default();
            Outcome::found(bad, summary).with_fix(Fix::manual(
                "make the repositories reachable (pin their names: node.hosts) and sync the missing chart versions into them",
                cmds,
            ))
        })
    }
}
