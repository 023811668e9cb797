//! Local binaries the installer runs: helm, helmfile, helm plugins.

pub mod helm_plugins;
pub mod helm_version;
pub mod helmfile_hooks;
pub mod helmfile_on_path;
pub mod install_render;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::check::{Ctx, Fix, Observed, Outcome};
use crate::fsutil::write_atomic;

/// Where installers usually put binaries; seed 004's script copies helmfile to /usr/local/bin.
pub fn default_search_dirs() -> Vec<String> {
    [
        "/usr/local/bin",
        "/usr/bin",
        "/bin",
        "/usr/local/sbin",
        "/usr/sbin",
        "/opt/bin",
        "/snap/bin",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub enum Located {
    OnPath(PathBuf),
    /// Not on PATH, but present in a usual directory (the host path, e.g. /usr/local/bin).
    OffPath {
        dir: String,
        executable: bool,
    },
    Missing,
}

/// Find `name` as the installer's shell would (PATH), and if that fails, say where it is.
pub fn locate(ctx: &Ctx, name: &str, search_dirs: &[String]) -> Located {
    if let Some(found) = ctx.which(name) {
        return Located::OnPath(found);
    }
    for dir in search_dirs {
        let candidate = ctx.host_path(dir).join(name);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() {
                return Located::OffPath {
                    dir: dir.clone(),
                    executable: meta.permissions().mode() & 0o111 != 0,
                };
            }
        }
    }
    Located::Missing
}

/// `PATH` for messages (`<unset>` when the variable is missing).
pub fn path_display(ctx: &Ctx) -> String {
    ctx.path_env
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "<unset>".to_string())
}

pub fn is_on_path(ctx: &Ctx, dir: &str) -> bool {
    ctx.path_env
        .as_ref()
        .map(|p| std::env::split_paths(p).any(|d| d == std::path::Path::new(dir)))
        .unwrap_or(false)
}

/// The diagnosis and fix for a binary that exists but the shell cannot find or run.
pub fn off_path_problem(ctx: &Ctx, name: &str, dir: &str, executable: bool) -> (String, Fix) {
    let file = format!("{}/{name}", dir.trim_end_matches('/'));
    if !executable {
        return (
            format!("{name} is in {dir} but is not executable ({file})"),
            Fix::manual(
                format!("make {file} executable"),
                vec![format!("chmod 0755 {file}")],
            ),
        );
    }
    if is_on_path(ctx, dir) {
        // which() skipped it although the directory is on PATH: it is not a runnable file.
        return (
            format!("{name} is in {dir} (which is on PATH) but cannot be run as a program"),
            Fix::manual(
                format!("replace {file} with the linux-amd64 build of {name}"),
                vec![format!("file {file}")],
            ),
        );
    }
    let export = format!("export PATH=\"$PATH:{dir}\"");
    (
        format!(
            "{name} is in {dir} but {dir} is not on PATH (PATH={})",
            path_display(ctx)
        ),
        Fix::manual(
            format!(
                "add {dir} to PATH for this shell, and to the shell profile (e.g. ~/.bashrc) so it stays"
            ),
            vec![export.clone(), format!("echo '{export}' >> ~/.bashrc")],
        ),
    )
}

/// Where `--fix` installs a bundled binary.
pub const INSTALL_DIR: &str = "/usr/local/bin";

/// The installer's own copy of `name`, if the profile names a bundled_bin_dir holding it.
fn bundled(dir: &Option<String>, name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(dir.as_ref()?).join(name);
    p.is_file().then_some(p)
}

/// Installing the installer's copy: what `run` saw and `apply` does, and so what the fix
/// shows — one value for all three.
#[derive(Clone, Debug)]
pub struct BundledInstall {
    src: PathBuf,
    name: String,
    /// The binary already in /usr/local/bin, kept under this name before it is replaced.
    backup: Option<String>,
}

impl BundledInstall {
    fn new(ctx: &Ctx, src: PathBuf, name: &str) -> Self {
        let dst = ctx.host_path(INSTALL_DIR).join(name);
        let backup = dst
            .exists()
            .then(|| format!("{INSTALL_DIR}/{name}.preflight.bak"));
        BundledInstall {
            src,
            name: name.to_string(),
            backup,
        }
    }

    fn fix(&self) -> Fix {
        let dst = format!("{INSTALL_DIR}/{}", self.name);
        let mut commands = Vec::new();
        let mut summary = format!(
            "install the {} shipped with the installer ({}) into {INSTALL_DIR}",
            self.name,
            self.src.display()
        );
        if let Some(b) = &self.backup {
            commands.push(format!("cp -p {dst} {b}"));
            summary.push_str(&format!(" (the {dst} there now is kept as {b})"));
        }
        commands.push(format!("install -m 0755 {} {dst}", self.src.display()));
        Fix::automatic(summary, commands)
    }

    /// Copy to `<host-root>/usr/local/bin/<name>` atomically (temp file + rename), after
    /// keeping the binary it replaces.
    fn apply(&self, ctx: &Ctx) -> Result<String, String> {
        let bytes =
            std::fs::read(&self.src).map_err(|e| format!("cannot read {}: {e}", self.src.display()))?;
        let dir = ctx.host_path(INSTALL_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let dst = dir.join(&self.name);
        let mut done = Vec::new();
        if let Some(b) = &self.backup {
            let backup = ctx.host_path(b);
            let old = std::fs::read(&dst).map_err(|e| format!("cannot read {}: {e}", dst.display()))?;
            write_atomic(&backup, &old, 0o755)?;
            done.push(format!("kept the old {} as {}", dst.display(), backup.display()));
        }
        write_atomic(&dst, &bytes, 0o755)?;
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot chmod {}: {e}", dst.display()))?;
        done.push(format!("installed {} as {}", self.src.display(), dst.display()));
        Ok(done.join("; "))
    }
}

/// When `replaceable` (the binary is missing or too old) and the installer ships its own
/// copy, make installing that copy the (automatic) fix, and remember it for `apply`.
pub fn offer_bundled(
    ctx: &Ctx,
    dir: &Option<String>,
    offered: &Observed<BundledInstall>,
    name: &str,
    (outcome, replaceable): (Outcome, bool),
) -> Outcome {
    offered.set(None);
    match bundled(dir, name) {
        Some(src) if replaceable => {
            let install = BundledInstall::new(ctx, src, name);
            let fix = install.fix();
            offered.set(Some(install));
            outcome.with_fix(fix)
        }
        _ => outcome,
    }
}

/// `apply` of a check that offered its bundled binary.
pub fn apply_bundled(ctx: &Ctx, offered: &Observed<BundledInstall>) -> Result<String, String> {
    offered.get().ok_or("nothing was observed to fix")?.apply(ctx)
}
