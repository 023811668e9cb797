//! Any helm or helmfile user, with the installer's own command line (`-- helm …`,
//! `-- helmfile …`): what is asked follows from the install and its command, against the
//! REAL helm / helmfile and, where a prediction is proven, the test cluster.

mod common;

use std::process::Command;

use common::cluster::{cluster, unique};
use common::*;

fn tools_phase(s: &Scenario, install: &[&str]) -> (Run, serde_json::Value) {
    let mut args = vec!["--only", "tools"];
    args.extend_from_slice(install);
    s.json(&args)
}

#[test]
fn a_chart_for_helm_alone_needs_neither_helmfile_nor_a_plugin() {
    // A machine with helm 3.17.2 and nothing else: no helmfile, no diff plugin.
    let s = Scenario::new();
    s.on_path("helm", &real_tool("helm-3.17.2/helm"));
    let chart = fixture("mini-release");
    let short = ["--chart", chart.as_str(), "--release", "x", "--namespace", "y"];
    let prefixed = [
        "--",
        "helm",
        "install",
        "x",
        chart.as_str(),
        "-n",
        "y",
        "--atomic",
    ];
    for install in [&short[..], &prefixed[..]] {
        let (run, doc) = tools_phase(&s, install);
        assert_eq!(run.code(), 0, "{install:?}: {}", run.stdout());
        for id in [
            "tools.helmfile-on-path",
            "tools.helm-plugins",
            "tools.helmfile-hooks",
        ] {
            assert_eq!(
                status(&doc, id),
                "skip",
                "{install:?} {id}: {}",
                message(&doc, id)
            );
        }
        assert_eq!(status(&doc, "tools.helm-version"), "pass");
        assert_eq!(status(&doc, "tools.install-render"), "pass");
    }
    // The prefixed form says what it checked, and which flags change nothing it models.
    let (_, doc) = tools_phase(&s, &prefixed);
    assert_eq!(doc["install"]["command"], "helm install");
    assert_eq!(doc["install"]["not_modeled"], serde_json::json!(["--atomic"]));
    // A profile that asks for helmfile still gets it checked.
    let profile = s.profile("checks:\n  tools.helmfile-on-path: {always: true}\n");
    let mut args = vec!["--profile", profile.as_str()];
    args.extend_from_slice(&short);
    let (run, doc) = s.json(&args);
    assert_eq!(run.code(), 1);
    assert_eq!(codes(&doc, "tools.helmfile-on-path"), ["helmfile-missing"]);
}

