//! Names the git commit and the target in `preflight --version`.
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PREFLIGHT_COMMIT={commit}");
    println!(
        "cargo:rustc-env=PREFLIGHT_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    // A new commit (HEAD moves, or the branch it names does) rebuilds the version string.
    println!("cargo:rerun-if-changed=.git/HEAD");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(r) = head.strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=.git/{}", r.trim());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
