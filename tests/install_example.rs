//! scripts/install-example.sh: `helmfile sync` runs only when preflight passed.

mod common;

use common::*;

fn run_installer(s: &Scenario, profile: &str, extra_env: &[(&str, &str)]) -> Run {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-example.sh");
    // A helmfile that records that the installer reached `helmfile sync`.
    let log = s.dir.path().join("helmfile.log");
    s.script_on_path(
        "helmfile",
        &format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    );
    std::os::unix::fs::symlink(bin(), s.bin().join("preflight")).unwrap();
    let host = s.host().display().to_string();
    let mut cmd = std::process::Command::new("/bin/bash");
    cmd.env_clear()
        .envs(&s.env)
        .env("PREFLIGHT_PROFILE", profile)
        .envs(extra_env.iter().copied())
        .arg(script)
        .args(["--host-root", &host]);
    Run(cmd.output().unwrap())
}

fn synced(s: &Scenario) -> Option<String> {
    std::fs::read_to_string(s.dir.path().join("helmfile.log")).ok()
}

#[test]
fn failing_preflight_stops_the_install() {
    let s = Scenario::new();
    s.host_file("proc/sys/kernel/osrelease", "6.1.0\n")
        .host_file("lib/modules/6.1.0/modules.dep", "");
    s.host_file("proc/modules", "overlay 1 0 - Live 0x0\n");
    let p = s.profile("checks:\n  node.conntrack: {}\n");
    let run = run_installer(&s, &p, &[]);
    assert_eq!(run.code(), 1);
    assert!(run
        .stdout()
        .contains("× the conntrack kernel module is available"));
    assert!(run.stderr().contains("not installing"));
    assert_eq!(synced(&s), None, "helmfile must not run");
}

#[test]
fn passing_preflight_runs_helmfile_sync() {
    let s = Scenario::new();
    s.host_file("proc/sys/kernel/osrelease", "6.1.0\n")
        .host_file("lib/modules/6.1.0/modules.dep", "");
    s.host_file("proc/modules", "nf_conntrack 1 0 - Live 0x0\n");
    let p = s.profile("checks:\n  node.conntrack: {}\n");
    let run = run_installer(&s, &p, &[("HELMFILE_FILE", "base.yaml")]);
    assert_eq!(run.code(), 0, "{}{}", run.stdout(), run.stderr());
    assert_eq!(synced(&s).as_deref(), Some("-f base.yaml sync\n"));
}

#[test]
fn undecided_checks_stop_unless_allowed() {
    let s = Scenario::new();
    s.host_file("proc/sys/kernel/osrelease", "6.1.0\n")
        .host_file("lib/modules/6.1.0/modules.dep", "");
    let p = s.profile("checks:\n  node.conntrack: {}\n");
    let run = run_installer(&s, &p, &[]);
    assert_eq!(run.code(), 3);
    assert_eq!(synced(&s), None);
    let s2 = Scenario::new();
    s2.host_file("proc/sys/kernel/osrelease", "6.1.0\n")
        .host_file("lib/modules/6.1.0/modules.dep", "");
    let p2 = s2.profile("checks:\n  node.conntrack: {}\n");
    let run = run_installer(&s2, &p2, &[("PREFLIGHT_ALLOW_UNDECIDED", "1")]);
    assert_eq!(run.code(), 0);
    assert!(synced(&s2).is_some());
}

#[test]
fn profile_error_stops_the_install() {
    let s = Scenario::new();
    let p = s.profile("checks:\n  node.nope: {}\n");
    let run = run_installer(&s, &p, &[]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("preflight did not run (exit 2)"));
    assert_eq!(synced(&s), None);
}