#[test]
fn a_flag_helm_does_not_have_is_a_usage_error_naming_it() {
    let s = with_tools();
    let chart = fixture("mini-release");
    for (argv, named) in [
        (
            vec!["--", "helm", "install", "x", chart.as_str(), "--no-such-flag"],
            "--no-such-flag",
        ),
        (vec!["--", "helm", "upgrade", "x", chart.as_str(), "-Z"], "'Z'"),
        (
            vec!["--", "helmfile", "-f", "h.yaml", "--sync-args", "x", "template"],
            "--sync-args",
        ),
        (vec!["--", "helmfile", "-f", "h.yaml", "destroy"], "destroy"),
    ] {
        let run = s.run(&argv);
        assert_eq!(run.code(), 2, "{argv:?}");
        assert!(run.stderr().contains(named), "{argv:?}: {}", run.stderr());
    }
    // The real helm refuses the first the same way.
    let out = Command::new(real_tool("helm-3.17.2/helm"))
        .args(["install", "x", &chart, "--no-such-flag"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flag: --no-such-flag"));
}

/// A helmfile of one mini-release in a fresh namespace, with the env its templates read.
fn mini_helmfile(s: &mut Scenario, rel: &str, ns: &str) -> String {
    s.env.insert("MINI_RELEASE".into(), rel.into());
    s.env.insert("MINI_NAMESPACE".into(), ns.into());
    fixture("helmfile.yaml")
}

#[test]
fn helmfile_sync_needs_no_diff_plugin_and_helmfile_apply_does() {
    let Some(c) = cluster() else { return };
    let mut s = with_tools();
    let (rel, ns) = (unique("sync"), unique("nodiff"));
    let file = mini_helmfile(&mut s, &rel, &ns);
    let kc = c.kubeconfig();
    let judge = |verb: &str| {
        tools_phase(
            &s,
            &[
                "--kubeconfig",
                kc.as_str(),
                "--",
                "helmfile",
                "-f",
                file.as_str(),
                verb,
            ],
        )
    };
    let (sync_run, sync_doc) = judge("sync");
    let (apply_run, apply_doc) = judge("apply");
    let (diff_run, diff_doc) = judge("diff");
    // What the real helmfile does without the plugin: apply stops, sync installs.
    let (apply_ok, apply_out) = helmfile(&s, &c, &["-f", &file, "apply"]);
    let (sync_ok, sync_out) = helmfile(&s, &c, &["-f", &file, "sync"]);
    let _ = helm(&s, &c, &["uninstall", &rel, "-n", &ns]);
    c.delete(&["namespace", &ns]);

    assert_eq!(sync_run.code(), 0, "{}", sync_run.stdout());
    assert_eq!(status(&sync_doc, "tools.helm-plugins"), "skip");
    assert_eq!(sync_doc["install"]["command"], "helmfile sync");
    assert!(sync_ok, "{sync_out}");

    for (run, doc, verb) in [(apply_run, apply_doc, "apply"), (diff_run, diff_doc, "diff")] {
        assert_eq!(run.code(), 1, "{verb}: {}", run.stdout());
        assert_eq!(
            findings(&doc, "tools.helm-plugins"),
            vec![(
                "plugin-missing".to_string(),
                serde_json::json!({"type": "tool", "tool": "helm-diff"})
            )],
            "{verb}"
        );
        assert!(
            message(&doc, "tools.helm-plugins").contains(&format!("`helmfile {verb}`")),
            "{}",
            message(&doc, "tools.helm-plugins")
        );
    }
    assert!(!apply_ok, "helmfile apply without helm-diff: {apply_out}");
    assert!(apply_out.contains("diff"), "{apply_out}");
}

#[test]
fn helmfiles_global_flags_reach_the_render_and_the_helm_it_runs() {
    let s = with_tools();
    let dir = s.dir.path().join("state");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("helmfile.yaml.gotmpl");
    std::fs::write(
        &file,
        format!(
            "values:\n  - suffix: none\n---\nreleases:\n  - name: sv-{{{{ .Values.suffix }}}}\n    namespace: {{{{ .Namespace | default \"plain\" }}}}\n    chart: {}\n    set:\n      - name: mode\n        value: {{{{ .Values.suffix }}}}\n",
            fixture("mini-release")
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    let old_helm = real_tool("helm-3.11.1/helm").display().to_string();
    let (run, doc) = s.json(&[
        "--only",
        "tools.helm-version,tools.install-render",
        "--",
        "helmfile",
        "--helm-binary",
        &old_helm,
        "--file",
        &file,
        "--state-values-set",
        "suffix=abc",
        "-n",
        "chosen",
        "sync",
        "--concurrency",
        "1",
    ]);
    // The real helmfile, same flags: the release it lists.
    let out = Command::new(real_tool("helmfile-0.166.0/helmfile"))
        .args([
            "--helm-binary",
            &old_helm,
            "--file",
            &file,
            "--state-values-set",
            "suffix=abc",
            "-n",
            "chosen",
        ])
        .args(["list", "--skip-charts", "--output", "json"])
        .env_clear()
        .envs(&s.env)
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("[]"),
    )
    .unwrap();

    assert_eq!(listed[0]["name"], "sv-abc", "{listed}");
    assert_eq!(listed[0]["namespace"], "chosen", "{listed}");
    let rendered = &doc["install"]["releases_rendered"][0];
    assert_eq!(rendered["name"], listed[0]["name"]);
    assert_eq!(rendered["namespace"], listed[0]["namespace"]);
    assert_eq!(rendered["rendered"], true, "{rendered}");
    assert_eq!(
        doc["install"]["not_modeled"],
        serde_json::json!(["--concurrency=1"])
    );
    // helm 3.17.2 is on PATH, but helmfile sync will run the --helm-binary one.
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(codes(&doc, "tools.helm-version"), ["helm-too-old"]);
    assert!(
        message(&doc, "tools.helm-version").starts_with("helm v3.11.1"),
        "{}",
        message(&doc, "tools.helm-version")
    );
}

#[test]
fn hooks_of_a_release_the_selector_leaves_out_are_not_this_runs() {
    let Some(c) = cluster() else { return };
    let mut s = with_tools();
    let ns = unique("sel");
    let (kept, other) = (unique("kept"), unique("other"));
    s.env.insert("KEPT_RELEASE".into(), kept.clone().into());
    s.env.insert("OTHER_RELEASE".into(), other.clone().into());
    s.env.insert("MINI_NAMESPACE".into(), ns.clone().into());
    let file = format!("{}/helmfile.yaml", fixture("selected-hooks"));
    let kc = c.kubeconfig();
    let judge = |selector: &[&str]| {
        let mut args = vec!["--kubeconfig", kc.as_str(), "--", "helmfile", "-f", file.as_str()];
        args.extend_from_slice(selector);
        args.push("sync");
        tools_phase(&s, &args)
    };
    let (kept_run, kept_doc) = judge(&["-l", "part=kept"]);
    let (all_run, all_doc) = judge(&[]);
    let (kept_ok, kept_out) = helmfile(&s, &c, &["-f", &file, "-l", "part=kept", "sync"]);
    let (all_ok, all_out) = helmfile(&s, &c, &["-f", &file, "sync"]);
    let _ = helm(&s, &c, &["uninstall", &kept, "-n", &ns]);
    let _ = helm(&s, &c, &["uninstall", &other, "-n", &ns]);
    c.delete(&["namespace", &ns]);

    // Only "kept" syncs: its run has no hook to check, and the real sync goes through.
    assert_eq!(kept_run.code(), 0, "{}", kept_run.stdout());
    assert_eq!(status(&kept_doc, "tools.helmfile-hooks"), "skip");
    assert!(kept_ok, "{kept_out}");
    // Without the selector the hook is this run's, and helmfile stops at it.
    assert_eq!(all_run.code(), 1, "{}", all_run.stdout());
    assert_eq!(
        codes(&all_doc, "tools.helmfile-hooks"),
        ["hook-command-not-found"]
    );
    assert!(!all_ok, "{all_out}");
    assert!(all_out.contains("not-there.sh"), "{all_out}");
}

#[test]
fn a_kind_level_capability_renders_as_helm_renders_it() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let (rel, ns) = (unique("pdb"), unique("caps"));
    let chart = fixture("pdb-capabilities");
    let kc = c.kubeconfig();
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    let (run, doc) = s.json(&[
        "--only",
        "cluster.api,cluster.api-versions,cluster.dry-run",
        "--kubeconfig",
        &kc,
        "--",
        "helm",
        "install",
        &rel,
        &chart,
        "-n",
        &ns,
    ]);
    let (ok, out) = helm(&s, &c, &["install", &rel, &chart, "-n", &ns]);
    let (_, manifest) = helm(&s, &c, &["get", "manifest", &rel, "-n", &ns]);
    let _ = helm(&s, &c, &["uninstall", &rel, "-n", &ns]);
    c.delete(&["namespace", &ns]);

    // v1.20 serves PodDisruptionBudget in policy/v1beta1 only: helm renders that and installs.
    assert!(ok, "{out}");
    assert!(manifest.contains("apiVersion: policy/v1beta1"), "{manifest}");
    assert_eq!(run.code(), 0, "{}", run.stdout());
    // What it renders is served (no kind-not-served), and a later Kubernetes removes it:
    // a warning whose fix is its own, not the CRDs-first fix of the check's other code.
    assert_eq!(codes(&doc, "cluster.api-versions"), ["api-removed-later"]);
    let finding = &entry(&doc, "cluster.api-versions")["findings"][0];
    assert!(
        finding["message"]
            .as_str()
            .unwrap_or("")
            .contains("uses policy/v1beta1, which Kubernetes 1.25 removes"),
        "{finding}"
    );
    assert!(
        finding["fix"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("renders the newer API version"),
        "{finding}"
    );
    assert!(entry(&doc, "cluster.api-versions")["fix"].is_null());
    assert_eq!(
        status(&doc, "cluster.dry-run"),
        "pass",
        "{}",
        message(&doc, "cluster.dry-run")
    );
}

#[test]
fn layouts_go_yaml_accepts_are_read_and_the_chart_installs() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let (rel, ns) = (unique("flow"), unique("flow"));
    let chart = fixture("flow-yaml");
    let kc = c.kubeconfig();
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    let (run, doc) = s.json(&[
        "--only",
        "tools.install-render,cluster.api,cluster.dry-run",
        "--kubeconfig",
        &kc,
        "--chart",
        &chart,
        "--release",
        &rel,
        "--namespace",
        &ns,
    ]);
    let (ok, out) = helm(&s, &c, &["install", &rel, &chart, "-n", &ns]);
    let (_, got) = c.kubectl(&["get", "configmap", &rel, "-n", &ns, "-o", "json"], None);
    let _ = helm(&s, &c, &["uninstall", &rel, "-n", &ns]);
    c.delete(&["namespace", &ns]);

    assert!(ok, "{out}");
    let got: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got["data"]["mode"], "fast");
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(status(&doc, "tools.install-render"), "pass");
    assert_eq!(doc["install"]["objects"], 2);
    assert_eq!(
        status(&doc, "cluster.dry-run"),
        "pass",
        "{}",
        message(&doc, "cluster.dry-run")
    );
}

#[test]
fn the_decoder_reads_every_layout_kubectl_reads_as_kubectl_does() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let layouts = [
        (
            "flow sequence closed at its key's indentation",
            "spec:\n  command: [\n    \"sh\",\n    \"-c\"\n  ]\n",
        ),
        (
            "flow sequence closed left of its key",
            "spec:\n  nested:\n    command: [\n      \"a\",\n      \"b\"\n  ]\n",
        ),
        (
            "flow mapping across lines",
            "spec:\n  labels: {\n    app: web,\n    tier: \"db\"\n  }\n",
        ),
        (
            "flow items on the key's column",
            "spec:\n  args: [ \"a\",\n  \"b\" ]\n",
        ),
        (
            "a tab after the indentation",
            "spec:\n  mode:\t\"fast\"\n  n:\t3\n",
        ),
        (
            "a sequence not indented under its key",
            "spec:\n  items:\n  - a\n  - b\n",
        ),
        ("document markers", "--- # the document\nspec:\n  a: 1\n...\n"),
        (
            "plain scalars across lines in a flow",
            "spec:\n  words: [one two,\n    three]\n",
        ),
        (
            "a block scalar keeping its end",
            "spec:\n  text: |+\n    line\n\n",
        ),
        (
            "a duplicate key: the last wins",
            "spec:\n  a: 1\n  b: x\n  a: 2\n",
        ),
    ];
    let group = format!("{}.layouts.test", unique("g"));
    c.echo_crd(&group);
    let mut seen = Vec::new();
    for (what, body) in layouts {
        let head =
            format!("apiVersion: {group}/v1\nkind: Echo\nmetadata:\n  name: e\n  namespace: default\n");
        let text = match body.strip_prefix("--- # the document\n") {
            Some(rest) => format!("--- # the document\n{head}{rest}"),
            None => format!("{head}{body}"),
        };
        let file = s.dir.path().join("layout.yaml");
        std::fs::write(&file, &text).unwrap();
        let (ok, out) = c.kubectl(
            &[
                "create",
                "--dry-run=server",
                "-o",
                "json",
                "-f",
                &file.display().to_string(),
            ],
            None,
        );
        seen.push((what, ok, out, text));
    }
    c.delete(&["crd", &format!("echoes.{group}")]);
    for (what, ok, out, text) in seen {
        assert!(ok, "{what}: kubectl refuses it: {out}");
        let kubectl: serde_json::Value = serde_json::from_str(&out).unwrap();
        let ours = preflight::install::yaml11::to_json(&text)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            .unwrap();
        assert_eq!(ours["spec"], kubectl["spec"], "{what}");
    }
}

