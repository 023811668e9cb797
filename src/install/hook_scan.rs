//! What a helmfile hook's script will create, read and never run: the namespaces a
//! `prepare`/`presync` hook makes (`kubectl create namespace X`, or a `kind: Namespace`
//! document piped into `kubectl apply -f -`), with the hook's args put in for `$1`…
//! (seed 004's bkce7: `bash ./scripts/create_bcs_namespace.sh bcs-system`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::HelmfileHook;

/// The events that run before a release's objects are created.
pub const BEFORE_SYNC: &[&str] = &["prepare", "presync", "preapply"];

/// What a scan of one hook found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Created {
    /// Namespaces the hook certainly creates.
    pub namespaces: Vec<String>,
    /// It creates a namespace whose name the scan cannot tell (a variable it cannot
    /// follow): never taken as a pass.
    pub unsure: bool,
    /// The script read (for messages): `scripts/create_bcs_namespace.sh`.
    pub script: Option<PathBuf>,
}

const SHELLS: &[&str] = &["sh", "bash", "dash", "ksh", "zsh", "ash"];

/// The namespaces `h` creates when helmfile runs it, from its command and its script.
pub fn namespaces(h: &HelmfileHook) -> Created {
    let mut out = Created::default();
    if !h.events.iter().any(|e| BEFORE_SYNC.contains(&e.as_str())) {
        return out;
    }
    let name = Path::new(&h.command)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The text to read, and what its $1, $2… are.
    let (text, positional): (String, &[String]) = if name == "kubectl" {
        (format!("kubectl {}", h.args.join(" ")), &[])
    } else if SHELLS.contains(&name.as_str()) {
        match h.args.split_first() {
            Some((c, rest)) if c == "-c" => match rest.split_first() {
                // `sh -c 'script' $0 $1…`
                Some((script, after)) => (script.clone(), after.get(1..).unwrap_or(&[])),
                None => return out,
            },
            Some((script, rest)) => match read(&h.dir, script) {
                Some((path, text)) => {
                    out.script = Some(path);
                    (text, rest)
                }
                None => return out,
            },
            None => return out,
        }
    } else if h.command.contains('/') {
        match read(&h.dir, &h.command) {
            Some((path, text)) => {
                out.script = Some(path);
                (text, &h.args[..])
            }
            None => return out,
        }
    } else {
        return out;
    };
    scan(&text, positional, &mut out);
    out
}

