//! helmfile's error output read as helmfile writes it: `in ./a.yaml: in .helmfiles[1]: in
//! ./b.yaml.gotmpl: 3 errors:` then `err 0: …` lines, or one `in …: …` line; each error
//! with the release it names (`failed processing release bk-auth: …`) and the values file
//! and line a template error points at, so it can be said under its own release.

/// One error of helmfile's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmfileError {
    /// The state files the error came through, outermost first (`./helmfile.yaml`,
    /// `.helmfiles[1]`, `./base-blueking.yaml.gotmpl`).
    pub chain: Vec<String>,
    /// The release it names, when helmfile names one.
    pub release: Option<String>,
    /// The values file it failed to render, when it says.
    pub values_file: Option<String>,
    /// helmfile's own words, the release prefix taken off.
    pub text: String,
}

impl HelmfileError {
    /// Whether helmfile stops here before syncing any release of the same file.
    pub fn blocks_its_file(&self) -> bool {
        blocks_its_file(&self.text)
    }
}

/// Whether an error (helmfile's words, or as [`said`] shortens them) stops helmfile before it
/// syncs any release of the same file: a release's values failed to render while helmfile
/// prepared the file.
pub fn blocks_its_file(text: &str) -> bool {
    text.starts_with("failed to render values file")
}

/// Every error in helmfile's stderr; empty when it printed none in its own form.
pub fn parse(stderr: &str) -> Vec<HelmfileError> {
    let lines: Vec<&str> = stderr.lines().map(str::trim_end).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        i += 1;
        if !line.starts_with("in ") {
            continue;
        }
        let (chain, rest) = split_chain(line);
        if chain.is_empty() {
            continue;
        }
        // `N errors:` then `err K: …` lines (an error may run over several lines).
        if rest.ends_with("errors:")
            && rest
                .split_whitespace()
                .next()
                .is_some_and(|n| n.parse::<usize>().is_ok())
        {
            let mut current: Option<String> = None;
            while i < lines.len() {
                let l = lines[i].trim_start();
                let numbered = l
                    .strip_prefix("err ")
                    .and_then(|r| r.split_once(": "))
                    .filter(|(k, _)| k.parse::<usize>().is_ok());
                match (numbered, &mut current) {
                    (Some((_, text)), _) => {
                        if let Some(done) = current.take() {
                            out.push(one(&chain, &done));
                        }
                        current = Some(text.to_string());
                    }
                    (None, Some(c)) if !l.is_empty() && !l.starts_with("in ") => {
                        c.push(' ');
                        c.push_str(l);
                    }
                    _ => break,
                }
                i += 1;
            }
            if let Some(done) = current {
                out.push(one(&chain, &done));
            }
        } else {
            out.push(one(&chain, rest));
        }
    }
    out
}

/// `in ./a: in .helmfiles[1]: in ./b: rest` → (["./a", ".helmfiles[1]", "./b"], "rest").
fn split_chain(line: &str) -> (Vec<String>, &str) {
    let mut chain = Vec::new();
    let mut rest = line;
    while let Some(r) = rest.strip_prefix("in ") {
        match r.split_once(": ") {
            Some((file, after)) if !file.contains(' ') => {
                chain.push(file.to_string());
                rest = after;
            }
            _ => break,
        }
    }
    (chain, rest)
}

fn one(chain: &[String], text: &str) -> HelmfileError {
    let (release, text) = match text
        .strip_prefix("failed processing release ")
        .and_then(|r| r.split_once(": "))
    {
        Some((name, rest)) => (Some(name.to_string()), rest),
        None => (None, text),
    };
    let values_file = text
        .strip_prefix("failed to render values files \"")
        .and_then(|r| r.split_once('"'))
        .map(|(f, _)| f.to_string());
    HelmfileError {
        chain: chain.to_vec(),
        release,
        values_file,
        text: text.to_string(),
    }
}

/// helmfile's words for one error, shortened to what a reader needs: the values file with
/// the line and column its template failed at, and the template's own sentence
/// (`environments/default/bkrepo-values.yaml.gotmpl:3:18: executing … map has no entry for
/// key "appSecret"`). Other errors stay as helmfile wrote them.
pub fn said(e: &HelmfileError) -> String {
    let (Some(file), Some((_, after))) = (&e.values_file, e.text.split_once("because of template: ")) else {
        return e.text.clone();
    };
    // `stringTemplate:1:16: executing "stringTemplate" at <…>: map has no entry…`
    let mut parts = after.splitn(4, ':');
    let (_, line, col, rest) = (parts.next(), parts.next(), parts.next(), parts.next());
    match (line, col, rest) {
        (Some(l), Some(c), Some(rest)) if l.parse::<u32>().is_ok() && c.parse::<u32>().is_ok() => {
            format!("failed to render values file {file}:{l}:{c}:{rest}")
        }
        _ => e.text.clone(),
    }
}