#[test]
fn a_namespace_a_prepare_hooks_script_creates_is_not_missing() {
    let Some(c) = cluster() else { return };
    let mut s = with_tools();
    s.on_path("kubectl", &real_tool("kubectl-1.32/kubectl"));
    // What the hook's script runs besides kubectl.
    s.on_path("bash", std::path::Path::new("/bin/bash"));
    s.on_path("cat", std::path::Path::new("/bin/cat"));
    let (rel, ns) = (unique("bcs"), unique("bcs-system"));
    s.env.insert("MINI_RELEASE".into(), rel.clone().into());
    s.env.insert("MINI_NAMESPACE".into(), ns.clone().into());
    let kc = c.kubeconfig();
    let file = format!("{}/helmfile.yaml", fixture("hook-namespace"));
    let only = "cluster.api,cluster.release-namespace,cluster.dry-run";
    let (run, doc) = s.json(&[
        "--only",
        only,
        "--kubeconfig",
        &kc,
        "--",
        "helmfile",
        "-f",
        &file,
        "sync",
    ]);
    // The same helmfile with its hook's script unable to say which namespace it makes.
    let unsure = s.dir.path().join("unsure");
    std::fs::create_dir_all(unsure.join("scripts")).unwrap();
    std::fs::write(
        unsure.join("helmfile.yaml"),
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("../mini-release", &fixture("mini-release")),
    )
    .unwrap();
    std::fs::write(
        unsure.join("scripts/create_ns.sh"),
        "#!/bin/bash\nNS=$(cat /etc/bcs-namespace)\nkubectl apply -f - <<EOT\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: $NS\nEOT\n",
    )
    .unwrap();
    let unsure_file = unsure.join("helmfile.yaml").display().to_string();
    let (unsure_run, unsure_doc) = s.json(&[
        "--only",
        only,
        "--kubeconfig",
        &kc,
        "--",
        "helmfile",
        "-f",
        &unsure_file,
        "sync",
    ]);
    // The real sync: the hook makes the namespace, then the release installs into it.
    let (ok, out) = helmfile(&s, &c, &["-f", &file, "sync"]);
    let _ = helm(&s, &c, &["uninstall", &rel, "-n", &ns]);
    c.delete(&["namespace", &ns]);

    assert!(ok, "{out}");
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(status(&doc, "cluster.release-namespace"), "pass");
    assert_eq!(
        message(&doc, "cluster.release-namespace"),
        format!("release {rel} (namespace {ns}): will be created by the prepare hook ./scripts/create_ns.sh of release {rel} (helmfile.yaml) (read, not run)")
    );
    assert_eq!(
        status(&doc, "cluster.dry-run"),
        "pass",
        "{}",
        message(&doc, "cluster.dry-run")
    );
    assert_eq!(unsure_run.code(), 0, "a warning: {}", unsure_run.stdout());
    assert_eq!(
        codes(&unsure_doc, "cluster.release-namespace"),
        ["namespace-maybe-by-hook"]
    );
    assert_eq!(status(&unsure_doc, "cluster.dry-run"), "warn");
    assert!(codes(&unsure_doc, "cluster.dry-run")
        .iter()
        .all(|c| c == "object-not-dry-run"));
}

