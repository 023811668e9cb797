//! Profiles: which checks run and with what parameters. Validated once, with the file and
//! line of every mistake, so checks only ever see typed values.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::check::{Check, CheckDef, Release};
use crate::checks;

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
    Ok(Profile {
        name: name.to_string(),
        release: raw.release,
        checks: raw.checks.into_checks(),
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
