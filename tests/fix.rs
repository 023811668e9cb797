//! `preflight --fix`: every automatic fix applied and re-checked to pass, re-running is a
//! no-op, and the safety rules: no TTY without --yes changes nothing, --dry-run changes
//! nothing, unsafe fixes only with --unsafe-fixes, deletes carry a UID precondition.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{cluster, unique, Cluster};
use common::*;

const BK_PINS: &str = "checks:\n  node.hosts:\n    pins: {hub.bktencent.com: [\"49.234.165.79\"]}\n";
/// Comments, CRLF, no final newline, a wrong pin: all must survive outside the block.
const MESSY_HOSTS: &[u8] = b"# managed by hand\r\n127.0.0.1 localhost\r\n\r\n43.135.100.7 hub.bktencent.com   # singapore\r\n::1 ip6-localhost";

fn messy_hosts(s: &Scenario) -> std::path::PathBuf {
    let p = s.host().join("etc/hosts");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, MESSY_HOSTS).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
    p
}

#[test]
fn seed004_hosts_pin_written_as_a_block_and_rechecked() {
    let s = Scenario::new();
    let hosts = messy_hosts(&s);
    let p = s.profile(BK_PINS);
    let (run, doc) = s.json(&["--profile", &p, "--fix", "--yes"]);
    assert_eq!(
        run.code(),
        0,
        "exit code reflects the state after fixing: {}",
        run.stderr()
    );
    assert_eq!(status(&doc, "node.hosts"), "pass");
    assert_eq!(entry(&doc, "node.hosts")["fixed"], true);
    assert!(message(&doc, "node.hosts").starts_with("hub.bktencent.com → 49.234.165.79 ("));
    let mut want = b"# BEGIN preflight\r\n49.234.165.79 hub.bktencent.com\r\n# END preflight\r\n".to_vec();
    want.extend_from_slice(MESSY_HOSTS);
    assert_eq!(
        std::fs::read(&hosts).unwrap(),
        want,
        "block first, the rest byte for byte"
    );
    assert_eq!(
        std::fs::metadata(&hosts).unwrap().permissions().mode() & 0o777,
        0o444,
        "mode kept"
    );
    let backup = s.host().join("etc/hosts.preflight.bak");
    assert_eq!(std::fs::read(&backup).unwrap(), MESSY_HOSTS);
    // The plan went to stderr because stdout carries the JSON document.
    assert!(run
        .stderr()
        .contains("[safe] node.hosts: pin 49.234.165.79 hub.bktencent.com"));

    // Again: nothing to do, nothing written, backup untouched.
    let (run, doc) = s.json(&["--profile", &p, "--fix", "--yes"]);
    assert_eq!(run.code(), 0);
    assert_eq!(entry(&doc, "node.hosts")["fixed"], false);
    assert!(run.stderr().contains("fix: nothing to fix automatically"));
    assert_eq!(std::fs::read(&hosts).unwrap(), want);
    assert_eq!(std::fs::read(&backup).unwrap(), MESSY_HOSTS);
}

