use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::check::{
    Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::install::HelmfileHook;

const HOOK_COMMAND_NOT_FOUND: Code = Code {
    code: "hook-command-not-found",
    explain: "a hook's command is not on PATH, or its path (relative to the helmfile's directory) does not exist: helmfile sync stops there",
};
const HOOK_NOT_EXECUTABLE: Code = Code {
    code: "hook-not-executable",
    explain: "a hook's script has no execute bit: helmfile panics with \"fork/exec …: permission denied\" (seed 004)",
};
const HOOK_INTERPRETER_MISSING: Code = Code {
    code: "hook-interpreter-missing",
    explain: "the #! interpreter of a hook's script (or the name env is given) is not there",
};
const HOOK_CALLS_MISSING: Code = Code {
    code: "hook-calls-missing-command",
    explain: "a hook's shell script calls commands by name that are not on PATH (a scan of its text: can be wrong, so a warning)",
};
const HOOK_COMMAND_TEMPLATE: Code = Code {
    code: "hook-command-template",
    explain: "a hook's command is a template helmfile renders at sync: it cannot be checked before",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: "tools.helmfile-hooks",
        phase: Phase::Tools,
        title: "the helmfile's hooks can run",
        requires: &[],
        install: InstallUse::Fed,
        codes: &[
            HOOK_COMMAND_NOT_FOUND,
            HOOK_NOT_EXECUTABLE,
            HOOK_INTERPRETER_MISSING,
            HOOK_CALLS_MISSING,
            HOOK_COMMAND_TEMPLATE,
        ],
        host_network: false,
        roll_up: None,
        explain: r#"Why: `helmfile sync` runs the helmfile's hooks (`prepare`, `presync`, `postsync`,
`cleanup`, …) itself, with the commands they name, in the directory of the file that
declares them. A hook that cannot start stops the install before helm starts. On a
BlueKing CE 7 bundle whose scripts lost their execute bit, three steps ended with:

    panic: fork/exec ./scripts/add_bkrepo_bucket.sh: permission denied

What it looks at: every hook of the helmfile (from the install model; preflight never runs
them), without running it: a command given as a path exists, relative to the directory of
the helmfile that declares it (as helmfile runs it), and is executable; a script's `#!`
interpreter exists (for `#!/usr/bin/env NAME`, NAME on PATH); a command given by name is
on PATH. Those fail. It also scans a shell script for the commands it calls by name and
warns about those not on PATH — a scan of the text, which can be wrong, and says so. A
command that is a template (`{{ … }}`) cannot be checked: warn.

Fix: `chmod +x` the script, install the missing interpreter or command, or put its
directory on PATH."#,
    },
};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HelmfileHooks {}

/// The events a `helmfile sync` / `apply` fires.
const SYNC_EVENTS: &[&str] = &[
    "prepare",
    "preapply",
    "presync",
    "postsync",
    "postapply",
    "cleanup",
];

/// Shell words that are not commands looked up on PATH.
const SHELL_WORDS: &[&str] = &[
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "for",
    "while",
    "until",
    "do",
    "done",
    "case",
    "esac",
    "in",
    "function",
    "select",
    "time",
    "return",
    "exit",
    "export",
    "local",
    "declare",
    "typeset",
    "readonly",
    "set",
    "unset",
    "shift",
    "source",
    ".",
    "eval",
    "exec",
    "cd",
    "echo",
    "printf",
    "read",
    "test",
    "[",
    "[[",
    "]]",
    "true",
    "false",
    "trap",
    "wait",
    "break",
    "continue",
    "let",
    "alias",
    "type",
    "command",
    "builtin",
    "hash",
    "getopts",
    "umask",
    "pwd",
    "pushd",
    "popd",
    "kill",
    "shopt",
    "mapfile",
    "readarray",
    "ulimit",
    "enable",
    "disown",
    "jobs",
    "bg",
    "fg",
    "!",
    "{",
    "}",
    ":",
];

