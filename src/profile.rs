//! Profiles: which checks run and with what parameters. Validated once, with the file and
//! line of every mistake, so checks only ever see typed values.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::check::{Check, CheckDef, Release};
use crate::checks;
use crate::install::{InstallSpec, RawInstall};
use crate::registry::{Registries, RegistrySettings};

/// The profiles compiled into the binary: one file is all a node needs.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("default", include_str!("../checks/default.yaml")),
    ("bkce7", include_str!("../checks/bkce7.yaml")),
    ("kubevela", include_str!("../checks/kubevela.yaml")),
];

pub struct Profile {
    /// The name users gave (`default`, or the path).
    pub name: String,
    pub release: Option<Release>,
    /// In the order the profile lists them; the engine orders by phase.
    pub checks: Vec<(&'static CheckDef, Box<dyn Check>)>,
    /// The top-level `registries:` section as written (checks' own lists join it in `Ctx`).
    pub registries: Vec<RegistrySettings>,
    /// `install:`: the chart or helmfile to check, paths resolved against the profile.
    pub install: Option<InstallSpec>,
    /// `nodes:`: how node checks run on every node (`preflight nodes`, `--all-nodes`).
    pub nodes: NodesSection,
}

/// `nodes: {image: REF, namespace: NS}`: the image the node pods run and where they go,
/// so the operator's profile carries them instead of every command line.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct NodesSection {
    #[serde(default, deserialize_with = "image_ref")]
    pub image: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

fn image_ref<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    crate::install::ImageRef::parse(&s).map_err(|e| serde::de::Error::custom(format!("image: {e}")))?;
    Ok(Some(s))
}