fn read(dir: &Path, script: &str) -> Option<(PathBuf, String)> {
    let path = if Path::new(script).is_absolute() {
        PathBuf::from(script)
    } else {
        dir.join(script.trim_start_matches("./"))
    };
    let bytes = std::fs::read(&path).ok()?;
    Some((
        PathBuf::from(script),
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

/// `$1`, `${1}`, `$NS`, `${NS}` and `${NS:-default}` put in where the script's own simple
/// assignments (`NS=$1`, `NS=${1:-bcs-system}`) or the hook's args tell them.
fn expand(word: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, default, len) = if let Some(body) = after.strip_prefix('{') {
            match body.find('}') {
                Some(end) => {
                    let inner = &body[..end];
                    let (n, d) = match inner.split_once(":-") {
                        Some((n, d)) => (n, Some(d)),
                        None => (inner, None),
                    };
                    (n.to_string(), d.map(String::from), end + 2)
                }
                None => (String::new(), None, 0),
            }
        } else {
            let n: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `$1x` is `$1` then x, as the shell reads it.
            let n = match n.chars().next() {
                Some(c) if c.is_ascii_digit() => c.to_string(),
                _ => n,
            };
            let len = n.len();
            (n, None, len)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        match vars.get(&name).cloned().or(default) {
            Some(v) => out.push_str(&v),
            // Left as written: the caller sees a `$` and is unsure.
            None => out.push_str(&rest[i..i + 1 + len]),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

fn scan(text: &str, positional: &[String], out: &mut Created) {
    let mut vars: HashMap<String, String> = positional
        .iter()
        .enumerate()
        .map(|(i, a)| ((i + 1).to_string(), a.clone()))
        .collect();
    let mut heredoc: Option<(String, String)> = None;
    let mut mentions_namespace_kind = false;
    for line in text.lines() {
        if let Some((end, body)) = &mut heredoc {
            if line.trim() == end.as_str() {
                let body = std::mem::take(body);
                heredoc = None;
                namespace_documents(&body, &vars, out);
            } else {
                body.push_str(line);
                body.push('\n');
            }
            continue;
        }
        let code = strip_comment(line).trim();
        if code.contains("kind: Namespace") {
            mentions_namespace_kind = true;
        }
        // A simple assignment: NAME=value (the value expanded, quotes dropped).
        if let Some((name, value)) = code.split_once('=') {
            let name = name.strip_prefix("export ").unwrap_or(name).trim();
            if !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && !value.contains(' ')
            {
                let value = expand(value.trim_matches(|c| c == '"' || c == '\''), &vars);
                vars.insert(name.to_string(), value);
                continue;
            }
        }
        if let Some(tag) = heredoc_end(code) {
            heredoc = Some((tag, String::new()));
        }
        for segment in code.split(['|', ';', '&']) {
            let words: Vec<String> = segment
                .split_whitespace()
                .map(|w| expand(w.trim_matches(|c| c == '"' || c == '\''), &vars))
                .collect();
            let Some(k) = words
                .iter()
                .position(|w| w == "kubectl" || w.ends_with("/kubectl"))
            else {
                continue;
            };
            let rest: Vec<&String> = words[k + 1..].iter().filter(|w| !w.starts_with('-')).collect();
            if let [create, kind, name, ..] = rest.as_slice() {
                if create.as_str() == "create" && ["namespace", "ns"].contains(&kind.as_str()) {
                    push(out, name);
                }
            }
        }
    }
    if mentions_namespace_kind && out.namespaces.is_empty() {
        out.unsure = true;
    }
}

/// The line up to an unquoted `#` that starts a word.
pub fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

/// The word that ends a here-document this line opens (`cat <<'EOF' | kubectl apply -f -`).
pub fn heredoc_end(code: &str) -> Option<String> {
    let (_, tag) = code.split_once("<<")?;
    let tag = tag.trim_start_matches('-').trim();
    let word = tag.split_whitespace().next()?;
    Some(word.trim_matches(|c| c == '\'' || c == '"').to_string())
}

/// Each `kind: Namespace` document of a heredoc body, its name expanded.
fn namespace_documents(body: &str, vars: &HashMap<String, String>, out: &mut Created) {
    for doc in body.split("\n---") {
        if !doc.contains("Namespace") {
            continue;
        }
        let expanded: String = doc.lines().map(|l| expand(l, vars) + "\n").collect();
        let Ok(v) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&expanded) else {
            out.unsure = true;
            continue;
        };
        if v.get("kind").and_then(serde_yaml_ng::Value::as_str) != Some("Namespace") {
            continue;
        }
        match v
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(serde_yaml_ng::Value::as_str)
        {
            Some(name) => push(out, name),
            None => out.unsure = true,
        }
    }
}

fn push(out: &mut Created, name: &str) {
    if name.contains('$') || name.is_empty() {
        out.unsure = true;
    } else if !out.namespaces.iter().any(|n| n == name) {
        out.namespaces.push(name.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(command: &str, args: &[&str], dir: &Path) -> HelmfileHook {
        HelmfileHook {
            release: Some("bcs".into()),
            file: "helmfile.yaml".into(),
            dir: dir.to_path_buf(),
            name: None,
            events: vec!["prepare".into()],
            command: command.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn a_namespace_document_piped_into_kubectl_apply_with_the_hooks_arg() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
        std::fs::write(
            dir.path().join("scripts/ns.sh"),
            "#!/bin/bash\nset -e\nNS=${1:-fallback}\ncat <<EOF | kubectl apply -f -\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: $NS\n  labels: {a: b}\nEOF\n",
        )
        .unwrap();
        let c = namespaces(&hook("bash", &["./scripts/ns.sh", "bcs-system"], dir.path()));
        assert_eq!(c.namespaces, ["bcs-system"]);
        assert!(!c.unsure);
        assert_eq!(c.script, Some(PathBuf::from("./scripts/ns.sh")));
        // Without the arg, the script's own default.
        let c = namespaces(&hook("bash", &["./scripts/ns.sh"], dir.path()));
        assert_eq!(c.namespaces, ["fallback"]);
    }

    #[test]
    fn kubectl_create_namespace_and_what_the_scan_cannot_tell() {
        let dir = tempfile::tempdir().unwrap();
        let c = namespaces(&hook("kubectl", &["create", "namespace", "x"], dir.path()));
        assert_eq!(c.namespaces, ["x"]);
        let c = namespaces(&hook(
            "sh",
            &["-c", "kubectl create ns \"$1\" --dry-run=client", "sh", "y"],
            dir.path(),
        ));
        assert_eq!(c.namespaces, ["y"]);
        let c = namespaces(&hook("sh", &["-c", "kubectl create ns $(cat name)"], dir.path()));
        assert!(c.unsure && c.namespaces.is_empty(), "{c:?}");
        let c = namespaces(&hook("sh", &["-c", "kubectl create ns $WHO"], dir.path()));
        assert!(c.unsure, "{c:?}");
        let mut later = hook("kubectl", &["create", "ns", "z"], dir.path());
        later.events = vec!["postsync".into()];
        assert_eq!(namespaces(&later), Created::default());
    }
}