/// Words after which the command itself follows.
const LEADING_WORDS: &[&str] = &[
    "if", "then", "else", "elif", "do", "while", "until", "!", "time", "{",
];

struct Problems {
    fail: Vec<Finding>,
    warn: Vec<Finding>,
    commands: Vec<String>,
}

/// A hook's finding: what it is about is the command helmfile will start.
fn hook(code: &Code, h: &HelmfileHook, message: String) -> Finding {
    let subject = Subject::tool(h.command.as_str());
    if code.code == HOOK_COMMAND_TEMPLATE.code || code.code == HOOK_CALLS_MISSING.code {
        Finding::warn(code, subject, message)
    } else {
        Finding::fail(code, subject, message)
    }
}

impl Check for HelmfileHooks {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            if ctx.installer() == Some(crate::check::Installer::Helm) {
                return Outcome::skip("the install is a chart for helm: there are no helmfile hooks");
            }
            let install = match ctx.install() {
                None => return Outcome::skip("no install given (--chart / --helmfile / install:)"),
                Some(Err(e)) => return Outcome::error(format!("the install could not be read: {e}")),
                Some(Ok(i)) => i,
            };
            let hooks: Vec<&HelmfileHook> = install
                .hooks
                .iter()
                .filter(|h| h.events.iter().any(|e| SYNC_EVENTS.contains(&e.as_str())))
                .collect();
            if hooks.is_empty() {
                return Outcome::skip("the install has no helmfile hook that `helmfile sync` runs");
            }
            let mut p = Problems {
                fail: Vec::new(),
                warn: Vec::new(),
                commands: Vec::new(),
            };
            for h in &hooks {
                look(ctx, h, &mut p);
            }
            let n = hooks.len();
            if p.fail.is_empty() && p.warn.is_empty() {
                return Outcome::pass(format!("{n} hook(s) can start"));
            }
            let fix = Fix::manual(
                "make each hook's command executable, install what it needs, or put its directory on PATH",
                p.commands,
            );
            let mut found = p.fail;
            found.extend(p.warn);
            Outcome::found(found, "").with_fix(fix)
        })
    }
}

fn who(h: &HelmfileHook) -> String {
    let of = match &h.release {
        Some(r) => format!("release {r}"),
        None => "the helmfile".to_string(),
    };
    let name = h.name.as_ref().map(|n| format!(" {n}")).unwrap_or_default();
    format!("{} hook{name} of {of} ({})", h.events.join("/"), h.file)
}