#[test]
fn a_nested_helmfiles_value_errors_are_each_under_its_release() {
    let Some(c) = cluster() else { return };
    let mut s = with_tools();
    let (prefix, ns) = (unique("bk"), unique("base"));
    s.env.insert("PREFIX".into(), prefix.clone().into());
    s.env.insert("MINI_NAMESPACE".into(), ns.clone().into());
    let kc = c.kubeconfig();
    let file = format!("{}/helmfile.yaml", fixture("nested-errors"));
    let (run, doc) = s.json(&[
        "--only",
        "tools.install-render",
        "--kubeconfig",
        &kc,
        "--",
        "helmfile",
        "-f",
        &file,
        "sync",
    ]);
    // The real sync: which releases does it still install?
    let (ok, out) = helmfile(&s, &c, &["-f", &file, "sync"]);
    let (_, listed) = helm(&s, &c, &["list", "-n", &ns, "-q"]);
    for r in listed.split_whitespace() {
        let _ = helm(&s, &c, &["uninstall", r, "-n", &ns]);
    }
    c.delete(&["namespace", &ns]);

    assert!(!ok, "{out}");
    assert!(out.contains("3 errors:"), "{out}");
    let mut installed: Vec<&str> = listed.split_whitespace().collect();
    installed.sort();
    // The sibling file's release installs; none of the nested file's does.
    assert_eq!(installed, [format!("{prefix}-db")], "{out}");

    assert_eq!(run.code(), 1, "{}", run.stdout());
    let found = findings(&doc, "tools.install-render");
    let of = |code: &str| -> Vec<String> {
        let mut v: Vec<String> = found
            .iter()
            .filter(|(c, _)| c == code)
            .map(|(_, s)| s["release"].as_str().unwrap_or("").to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        of("release-does-not-render"),
        ["auth", "gateway", "repo"].map(|r| format!("{prefix}-{r}"))
    );
    assert_eq!(of("release-blocked"), [format!("{prefix}-web")]);
    let messages: Vec<String> = entry(&doc, "tools.install-render")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap_or("").to_string())
        .collect();
    let repo = messages
        .iter()
        .find(|m| m.starts_with(&format!("release {prefix}-repo ")))
        .unwrap();
    assert!(!repo.contains("errors:"), "cut at the list's header: {repo}");
    assert_eq!(
        repo,
        &format!("release {prefix}-repo (apps.yaml.gotmpl): failed to render values file environments/default/repo-values.yaml.gotmpl:3:18: executing \"stringTemplate\" at <.Values.appSecret.bkrepo>: map has no entry for key \"appSecret\" (helmfile skipped the missing values file environments/default/app_secret.yaml (its missingFileHandler lets it), which by its name defines `appSecret`)")
    );
    let gateway = messages
        .iter()
        .find(|m| m.starts_with(&format!("release {prefix}-gateway ")))
        .unwrap();
    assert!(gateway.contains("gateway-values.yaml.gotmpl:3:"), "{gateway}");
    assert!(
        !messages.iter().any(|m| m.contains(&format!("{prefix}-db"))),
        "{messages:?}"
    );
}

