//! tools phase against the REAL helm v3.11.1 / v3.17.2 / v4.1.4 and helmfile v0.166.0.

mod common;

use common::*;

/// The tools phase of an installer that runs `helmfile apply` (which needs helm-diff).
const APPLY: [&str; 5] = ["--", "helmfile", "-f", "/nonexistent/helmfile.yaml", "apply"];

fn tools_only(s: &Scenario) -> (Run, serde_json::Value) {
    let mut args = vec![
        "--only",
        "tools.helmfile-on-path,tools.helm-version,tools.helm-plugins",
    ];
    args.extend(APPLY);
    s.json(&args)
}

#[test]
fn seed004_helmfile_in_usr_local_bin_but_path_lacks_it() {
    let s = Scenario::new();
    s.on_path("helm", &real_tool("helm-3.17.2/helm"));
    // The installer copied helmfile to /usr/local/bin; PATH has only the scenario's bin dir.
    std::os::unix::fs::symlink(
        real_tool("helmfile-0.166.0/helmfile"),
        s.host_dir("usr/local/bin").join("helmfile"),
    )
    .unwrap();
    let (run, doc) = s.json(&["--only", "tools.helmfile-on-path"]);
    assert_eq!(run.code(), 1);
    assert_eq!(status(&doc, "tools.helmfile-on-path"), "fail");
    assert_eq!(codes(&doc, "tools.helmfile-on-path"), ["helmfile-not-on-path"]);
    let msg = message(&doc, "tools.helmfile-on-path");
    assert!(
        msg.starts_with("helmfile is in /usr/local/bin but /usr/local/bin is not on PATH"),
        "{msg}"
    );
    assert_eq!(
        fix_commands(&doc, "tools.helmfile-on-path"),
        vec![
            "export PATH=\"$PATH:/usr/local/bin\"".to_string(),
            "echo 'export PATH=\"$PATH:/usr/local/bin\"' >> ~/.bashrc".to_string()
        ]
    );
}

