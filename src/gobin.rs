//! The build information the Go toolchain embeds in every binary it links (the
//! `.go.buildinfo` section, what `go version -m BINARY` prints): a Go tool's own version,
//! read without starting it. Only the sections needed are read, never the whole binary.

use std::path::Path;

use object::read::elf::{ElfFile64, FileHeader};
use object::{Object, ObjectSection, ReadCache};

/// What `go version -m` shows: the main module's version and the build settings.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    pub go_version: String,
    /// The main module's version, unless the build left it `(devel)`.
    pub module_version: Option<String>,
    /// `-ldflags` of the build, as recorded.
    pub ldflags: Option<String>,
}

impl BuildInfo {
    /// The version the program prints: the value its build stamped with
    /// `-ldflags -X <pkg>.version=V` (helmfile: `go.szostok.io/version.version`), else the
    /// main module's version.
    pub fn program_version(&self) -> Option<String> {
        let stamped = self.ldflags.as_deref().and_then(|flags| {
            flags
                .split_whitespace()
                .skip_while(|t| *t != "-X")
                .filter(|t| *t != "-X")
                .find_map(|t| {
                    let (var, value) = t.split_once('=')?;
                    let name = var.rsplit('.').next()?;
                    (name.eq_ignore_ascii_case("version") && !value.is_empty()).then(|| value.to_string())
                })
        });
        stamped
            .or_else(|| self.module_version.clone())
            .map(|v| v.trim_start_matches('v').to_string())
    }
}

/// The build info of the ELF binary at `path`, when it is a Go binary for this machine.
/// `None` for anything else (a script, another architecture, an older Go, a damaged file):
/// then the program has to be started to know.
pub fn read(path: &Path) -> Option<BuildInfo> {
    let file = std::fs::File::open(path).ok()?;
    let cache = ReadCache::new(file);
    let elf = ElfFile64::<object::Endianness, _>::parse(&cache).ok()?;
    let header = elf.elf_header();
    let endian = elf.endian();
    let machine = header.e_machine(endian);
    let ours = if cfg!(target_arch = "x86_64") {
        object::elf::EM_X86_64
    } else if cfg!(target_arch = "aarch64") {
        object::elf::EM_AARCH64
    } else {
        return None;
    };
    if machine != ours {
        return None;
    }
    let data = elf.section_by_name(".go.buildinfo")?.data().ok()?;
    parse(data)
}

/// Go ≥ 1.18's inline format: a 32-byte header, then two length-prefixed strings.
fn parse(data: &[u8]) -> Option<BuildInfo> {
    let magic = b"\xff Go buildinf:";
    if data.len() < 32 || &data[..magic.len()] != magic || data[15] & 2 == 0 {
        return None;
    }
    let mut rest = &data[32..];
    let go_version = String::from_utf8_lossy(take_string(&mut rest)?).into_owned();
    let modinfo = take_string(&mut rest)?;
    // Framed by 16-byte sentinels.
    let modinfo = modinfo.get(16..modinfo.len().checked_sub(16)?)?;
    let modinfo = String::from_utf8_lossy(modinfo);
    let mut info = BuildInfo {
        go_version,
        ..Default::default()
    };
    for line in modinfo.lines() {
        let mut cells = line.split('\t');
        match (cells.next(), cells.next(), cells.next()) {
            (Some("mod"), Some(_), Some(v)) if v != "(devel)" && !v.is_empty() => {
                info.module_version = Some(v.to_string())
            }
            (Some("build"), Some(setting), _) => {
                if let Some(flags) = setting.strip_prefix("-ldflags=") {
                    info.ldflags = Some(flags.trim_matches('"').to_string());
                }
            }
            _ => {}
        }
    }
    Some(info)
}

/// An unsigned varint length, then that many bytes.
fn take_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let (&b, tail) = rest.split_first()?;
        *rest = tail;
        len |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let len = usize::try_from(len).ok()?;
    let s = rest.get(..len)?;
    *rest = &rest[len..];
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(go: &str, modinfo: &str) -> Vec<u8> {
        let mut d = b"\xff Go buildinf:".to_vec();
        d.extend([8u8, 2]);
        d.resize(32, 0);
        d.push(go.len() as u8);
        d.extend(go.as_bytes());
        let framed = format!("0123456789abcdef{modinfo}fedcba9876543210");
        let n = framed.len();
        d.extend([(n as u8 & 0x7f) | 0x80, (n >> 7) as u8]);
        d.extend(framed.as_bytes());
        d
    }

    #[test]
    fn the_stamped_version_then_the_modules() {
        let helmfile = "path\tgithub.com/helmfile/helmfile\nmod\tgithub.com/helmfile/helmfile\t(devel)\t\ndep\tx\tv1\th1:abc\nbuild\t-ldflags=\"-s -w -X go.szostok.io/version.version=0.166.0 -X go.szostok.io/version.commit=655e1f9\"\nbuild\tGOOS=linux\n".repeat(2);
        let info = parse(&blob("go1.22.4", &helmfile)).unwrap();
        assert_eq!(info.go_version, "go1.22.4");
        assert_eq!(info.module_version, None);
        assert_eq!(info.program_version().as_deref(), Some("0.166.0"));
        let tagged = parse(&blob("go1.24.0", "mod\texample.com/tool\tv1.2.3\th1:x\n")).unwrap();
        assert_eq!(tagged.program_version().as_deref(), Some("1.2.3"));
        let unknown = parse(&blob("go1.24.0", "mod\texample.com/tool\t(devel)\t\n")).unwrap();
        assert_eq!(unknown.program_version(), None);
        assert_eq!(parse(b"\xff Go buildinf:"), None);
        assert_eq!(parse(&[0u8; 64]), None);
    }

    #[test]
    fn not_a_go_binary_of_this_machine() {
        let dir = std::env::temp_dir().join(format!("gobin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("helmfile");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(read(&script), None);
        // This test binary: ELF for this machine, but not Go.
        assert_eq!(read(&std::env::current_exe().unwrap()), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