/// The values files helmfile skipped as missing (`missingFileHandler: Warn`/`Info`).
pub fn skipped_files(stderr: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in stderr.lines() {
        let Some(rest) = l.split_once("skipping missing ").map(|(_, r)| r) else {
            continue;
        };
        let Some(file) = rest.split('"').nth(1) else {
            continue;
        };
        if !out.iter().any(|o| o == file) {
            out.push(file.to_string());
        }
    }
    out
}

/// For a `map has no entry for key "K"` error, what helmfile skipped that may have defined
/// it, said as a note: the skipped values file named as the key is (`app_secret.yaml` for
/// `appSecret`), else every skipped file. `None` when the error is another or nothing was
/// skipped.
pub fn skipped_note(e: &HelmfileError, skipped: &[String]) -> Option<String> {
    let key = e
        .text
        .rsplit_once("map has no entry for key \"")
        .and_then(|(_, k)| k.split_once('"'))
        .map(|(k, _)| k)?;
    let (files, named) = likely_source(key, skipped);
    match (files.as_slice(), named) {
        ([], _) => None,
        ([one], true) => Some(format!(
            "helmfile skipped the missing values file {one} (its missingFileHandler lets it), which by its name defines `{key}`"
        )),
        (many, _) => Some(format!(
            "helmfile skipped the missing values file(s) {} (missingFileHandler), where `{key}` may be defined",
            many.join(", ")
        )),
    }
}

/// The skipped values files that may define a missing key, and whether one is named as it.
fn likely_source<'a>(key: &str, skipped: &'a [String]) -> (Vec<&'a str>, bool) {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect::<String>()
    };
    let key = norm(key);
    let named: Vec<&str> = skipped
        .iter()
        .filter(|f| {
            let stem = std::path::Path::new(f.as_str())
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = stem.split('.').next().unwrap_or("");
            norm(stem) == key
        })
        .map(String::as_str)
        .collect();
    if named.is_empty() {
        (skipped.iter().map(String::as_str).collect(), false)
    } else {
        (named, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real helmfile v0.166.0's `sync` of a nested state whose two releases' values fail.
    const SYNC: &str = r#"skipping missing environment values file matching "environments/default/app_secret.yaml"
Building dependency release=fine, chart=/c
in ./helmfile.yaml: in .helmfiles[1]: in ./apps.yaml.gotmpl: 2 errors:
err 0: failed processing release auth: failed to render values files "environments/default/auth-values.yaml.gotmpl": failed to render [environments/default/auth-values.yaml.gotmpl], because of template: stringTemplate:1:16: executing "stringTemplate" at <.Values.appSecret.auth>: map has no entry for key "appSecret"
err 1: failed processing release repo: failed to render values files "environments/default/repo-values.yaml.gotmpl": failed to render [environments/default/repo-values.yaml.gotmpl], because of template: stringTemplate:1:16: executing "stringTemplate" at <.Values.appSecret.repo>: map has no entry for key "appSecret"
"#;

    #[test]
    fn each_error_of_the_list_with_its_release_file_and_line() {
        let errors = parse(SYNC);
        assert_eq!(errors.len(), 2);
        assert_eq!(
            errors[0].chain,
            ["./helmfile.yaml", ".helmfiles[1]", "./apps.yaml.gotmpl"]
        );
        assert_eq!(errors[0].release.as_deref(), Some("auth"));
        assert_eq!(errors[1].release.as_deref(), Some("repo"));
        assert_eq!(
            errors[1].values_file.as_deref(),
            Some("environments/default/repo-values.yaml.gotmpl")
        );
        assert!(errors[1].blocks_its_file());
        assert_eq!(
            said(&errors[1]),
            "failed to render values file environments/default/repo-values.yaml.gotmpl:1:16: executing \"stringTemplate\" at <.Values.appSecret.repo>: map has no entry for key \"appSecret\""
        );
        let skipped = skipped_files(SYNC);
        assert_eq!(skipped, ["environments/default/app_secret.yaml"]);
        assert_eq!(
            skipped_note(&errors[0], &skipped).as_deref(),
            Some("helmfile skipped the missing values file environments/default/app_secret.yaml (its missingFileHandler lets it), which by its name defines `appSecret`")
        );
        let other = ["a.yaml".to_string(), "b.yaml".to_string()];
        assert_eq!(
            skipped_note(&errors[0], &other).as_deref(),
            Some("helmfile skipped the missing values file(s) a.yaml, b.yaml (missingFileHandler), where `appSecret` may be defined")
        );
    }

    #[test]
    fn one_error_on_its_line() {
        let e = parse("Templating release=x\nin ./helmfile.yaml: in ./apps.yaml: failed to render values files \"v.yaml\": boom\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].release, None);
        assert_eq!(e[0].values_file.as_deref(), Some("v.yaml"));
        assert_eq!(e[0].text, "failed to render values files \"v.yaml\": boom");
        assert!(parse("Error: helm said no\n").is_empty());
    }
}