#[test]
fn the_helm_command_decides_what_an_existing_release_means() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let (rel, ns) = (unique("again"), unique("again"));
    let fresh = unique("fresh");
    let chart = fixture("mini-release");
    let kc = c.kubeconfig();
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    let (ok, out) = helm(&s, &c, &["install", &rel, &chart, "-n", &ns]);
    assert!(ok, "{out}");
    let judge = |argv: &[&str]| {
        let mut args = vec![
            "--only",
            "cluster.api,cluster.release-state",
            "--kubeconfig",
            kc.as_str(),
            "--",
            "helm",
        ];
        args.extend_from_slice(argv);
        s.json(&args)
    };
    let (install_run, install_doc) = judge(&["install", &rel, &chart, "-n", &ns]);
    let (upgrade_run, upgrade_doc) = judge(&["upgrade", "--install", &rel, &chart, "-n", &ns]);
    let (missing_run, missing_doc) = judge(&["upgrade", &fresh, &chart, "-n", &ns]);
    let (again_ok, again_out) = helm(&s, &c, &["install", &rel, &chart, "-n", &ns]);
    let (up_ok, up_out) = helm(&s, &c, &["upgrade", "--install", &rel, &chart, "-n", &ns]);
    let (fresh_ok, fresh_out) = helm(&s, &c, &["upgrade", &fresh, &chart, "-n", &ns]);
    let _ = helm(&s, &c, &["uninstall", &rel, "-n", &ns]);
    c.delete(&["namespace", &ns]);

    assert!(
        !again_ok && again_out.contains("cannot re-use a name that is still in use"),
        "{again_out}"
    );
    assert_eq!(install_run.code(), 1, "{}", install_run.stdout());
    assert_eq!(codes(&install_doc, "cluster.release-state"), ["name-in-use"]);
    assert!(
        message(&install_doc, "cluster.release-state").contains("cannot re-use a name that is still in use")
    );

    assert!(up_ok, "{up_out}");
    assert_eq!(upgrade_run.code(), 0, "{}", upgrade_run.stdout());
    assert_eq!(status(&upgrade_doc, "cluster.release-state"), "pass");

    assert!(
        !fresh_ok && fresh_out.contains(&format!("UPGRADE FAILED: \"{fresh}\" has no deployed releases")),
        "{fresh_out}"
    );
    assert_eq!(missing_run.code(), 1, "{}", missing_run.stdout());
    assert_eq!(
        codes(&missing_doc, "cluster.release-state"),
        ["no-deployed-release"]
    );
    assert!(message(&missing_doc, "cluster.release-state").contains("has no deployed releases"));
}

