//! The command-line contract setup scripts rely on: commands, exit codes, profile errors,
//! and the shape of every output format.

mod common;

use common::*;

fn good_host(s: &Scenario) {
    s.host_file("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
    s.host_file("lib/modules/6.1.0-18-amd64/modules.dep", "");
    s.host_file("proc/modules", "nf_conntrack 172032 4 - Live 0x0\n");
}

#[test]
fn list_prints_every_check_in_run_order() {
    let s = Scenario::new();
    let run = s.run(&["list"]);
    assert_eq!(run.code(), 0);
    let ids: Vec<String> = run
        .stdout()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "tools.helmfile-on-path",
            "tools.helm-version",
            "tools.helm-plugins",
            "tools.install-render",
            "tools.helmfile-hooks",
            "node.conntrack",
            "node.localpv-disk",
            "node.hosts",
            "node.container-runtime-registries",
            "node.kernel-settings",
            "node.host-ports",
            "network.registry",
            "network.images",
            "network.chart-repos",
            "network.runtime-mirrors",
            "cluster.api",
            "cluster.kube-version",
            "cluster.release-namespace",
            "cluster.release-state",
            "cluster.api-versions",
            "cluster.install-rbac",
            "cluster.openapi-validation",
            "cluster.dry-run",
            "cluster.leftover-cert-manager",
            "cluster.leftover-scopedefinition",
            "cluster.helm-ownership",
            "cluster.terminating-namespaces",
            "cluster.webhooks",
            "cluster.csr-controllers",
            "cluster.storageclass",
            "cluster.schedulable",
            "cluster.metrics-api",
            "cluster.node-clocks",
            "cluster.kubelet-reachable",
        ]
    );
    assert!(run.stdout().starts_with("ID "));
    let row = run
        .stdout()
        .lines()
        .find(|l| l.starts_with("node.conntrack "))
        .unwrap()
        .to_string();
    let cells: Vec<&str> = row.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(
        cells,
        [
            "node.conntrack",
            "node",
            "the conntrack kernel module is available"
        ]
    );
}