fn look(ctx: &Ctx, h: &HelmfileHook, p: &mut Problems) {
    if h.command.contains("{{") {
        p.warn.push(hook(
            &HOOK_COMMAND_TEMPLATE,
            h,
            format!(
                "{}: its command `{}` is a template and cannot be checked before helmfile renders it",
                who(h),
                h.command
            ),
        ));
        return;
    }
    if !h.command.contains('/') {
        if ctx.which(&h.command).is_none() {
            p.fail.push(hook(
                &HOOK_COMMAND_NOT_FOUND,
                h,
                format!("{}: `{}` is not on PATH", who(h), h.command),
            ));
        }
        return;
    }
    let path = if Path::new(&h.command).is_absolute() {
        PathBuf::from(&h.command)
    } else {
        h.dir.join(h.command.trim_start_matches("./"))
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) => {
            p.fail.push(hook(
                &HOOK_COMMAND_NOT_FOUND,
                h,
                format!("{}: {}: {e}", who(h), path.display()),
            ));
            return;
        }
    };
    if !meta.is_file() {
        p.fail.push(hook(
            &HOOK_COMMAND_NOT_FOUND,
            h,
            format!("{}: {} is not a file", who(h), path.display()),
        ));
        return;
    }
    if meta.permissions().mode() & 0o111 == 0 {
        // helmfile's own words when it tries.
        p.fail.push(hook(
            &HOOK_NOT_EXECUTABLE,
            h,
            format!(
                "{}: fork/exec {}: permission denied (not executable)",
                who(h),
                h.command
            ),
        ));
        p.commands.push(format!("chmod +x {}", path.display()));
    }
    let Ok(text) = std::fs::read(&path) else { return };
    let text = String::from_utf8_lossy(&text);
    let Some(shebang) = text.lines().next().and_then(|l| l.strip_prefix("#!")) else {
        return;
    };
    let mut words = shebang.split_whitespace();
    let interp = words.next().unwrap_or_default();
    let mut shell = Path::new(interp)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !Path::new(interp).is_file() {
        p.fail.push(hook(
            &HOOK_INTERPRETER_MISSING,
            h,
            format!(
                "{}: {}'s interpreter {interp} does not exist",
                who(h),
                path.display()
            ),
        ));
        return;
    }
    if shell == "env" {
        let name = words.find(|w| !w.starts_with('-')).unwrap_or_default();
        if ctx.which(name).is_none() {
            p.fail.push(hook(
                &HOOK_INTERPRETER_MISSING,
                h,
                format!(
                    "{}: {}'s interpreter `{name}` (#!{interp} {name}) is not on PATH",
                    who(h),
                    path.display()
                ),
            ));
            return;
        }
        shell = name.to_string();
    }
    if !["sh", "bash", "dash", "ksh", "zsh", "ash"].contains(&shell.as_str()) {
        return;
    }
    let missing: Vec<String> = called_commands(&text)
        .into_iter()
        .filter(|c| ctx.which(c).is_none())
        .collect();
    if !missing.is_empty() {
        p.warn.push(hook(
            &HOOK_CALLS_MISSING,
            h,
            format!(
                "{}: {} calls {} by name, not on PATH (a scan of the script's text, which can be wrong)",
                who(h),
                path.display(),
                missing.join(", ")
            ),
        ));
    }
}

/// The commands a shell script calls by name: the first word of each simple command, not a
/// shell keyword or builtin, a variable, an assignment or a function the script defines.
fn called_commands(script: &str) -> Vec<String> {
    let mut functions = Vec::new();
    for line in script.lines() {
        let t = line.trim();
        let t = t.strip_prefix("function ").unwrap_or(t);
        if let Some((name, _)) = t.split_once("()") {
            functions.push(name.trim().to_string());
        } else if line.trim().starts_with("function ") {
            if let Some(name) = t.split_whitespace().next() {
                functions.push(name.trim_end_matches('{').to_string());
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    let mut heredoc: Option<String> = None;
    for line in script.lines() {
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        let code = crate::install::hook_scan::strip_comment(line);
        if let Some(tag) = crate::install::hook_scan::heredoc_end(code) {
            heredoc = Some(tag);
        }
        for segment in code.split(['|', ';', '&', '(', ')', '`']) {
            // Past assignments and the words that lead into a command (`if ! cmd`, `do cmd`).
            let Some(first) = segment
                .split_whitespace()
                .find(|w| !(w.contains('=') || LEADING_WORDS.contains(w)))
            else {
                continue;
            };
            if first.contains('=')
                || SHELL_WORDS.contains(&first)
                || functions.iter().any(|f| f == first)
                || out.iter().any(|o| o == first)
                || !first
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'))
                || first.starts_with(['-', '.'])
                || first.chars().all(|c| c.is_ascii_digit())
            {
                continue;
            }
            out.push(first.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commands_a_script_calls_by_name() {
        let script = "#!/bin/bash\nset -e\n# kubectl in a comment\nlog() { echo \"$1\"; }\nNS=${1:-default}\nif ! kubectl get ns \"$NS\"; then\n  log missing\nfi\nresp=$(curl -s http://x | jq -r .id) # mc too\nFOO=1 bkrepo-cli add --bucket x\ncat <<EOF\nnotacommand here\nEOF\nfor i in 1 2; do sleep 1; done\n";
        assert_eq!(
            called_commands(script),
            vec!["kubectl", "curl", "jq", "bkrepo-cli", "cat", "sleep"]
        );
    }
}