/// The long flags a real binary's `--help` lists (`      --name …` / `  -n, --name …`).
fn help_flags(tool: &str, args: &[&str], section: &str) -> Vec<String> {
    let out = Command::new(real_tool(tool)).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut on = false;
    let mut flags = Vec::new();
    for line in text.lines() {
        if line.ends_with(':') && !line.starts_with(' ') {
            on = line == section;
            continue;
        }
        let t = line.trim_start();
        let t = match t.split_once(", ") {
            Some((short, rest)) if short.len() == 2 && short.starts_with('-') => rest,
            _ => t,
        };
        if on {
            if let Some(name) = t.strip_prefix("--").and_then(|r| r.split([' ', '=']).next()) {
                if name != "help" {
                    flags.push(name.to_string());
                }
            }
        }
    }
    assert!(!flags.is_empty(), "{tool} {args:?}: no flags read from:\n{text}");
    flags
}

#[test]
fn every_flag_of_the_real_helm_and_helmfile_is_known() {
    let ours = preflight::install::argv::helm_flags();
    for helm in ["helm-3.11.1/helm", "helm-3.17.2/helm", "helm-4.1.4/helm"] {
        for verb in ["install", "upgrade"] {
            for section in ["Flags:", "Global Flags:"] {
                for flag in help_flags(helm, &[verb, "--help"], section) {
                    assert!(
                        ours.contains(&flag.as_str()),
                        "{helm} {verb}: --{flag} is not read"
                    );
                }
            }
        }
    }
    let global = preflight::install::argv::helmfile_flags(None);
    for flag in help_flags("helmfile-0.166.0/helmfile", &["--help"], "Flags:") {
        if flag != "version" {
            assert!(global.contains(&flag.as_str()), "helmfile: --{flag} is not read");
        }
    }
    for verb in ["sync", "apply", "diff", "template"] {
        let mut theirs = help_flags("helmfile-0.166.0/helmfile", &[verb, "--help"], "Flags:");
        let mut ours: Vec<String> = preflight::install::argv::helmfile_flags(Some(verb))
            .into_iter()
            .map(String::from)
            .collect();
        theirs.sort();
        ours.sort();
        assert_eq!(ours, theirs, "helmfile {verb}");
    }
}