#[test]
fn list_of_a_profile_is_in_phase_order_whatever_the_file_order() {
    let s = Scenario::new();
    let p = s.profile("checks:\n  node.hosts: {}\n  tools.helm-version: {}\n");
    let run = s.run(&["list", "--profile", &p, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(v[0]["id"], "tools.helm-version");
    assert_eq!(v[1]["id"], "node.hosts");
    assert_eq!(v[1]["phase"], "node");
}

#[test]
fn explain_quotes_the_field_report() {
    let s = Scenario::new();
    let cases = [
        ("tools.helmfile-on-path", "helmfile: command not found"),
        ("tools.helm-version", "error calling index: index of nil pointer"),
        ("tools.helm-plugins", "helm plugin list"),
        ("node.conntrack", "lsmod |grep conntrack"),
        (
            "node.localpv-disk",
            "didn't find available persistent volumes to bind",
        ),
        ("node.hosts", "failed to download"),
        ("node.hosts", "no such host"),
    ];
    for (id, quote) in cases {
        let run = s.run(&["explain", id]);
        assert_eq!(run.code(), 0);
        assert!(run.stdout().starts_with(id), "{id}");
        assert!(run.stdout().contains(quote), "{id} explain lacks {quote:?}");
    }
}

#[test]
fn explain_lists_a_checks_finding_codes_and_explains_a_code() {
    let s = Scenario::new();
    let run = s.run(&["explain", "network.images"]);
    assert_eq!(run.code(), 0);
    let out = run.stdout();
    let codes = &out[out.find("Finding codes").expect("a codes section")..];
    for code in ["image-missing", "image-lookup-failed", "image-reference-invalid"] {
        assert!(codes.contains(&format!("\n  {code} ")), "{code}: {codes}");
    }
    let run = s.run(&["explain", "image-missing"]);
    assert_eq!(run.code(), 0);
    assert!(
        run.stdout().starts_with("image-missing (network.images): "),
        "{}",
        run.stdout()
    );
    let run = s.run(&["explain", "no-such-code"]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().contains("neither a check id nor a finding code"),
        "{}",
        run.stderr()
    );
}

#[test]
fn explain_unknown_id_is_a_usage_error_with_a_suggestion() {
    let s = Scenario::new();
    let run = s.run(&["explain", "node.conntrak"]);
    assert_eq!(run.code(), 2);
    assert_eq!(
        run.stderr().trim(),
        "preflight: error: unknown check id `node.conntrak` (did you mean `node.conntrack`?)"
    );
}

#[test]
fn bad_profiles_exit_2_naming_file_line_and_key() {
    let s = Scenario::new();
    let cases = [
        (
            "checks:\n  node.conntrack: {}\n  tools.helm-verison: {}\n",
            ":3: checks: unknown check id `tools.helm-verison` (did you mean `tools.helm-version`?)",
        ),
        (
            "checks:\n  node.localpv-disk:\n    paths:\n      - path: /mnt/blueking\n        need: 90GB\n",
            ":5: checks.node.localpv-disk.paths[0].need: \"90GB\" is not a quantity: unknown suffix \"GB\"",
        ),
        (
            "checks:\n  tools.helm-version:\n    minimum: \"3.12.0\"\n",
            ":3: checks.tools.helm-version: unknown field `minimum`, expected one of `min`, `search_dirs`, `bundled_bin_dir`",
        ),
        (
            "relase: {name: a, namespace: b}\nchecks: {}\n",
            ":1: unknown field `relase`, expected one of `release`, `registries`, `install`, `nodes`, `checks`",
        ),
        (
            "checks:\n  tools.helm-version: {min: \"three\"}\n",
            ":2: checks.tools.helm-version.min: \"three\" is not a version like 3.12.0",
        ),
        (
            "checks:\n  node.localpv-disk:\n    paths:\n      - {path: /mnt/blueking, need: 99999999999999999999E}\n",
            ":4: checks.node.localpv-disk.paths[0].need: \"99999999999999999999E\" is not a quantity: number too large",
        ),
        (
            "checks:\n  node.localpv-disk:\n    paths:\n      - {path: /mnt/blueking}\n",
            ":4: checks.node.localpv-disk.paths: /mnt/blueking: give `need` (e.g. need: 90Gi), the `claims` this directory serves, or the `storage_class` it backs",
        ),
        (
            "release: {name: a, namespace: b}\nchecks:\n  cluster.helm-ownership:\n    render: {chart: ./c, helmfile: ./h.yaml}\n",
            ":4: checks.cluster.helm-ownership: give either `chart` or `helmfile`, not both",
        ),
        (
            "release: {name: a, namespace: b}\nchecks:\n  cluster.helm-ownership:\n    render: {values: [v.yaml]}\n",
            ":4: checks.cluster.helm-ownership: give `chart` (with `values`) or `helmfile` to render",
        ),
        (
            "release: {name: a, namespace: b}\ninstall: {chart: ./c, release: a, namespace: b}\nchecks:\n  cluster.helm-ownership:\n    render: {chart: ./c}\n",
            ":5: checks: cluster.helm-ownership: `render:` names an install next to the profile's `install:`; drop `render:` (every check reads `install:`)",
        ),
        (
            "checks:\n  cluster.helm-ownership:\n    render: {chart: ./c}\n",
            ":3: checks: cluster.helm-ownership: `render: {chart: …}` renders as the profile's `release:`, which is missing",
        ),
        (
            "nodes:\n  image: \"my registry/preflight\"\nchecks: {}\n",
            ":2: nodes: image: \"my registry/preflight\" is not an image reference",
        ),
        (
            "nodes: {image: r/p:1, pod_namespace: x}\nchecks: {}\n",
            ":1: nodes: unknown field `pod_namespace`, expected `image` or `namespace`",
        ),
        (
            "checks:\n  node.hosts:\n    pins:\n      hub.bktencent.com: [\"49.234.165.799\"]\n",
            ":4: checks.node.hosts.pins.hub.bktencent.com[0]: invalid IP address syntax",
        ),
    ];
    for (yaml, expected) in cases {
        let p = s.profile(yaml);
        let run = s.run(&["--profile", &p]);
        assert_eq!(run.code(), 2, "{yaml}");
        assert!(run.stdout().is_empty(), "nothing ran, nothing on stdout");
        let want = format!("preflight: error: {p}{expected}");
        assert!(
            run.stderr().starts_with(&want),
            "got:  {}\nwant: {want}",
            run.stderr()
        );
    }
}

#[test]
fn unknown_profile_name_and_unknown_ids_in_flags_exit_2() {
    let s = Scenario::new();
    let run = s.run(&["--profile", "no-such-profile"]);
    assert_eq!(run.code(), 2);
    assert!(run
        .stderr()
        .contains("no embedded profile of that name (default, bkce7, kubevela)"));
    for flag in ["--only", "--skip"] {
        let run = s.run(&[flag, "node.nope"]);
        assert_eq!(run.code(), 2);
        assert!(run.stderr().contains("unknown check id `node.nope`"));
    }
    assert_eq!(s.run(&["--timeout", "soon"]).code(), 2);
    assert_eq!(s.run(&["-o", "yaml"]).code(), 2);
    assert_eq!(s.run(&["--dry-run"]).code(), 2, "--dry-run goes with --fix");
}

#[test]
fn embedded_profiles_all_load() {
    let s = Scenario::new();
    for p in ["default", "bkce7", "kubevela"] {
        let run = s.run(&["list", "--profile", p]);
        assert_eq!(run.code(), 0, "{p}: {}", run.stderr());
    }
    let run = s.run(&["list", "--profile", "bkce7"]);
    assert!(run.stdout().contains("node.hosts") && run.stdout().contains("node.localpv-disk"));
}

#[test]
fn exit_codes_0_1_3() {
    let s = Scenario::new();
    good_host(&s);
    assert_eq!(s.json(&["--only", "node.conntrack"]).0.code(), 0);
    // a failure wins over an error
    let s2 = Scenario::new();
    s2.host_file("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
    assert_eq!(
        s2.json(&["--only", "node.conntrack,tools.helm-version"]).0.code(),
        1
    );
    // only an error
    assert_eq!(s2.json(&["--only", "node.conntrack"]).0.code(), 3);
}

#[test]
fn skip_removes_a_check_and_only_narrows() {
    let s = Scenario::new();
    good_host(&s);
    let ids = |doc: &serde_json::Value| -> Vec<String> {
        doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, doc) = s.json(&[
        "--skip",
        "tools.helmfile-on-path,tools.helm-version,tools.helm-plugins,node.container-runtime-registries,network.runtime-mirrors,cluster",
    ]);
    assert_eq!(ids(&doc), ["node.conntrack"]);
    // a phase name selects the whole phase: an air-gapped node runs `--skip cluster` or `--only node`
    let (run, doc) = s.json(&["--only", "node"]);
    assert_eq!(ids(&doc), ["node.conntrack", "node.container-runtime-registries"]);
    assert_eq!(run.code(), 0);
    // --only may name a check the profile lacks: it runs with its default parameters
    let (_, doc) = s.json(&["--only", "node.localpv-disk"]);
    assert_eq!(
        message(&doc, "node.localpv-disk"),
        "/mnt/blueking: does not exist (90.0 GiB needed)"
    );
    assert_eq!(codes(&doc, "node.localpv-disk"), ["disk-short"]);
}

#[test]
fn json_is_one_document_matching_the_schema() {
    let s = Scenario::new();
    good_host(&s);
    s.on_path("helm", &real_tool("helm-3.11.1/helm"));
    let (run, doc) = s.json(&["--profile", "bkce7"]);
    assert_eq!(run.code(), 1);
    let schema: serde_json::Value = serde_json::from_str(include_str!("../schema/report-v2.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(doc["schema"], 2);
    assert_eq!(doc["profile"], "bkce7");
    assert_eq!(doc["checks"].as_array().unwrap().len(), 16);
    let statuses: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    let count = |st: &str| statuses.iter().filter(|s| **s == st).count();
    for st in ["pass", "warn", "fail", "skip", "error"] {
        assert_eq!(doc["summary"][st], count(st), "{st}");
    }
    // the schema is strict enough to catch a broken document
    let mut broken = doc.clone();
    broken["checks"][0]["status"] = "ok".into();
    assert!(!validator.is_valid(&broken));
    let mut broken = doc.clone();
    broken["checks"][0]["findings"] = serde_json::json!([{"code": "Not A Code", "severity": "fail", "subject": {"type": "cluster"}, "message": "x"}]);
    assert!(!validator.is_valid(&broken));
    // --json-schema 1: the document scripts were written against, whole text in `message`.
    let (_, v1) = s.json(&["--profile", "bkce7", "--json-schema", "1"]);
    let schema1: serde_json::Value = serde_json::from_str(include_str!("../schema/report-v1.json")).unwrap();
    let v1_validator = jsonschema::validator_for(&schema1).unwrap();
    let errors: Vec<String> = v1_validator.iter_errors(&v1).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(v1["schema"], 1);
    for (a, b) in doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .zip(v1["checks"].as_array().unwrap())
    {
        let id = a["id"].as_str().unwrap();
        assert_eq!(message(&doc, id), b["message"].as_str().unwrap(), "{id}");
    }
    let bad = s.run(&["--json-schema", "3"]);
    assert_eq!(bad.code(), 2, "{}", bad.stderr());
}

#[test]
fn junit_has_a_suite_per_phase_and_a_case_per_check() {
    let s = Scenario::new();
    good_host(&s);
    let host = s.host().display().to_string();
    let run = s.run(&["--host-root", &host, "-o", "junit", "--profile", "bkce7"]);
    let xml = run.stdout();
    assert!(xml.starts_with("<?xml"));
    assert_eq!(xml.matches("<testsuite ").count(), 4);
    assert_eq!(xml.matches("<testcase ").count(), 16);
    for phase in ["tools", "node", "network", "cluster"] {
        assert!(xml.contains(&format!("<testsuite name=\"{phase}\"")), "{phase}");
    }
    assert!(xml.contains("<testcase name=\"tools.helm-version\" classname=\"tools\""));
    assert!(xml.contains("<failure message=\"helm is not on PATH"));
    assert!(xml.contains("<skipped message=\"skipped: prerequisite tools.helm-version did not pass (fail)\""));
}

#[test]
fn human_report_groups_by_phase_with_message_fix_and_summary() {
    let s = Scenario::new();
    good_host(&s);
    s.on_path("helm", &real_tool("helm-3.11.1/helm"));
    let host = s.host().display().to_string();
    let run = s.run(&["--host-root", &host]);
    assert_eq!(run.code(), 1);
    let out = run.stdout();
    assert!(!out.contains('\u{1b}'), "no colour when stdout is not a terminal");
    assert!(
        run.stderr().is_empty(),
        "no spinner when stderr is not a terminal: {}",
        run.stderr()
    );
    assert!(out.starts_with("tools\n-----\n"), "{out}");
    assert!(out.contains("\nnode\n----\n✓ the conntrack kernel module is available [node.conntrack]\n"));
    assert!(out.contains("× helm is recent enough [tools.helm-version]\n    helm v3.11.1+g293b50c at "));
    assert!(out.contains("    fix: install helm 3.12.0 or newer"));
    assert!(out.contains("        $ install -m 0755 ./helm /usr/local/bin/helm\n"));
    assert!(out.contains("– helm plugins the installer needs are installed [tools.helm-plugins]\n    skipped: prerequisite tools.helm-version did not pass (fail)\n"));
    assert!(
        out.contains("\ncluster\n-------\n× the Kubernetes API answers and allows the install [cluster.api]\n    no kubeconfig: "),
        "{out}"
    );
    assert!(
        out.ends_with("\npreflight failed: 1 passed, 0 warnings, 3 failed, 7 skipped, 0 errors\n"),
        "{out}"
    );
}

/// Run under a pseudo-terminal (util-linux `script`), as an operator would.
fn on_tty(s: &Scenario, args: &str, no_color: bool) -> String {
    let host = s.host().display().to_string();
    let cmd = format!(
        "{} --host-root {host} --only node.conntrack {args}",
        bin().display()
    );
    let script = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("script"))
        .find(|p| p.exists())
        .expect("script(1) from util-linux (bsdutils)");
    let mut c = std::process::Command::new(script);
    c.env_clear()
        .envs(&s.env)
        .env("TERM", "xterm")
        .args(["-qec", &cmd, "/dev/null"]);
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let out = c.output().expect("script(1) from util-linux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let s = Scenario::new();
    good_host(&s);
    assert!(
        on_tty(&s, "--no-progress", false).contains("\u{1b}[32m✓"),
        "green tick on a TTY"
    );
    assert!(
        !on_tty(&s, "--no-progress", true).contains("\u{1b}["),
        "NO_COLOR disables colour"
    );
    let json = on_tty(&s, "-o json --no-progress", false);
    assert!(!json.contains("\u{1b}["));
}

#[test]
fn version_and_help() {
    let s = Scenario::new();
    let run = s.run(&["--version"]);
    assert_eq!(run.code(), 0);
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let commit = String::from_utf8_lossy(&commit.stdout).trim().to_string();
    // The second pass of scripts/test.sh runs the static build.
    let linkage = if std::env::var_os("PREFLIGHT_BIN").is_some() {
        "static"
    } else {
        "dynamically linked"
    };
    assert_eq!(
        run.stdout().trim(),
        format!(
            "preflight {} (commit {commit}, {linkage}, x86_64-unknown-linux-gnu)",
            env!("CARGO_PKG_VERSION")
        )
    );
    let help = s.run(&["--help"]).stdout();
    for flag in [
        "--profile",
        "--only",
        "--skip",
        "--output",
        "--fix",
        "--unsafe-fixes",
        "--dry-run",
        "--yes",
        "--host-root",
        "--kubeconfig",
        "--context",
        "--timeout",
        "--no-progress",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn a_closed_stdout_ends_it_quietly_not_with_a_panic() {
    use std::process::Stdio;
    // `preflight explain … | head -1` whose reader is already gone: the reading end of the
    // pipe is closed right after the spawn, before preflight writes its first line.
    for args in [vec!["list"], vec!["explain", "node.conntrack"]] {
        let mut child = std::process::Command::new(bin())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: no panic exit");
    }
}

#[test]
fn completion_for_bash_zsh_and_fish_completes_check_ids() {
    let s = Scenario::new();
    let script = s.run(&["completion", "bash"]);
    assert_eq!(script.code(), 0);
    let file = s.dir.path().join("preflight.bash");
    std::fs::write(&file, script.stdout()).unwrap();
    // The real bash, running the generated completion function as the shell would.
    let complete = |words: &[&str]| {
        let line = words.join(" ");
        let prev = words[words.len() - 2];
        let cur = words[words.len() - 1];
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; _preflight preflight {cur} {prev}; echo \"${{COMPREPLY[*]}}\"",
                file.display(),
                words.len() - 1
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        complete(&["preflight", "--only", "node.con"]),
        "node.conntrack node.container-runtime-registries"
    );
    assert_eq!(
        complete(&["preflight", "--skip", "netw"]),
        "network network.registry network.images network.chart-repos network.runtime-mirrors"
    );
    assert_eq!(
        complete(&["preflight", "explain", "cluster.dry"]),
        "cluster.dry-run"
    );
    assert_eq!(complete(&["preflight", "compl"]), "completion");
    let zsh = s.run(&["completion", "zsh"]).stdout();
    assert!(zsh.starts_with("#compdef preflight"), "{zsh}");
    assert!(zsh.contains("cluster.dry-run"));
    let fish = s.run(&["completion", "fish"]).stdout();
    assert!(
        fish.contains("complete -c preflight -n \"__fish_preflight_needs_command\" -l only"),
        "{fish}"
    );
    assert!(fish.contains("cluster.dry-run"));
    // And a real run still takes comma lists and says what it does not know.
    assert_eq!(s.run(&["completion", "tcsh"]).code(), 2);
    let run = s.run(&["--only", "node.conntrak"]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().contains("did you mean `node.conntrack`"),
        "{}",
        run.stderr()
    );
}

/// The contract every test run's report is held to (tests/common `findings_contract`) can fail.
#[test]
#[should_panic(expected = "says fail without a finding")]
fn the_findings_contract_catches_a_failure_without_a_finding() {
    findings_contract(
        &serde_json::json!({"schema": 2, "checks": [{"id": "node.x", "status": "fail", "findings": []}]}),
    );
}

#[test]
#[should_panic(expected = "status is not its worst finding's")]
fn the_findings_contract_catches_a_status_that_is_not_the_worst_finding() {
    findings_contract(
        &serde_json::json!({"schema": 2, "checks": [{"id": "node.x", "status": "warn", "findings": [
        {"code": "a", "severity": "fail", "subject": {"type": "cluster"}, "message": "m"}]}]}),
    );
}