#[test]
fn changed_pin_rewrites_the_block_in_place() {
    let s = Scenario::new();
    let hosts = messy_hosts(&s);
    s.json(&["--profile", &s.profile(BK_PINS), "--fix", "--yes"]);
    let moved = "checks:\n  node.hosts:\n    pins: {hub.bktencent.com: [\"49.234.165.80\"], mirror.local: [\"10.9.9.9\"]}\n";
    let (run, _) = s.json(&["--profile", &s.profile(moved), "--fix", "--yes"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let mut want = b"# BEGIN preflight\r\n49.234.165.80 hub.bktencent.com\r\n10.9.9.9 mirror.local\r\n# END preflight\r\n".to_vec();
    want.extend_from_slice(MESSY_HOSTS);
    assert_eq!(
        std::fs::read(&hosts).unwrap(),
        want,
        "one block, never duplicated"
    );
}

#[test]
fn no_tty_and_no_yes_refuses_up_front_and_runs_nothing() {
    let s = Scenario::new();
    let hosts = messy_hosts(&s);
    let host = s.host().display().to_string();
    for output in ["human", "json"] {
        let run = s.run(&[
            "--host-root",
            &host,
            "--profile",
            &s.profile(BK_PINS),
            "--fix",
            "-o",
            output,
        ]);
        assert_eq!(run.code(), 2, "a usage error, like any other");
        assert_eq!(
            run.stderr().trim(),
            "preflight: error: --fix needs --yes when stdin is not a terminal (nothing can be confirmed); add --yes to apply, or --dry-run to see the plan"
        );
        assert_eq!(run.stdout(), "", "nothing ran, so nothing is reported");
    }
    assert_eq!(std::fs::read(&hosts).unwrap(), MESSY_HOSTS);
    assert!(!s.host().join("etc/hosts.preflight.bak").exists());
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let s = Scenario::new();
    let hosts = messy_hosts(&s);
    let host = s.host().display().to_string();
    let run = s.run(&[
        "--host-root",
        &host,
        "--profile",
        &s.profile(BK_PINS),
        "--fix",
        "--dry-run",
        "--yes",
    ]);
    assert_eq!(run.code(), 1);
    assert!(run.stdout().contains("dry run: nothing was changed"));
    assert_eq!(std::fs::read(&hosts).unwrap(), MESSY_HOSTS);
}

/// Run preflight on a pseudo-terminal; `at_prompt` runs when "[y/N]" shows, then `answer`.
fn on_tty(s: &Scenario, args: &[&str], at_prompt: impl FnOnce(), answer: &str) -> (i32, String) {
    let script = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("script"))
        .find(|p| p.exists())
        .expect("script(1)");
    let cmd = std::iter::once(bin().display().to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(script)
        .env_clear()
        .envs(&s.env)
        .env("TERM", "dumb")
        .env("NO_COLOR", "1")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = Arc::clone(&out);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let started = Instant::now();
    while !out.lock().unwrap().contains("[y/N]") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no prompt: {}",
            out.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    at_prompt();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(answer.as_bytes()).unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    // The terminal turns \n into \r\n.
    let text = out.lock().unwrap().replace("\r\n", "\n");
    (status.code().unwrap_or(-1), text)
}

#[test]
fn on_a_terminal_it_asks_once_and_no_means_no() {
    let s = Scenario::new();
    let hosts = messy_hosts(&s);
    let host = s.host().display().to_string();
    let p = s.profile(BK_PINS);
    let args = [
        "--host-root",
        host.as_str(),
        "--profile",
        p.as_str(),
        "--fix",
        "--no-progress",
    ];
    let (code, out) = on_tty(&s, &args, || {}, "n\n");
    assert!(out.contains("Apply 1 fix? [y/N]"), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    assert_eq!(code, 1);
    assert_eq!(std::fs::read(&hosts).unwrap(), MESSY_HOSTS);
    let (code, out) = on_tty(&s, &args, || {}, "y\n");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("fixed node.hosts: pinned hub.bktencent.com → 49.234.165.79"),
        "{out}"
    );
    assert!(
        out.contains(
            "after --fix\n-----------\n✓ pinned names resolve to the expected IPs [node.hosts] (fixed)"
        ),
        "{out}"
    );
}

const CONNTRACK_MISSING: &str = "overlay 151552 0 - Live 0x0\n";
const RECORDING_MODPROBE: &str = "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/modprobe.log\"\n";

#[test]
fn seed001_conntrack_fix_under_a_host_root_persists_but_only_prints_modprobe() {
    let s = Scenario::new();
    s.host_file("proc/sys/kernel/osrelease", "6.1.0\n")
        .host_file("lib/modules/6.1.0/modules.dep", "")
        .host_file("proc/modules", CONNTRACK_MISSING)
        .script_on_path("modprobe", RECORDING_MODPROBE);
    let (run, doc) = s.json(&["--only", "node.conntrack", "--fix", "--yes"]);
    let persist = s.host().join("etc/modules-load.d/preflight-conntrack.conf");
    assert_eq!(std::fs::read_to_string(&persist).unwrap(), "nf_conntrack\n");
    assert!(
        !s.bin().join("modprobe.log").exists(),
        "modprobe must not run against a --host-root"
    );
    assert!(run.stderr().contains(&format!(
        "fixed node.conntrack: wrote {}; load it on the host itself (not run, --host-root is not /): modprobe nf_conntrack",
        persist.display()
    )));
    // Still not loaded: the report says so, and the exit code follows.
    assert_eq!(status(&doc, "node.conntrack"), "fail");
    assert_eq!(codes(&doc, "node.conntrack"), ["conntrack-not-loaded"]);
    assert_eq!(run.code(), 1);
}

/// A fake host as `/`: chroot into a tree whose /usr is the real one (read-only), in a
/// private mount namespace. Needs root (as in CI).
#[test]
fn seed001_conntrack_fix_on_the_live_root_runs_modprobe() {
    let tree = tempfile::tempdir().unwrap();
    let t = tree.path();
    for d in [
        "usr",
        "dev",
        "proc/sys/kernel",
        "lib/modules/6.1.0",
        "stand",
        "etc",
        "tmp",
    ] {
        std::fs::create_dir_all(t.join(d)).unwrap();
    }
    std::fs::write(t.join("proc/modules"), CONNTRACK_MISSING).unwrap();
    std::fs::write(t.join("dev/null"), "").unwrap();
    std::fs::write(t.join("proc/sys/kernel/osrelease"), "6.1.0\n").unwrap();
    std::fs::write(t.join("lib/modules/6.1.0/modules.dep"), "").unwrap();
    std::os::unix::fs::symlink("usr/bin", t.join("bin")).unwrap();
    std::os::unix::fs::symlink("usr/lib64", t.join("lib64")).unwrap();
    std::os::unix::fs::symlink("../usr/lib/x86_64-linux-gnu", t.join("lib/x86_64-linux-gnu")).unwrap();
    std::fs::copy(bin(), t.join("preflight")).unwrap();
    write_exec(&t.join("stand/modprobe"), RECORDING_MODPROBE);
    let inner = format!(
        "mount --bind /usr {t}/usr && mount -o remount,bind,ro {t}/usr && mount --bind /dev/null {t}/dev/null && exec chroot {t} /preflight --host-root / --only node.conntrack --fix --yes -o json --no-progress",
        t = t.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &inner])
        .env_clear()
        .env("PATH", "/stand:/usr/sbin:/usr/bin")
        .env("HOME", "/tmp")
        .output()
        .unwrap();
    if !out.status.success() && out.status.code() != Some(1) && std::env::var_os("CI").is_none() {
        eprintln!(
            "SKIP: cannot chroot here (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        std::fs::read_to_string(t.join("stand/modprobe.log")).unwrap_or_default(),
        "nf_conntrack\n",
        "modprobe called with exactly the module: {stderr}"
    );
    assert!(
        stderr.contains(
            "fixed node.conntrack: modprobe nf_conntrack; wrote /etc/modules-load.d/preflight-conntrack.conf"
        ),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(t.join("etc/modules-load.d/preflight-conntrack.conf")).unwrap(),
        "nf_conntrack\n"
    );
}

#[test]
fn seed004_bundled_helm_and_helmfile_are_installed_into_usr_local_bin() {
    let s = Scenario::new();
    // The installer ships its own binaries; the node has an old helm and no helmfile.
    let bundle = s.dir.path().join("installer/bin");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::copy(real_tool("helm-3.17.2/helm"), bundle.join("helm")).unwrap();
    std::fs::copy(real_tool("helmfile-0.166.0/helmfile"), bundle.join("helmfile")).unwrap();
    s.on_path("helm", &real_tool("helm-3.11.1/helm"));
    let local_bin = s.host_dir("usr/local/bin");
    let mut s = s;
    let path = std::env::join_paths([local_bin.clone(), s.bin()]).unwrap();
    s.env.insert("PATH".into(), path);
    let b = bundle.display();
    let p = s.profile(&format!(
        "checks:\n  tools.helmfile-on-path: {{bundled_bin_dir: {b}}}\n  tools.helm-version: {{bundled_bin_dir: {b}}}\n"
    ));
    let (before, doc) = s.json(&["--profile", &p]);
    assert_eq!(before.code(), 1);
    assert_eq!(
        fix_commands(&doc, "tools.helm-version"),
        vec![format!("install -m 0755 {b}/helm /usr/local/bin/helm")]
    );
    let (run, doc) = s.json(&["--profile", &p, "--fix", "--yes"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(status(&doc, "tools.helm-version"), "pass");
    assert!(message(&doc, "tools.helm-version").starts_with("helm v3.17.2+gcc0bbbd at "));
    assert_eq!(status(&doc, "tools.helmfile-on-path"), "pass");
    for name in ["helm", "helmfile"] {
        let mode = std::fs::metadata(local_bin.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{name}");
    }
}

#[test]
fn path_lacking_usr_local_bin_is_never_fixed_by_editing_dotfiles() {
    let s = Scenario::new();
    std::os::unix::fs::symlink(
        real_tool("helmfile-0.166.0/helmfile"),
        s.host_dir("usr/local/bin").join("helmfile"),
    )
    .unwrap();
    let (run, doc) = s.json(&["--only", "tools.helmfile-on-path", "--fix", "--yes"]);
    assert_eq!(run.code(), 1);
    assert_eq!(entry(&doc, "tools.helmfile-on-path")["fix"]["automatic"], false);
    assert!(run.stderr().contains("fix: nothing to fix automatically"));
    assert!(fix_commands(&doc, "tools.helmfile-on-path")[0].starts_with("export PATH="));
}

// ---------------------------------------------------------------- cluster (unsafe)

fn cluster_run(s: &Scenario, c: &Cluster, profile: &str, extra: &[&str]) -> (Run, serde_json::Value) {
    let p = s.profile(profile);
    let kc = c.kubeconfig();
    let mut args = vec!["--profile", p.as_str(), "--kubeconfig", kc.as_str()];
    args.extend_from_slice(extra);
    s.json(&args)
}

fn foreign_configmap(c: &Cluster, ns: &str, name: &str) -> String {
    c.apply(&format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{app.kubernetes.io/managed-by: Helm}}\n  annotations: {{meta.helm.sh/release-name: other, meta.helm.sh/release-namespace: {ns}}}\n"));
    let (_, uid) = c.kubectl(
        &[
            "get",
            "configmap",
            "-n",
            ns,
            name,
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        None,
    );
    uid
}

#[test]
fn unsafe_deletes_need_unsafe_fixes_then_delete_exactly_that_object() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let ns = unique("fix-own");
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    foreign_configmap(&c, &ns, "settings");
    let profile = format!("release: {{name: mine, namespace: {ns}}}\nchecks:\n  cluster.helm-ownership: {{objects: [{{kind: ConfigMap, name: settings}}]}}\n");
    let (run, doc) = cluster_run(&s, &c, &profile, &["--fix", "--yes"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr()
            .contains("[unsafe, skipped without --unsafe-fixes] cluster.helm-ownership: delete the objects"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr()
            .contains(&format!("        kubectl delete configmaps settings -n {ns}\n")),
        "{}",
        run.stderr()
    );
    assert!(run
        .stderr()
        .contains("fix: nothing to fix automatically (1 unsafe fixes need --unsafe-fixes)"));
    assert_eq!(entry(&doc, "cluster.helm-ownership")["fixed"], false);
    assert!(
        c.kubectl(&["get", "configmap", "-n", &ns, "settings"], None).0,
        "not deleted without --unsafe-fixes"
    );

    let (run, doc) = cluster_run(&s, &c, &profile, &["--fix", "--unsafe-fixes", "--yes"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(run.stderr().contains(&format!(
        "fixed cluster.helm-ownership: deleted ConfigMap {ns}/settings"
    )));
    assert_eq!(status(&doc, "cluster.helm-ownership"), "pass");
    assert_eq!(entry(&doc, "cluster.helm-ownership")["fixed"], true);
    assert!(!c.kubectl(&["get", "configmap", "-n", &ns, "settings"], None).0);
    c.delete(&["namespace", &ns]);
}

#[test]
fn an_object_recreated_after_the_check_is_never_deleted() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let ns = unique("fix-uid");
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    let first_uid = foreign_configmap(&c, &ns, "settings");
    let profile = format!("release: {{name: mine, namespace: {ns}}}\nchecks:\n  cluster.helm-ownership: {{objects: [{{kind: ConfigMap, name: settings}}]}}\n");
    let p = s.profile(&profile);
    let kc = c.kubeconfig();
    let args = [
        "--profile",
        p.as_str(),
        "--kubeconfig",
        kc.as_str(),
        "--fix",
        "--unsafe-fixes",
        "--no-progress",
    ];
    let mut second_uid = String::new();
    let (code, out) = on_tty(
        &s,
        &args,
        || {
            // Between the check and the confirmation, someone re-creates it.
            let (ok, o) = c.kubectl(&["delete", "configmap", "-n", &ns, "settings"], None);
            assert!(ok, "{o}");
            second_uid = foreign_configmap(&c, &ns, "settings");
        },
        "y\n",
    );
    assert_ne!(first_uid, second_uid);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("fix of cluster.helm-ownership failed: "), "{out}");
    assert!(out.contains("the UID in the precondition ("), "{out}");
    assert!(
        out.contains("The object might have been deleted and then recreated (409)"),
        "{out}"
    );
    let (_, uid_now) = c.kubectl(
        &[
            "get",
            "configmap",
            "-n",
            &ns,
            "settings",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        None,
    );
    assert_eq!(uid_now, second_uid, "the re-created object survives");
    c.delete(&["namespace", &ns]);
}

#[test]
fn leftover_objects_of_another_release_are_deleted_by_uid() {
    let Some(c) = cluster() else { return };
    // A CRD of this test's own, so seed000's ScopeDefinition test is not disturbed.
    c.apply("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: leftovers.fixtest.preflight.test}\nspec:\n  group: fixtest.preflight.test\n  scope: Cluster\n  names: {kind: Leftover, plural: leftovers, singular: leftover}\n  versions:\n  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}\n");
    let (ok, out) = c.kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "crd/leftovers.fixtest.preflight.test",
            "--timeout=30s",
        ],
        None,
    );
    assert!(ok, "{out}");
    let names: Vec<String> = (0..3).map(|_| unique("old")).collect();
    for n in &names {
        c.apply(&format!("apiVersion: fixtest.preflight.test/v1\nkind: Leftover\nmetadata:\n  name: {n}\n  labels: {{app.kubernetes.io/managed-by: Helm}}\n  annotations: {{meta.helm.sh/release-name: oam, meta.helm.sh/release-namespace: oam-system}}\n"));
    }
    let s = Scenario::new();
    let profile = format!(
        "{}checks:\n  cluster.leftover-scopedefinition: {{group: fixtest.preflight.test, kind: Leftover}}\n",
        "release: {name: kubevela, namespace: vela-system}\n"
    );
    let (run, doc) = cluster_run(&s, &c, &profile, &["--fix", "--unsafe-fixes", "--yes"]);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    assert_eq!(status(&doc, "cluster.leftover-scopedefinition"), "pass");
    assert_eq!(entry(&doc, "cluster.leftover-scopedefinition")["fixed"], true);
    for n in &names {
        assert!(!c.kubectl(&["get", "leftover", n], None).0, "{n} still there");
    }
}

#[test]
fn seed000_cert_manager_release_uninstalled_and_namespace_gone() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    s.on_path("helm", &real_tool("helm-3.17.2/helm"));
    let ns = unique("cert-manager");
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini-release");
    // A real helm release of its own, as a previous cert-manager install would leave.
    let helm = Command::new(real_tool("helm-3.17.2/helm"))
        .args([
            "install",
            "cert-manager",
            chart.to_str().unwrap(),
            "--namespace",
            &ns,
            "--create-namespace",
        ])
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .env("HOME", s.dir.path().join("home"))
        .output()
        .unwrap();
    assert!(helm.status.success(), "{}", String::from_utf8_lossy(&helm.stderr));
    let profile = format!("release: {{name: kubevela, namespace: vela-system}}\nchecks:\n  cluster.leftover-cert-manager: {{namespace: {ns}, wait: 60s}}\n");
    let (run, doc) = cluster_run(&s, &c, &profile, &["--fix", "--unsafe-fixes", "--yes"]);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    assert!(run.stderr().contains(&format!(
        "fixed cluster.leftover-cert-manager: helm uninstall cert-manager -n {ns}; deleted Namespace {ns}; namespace {ns} is gone"
    )), "{}", run.stderr());
    assert_eq!(
        message(&doc, "cluster.leftover-cert-manager"),
        format!("no namespace {ns}")
    );
    assert_eq!(entry(&doc, "cluster.leftover-cert-manager")["fixed"], true);
}

#[test]
fn the_hosts_commands_shown_do_what_apply_does() {
    // Without a block (inserted first) and with one (rewritten in place).
    for before in [
        "127.0.0.1 localhost\n43.135.100.7 hub.bktencent.com\n".to_string(),
        "127.0.0.1 localhost\n# BEGIN preflight\n10.0.0.9 mirror.local\n# END preflight\n::1 ip6-localhost\n"
            .to_string(),
    ] {
        let s = Scenario::new();
        s.host_file("etc/hosts", &before);
        let p = s.profile(BK_PINS);
        let (_, doc) = s.json(&["--profile", &p]);
        let cmds = fix_commands(&doc, "node.hosts");
        // Run the shown commands, with the real sed, on a copy of the file.
        let by_hand = s.dir.path().join("by-hand");
        std::fs::create_dir_all(&by_hand).unwrap();
        std::fs::write(by_hand.join("hosts"), &before).unwrap();
        let script = cmds
            .join("\n")
            .replace("/etc/hosts", &by_hand.join("hosts").display().to_string());
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // And let --fix do it.
        let (run, _) = s.json(&["--profile", &p, "--fix", "--yes"]);
        assert_eq!(run.code(), 0, "{}", run.stderr());
        assert_eq!(
            std::fs::read_to_string(by_hand.join("hosts")).unwrap(),
            std::fs::read_to_string(s.host().join("etc/hosts")).unwrap(),
            "the commands shown ({cmds:?}) and apply disagree"
        );
        assert_eq!(
            std::fs::read_to_string(by_hand.join("hosts.preflight.bak")).unwrap(),
            before,
            "both keep the same backup"
        );
    }
}

#[test]
fn a_fixed_prerequisite_lets_its_dependents_run_again_through_the_engine() {
    let s = Scenario::new();
    let bundle = s.dir.path().join("installer/bin");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::copy(real_tool("helm-3.17.2/helm"), bundle.join("helm")).unwrap();
    // An old helm where the bundled one goes: replaced, and kept as a backup.
    let local_bin = s.host_dir("usr/local/bin");
    std::fs::copy(real_tool("helm-3.11.1/helm"), local_bin.join("helm")).unwrap();
    let plugin = s.dir.path().join("plugins/helm-diff");
    std::fs::create_dir_all(&plugin).unwrap();
    std::fs::write(
        plugin.join("plugin.yaml"),
        "name: diff\nversion: 3.9.4\nusage: diff\ndescription: diff\ncommand: $HELM_PLUGIN_DIR/bin/diff\n",
    )
    .unwrap();
    let mut s = s;
    s.env.insert("PATH".into(), local_bin.clone().into_os_string());
    let b = bundle.display();
    let p = s.profile(&format!(
        "checks:\n  tools.helm-version: {{bundled_bin_dir: {b}}}\n  tools.helm-plugins: {{required: [diff]}}\n"
    ));
    let (_, doc) = s.json(&["--profile", &p]);
    assert_eq!(status(&doc, "tools.helm-plugins"), "skip");
    let fix = &entry(&doc, "tools.helm-version")["fix"];
    assert_eq!(fix["safety"], "safe");
    assert!(
        fix["summary"]
            .as_str()
            .unwrap()
            .ends_with("(the /usr/local/bin/helm there now is kept as /usr/local/bin/helm.preflight.bak)"),
        "{fix}"
    );
    assert_eq!(
        fix_commands(&doc, "tools.helm-version"),
        vec![
            "cp -p /usr/local/bin/helm /usr/local/bin/helm.preflight.bak".to_string(),
            format!("install -m 0755 {b}/helm /usr/local/bin/helm"),
        ]
    );
    let (run, doc) = s.json(&["--profile", &p, "--fix", "--yes"]);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    assert_eq!(status(&doc, "tools.helm-version"), "pass");
    assert_eq!(entry(&doc, "tools.helm-version")["fixed"], true);
    // The dependent ran again after the fix, instead of keeping its stale skip.
    assert_eq!(
        status(&doc, "tools.helm-plugins"),
        "pass",
        "{}",
        message(&doc, "tools.helm-plugins")
    );
    assert_eq!(entry(&doc, "tools.helm-plugins")["fixed"], false);
    assert_eq!(
        std::fs::read(local_bin.join("helm.preflight.bak")).unwrap(),
        std::fs::read(real_tool("helm-3.11.1/helm")).unwrap(),
        "the replaced helm is kept"
    );
}

fn helm_install(c: &Cluster, s: &Scenario, release: &str, ns: &str) {
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini-release");
    let out = Command::new(real_tool("helm-3.17.2/helm"))
        .args([
            "install",
            release,
            chart.to_str().unwrap(),
            "--namespace",
            ns,
            "--create-namespace",
        ])
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .env("HOME", s.dir.path().join("home"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn helm_uninstall(c: &Cluster, s: &Scenario, release: &str, ns: &str) {
    let out = Command::new(real_tool("helm-3.17.2/helm"))
        .args(["uninstall", release, "--namespace", ns])
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .env("HOME", s.dir.path().join("home"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_cert_manager_fix_uninstalls_only_the_release_it_saw() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    s.on_path("helm", &real_tool("helm-3.17.2/helm"));
    let ns = unique("cert-manager");
    helm_install(&c, &s, "cert-manager", &ns);
    let profile = format!("release: {{name: kubevela, namespace: vela-system}}\nchecks:\n  cluster.leftover-cert-manager: {{namespace: {ns}}}\n");
    let p = s.profile(&profile);
    let kc = c.kubeconfig();
    let args = [
        "--profile",
        p.as_str(),
        "--kubeconfig",
        kc.as_str(),
        "--fix",
        "--unsafe-fixes",
        "--no-progress",
    ];
    let (code, out) = on_tty(
        &s,
        &args,
        || {
            // Between the check and the "y": the release is replaced by a new one of the
            // same name (new storage secret, new UID).
            helm_uninstall(&c, &s, "cert-manager", &ns);
            helm_install(&c, &s, "cert-manager", &ns);
        },
        "y\n",
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("[unsafe] cluster.leftover-cert-manager: uninstall release {ns}/cert-manager (as seen now: sh.helm.release.v1.cert-manager.v1 (uid ")), "{out}");
    assert!(
        out.contains(&format!("fix of cluster.leftover-cert-manager failed: helm release {ns}/cert-manager changed since the check looked (storage secrets then: sh.helm.release.v1.cert-manager.v1 (uid ")),
        "{out}"
    );
    assert!(
        out.contains("): nothing was uninstalled; run preflight again"),
        "{out}"
    );
    // The new release and its namespace are untouched.
    let (ok, _) = c.kubectl(
        &["get", "secret", "-n", &ns, "sh.helm.release.v1.cert-manager.v1"],
        None,
    );
    assert!(ok, "the re-installed release survives");
    let (ok, _) = c.kubectl(&["get", "namespace", &ns], None);
    assert!(ok);
    helm_uninstall(&c, &s, "cert-manager", &ns);
    c.delete(&["namespace", &ns]);
}

#[test]
fn the_cert_manager_fix_never_uninstalls_the_profiles_own_release() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    s.on_path("helm", &real_tool("helm-3.17.2/helm"));
    let ns = unique("own");
    // Our release's annotations, but not helm's label: helm refuses to adopt it.
    helm_install(&c, &s, "kubevela", &ns);
    c.apply(&format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  annotations: {{meta.helm.sh/release-name: kubevela, meta.helm.sh/release-namespace: {ns}}}\n"));
    let profile = format!("release: {{name: kubevela, namespace: {ns}}}\nchecks:\n  cluster.leftover-cert-manager: {{namespace: {ns}}}\n");
    let (run, doc) = cluster_run(&s, &c, &profile, &["--fix", "--unsafe-fixes", "--yes"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let msg = message(&doc, "cluster.leftover-cert-manager");
    assert_eq!(
        codes(&doc, "cluster.leftover-cert-manager"),
        ["namespace-label-missing"]
    );
    assert!(msg.ends_with(&format!("its annotations name this very release ({ns}/kubevela): add the missing label rather than uninstall anything")), "{msg}");
    assert_eq!(
        entry(&doc, "cluster.leftover-cert-manager")["fix"]["automatic"],
        false
    );
    assert_eq!(
        fix_commands(&doc, "cluster.leftover-cert-manager"),
        vec![format!(
            "kubectl label namespace {ns} app.kubernetes.io/managed-by=Helm"
        )]
    );
    let (ok, _) = c.kubectl(
        &["get", "secret", "-n", &ns, "sh.helm.release.v1.kubevela.v1"],
        None,
    );
    assert!(ok, "our own release is untouched");
    helm_uninstall(&c, &s, "kubevela", &ns);
    c.delete(&["namespace", &ns]);
}