/// The image `preflight image push` names when given none, and `--image` defaults to when
/// neither the command line nor the profile names one: this version in the profile's one
/// registry (`registries:`), the private registry an air-gapped cluster pulls from.
pub fn default_image(section: &NodesSection, registries: &[RegistrySettings]) -> Result<String, String> {
    if let Some(i) = &section.image {
        return Ok(i.clone());
    }
    match registries {
        [one] => Ok(format!("{}/preflight:{}", one.host, env!("CARGO_PKG_VERSION"))),
        [] => Err(
            "no image: give --image REF, or `nodes: {image: REF}` or one `registries:` entry in the profile"
                .to_string(),
        ),
        many => Err(format!(
            "no image and {} registries in the profile ({}): give --image REF or `nodes: {{image: REF}}`",
            many.len(),
            many.iter()
                .map(|r| r.host.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// A profile that cannot be used: `file:line: key: what is wrong`.
#[derive(Debug, PartialEq, Eq)]
pub struct ProfileError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The profile's text as written (embedded or read from its file), for a node pod to run
/// the very same profile; its `install:` is left out (a pod renders nothing).
pub fn text_for_nodes(name_or_path: &str) -> Result<String, String> {
    let text = match EMBEDDED.iter().find(|(n, _)| *n == name_or_path) {
        Some((_, t)) => t.to_string(),
        None => std::fs::read_to_string(name_or_path).map_err(|e| format!("{name_or_path}: {e}"))?,
    };
    let mut v: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{name_or_path}: {e}"))?;
    if let Some(m) = v.as_mapping_mut() {
        m.remove("install");
    }
    serde_yaml_ng::to_string(&v).map_err(|e| format!("{name_or_path}: {e}"))
}

/// The pods' profile with one check's parameters replaced (`Check::params_for_nodes`).
pub fn with_params(yaml: &str, id: &str, params: serde_yaml_ng::Value) -> Result<String, String> {
    let mut v: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
    let Some(top) = v.as_mapping_mut() else {
        return Err("the profile is not a mapping".to_string());
    };
    let checks = top
        .entry("checks".into())
        .or_insert_with(|| serde_yaml_ng::Mapping::new().into());
    let Some(checks) = checks.as_mapping_mut() else {
        return Err("the profile's checks: is not a mapping".to_string());
    };
    checks.insert(id.into(), params);
    serde_yaml_ng::to_string(&v).map_err(|e| e.to_string())
}

/// `--profile NAME|PATH`: an embedded profile by name, else a YAML file.
pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
    if let Some((name, text)) = EMBEDDED.iter().find(|(n, _)| *n == name_or_path) {
        return parse(name, &format!("checks/{name}.yaml (embedded)"), text);
    }
    let path = Path::new(name_or_path);
    match std::fs::read_to_string(path) {
        Ok(text) => parse(name_or_path, name_or_path, &text),
        Err(e) => {
            let names: Vec<&str> = EMBEDDED.iter().map(|(n, _)| *n).collect();
            Err(ProfileError {
                file: name_or_path.to_string(),
                line: None,
                message: format!(
                    "no embedded profile of that name ({}) and the file cannot be read: {e}",
                    names.join(", ")
                ),
            })
        }
    }
}

pub fn parse(name: &str, file: &str, text: &str) -> Result<Profile, ProfileError> {
    let raw: RawProfile = serde_yaml_ng::from_str(text).map_err(|e| yaml_error(file, &e))?;
    // Paths in `install:` are relative to the profile file (the cwd for embedded ones).
    let base = Path::new(file)
        .parent()
        .filter(|p| !file.ends_with("(embedded)") && !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    let checks = raw.checks.into_checks();
    let implied: Vec<(&str, crate::install::RawInstall)> = checks
        .iter()
        .filter_map(|(d, c)| Some((d.meta.id, c.implied_install()?)))
        .collect();
    // The line of a check's `render:`, for the messages below.
    let render_line = text
        .lines()
        .position(|l| l.trim_start().starts_with("render:"))
        .map(|i| i + 1);
    let error = |line: Option<usize>, message: String| ProfileError {
        file: file.to_string(),
        line,
        message,
    };
    let raw_install = match (raw.install, implied.into_iter().next()) {
        (Some(_), Some((id, _))) => {
            return Err(error(
                render_line,
                format!("checks: {id}: `render:` names an install next to the profile's `install:`; drop `render:` (every check reads `install:`)"),
            ))
        }
        (Some(i), None) => Some(i),
        (None, Some((id, mut i))) => {
            // A chart renders as the profile's release.
            if i.chart.is_some() {
                let Some(r) = &raw.release else {
                    return Err(error(
                        render_line,
                        format!("checks: {id}: `render: {{chart: …}}` renders as the profile's `release:`, which is missing"),
                    ));
                };
                i.release = Some(r.name.clone());
                i.namespace = Some(r.namespace.clone());
            }
            Some(i)
        }
        (None, None) => None,
    };
    let install = match raw_install {
        Some(i) => Some(i.into_spec(&base).map_err(|m| error(None, m))?),
        None => None,
    };
    Ok(Profile {
        name: name.to_string(),
        release: raw.release,
        checks,
        registries: raw.registries,
        install,
        nodes: raw.nodes,
    })
}

/// serde_yaml_ng renders `path: message at line L column C`; we want `file:L: path: message`.
fn yaml_error(file: &str, e: &serde_yaml_ng::Error) -> ProfileError {
    let mut message = e.to_string();
    let line = e.location().map(|loc| {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
        loc.line()
    });
    // serde lists every known id; say which one was meant instead.
    if let Some(rest) = message.strip_prefix("checks: unknown field `") {
        if let Some((id, _)) = rest.split_once('`') {
            message = format!("checks: {}", unknown_id_message(id));
        }
    }
    ProfileError {
        file: file.to_string(),
        line,
        message,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    release: Option<Release>,
    #[serde(default)]
    registries: Vec<RegistrySettings>,
    #[serde(default)]
    install: Option<RawInstall>,
    #[serde(default)]
    nodes: NodesSection,
    checks: checks::ChecksSection,
}

pub fn unknown_id_message(id: &str) -> String {
    let close: Vec<&str> = checks::registry()
        .iter()
        .map(|d| d.meta.id)
        .filter(|known| strsim::levenshtein(known, id) <= 3 || known.ends_with(&format!(".{id}")))
        .collect();
    let hint = if close.is_empty() {
        "see `preflight list`".to_string()
    } else {
        format!("did you mean `{}`?", close.join("`, `"))
    };
    format!("unknown check id `{id}` ({hint})")
}

/// The registries every check sees: the section, then each planned check's own entries.
pub fn registries<'a>(
    section: &[RegistrySettings],
    checks: impl Iterator<Item = &'a dyn Check>,
) -> Registries {
    let mut all = Registries::default();
    section.iter().for_each(|r| all.add(r));
    for c in checks {
        c.registries().iter().for_each(|r| all.add(r));
    }
    all
}

#[cfg(test)]
mod fuzz {
    //! No input panics the loader or the value parsers: every mistake is a ProfileError.
    use proptest::prelude::*;

    /// Profile-shaped YAML: real keys and check ids with hostile values.
    fn yamlish() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "checks",
            "release",
            "registries",
            "node.localpv-disk",
            "paths",
            "path",
            "need",
            "claims",
            "shared",
            "tools.helm-version",
            "min",
            "cluster.helm-ownership",
            "render",
            "chart",
            "helmfile",
            "values",
            "objects",
            "kind",
            "name",
            "host",
            "insecure",
            "cluster.csr-controllers",
            "probe_wait",
            "min_version",
            "node.hosts",
            "pins",
            "network.images",
            "images",
            "cluster.schedulable",
            "cpu",
            "memory",
        ]);
        let scalar = prop::sample::select(vec![
            "0.999999999999999999E",
            "99999999999999999999Ei",
            "1e400",
            "-1",
            "90Gi",
            "{}",
            "[]",
            "~",
            "\"\"",
            "3.12.0",
            "v1",
            "5s",
            "1000000000000h",
            "::",
            "'",
            "*a",
            "&a x",
            "!!binary AA==",
            ".5",
            "1.",
            "0x10",
            "250m",
            "true",
        ]);
        prop::collection::vec((0usize..4, key, prop::bool::ANY, scalar), 0..14).prop_map(|items| {
            let mut out = String::new();
            for (indent, k, nest, v) in items {
                out.push_str(&"  ".repeat(indent));
                if nest {
                    out.push_str(&format!("{k}:\n"));
                } else {
                    out.push_str(&format!("{k}: {v}\n"));
                }
            }
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn profile_loader_never_panics(text in yamlish()) {
            let _ = super::parse("fuzz", "fuzz.yaml", &text);
        }

        #[test]
        fn profile_loader_never_panics_on_any_text(text in "\\PC{0,200}") {
            let _ = super::parse("fuzz", "fuzz.yaml", &text);
        }

        #[test]
        fn value_parsers_never_panic(s in "[0-9.eEkKMGTPimn -]{0,40}") {
            let _ = crate::quantity::parse_milli(&s);
            let _ = crate::quantity::Bytes::parse(&s);
            let _ = crate::quantity::Bytes::parse_lossy(&s);
            let _ = crate::quantity::Cpu::parse(&s);
            let _ = crate::values::parse_duration(&s);
            let _ = crate::values::parse_version(&s);
        }

        #[test]
        fn any_string_in_value_parsers_never_panics(s in "\\PC{0,60}") {
            let _ = crate::quantity::parse_milli(&s);
            let _ = crate::values::parse_duration(&s);
            let _ = crate::values::parse_version(&s);
        }
    }
}
