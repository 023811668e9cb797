//! This host, read under --host-root: no network, no cluster.

pub mod conntrack;
pub mod container_runtime_registries;
pub mod host_ports;
pub mod hosts;
pub mod hosts_block;
pub mod kernel_settings;
pub mod localpv_disk;

use crate::check::{Code, Ctx, Finding, Outcome, Subject};

/// Declared by the node checks that read a host file whose content decides.
pub const HOST_FILE_UNREADABLE: Code = Code {
    code: "host-file-unreadable",
    explain: "a file of the host the check needs (under --host-root) cannot be read (permission, I/O, or missing where the kernel always has it): what it says is not judged, so error",
};

/// A host file the check needed and could not read (where a missing file is an answer, the
/// check says that instead).
pub struct Unreadable {
    /// As the node names it (`/proc/modules`): the finding's subject.
    path: String,
    /// Where it was read, under --host-root, and why it failed.
    sentence: String,
}

impl Unreadable {
    pub fn new(ctx: &Ctx, path: &str, error: &std::io::Error) -> Self {
        Unreadable {
            path: path.to_string(),
            sentence: format!("cannot read {}: {error}", ctx.host_path(path).display()),
        }
    }

    pub fn outcome(&self) -> Outcome {
        Outcome::problem(Finding::error(
            &HOST_FILE_UNREADABLE,
            Subject::path(&self.path),
            &self.sentence,
        ))
    }
}
