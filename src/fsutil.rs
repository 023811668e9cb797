//! Writing host files the way a careful admin would: a temp file in the same directory,
//! the original's mode and owner, then an atomic rename.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Replace `path` with `bytes` atomically. An existing file keeps its mode and owner;
/// a new one gets `new_mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], new_mode: u32) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.preflight.tmp"));
    let existing = std::fs::metadata(path).ok();
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        let mode = existing
            .as_ref()
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(new_mode);
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        if let Some(m) = &existing {
            nix::unistd::chown(
                &tmp,
                Some(nix::unistd::Uid::from_raw(m.uid())),
                Some(nix::unistd::Gid::from_raw(m.gid())),
            )
            .map_err(std::io::Error::from)?;
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    Ok(())
}

/// Copy `path` to `backup` once, before the first change (never overwritten later).
pub fn backup_once(path: &Path, backup: &Path) -> Result<bool, String> {
    if backup.exists() || !path.exists() {
        return Ok(false);
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    write_atomic(backup, &bytes, 0o644)?;
    if let Ok(m) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(backup, m.permissions());
    }
    Ok(true)
}
