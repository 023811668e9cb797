//! Running local binaries (helm, helmfile) through `std::process`, always under a timeout.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The first non-empty stderr line, for messages ("Error: could not find tiller").
    pub fn stderr_line(&self) -> &str {
        self.stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
    }
}

/// Run `program args…` with `PATH` as given; the child is killed if it outlives `timeout`.
pub async fn run<I, S>(
    program: &Path,
    args: I,
    path_env: Option<&OsStr>,
    timeout: Duration,
) -> Result<Output, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_with::<I, S, &OsStr>(program, args, path_env, &[], timeout).await
}

/// `run`, with more variables in the child's environment.
pub async fn run_with<I, S, V>(
    program: &Path,
    args: I,
    path_env: Option<&OsStr>,
    env: &[(&str, V)],
    timeout: Duration,
) -> Result<Output, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(format!(
            "{} did not finish within {}",
            program.display(),
            humantime::format_duration(timeout)
        )),
        Ok(Err(e)) => Err(format!("cannot run {}: {e}", program.display())),
        Ok(Ok(out)) => Ok(Output {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
    }
}