#[test]
fn helmfile_on_path_reports_its_version() {
    let s = Scenario::new();
    s.on_path("helmfile", &real_tool("helmfile-0.166.0/helmfile"));
    let (run, doc) = s.json(&["--only", "tools.helmfile-on-path"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(status(&doc, "tools.helmfile-on-path"), "pass");
    let msg = message(&doc, "tools.helmfile-on-path");
    assert_eq!(
        msg,
        format!(
            "helmfile version 0.166.0 at {} (its Go build info; not started)",
            s.bin().join("helmfile").display()
        )
    );
}

#[test]
fn a_helmfile_whose_build_info_cannot_be_read_is_started() {
    // A wrapper script, as some installers ship: it has to run to be known.
    let s = Scenario::new();
    s.script_on_path(
        "helmfile",
        &format!(
            "#!/bin/sh\nexec {} \"$@\"\n",
            real_tool("helmfile-0.166.0/helmfile").display()
        ),
    );
    let (run, doc) = s.json(&["--only", "tools.helmfile-on-path"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "tools.helmfile-on-path"),
        format!(
            "helmfile version 0.166.0 at {}",
            s.bin().join("helmfile").display()
        )
    );
    // An x86-64 download cut short: no build info, and it does not run.
    let s = Scenario::new();
    let real = std::fs::read(real_tool("helmfile-0.166.0/helmfile")).unwrap();
    common::write_exec(&s.bin().join("helmfile"), "");
    std::fs::write(s.bin().join("helmfile"), &real[..4096]).unwrap();
    let (run, doc) = s.json(&["--only", "tools.helmfile-on-path"]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let msg = message(&doc, "tools.helmfile-on-path");
    assert_eq!(codes(&doc, "tools.helmfile-on-path"), ["helmfile-broken"]);
    assert!(
        msg.starts_with(&format!(
            "helmfile at {} does not run: ",
            s.bin().join("helmfile").display()
        )),
        "{msg}"
    );
}

#[test]
fn helmfile_nowhere_says_install_it() {
    let s = Scenario::new();
    let (run, doc) = s.json(&["--only", "tools.helmfile-on-path"]);
    assert_eq!(run.code(), 1);
    assert!(message(&doc, "tools.helmfile-on-path").starts_with("helmfile is not on PATH"));
    assert_eq!(codes(&doc, "tools.helmfile-on-path"), ["helmfile-missing"]);
    assert_eq!(
        fix_commands(&doc, "tools.helmfile-on-path"),
        vec!["install -m 0755 ./helmfile /usr/local/bin/helmfile".to_string()]
    );
}

#[test]
fn helmfile_not_executable_says_chmod() {
    let s = Scenario::new();
    s.host_file("usr/local/bin/helmfile", "not executable");
    let (_, doc) = s.json(&["--only", "tools.helmfile-on-path"]);
    assert_eq!(status(&doc, "tools.helmfile-on-path"), "fail");
    assert_eq!(codes(&doc, "tools.helmfile-on-path"), ["helmfile-not-on-path"]);
    assert_eq!(
        message(&doc, "tools.helmfile-on-path"),
        "helmfile is in /usr/local/bin but is not executable (/usr/local/bin/helmfile)"
    );
    assert_eq!(
        fix_commands(&doc, "tools.helmfile-on-path"),
        vec!["chmod 0755 /usr/local/bin/helmfile".to_string()]
    );
}

#[test]
fn seed004_helm_3_11_is_too_old_for_the_charts() {
    let s = Scenario::new();
    s.on_path("helm", &real_tool("helm-3.11.1/helm"));
    let (run, doc) = tools_only(&s);
    assert_eq!(run.code(), 1);
    assert_eq!(status(&doc, "tools.helm-version"), "fail");
    assert_eq!(codes(&doc, "tools.helm-version"), ["helm-too-old"]);
    let msg = message(&doc, "tools.helm-version");
    assert!(msg.starts_with("helm v3.11.1+g293b50c at "), "{msg}");
    assert!(
        msg.contains("is older than 3.12.0") && msg.contains("index of nil pointer"),
        "{msg}"
    );
    assert!(fix_summary(&doc, "tools.helm-version").starts_with("install helm 3.12.0 or newer"));
}

#[test]
fn helm_3_17_passes() {
    let s = Scenario::new();
    s.on_path("helm", &real_tool("helm-3.17.2/helm"));
    let (_, doc) = tools_only(&s);
    assert_eq!(status(&doc, "tools.helm-version"), "pass");
    assert!(message(&doc, "tools.helm-version").starts_with("helm v3.17.2+gcc0bbbd at "));
    assert_eq!(entry(&doc, "tools.helm-version")["fix"], serde_json::Value::Null);
}

#[test]
fn helm_4_passes() {
    let s = Scenario::new();
    s.on_path("helm", &real_tool("helm-4.1.4/helm"));
    let (_, doc) = tools_only(&s);
    assert_eq!(status(&doc, "tools.helm-version"), "pass");
    assert!(message(&doc, "tools.helm-version").starts_with("helm v4.1.4+g05fa379 at "));
}

#[test]
fn helm_2_is_a_failure_not_an_error() {
    let s = Scenario::new();
    s.script_on_path("helm", HELM2_STANDIN);
    let (run, doc) = tools_only(&s);
    assert_eq!(run.code(), 1);
    assert_eq!(status(&doc, "tools.helm-version"), "fail");
    assert_eq!(codes(&doc, "tools.helm-version"), ["helm-too-old"]);
    let msg = message(&doc, "tools.helm-version");
    assert!(
        msg.starts_with("helm v2.17.0+ga690bad at ") && msg.contains("is helm 2 (Tiller)"),
        "{msg}"
    );
    // helm-plugins depends on a usable helm
    assert_eq!(status(&doc, "tools.helm-plugins"), "skip");
    assert!(message(&doc, "tools.helm-plugins").contains("tools.helm-version"));
}

#[test]
fn profile_min_version_is_honoured() {
    let s = Scenario::new();
    s.on_path("helm", &real_tool("helm-3.17.2/helm"));
    let profile = s.profile("checks:\n  tools.helm-version: {min: \"3.18\"}\n");
    let (run, doc) = s.json(&["--profile", &profile]);
    assert_eq!(run.code(), 1);
    assert!(message(&doc, "tools.helm-version").contains("is older than 3.18.0"));
    assert_eq!(codes(&doc, "tools.helm-version"), ["helm-too-old"]);
}

#[test]
fn no_helm_fails_and_plugins_skip_naming_the_prerequisite() {
    let s = Scenario::new();
    let (_, doc) = tools_only(&s);
    assert_eq!(status(&doc, "tools.helm-version"), "fail");
    assert_eq!(codes(&doc, "tools.helm-version"), ["helm-missing"]);
    assert!(message(&doc, "tools.helm-version").starts_with("helm is not on PATH"));
    assert_eq!(status(&doc, "tools.helm-plugins"), "skip");
    assert_eq!(
        message(&doc, "tools.helm-plugins"),
        "skipped: prerequisite tools.helm-version did not pass (fail)"
    );
}

#[test]
fn helm_diff_plugin_found_by_helm_3_and_helm_4() {
    for helm in ["helm-3.17.2/helm", "helm-4.1.4/helm"] {
        let s = Scenario::new();
        s.on_path("helm", &real_tool(helm)).helm_plugin("diff", "3.9.4");
        let (_, doc) = tools_only(&s);
        assert_eq!(status(&doc, "tools.helm-plugins"), "pass", "{helm}");
        assert_eq!(
            message(&doc, "tools.helm-plugins"),
            "installed: diff 3.9.4",
            "{helm}"
        );
    }
}

#[test]
fn missing_helm_diff_plugin_fails_with_install_command() {
    for helm in ["helm-3.17.2/helm", "helm-4.1.4/helm"] {
        let s = Scenario::new();
        s.on_path("helm", &real_tool(helm))
            .helm_plugin("secrets", "4.6.0");
        let (run, doc) = tools_only(&s);
        assert_eq!(run.code(), 1, "{helm}");
        assert_eq!(status(&doc, "tools.helm-plugins"), "fail", "{helm}");
        assert_eq!(
            findings(&doc, "tools.helm-plugins"),
            vec![(
                "plugin-missing".to_string(),
                serde_json::json!({"type": "tool", "tool": "helm-diff"})
            )]
        );
        assert_eq!(
            message(&doc, "tools.helm-plugins"),
            "helm plugin not installed: diff (`helmfile apply` runs `helm diff` first)"
        );
        assert_eq!(
            fix_commands(&doc, "tools.helm-plugins"),
            vec!["helm plugin install https://github.com/databus23/helm-diff".to_string()]
        );
    }
}

#[test]
fn hung_helm_is_an_error_bounded_by_the_timeout() {
    let s = Scenario::new();
    s.script_on_path("helm", "#!/bin/sh\nexec /bin/sleep 30\n");
    let (run, doc) = s.json(&["--only", "tools.helm-version", "--timeout", "250ms"]);
    assert_eq!(run.code(), 3, "cannot decide: exit 3, not a pass");
    assert_eq!(status(&doc, "tools.helm-version"), "error");
    let msg = message(&doc, "tools.helm-version");
    assert!(
        msg.starts_with("cannot tell the version of ") && msg.ends_with("did not finish within 1s"),
        "{msg}"
    );
}

fn only_helm(s: &Scenario) -> (Run, serde_json::Value) {
    let mut args = vec!["--only", "tools.helm-version,tools.helm-plugins"];
    args.extend(APPLY);
    s.json(&args)
}

/// A `helm` on PATH that counts its starts, then runs the real one.
fn counting_helm(s: &Scenario, real: &str) -> std::path::PathBuf {
    let count = s.dir.path().join("helm-starts");
    s.script_on_path(
        "helm",
        &format!(
            "#!/bin/sh\necho \"$*\" >> {}\nexec {} \"$@\"\n",
            count.display(),
            real_tool(real).display()
        ),
    );
    count
}

#[test]
fn plugins_are_read_where_helm_looks_for_them_and_helm_starts_once() {
    for helm in ["helm-3.17.2/helm", "helm-4.1.4/helm"] {
        // HELM_PLUGINS, HELM_DATA_HOME, XDG_DATA_HOME, then HOME: helm's own order.
        for (var, rel) in [
            ("HELM_PLUGINS", "plugins"),
            ("HELM_DATA_HOME", "helm-data/plugins"),
            ("XDG_DATA_HOME", "xdg/helm/plugins"),
            ("HOME", "home/.local/share/helm/plugins"),
        ] {
            let mut s = Scenario::new();
            let count = counting_helm(&s, helm);
            s.env.remove("HELM_PLUGINS");
            let dir = s.dir.path().join(rel);
            let base = match var {
                "HELM_PLUGINS" => dir.clone(),
                "HELM_DATA_HOME" => s.dir.path().join("helm-data"),
                "XDG_DATA_HOME" => s.dir.path().join("xdg"),
                _ => s.dir.path().join("home"),
            };
            s.env.insert(var.into(), base.into_os_string());
            let plugin = dir.join("diff");
            std::fs::create_dir_all(&plugin).unwrap();
            std::fs::write(
                plugin.join("plugin.yaml"),
                "name: \"diff\"\nversion: \"3.9.4\"\nusage: \"diff\"\ndescription: \"diff\"\ncommand: \"$HELM_PLUGIN_DIR/bin/diff\"\n",
            )
            .unwrap();
            let (run, doc) = only_helm(&s);
            assert_eq!(run.code(), 0, "{helm} {var}: {}", run.stdout());
            assert_eq!(
                message(&doc, "tools.helm-plugins"),
                "installed: diff 3.9.4",
                "{helm} {var}"
            );
            let starts = std::fs::read_to_string(&count).unwrap();
            assert_eq!(
                starts.lines().collect::<Vec<_>>(),
                ["version --short"],
                "{helm} {var}"
            );
            // The real helm finds it in the same place.
            let out = std::process::Command::new(real_tool(helm))
                .args(["plugin", "list"])
                .env_clear()
                .envs(&s.env)
                .output()
                .unwrap();
            let listed = String::from_utf8_lossy(&out.stdout);
            assert!(
                listed.lines().any(|l| l.starts_with("diff")),
                "{helm} {var}: {listed}"
            );
        }
    }
}

#[test]
fn an_unreadable_plugin_yaml_asks_helm_itself() {
    // helm 3 refuses to list plugins past a broken plugin.yaml; helm 4 ignores that one.
    for (helm, want) in [
        (
            "helm-3.17.2/helm",
            (
                "error",
                "`helm plugin list` failed: failed to load plugins: failed to load plugin at",
            ),
        ),
        ("helm-4.1.4/helm", ("pass", "installed: diff 3.9.4")),
    ] {
        let s = Scenario::new();
        let count = counting_helm(&s, helm);
        s.helm_plugin("diff", "3.9.4");
        let broken = s.dir.path().join("plugins/broken");
        std::fs::create_dir_all(&broken).unwrap();
        std::fs::write(broken.join("plugin.yaml"), "name: [unclosed\n").unwrap();
        let (_, doc) = only_helm(&s);
        let starts = std::fs::read_to_string(&count).unwrap();
        assert_eq!(
            starts.lines().collect::<Vec<_>>(),
            ["version --short", "plugin list"],
            "{helm}"
        );
        assert_eq!(status(&doc, "tools.helm-plugins"), want.0, "{helm}");
        assert!(
            message(&doc, "tools.helm-plugins").starts_with(want.1),
            "{helm}: {doc}"
        );
    }
}