#[test]
fn an_upgrade_of_an_existing_release_renders_as_the_upgrade_it_will_be() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let (rel, ns) = (unique("upg"), unique("upg"));
    let chart = fixture("upgrade-aware");
    let kc = c.kubeconfig();
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    let judge = |verb: &[&str]| {
        let mut args = vec![
            "--only",
            "cluster.api,cluster.dry-run",
            "--kubeconfig",
            kc.as_str(),
            "--",
            "helm",
        ];
        args.extend_from_slice(verb);
        args.extend([rel.as_str(), chart.as_str(), "-n", ns.as_str()]);
        s.json(&args)
    };
    // Before the release exists, upgrade --install is an install: nothing is refused.
    let (first_run, first_doc) = judge(&["upgrade", "--install"]);
    let (ok, out) = helm(&s, &c, &["upgrade", "--install", &rel, &chart, "-n", &ns]);
    assert!(ok, "{out}");
    // Now it is an upgrade: the chart renders the object the API server refuses.
    let (again_run, again_doc) = judge(&["upgrade", "--install"]);
    let (up_ok, up_out) = helm(&s, &c, &["upgrade", "--install", &rel, &chart, "-n", &ns]);
    let _ = helm(&s, &c, &["uninstall", &rel, "-n", &ns]);
    c.delete(&["namespace", &ns]);

    assert_eq!(first_run.code(), 0, "{}", first_run.stdout());
    assert_eq!(status(&first_doc, "cluster.dry-run"), "pass");
    assert!(!up_ok, "{up_out}");
    assert_eq!(again_run.code(), 1, "{}", again_run.stdout());
    assert_eq!(codes(&again_doc, "cluster.dry-run"), ["object-rejected"]);
    assert_eq!(
        subjects_of(&again_doc, "object-rejected", "name"),
        [format!("{rel}-Migration")]
    );
    let msg = message(&again_doc, "cluster.dry-run");
    assert!(
        up_out.contains("Invalid value") && msg.contains("Invalid value"),
        "{msg}\n{up_out}"
    );
}

#[test]
fn take_ownership_adopts_what_another_release_left() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let (rel, ns, cm) = (unique("kv"), unique("vela"), unique("cert-manager"));
    let scope = format!("{}.core.oam.dev", unique("scope"));
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {cm}}}\n"
    ));
    let chart = fixture("oam-like");
    let (set_cm, set_scope) = (format!("certManagerNamespace={cm}"), format!("scopeName={scope}"));
    let kc = c.kubeconfig();
    let install = [
        "install",
        rel.as_str(),
        chart.as_str(),
        "-n",
        ns.as_str(),
        "--create-namespace",
        "--set",
        set_cm.as_str(),
        "--set",
        set_scope.as_str(),
        "--take-ownership",
    ];
    let mut args = vec![
        "--only",
        "cluster.api,cluster.helm-ownership",
        "--kubeconfig",
        kc.as_str(),
        "--",
        "helm",
    ];
    args.extend_from_slice(&install);
    let (run, doc) = s.json(&args);
    let (ok, out) = helm(&s, &c, &install);
    let _ = helm(&s, &c, &["uninstall", &rel, "-n", &ns]);
    c.delete(&["namespace", &ns]);
    c.delete(&["namespace", &cm]);

    // helm 3.17 adopts the namespace an earlier install left, and installs.
    assert!(ok, "{out}");
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(status(&doc, "cluster.helm-ownership"), "pass");
    assert!(
        message(&doc, "cluster.helm-ownership")
            .contains(&format!("that helm --take-ownership adopts: Namespace {cm}")),
        "{}",
        message(&doc, "cluster.helm-ownership")
    );
}
