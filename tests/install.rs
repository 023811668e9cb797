//! `--chart` / `--helmfile`: the install rendered by the REAL helm / helmfile, every check
//! reading it, and the prediction proven by the REAL `helm install` / `helmfile sync` on the
//! test cluster failing the way preflight said (and succeeding once preflight passes).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cluster::{cluster, unique, Cluster};
use common::registry::*;
use common::*;

#[test]
fn seed000_a_chart_bundling_a_cert_manager_namespace_is_predicted_then_installs() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let (rel, ns, cm) = (unique("kv"), unique("vela-system"), unique("cert-manager"));
    let scope = format!("{}.core.oam.dev", unique("healthscopes"));
    // What an earlier cert-manager install left: the namespace, not owned by this release.
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {cm}}}\n"
    ));
    let chart = fixture("oam-like");
    let set_cm = format!("certManagerNamespace={cm}");
    let set_scope = format!("scopeName={scope}");
    let kc = c.kubeconfig();
    let args = [
        "--chart",
        chart.as_str(),
        "--release",
        rel.as_str(),
        "--namespace",
        ns.as_str(),
        "--create-namespace",
        "--set",
        set_cm.as_str(),
        "--set",
        set_scope.as_str(),
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "cluster.api,cluster.helm-ownership",
    ];
    let (run, doc) = s.json(&args);
    assert_eq!(run.code(), 1, "{}\n{}", run.stdout(), run.stderr());
    let msg = message(&doc, "cluster.helm-ownership");
    assert_eq!(
        codes(&doc, "cluster.helm-ownership"),
        ["owned-by-another-release"]
    );
    assert_eq!(
        msg,
        format!("Namespace \"{cm}\" in namespace \"\" exists and cannot be imported into the current release: invalid ownership metadata; label validation error: missing key \"app.kubernetes.io/managed-by\": must be set to \"Helm\"; annotation validation error: missing key \"meta.helm.sh/release-name\": must be set to \"{rel}\"; annotation validation error: missing key \"meta.helm.sh/release-namespace\": must be set to \"{ns}\" [release {rel}, oam-like/templates/namespace.yaml]")
    );
    // The real helm install fails the same way.
    let install = [
        "install",
        rel.as_str(),
        chart.as_str(),
        "--namespace",
        ns.as_str(),
        "--create-namespace",
        "--set",
        set_cm.as_str(),
        "--set",
        set_scope.as_str(),
    ];
    let (ok, out) = helm(&s, &c, &install);
    assert!(!ok, "helm install should have failed: {out}");
    assert!(
        out.contains(&format!(
            "Namespace \"{cm}\" in namespace \"\" exists and cannot be imported into the current release"
        )),
        "{out}"
    );
    // Once the leftover is gone, preflight passes and so does the real install.
    let (ok, out) = c.kubectl(
        &["delete", "namespace", &cm, "--wait=true", "--timeout=60s"],
        None,
    );
    assert!(ok, "{out}");
    let (run, doc) = s.json(&args);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let msg = message(&doc, "cluster.helm-ownership");
    // crds/ are not helm's to adopt: the Namespace, the ScopeDefinition and the Deployment.
    assert_eq!(
        msg,
        "3 object(s) looked up: none belongs to another release (3 objects from 1 release)"
    );
    let (ok, out) = helm(&s, &c, &install);
    let _ = helm(&s, &c, &["uninstall", rel.as_str(), "--namespace", ns.as_str()]);
    c.delete(&["namespace", &ns]);
    c.delete(&["namespace", &cm]);
    assert!(ok, "the clean install must succeed: {out}");
}

#[test]
fn images_on_two_registries_one_of_them_missing_an_image() {
    let a = Registry::start(RegistryOpts::default());
    let b = Registry::start(RegistryOpts::default());
    push_image(&a.host(), "blueking/bk-repo", "1.0.0", None);
    let s = with_tools();
    let image_a = format!("{}/blueking/bk-repo:1.0.0", a.host());
    let image_b = format!("{}/library/busybox:1.36", b.host());
    let (set_a, set_b, set_init) = (
        format!("imageA={image_a}"),
        format!("imageB={image_b}"),
        format!("initImage={image_a}"),
    );
    let chart = fixture("storage-app");
    let host = s.host().display().to_string();
    let run = s.run(&[
        "--host-root",
        host.as_str(),
        "--no-progress",
        "--chart",
        chart.as_str(),
        "--release",
        "bk",
        "--namespace",
        "blueking",
        "--set",
        set_a.as_str(),
        "--set",
        set_b.as_str(),
        "--set",
        set_init.as_str(),
        "--only",
        "network.registry,network.images",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let out = run.stdout();
    assert!(
        out.starts_with("install: chart "),
        "the report says what was rendered: {out}"
    );
    assert!(
        out.contains("rendered without the cluster's capabilities: the cluster phase does not run"),
        "{out}"
    );
    let (run, doc) = s.json(&[
        "--chart",
        chart.as_str(),
        "--release",
        "bk",
        "--namespace",
        "blueking",
        "--set",
        set_a.as_str(),
        "--set",
        set_b.as_str(),
        "--set",
        set_init.as_str(),
        "--only",
        "network.registry,network.images",
    ]);
    assert_eq!(run.code(), 1);
    // JSON says what was rendered and that it was rendered without a cluster.
    let schema: serde_json::Value = serde_json::from_str(include_str!("../schema/report-v2.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(doc["install"]["releases"], 1);
    assert_eq!(doc["install"]["objects"], 3);
    assert_eq!(doc["install"]["rendered_for"], serde_json::Value::Null);
    assert_eq!(
        doc["install"]["rendered_without_cluster"],
        "the cluster phase does not run"
    );
    // What a script reads: `.checks[].findings[] | select(.code=="image-missing") | .subject.image`
    // is exactly the one missing image.
    assert_eq!(subjects_of(&doc, "image-missing", "image"), vec![image_b.clone()]);
    assert_eq!(codes(&doc, "network.images"), ["image-missing"]);
    assert_eq!(
        message(&doc, "network.images"),
        format!("{image_b} (used by release bk, storage-app/templates/deployment.yaml; release bk, storage-app/templates/statefulset.yaml): missing (the registry says MANIFEST_UNKNOWN)\n1 of 2 images are missing (2 images from 1 release)")
    );
    assert_eq!(
        fix_commands(&doc, "network.images"),
        vec![format!(
            "skopeo copy docker://<source>/{image_b} docker://{image_b}"
        )]
    );
    // Both registries the images name are probed, with no profile listing them.
    let reg = message(&doc, "network.registry");
    assert!(
        reg.contains(&format!("{}: registry API answers 200 over http", a.host())),
        "{reg}"
    );
    assert!(
        reg.contains(&format!("{}: registry API answers 200 over http", b.host())),
        "{reg}"
    );
}

#[test]
fn seed004_claims_of_a_storageclass_that_does_not_exist() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let sc = unique("local-storage");
    let set_sc = format!("storageClass={sc}");
    let chart = fixture("storage-app");
    let kc = c.kubeconfig();
    let args = [
        "--chart",
        chart.as_str(),
        "--release",
        "bk",
        "--namespace",
        "blueking",
        "--set",
        set_sc.as_str(),
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "cluster.api,cluster.storageclass",
    ];
    let (run, doc) = s.json(&args);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert!(
        findings(&doc, "cluster.storageclass").contains(&(
            "claim-storageclass-missing".to_string(),
            serde_json::json!({"type": "object", "kind": "PersistentVolumeClaim", "namespace": "blueking", "name": "bk-data", "release": "bk", "template": "storage-app/templates/pvc.yaml"})
        )),
        "{doc}"
    );
    let msg = message(&doc, "cluster.storageclass");
    assert!(
        msg.contains(&format!("PersistentVolumeClaim bk-data (release bk, storage-app/templates/pvc.yaml) asks for StorageClass {sc}, which does not exist (existing: ")),
        "{msg}"
    );
    // With that StorageClass there, the PVC is fine (the StatefulSet's claim, which names
    // none, depends on a default class, which other tests may add or remove meanwhile).
    c.apply(&format!("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {{name: {sc}}}\nprovisioner: rancher.io/local-path\n"));
    let (_, doc) = s.json(&args);
    c.delete(&["storageclass", &sc]);
    assert!(
        !subjects_of(&doc, "claim-storageclass-missing", "name").contains(&"bk-data".to_string()),
        "{doc}"
    );

    // No StorageClass of that name, but the chart ships a PersistentVolume of the class
    // (bk-job's job-local): the claim binds at once.
    let (rel, ns) = (unique("bkjob"), unique("bkjob-ns"));
    let static_args = [
        "--chart",
        chart.as_str(),
        "--release",
        rel.as_str(),
        "--namespace",
        ns.as_str(),
        "--create-namespace",
        "--set",
        set_sc.as_str(),
        "--set",
        "staticPV=true",
        "--set",
        "dataSize=1Gi",
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "cluster.api,cluster.storageclass",
    ];
    let (_, doc) = s.json(&static_args);
    let msg = message(&doc, "cluster.storageclass");
    assert!(
        !msg.contains(&format!("PersistentVolumeClaim {rel}-data (release")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("PersistentVolume {rel}-{ns}-data (release {rel}, storage-app/templates/pv.yaml) binds PersistentVolumeClaim {rel}-data")),
        "{msg}"
    );
    // A volume smaller than the claim does not bind it.
    let mut too_small = static_args.to_vec();
    too_small.extend(["--set", "pvSize=512Mi"]);
    let (_, doc) = s.json(&too_small);
    assert_eq!(status(&doc, "cluster.storageclass"), "fail");
    assert_eq!(
        subjects_of(&doc, "claim-storageclass-missing", "name"),
        vec![format!("{rel}-data")]
    );
    let (ok, out) = helm(
        &s,
        &c,
        &[
            "install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            ns.as_str(),
            "--create-namespace",
            "--set",
            set_sc.as_str(),
            "--set",
            "staticPV=true",
            "--set",
            "dataSize=1Gi",
        ],
    );
    let (bound, phase) = c.kubectl(
        &[
            "wait",
            "-n",
            &ns,
            &format!("pvc/{rel}-data"),
            "--for=jsonpath={.status.phase}=Bound",
            "--timeout=60s",
        ],
        None,
    );
    let _ = helm(&s, &c, &["uninstall", rel.as_str(), "-n", ns.as_str()]);
    c.delete(&["namespace", &ns]);
    c.delete(&["pv", &format!("{rel}-{ns}-data")]);
    assert!(ok, "{out}");
    assert!(
        bound,
        "the real PV controller did not bind the claim to the chart's volume: {phase}"
    );
}

/// A chart repository served on 127.0.0.1: the real `helm package` and `helm repo index`.
fn chart_repo(s: &Scenario) -> FaultServer {
    let dir = s.dir.path().join("repo");
    std::fs::create_dir_all(&dir).unwrap();
    let helm = real_tool("helm-3.17.2/helm");
    let out = Command::new(&helm)
        .args(["package", &fixture("mini-release"), "-d"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Without --url the index names the package relative to the repository, as helm allows.
    let out = Command::new(&helm)
        .args(["repo", "index"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files = vec![
        (
            "/charts/index.yaml".to_string(),
            std::fs::read(dir.join("index.yaml")).unwrap(),
        ),
        (
            "/charts/mini-release-0.1.0.tgz".to_string(),
            std::fs::read(dir.join("mini-release-0.1.0.tgz")).unwrap(),
        ),
    ];
    FaultServer::start(Fault::Files(files))
}

fn helmfile_env(s: &mut Scenario, repo: &str, names: &[(&str, &str)]) {
    s.env.insert("REPO_URL".into(), repo.into());
    for (k, v) in names {
        s.env.insert((*k).into(), (*v).into());
    }
}

#[test]
fn seed004_helmfile_release_at_a_version_the_repository_lacks() {
    let Some(c) = cluster() else { return };
    let mut s = with_tools();
    let repo = chart_repo(&s);
    let url = format!("http://{}/charts", repo.host());
    let (a, b, ns_a, ns_b) = (unique("rel-a"), unique("rel-b"), unique("ns-a"), unique("ns-b"));
    helmfile_env(
        &mut s,
        &url,
        &[
            ("REL_A", &a),
            ("REL_B", &b),
            ("NS_A", &ns_a),
            ("NS_B", &ns_b),
            ("VERSION_B", "1.1.25"),
        ],
    );
    let file = fixture("helmfile-repo.yaml");
    let kc = c.kubeconfig();
    let args = [
        "--helmfile",
        file.as_str(),
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "network.chart-repos,cluster.helm-ownership",
    ];
    let (run, doc) = s.json(&args);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let helm_says = "chart \"mini-release\" matching 1.1.25 not found in local index. (try 'helm repo update'): no chart version found for mini-release-1.1.25";
    // Release B does not render, in helm's words, under the render's own check; release A
    // still renders and is checked. chart-repos names the repository and the version it lacks.
    assert_eq!(status(&doc, "tools.install-render"), "fail");
    assert_eq!(codes(&doc, "tools.install-render"), ["release-does-not-render"]);
    assert_eq!(
        message(&doc, "tools.install-render"),
        format!("release {b} (helmfile-repo.yaml): {helm_says}\n1 of 2 release(s) rendered, 2 object(s)")
    );
    assert_eq!(status(&doc, "network.chart-repos"), "fail");
    assert_eq!(codes(&doc, "network.chart-repos"), ["chart-version-missing"]);
    assert!(
        message(&doc, "network.chart-repos").starts_with(&format!("local: chart mini-release version 1.1.25 is not in {url}/index.yaml (versions there: 0.1.0); helm would say: failed to download \"mini-release\" at version \"1.1.25\"\n(and so the render fails: release {b}: {helm_says})")),
        "{}",
        message(&doc, "network.chart-repos")
    );
    // The other release's objects are checked; the report says which release was not.
    assert_eq!(status(&doc, "cluster.helm-ownership"), "pass");
    assert!(
        message(&doc, "cluster.helm-ownership").ends_with(&format!(
            "(not checked: release {b} did not render; see tools.install-render)"
        )),
        "{}",
        message(&doc, "cluster.helm-ownership")
    );
    let releases = doc["install"]["releases_rendered"].as_array().unwrap();
    let names: Vec<(&str, bool)> = releases
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["rendered"].as_bool().unwrap()))
        .collect();
    // helmfile's needs: order (A needs B).
    assert_eq!(names, vec![(b.as_str(), false), (a.as_str(), true)]);
    assert_eq!(releases[0]["error"], helm_says);
    assert_eq!(releases[0]["file"], "helmfile-repo.yaml");
    // The real helmfile sync fails the same way.
    let sync = Command::new(real_tool("helmfile-0.166.0/helmfile"))
        .args(["--file", file.as_str(), "sync", "--kube-context", "test"])
        .env_clear()
        .envs(&s.env)
        .env("KUBECONFIG", &c.kubeconfig)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&sync.stderr).into_owned();
    assert!(!sync.status.success());
    assert!(
        out.contains("chart \"mini-release\" matching 1.1.25 not found in local index"),
        "{out}"
    );

    // At a version the repository has: rendered, both releases checked, and it installs.
    s.env.insert("VERSION_B".into(), "0.1.0".into());
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns_b}}}\n"
    ));
    let (run, doc) = s.json(&args);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        doc["install"]["rendered_for"], "Kubernetes v1.20.2",
        "rendered with the cluster's capabilities"
    );
    assert!(
        message(&doc, "network.chart-repos").starts_with(&format!(
            "local: {url}/index.yaml lists 1 chart(s), including the 2 needed"
        )),
        "{}",
        message(&doc, "network.chart-repos")
    );
    assert!(
        message(&doc, "cluster.helm-ownership").ends_with("(4 objects from 2 releases)"),
        "{}",
        message(&doc, "cluster.helm-ownership")
    );
    let sync = Command::new(real_tool("helmfile-0.166.0/helmfile"))
        .args(["--file", file.as_str(), "sync", "--kube-context", "test"])
        .env_clear()
        .envs(&s.env)
        .env("KUBECONFIG", &c.kubeconfig)
        .output()
        .unwrap();
    let ok = sync.status.success();
    let out = String::from_utf8_lossy(&sync.stderr).into_owned();
    for (rel, ns) in [(&a, &ns_a), (&b, &ns_b)] {
        let _ = helm(&s, &c, &["uninstall", rel.as_str(), "--namespace", ns.as_str()]);
        c.delete(&["namespace", ns]);
    }
    assert!(ok, "helmfile sync of the clean helmfile: {out}");
}

#[test]
fn without_profile_an_install_runs_the_default_checks_plus_those_it_feeds() {
    let s = with_tools();
    let chart = fixture("mini-release");
    let run = s.run(&["list"]);
    assert_eq!(run.code(), 0);
    let (_, doc) = s.json(&[
        "--chart",
        chart.as_str(),
        "--release",
        "r",
        "--namespace",
        "n",
        "--skip",
        "cluster,tools,node",
    ]);
    let ids: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            "network.registry",
            "network.images",
            "network.chart-repos",
            "network.runtime-mirrors"
        ]
    );
    assert_eq!(
        message(&doc, "network.images"),
        "the install runs no container images and the profile lists none"
    );
}

#[test]
fn helm_runs_only_when_a_check_that_runs_reads_the_install() {
    let s = Scenario::new();
    let marker = s.dir.path().join("helm-ran");
    s.script_on_path(
        "helm",
        &format!(
            "#!/bin/sh\necho \"Error: no chart for you\" >&2\n: > {}\nexit 1\n",
            marker.display()
        ),
    );
    let chart = fixture("mini-release");
    let args = ["--chart", chart.as_str(), "--release", "r", "--namespace", "n"];
    // A node-only run on an air-gapped node: nothing reads the install, helm never starts.
    let mut node_only = args.to_vec();
    node_only.extend(["--only", "node.conntrack"]);
    let run = s.run(&node_only);
    assert!(
        run.stdout()
            .starts_with("install: not rendered: none of the checks that run reads it\n"),
        "{}",
        run.stdout()
    );
    assert!(
        !marker.exists(),
        "helm was started for a run that does not read the install"
    );
    let (_, doc) = s.json(&node_only);
    assert!(doc.get("install").is_none_or(|i| i.is_null()), "{doc}");
    // A check that reads it: helm renders (here it fails, and says so).
    let mut images = args.to_vec();
    images.extend(["--only", "network.images"]);
    let (run, doc) = s.json(&images);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert!(
        marker.exists(),
        "helm was not started for a check that reads the install"
    );
    assert_eq!(
        message(&doc, "tools.install-render"),
        "release r: no chart for you\n0 of 1 release(s) rendered, 0 object(s)"
    );
    assert_eq!(codes(&doc, "tools.install-render"), ["release-does-not-render"]);
    assert_eq!(status(&doc, "network.images"), "skip");
}

#[test]
fn a_chart_that_does_not_render_is_an_error_in_helms_words() {
    let s = with_tools();
    let bad = s.dir.path().join("bad");
    std::fs::create_dir_all(bad.join("templates")).unwrap();
    std::fs::write(
        bad.join("Chart.yaml"),
        "apiVersion: v2\nname: bad\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(bad.join("values.yaml"), "images: {}\n").unwrap();
    std::fs::write(
        bad.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  registry: {{ index .Values.images \"imageRegistry2\" | required \"map has no entry for key imageRegistry2\" }}\n",
    )
    .unwrap();
    let chart: PathBuf = bad;
    let chart = chart.display().to_string();
    let (run, doc) = s.json(&[
        "--chart",
        chart.as_str(),
        "--release",
        "r",
        "--namespace",
        "n",
        "--only",
        "network.images",
    ]);
    // A predicted failure (helm install fails the same way), owned by the render's check:
    // one sentence, helm's; the check that needed the release says skip, citing it.
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(status(&doc, "tools.install-render"), "fail");
    assert_eq!(codes(&doc, "tools.install-render"), ["release-does-not-render"]);
    let msg = message(&doc, "tools.install-render");
    assert!(
        msg.starts_with("release r: execution error at (bad/templates/cm.yaml:5:"),
        "{msg}"
    );
    assert!(
        msg.contains("): map has no entry for key imageRegistry2"),
        "{msg}"
    );
    assert!(!msg.contains("Use --debug"), "{msg}");
    assert_eq!(status(&doc, "network.images"), "skip");
    assert_eq!(
        message(&doc, "network.images"),
        "no release of the install rendered (r): see tools.install-render"
    );
    let release = &doc["install"]["releases_rendered"][0];
    assert_eq!(release["name"], "r");
    assert_eq!(release["rendered"], false);
    assert!(release["error"]
        .as_str()
        .unwrap()
        .contains("map has no entry for key imageRegistry2"));
}

#[test]
fn a_mistake_on_the_command_line_is_a_usage_error_in_helms_words() {
    let s = with_tools();
    let missing = s.dir.path().join("no-such-chart").display().to_string();
    let run = s.run(&[
        "--chart",
        &missing,
        "--release",
        "r",
        "--namespace",
        "n",
        "--only",
        "network.images",
    ]);
    assert_eq!(run.code(), 2, "{}{}", run.stdout(), run.stderr());
    assert!(run.stdout().is_empty(), "{}", run.stdout());
    assert!(
        run.stderr()
            .contains(&format!("helm template: path \"{missing}\" not found")),
        "{}",
        run.stderr()
    );
    let chart = fixture("mini-release");
    let run = s.run(&[
        "--chart",
        &chart,
        "--release",
        "r",
        "--namespace",
        "n",
        "--set",
        "a[=1",
        "--only",
        "network.images",
    ]);
    assert_eq!(run.code(), 2, "{}{}", run.stdout(), run.stderr());
    assert!(
        run.stderr().contains("helm template: failed parsing --set data"),
        "{}",
        run.stderr()
    );
}

#[test]
fn the_helm_plugin_form_checks_what_helm_install_would_do() {
    let Some(c) = cluster() else { return };
    for helm_release in ["helm-3.17.2/helm", "helm-4.1.4/helm"] {
        let mut s = Scenario::new();
        if helm_release.starts_with("helm-4") {
            // helm 4.1's `plugin install` writes under $HOME/.local/share/helm/plugins even
            // when HELM_PLUGINS points elsewhere, then reads HELM_PLUGINS: use the default.
            s.env.remove("HELM_PLUGINS");
        }
        // Offline install of the plugin: plugin.yaml with the binary next to it.
        let plugin = s.dir.path().join("preflight");
        std::fs::create_dir_all(&plugin).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("helm-plugin/plugin.yaml"),
            plugin.join("plugin.yaml"),
        )
        .unwrap();
        std::fs::copy(bin(), plugin.join("preflight")).unwrap();
        let helm = real_tool(helm_release);
        let out = Command::new(&helm)
            .args(["plugin", "install"])
            .arg(&plugin)
            .env_clear()
            .envs(&s.env)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{helm_release}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cm = unique("cert-manager");
        c.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {cm}}}\n"
        ));
        // Exactly what the installer would give helm install, plus preflight's own options.
        let out = Command::new(&helm)
            .args([
                "preflight",
                "install",
                "kv",
                &fixture("oam-like"),
                "-n",
                "vela-system",
                "--create-namespace",
            ])
            .args([
                "--set",
                &format!("certManagerNamespace={cm}"),
                "--wait",
                "--timeout",
                "5m",
            ])
            .args(["--set", &format!("scopeName={}.core.oam.dev", unique("scope"))])
            .args(["--only", "cluster.api,cluster.helm-ownership", "-o", "json"])
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .env_clear()
            .envs(&s.env)
            .output()
            .unwrap();
        c.delete(&["namespace", &cm]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{helm_release}: helm passes the exit code on: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{helm_release}: {e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let msg = message(&doc, "cluster.helm-ownership");
        assert_eq!(
            codes(&doc, "cluster.helm-ownership"),
            ["owned-by-another-release"]
        );
        assert!(
            msg.starts_with(&format!(
                "Namespace \"{cm}\" in namespace \"\" exists and cannot be imported into the current release"
            )),
            "{helm_release}: {msg}"
        );
        assert_eq!(msg.lines().count(), 1, "{msg}");
        assert!(
            msg.ends_with("[release kv, oam-like/templates/namespace.yaml]"),
            "{msg}"
        );
    }
}

/// Tests whose helm install creates the new-kube fixture's CRD (before helm refuses the chart)
/// take turns, and delete it.
static NEW_KUBE_CRD: std::sync::Mutex<()> = std::sync::Mutex::new(());
const NEW_KUBE_CRD_NAME: &str = "gizmos.newkube.preflight.test";

#[test]
fn a_chart_whose_kube_version_the_cluster_does_not_meet() {
    let Some(c) = cluster() else { return };
    let _turn = NEW_KUBE_CRD.lock().unwrap_or_else(|p| p.into_inner());
    let _ = c.kubectl(&["delete", "crd", NEW_KUBE_CRD_NAME, "--ignore-not-found"], None);
    let s = with_tools();
    let (rel, ns) = (unique("nk"), unique("nk-ns"));
    let kc = c.kubeconfig();
    let chart = fixture("new-kube");
    let run_for = |chart: &str| {
        s.json(&[
            "--chart",
            chart,
            "--release",
            rel.as_str(),
            "--namespace",
            ns.as_str(),
            "--create-namespace",
            "--kubeconfig",
            kc.as_str(),
            "--only",
            "cluster.api,cluster.kube-version,cluster.dry-run",
        ])
    };
    let (run, doc) = run_for(&chart);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let sentence = "chart requires kubeVersion: >= 1.22.0-0 which is incompatible with Kubernetes v1.20.2";
    // helm creates the chart's crds/ before it compares kubeVersion: said, and dry-run.
    assert_eq!(
        message(&doc, "cluster.kube-version"),
        format!("{sentence}; helm install still creates the chart's 1 CRD(s) from crds/ first, and leaves them behind: {NEW_KUBE_CRD_NAME} (cluster.dry-run sends them to the server)")
    );
    assert_eq!(codes(&doc, "cluster.kube-version"), ["kube-version-refused"]);
    assert_eq!(
        status(&doc, "cluster.dry-run"),
        "pass",
        "{}",
        message(&doc, "cluster.dry-run")
    );
    assert!(
        message(&doc, "cluster.dry-run")
            .starts_with("the API server accepts all 1 object(s) it was asked about"),
        "{}",
        message(&doc, "cluster.dry-run")
    );
    let (ok, out) = helm(
        &s,
        &c,
        &[
            "install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            ns.as_str(),
            "--create-namespace",
        ],
    );
    let (left, _) = c.kubectl(&["get", "crd", NEW_KUBE_CRD_NAME], None);
    let _ = c.kubectl(&["delete", "crd", NEW_KUBE_CRD_NAME, "--ignore-not-found"], None);
    assert!(!ok && out.contains(sentence), "the real helm install: {out}");
    assert!(
        left,
        "the real helm install left the chart's CRD behind, as predicted"
    );
    // A chart without the constraint: helm accepted it for this cluster.
    let (run, doc) = run_for(&fixture("mini-release"));
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "cluster.kube-version"),
        "helm rendered the 1 release(s) for Kubernetes v1.20.2: every chart's kubeVersion accepts it"
    );
}

#[test]
fn release_namespace_missing_or_created_twice() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let kc = c.kubeconfig();
    let (rel, ns) = (unique("rn"), unique("kruise-system"));
    let mini = fixture("mini-release");
    // No such namespace, and nothing creates it.
    let (run, doc) = s.json(&[
        "--chart",
        mini.as_str(),
        "--release",
        rel.as_str(),
        "--namespace",
        ns.as_str(),
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "cluster.api,cluster.release-namespace",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(
        findings(&doc, "cluster.release-namespace"),
        vec![(
            "namespace-missing".to_string(),
            serde_json::json!({"type": "release", "release": rel, "namespace": ns})
        )]
    );
    assert_eq!(
        message(&doc, "cluster.release-namespace"),
        format!("release {rel} (namespace {ns}): does not exist and nothing creates it: helm fails with \"create: failed to create: namespaces \\\"{ns}\\\" not found\"")
    );
    let (ok, out) = helm(
        &s,
        &c,
        &["install", rel.as_str(), mini.as_str(), "-n", ns.as_str()],
    );
    assert!(
        !ok && out.contains(&format!(
            "create: failed to create: namespaces \"{ns}\" not found"
        )),
        "{out}"
    );
    // --create-namespace and a chart that renders the same Namespace.
    let oam = fixture("oam-like");
    let set_cm = format!("certManagerNamespace={ns}");
    let set_scope = format!("scopeName={}.core.oam.dev", unique("scope"));
    let (run, doc) = s.json(&[
        "--chart",
        oam.as_str(),
        "--release",
        rel.as_str(),
        "--namespace",
        ns.as_str(),
        "--create-namespace",
        "--set",
        set_cm.as_str(),
        "--set",
        set_scope.as_str(),
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "cluster.api,cluster.release-namespace",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(
        message(&doc, "cluster.release-namespace"),
        format!("release {rel} (namespace {ns}): created first because of --create-namespace / createNamespace, then the chart's own Namespace (oam-like/templates/namespace.yaml) fails with \"namespaces \\\"{ns}\\\" already exists\"")
    );
    let (ok, out) = helm(
        &s,
        &c,
        &[
            "install",
            rel.as_str(),
            oam.as_str(),
            "-n",
            ns.as_str(),
            "--create-namespace",
            "--set",
            set_cm.as_str(),
            "--set",
            set_scope.as_str(),
        ],
    );
    let _ = helm(&s, &c, &["uninstall", rel.as_str(), "-n", ns.as_str()]);
    c.delete(&["namespace", &ns]);
    assert!(
        !ok && out.contains(&format!("namespaces \"{ns}\" already exists")),
        "{out}"
    );
    kruise_like_chart_creating_its_own_release_namespace(&s, &c);
}

/// OpenKruise's chart renders its own `kruise-system` Namespace; installed into that same
/// namespace it can never work: absent, helm's release record comes first; present, the
/// chart's Namespace cannot be imported. Into another namespace, it installs.
fn kruise_like_chart_creating_its_own_release_namespace(s: &Scenario, c: &Cluster) {
    let kc = c.kubeconfig();
    let (rel, ns) = (unique("kruise"), unique("kruise-system"));
    let oam = fixture("oam-like");
    let set_cm = format!("certManagerNamespace={ns}");
    let set_scope = format!("scopeName={}.core.oam.dev", unique("scope"));
    let check = |into: &str| {
        s.json(&[
            "--chart",
            oam.as_str(),
            "--release",
            rel.as_str(),
            "--namespace",
            into,
            "--set",
            set_cm.as_str(),
            "--set",
            set_scope.as_str(),
            "--kubeconfig",
            kc.as_str(),
            "--only",
            "cluster.api,cluster.release-namespace",
        ])
    };
    let install = |into: &str| {
        helm(
            s,
            c,
            &[
                "install",
                rel.as_str(),
                oam.as_str(),
                "-n",
                into,
                "--set",
                set_cm.as_str(),
                "--set",
                set_scope.as_str(),
            ],
        )
    };
    // Absent: the chart's Namespace does not help (the old false pass).
    let (run, doc) = check(&ns);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let msg = message(&doc, "cluster.release-namespace");
    assert_eq!(
        codes(&doc, "cluster.release-namespace"),
        ["chart-renders-release-namespace"]
    );
    assert!(
        msg.starts_with(&format!("release {rel} (namespace {ns}): does not exist; the chart renders it (oam-like/templates/namespace.yaml), but helm writes the release record (a Secret in {ns}) before it creates any object, so it fails with \"create: failed to create: namespaces \\\"{ns}\\\" not found\"")),
        "{msg}"
    );
    assert!(msg.ends_with("install the release into another namespace (its docs use default), and the chart creates it itself".replace("it itself", &format!("{ns} itself")).as_str()), "{msg}");
    let (ok, out) = install(&ns);
    assert!(
        !ok && out.contains(&format!(
            "create: failed to create: namespaces \"{ns}\" not found"
        )),
        "{out}"
    );
    // Created beforehand: the chart's own Namespace cannot be imported.
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    let (run, doc) = check(&ns);
    let (ok, out) = install(&ns);
    let _ = helm(s, c, &["uninstall", rel.as_str(), "-n", ns.as_str()]);
    c.delete(&["namespace", &ns]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let msg = message(&doc, "cluster.release-namespace");
    assert!(
        msg.contains(&format!("helm fails with: Namespace \"{ns}\" in namespace \"\" exists and cannot be imported into the current release: invalid ownership metadata;")),
        "{msg}"
    );
    assert!(
        !ok && out.contains(&format!(
            "Namespace \"{ns}\" in namespace \"\" exists and cannot be imported into the current release"
        )),
        "{out}"
    );
    // Into default (as kruise's docs do): the chart creates its namespace, and it installs.
    let (gone, out) = c.kubectl(
        &[
            "wait",
            "--for=delete",
            &format!("namespace/{ns}"),
            "--timeout=60s",
        ],
        None,
    );
    assert!(gone || out.contains("not found"), "{out}");
    let (run, doc) = check("default");
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "cluster.release-namespace"),
        format!("release {rel} (namespace default): exists")
    );
    let (ok, out) = install("default");
    let _ = helm(s, c, &["uninstall", rel.as_str(), "-n", "default"]);
    c.delete(&["namespace", &ns]);
    assert!(ok, "{out}");
}

/// Secrets helm keeps for `rel` in `ns`: the newest revision's status label.
fn release_status(c: &Cluster, rel: &str, ns: &str) -> String {
    let (_, out) = c.kubectl(
        &[
            "get",
            "secret",
            "-n",
            ns,
            "-l",
            &format!("owner=helm,name={rel}"),
            "-o",
            "jsonpath={.items[*].metadata.labels.status}",
        ],
        None,
    );
    out.trim().to_string()
}

#[test]
fn seed001_an_interrupted_install_leaves_the_release_pending() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let kc = c.kubeconfig();
    let (rel, ns) = (unique("stuck"), unique("stuck-ns"));
    let chart = fixture("storage-app");
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    // helm install --wait on a cluster without a kubelet waits for ever: kill it mid-way, as
    // an installer killed by its operator would be.
    let mut install = Command::new(real_tool("helm-3.17.2/helm"))
        .args([
            "install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            ns.as_str(),
            "--wait",
            "--timeout",
            "5m",
        ])
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .env_clear()
        .envs(&s.env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while release_status(&c, &rel, &ns) != "pending-install" {
        assert!(
            started.elapsed().as_secs() < 60,
            "helm never stored the pending release"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = install.kill();
    let _ = install.wait();
    let args = [
        "--chart",
        chart.as_str(),
        "--release",
        rel.as_str(),
        "--namespace",
        ns.as_str(),
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "cluster.api,cluster.release-state",
    ];
    let (run, doc) = s.json(&args);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(
        findings(&doc, "cluster.release-state"),
        vec![(
            "release-pending".to_string(),
            serde_json::json!({"type": "release", "release": rel, "namespace": ns})
        )]
    );
    assert_eq!(
        message(&doc, "cluster.release-state"),
        format!("release {ns}/{rel}: revision 1 is pending-install: helm fails with \"another operation (install/upgrade/rollback) is in progress\"")
    );
    assert_eq!(
        fix_commands(&doc, "cluster.release-state"),
        vec![format!(
            "helm uninstall {rel} -n {ns}   # unsafe: deletes what the interrupted install created"
        )]
    );
    let (ok, out) = helm(
        &s,
        &c,
        &[
            "upgrade",
            "--install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            ns.as_str(),
        ],
    );
    assert!(
        !ok && out.contains("another operation (install/upgrade/rollback) is in progress"),
        "{out}"
    );
    // After the fix: a first install again.
    let (ok, out) = helm(&s, &c, &["uninstall", rel.as_str(), "-n", ns.as_str()]);
    assert!(ok, "{out}");
    let (run, doc) = s.json(&args);
    c.delete(&["namespace", &ns]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "cluster.release-state"),
        format!("release {ns}/{rel}: a first install")
    );
}

#[test]
fn a_failed_first_install_blocks_helm_install_of_the_name() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let kc = c.kubeconfig();
    let (rel, ns) = (unique("failed"), unique("failed-ns"));
    let chart = fixture("storage-app");
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    // Nothing ever gets ready here: the install times out and is marked failed.
    let (ok, _) = helm(
        &s,
        &c,
        &[
            "install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            ns.as_str(),
            "--wait",
            "--timeout",
            "2s",
        ],
    );
    assert!(!ok);
    assert_eq!(release_status(&c, &rel, &ns), "failed");
    let (run, doc) = s.json(&[
        "--chart",
        chart.as_str(),
        "--release",
        rel.as_str(),
        "--namespace",
        ns.as_str(),
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "cluster.api,cluster.release-state",
    ]);
    assert_eq!(run.code(), 0, "a warning: {}", run.stdout());
    assert_eq!(status(&doc, "cluster.release-state"), "warn");
    assert_eq!(codes(&doc, "cluster.release-state"), ["first-install-failed"]);
    assert!(message(&doc, "cluster.release-state")
        .contains("helm install says \"cannot re-use a name that is still in use\""));
    let (ok, out) = helm(
        &s,
        &c,
        &["install", rel.as_str(), chart.as_str(), "-n", ns.as_str()],
    );
    let _ = helm(&s, &c, &["uninstall", rel.as_str(), "-n", ns.as_str()]);
    c.delete(&["namespace", &ns]);
    assert!(
        !ok && out.contains("cannot re-use a name that is still in use"),
        "{out}"
    );
}

#[test]
fn a_kind_without_its_crd_and_an_api_version_a_later_release_removes() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let kc = c.kubeconfig();
    let (rel, ns) = (unique("ak"), unique("ak-ns"));
    let chart = fixture("api-kinds");
    let run_with = |sets: &[&str]| {
        let mut args = vec![
            "--chart",
            chart.as_str(),
            "--release",
            rel.as_str(),
            "--namespace",
            ns.as_str(),
            "--create-namespace",
            "--kubeconfig",
            kc.as_str(),
            "--only",
            "cluster.api,cluster.api-versions,cluster.install-rbac",
        ];
        for set in sets {
            args.extend(["--set", set]);
        }
        s.json(&args)
    };
    let (run, doc) = run_with(&["widgetGroup=missing.preflight.test"]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(
        findings(&doc, "cluster.api-versions"),
        vec![(
            "kind-not-served".to_string(),
            serde_json::json!({"type": "object", "kind": "Widget", "namespace": ns, "name": format!("{rel}-w"), "release": rel, "template": "api-kinds/templates/widget.yaml"})
        )]
    );
    assert_eq!(
        findings(&doc, "cluster.install-rbac"),
        vec![(
            "kind-not-reviewed".to_string(),
            serde_json::json!({"type": "object", "kind": "Widget", "namespace": ns, "name": format!("{rel}-w"), "release": rel, "template": "api-kinds/templates/widget.yaml"})
        )]
    );
    assert_eq!(status(&doc, "cluster.install-rbac"), "warn");
    assert_eq!(
        message(&doc, "cluster.api-versions"),
        format!("release {rel}, api-kinds/templates/widget.yaml: resource mapping not found for name: \"{rel}-w\" namespace: \"\" from \"\": no matches for kind \"Widget\" in version \"missing.preflight.test/v1\"\nensure CRDs are installed first")
    );
    let (ok, out) = helm(
        &s,
        &c,
        &[
            "install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            ns.as_str(),
            "--create-namespace",
            "--set",
            "widgetGroup=missing.preflight.test",
        ],
    );
    assert!(
        !ok && out.contains("no matches for kind \"Widget\" in version \"missing.preflight.test/v1\""),
        "{out}"
    );
    // Its CRD in crds/, and an Ingress that 1.22 removes: a warning, and the install works.
    let (run, doc) = run_with(&["oldIngress=true"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(status(&doc, "cluster.api-versions"), "warn");
    assert_eq!(codes(&doc, "cluster.api-versions"), ["api-removed-later"]);
    assert_eq!(
        message(&doc, "cluster.api-versions"),
        format!("Ingress {rel}-web (release {rel}, api-kinds/templates/ingress.yaml) uses extensions/v1beta1, which Kubernetes 1.22 removes: served by this cluster (v1.20.2), not after an upgrade")
    );
    let (ok, out) = helm(
        &s,
        &c,
        &[
            "install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            ns.as_str(),
            "--create-namespace",
            "--set",
            "oldIngress=true",
        ],
    );
    let _ = helm(&s, &c, &["uninstall", rel.as_str(), "-n", ns.as_str()]);
    c.delete(&["namespace", &ns]);
    assert!(ok, "{out}");
}

#[test]
fn a_user_who_may_not_create_a_kind_the_chart_renders() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let (rel, ns, user) = (unique("rb"), unique("rb-ns"), unique("deploy"));
    // A namespace admin of sorts: helm's storage and ConfigMaps there, nothing cluster-wide.
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: {user}, namespace: {ns}}}\nrules:\n- apiGroups: [\"\"]\n  resources: [secrets, configmaps]\n  verbs: [get, list, create, update, patch, delete]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: {user}, namespace: {ns}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {user}}}\nsubjects:\n- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}\n"
    ));
    let kc = c.kubeconfig_as(s.dir.path(), &user);
    let chart = fixture("mini-release");
    let (run, doc) = s.json(&[
        "--chart",
        chart.as_str(),
        "--release",
        rel.as_str(),
        "--namespace",
        ns.as_str(),
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "cluster.install-rbac",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(
        findings(&doc, "cluster.install-rbac"),
        ["create", "get"]
            .map(|verb| (
                "verb-denied".to_string(),
                serde_json::json!({"type": "access", "verb": verb, "resource": "clusterroles.rbac.authorization.k8s.io"})
            ))
            .to_vec()
    );
    assert_eq!(
        message(&doc, "cluster.install-rbac"),
        format!("may not create clusterroles.rbac.authorization.k8s.io at the cluster scope: needed by release {rel}, mini-release/templates/clusterrole.yaml\nmay not get clusterroles.rbac.authorization.k8s.io at the cluster scope: needed by release {rel}, mini-release/templates/clusterrole.yaml")
    );
    assert_eq!(
        fix_commands(&doc, "cluster.install-rbac"),
        vec![
            "kubectl auth can-i create clusterroles.rbac.authorization.k8s.io",
            "kubectl auth can-i get clusterroles.rbac.authorization.k8s.io"
        ]
    );
    // The real helm, as that user, stops there.
    let (ok, out) = helm(
        &s,
        &c,
        &[
            "install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            ns.as_str(),
            "--kube-as-user",
            user.as_str(),
        ],
    );
    c.delete(&["namespace", &ns]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("User \"{user}\" cannot get resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope")),
        "{out}"
    );
    // The admin may do it all.
    let (run, doc) = s.json(&[
        "--chart",
        chart.as_str(),
        "--release",
        rel.as_str(),
        "--namespace",
        ns.as_str(),
        "--kubeconfig",
        c.kubeconfig().as_str(),
        "--only",
        "cluster.install-rbac",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "cluster.install-rbac"),
        "this user may get and create every kind of the 2 objects from 1 release (7 permission(s) reviewed)"
    );
}

/// A Node with `cpu`/`memory` allocatable, labelled into its own pool, and a profile whose
/// cluster.schedulable looks only at that pool (tolerating the taints the node controller
/// puts on a node without a kubelet).
fn schedulable_worker(s: &Scenario, c: &Cluster, cpu: &str, memory: &str) -> (String, String) {
    let pool = unique("pool");
    let worker = unique("worker");
    c.apply(&format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {worker}\n  labels: {{preflight-test: {pool}}}\n"
    ));
    let patch = format!("{{\"status\":{{\"capacity\":{{\"cpu\":\"{cpu}\",\"memory\":\"{memory}\",\"pods\":\"110\"}},\"allocatable\":{{\"cpu\":\"{cpu}\",\"memory\":\"{memory}\",\"pods\":\"110\"}}}}}}");
    let (ok, out) = c.kubectl(
        &[
            "patch",
            "node",
            &worker,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ],
        None,
    );
    assert!(ok, "{out}");
    let profile = s.profile(&format!("checks:\n  cluster.schedulable: {{node_selector: {{preflight-test: {pool}}}, tolerations: [node.kubernetes.io/not-ready, node.kubernetes.io/unreachable]}}\n"));
    (worker, profile)
}

#[test]
fn seed004_pods_of_the_install_that_no_node_can_take() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let (worker, profile) = schedulable_worker(&s, &c, "2", "4Gi");
    let chart = fixture("storage-app");
    let kc = c.kubeconfig();
    let run_with = |sets: &[&str]| {
        let mut args = vec![
            "--profile",
            profile.as_str(),
            "--chart",
            chart.as_str(),
            "--release",
            "bk",
            "--namespace",
            "blueking",
            "--kubeconfig",
            kc.as_str(),
        ];
        for set in sets {
            args.extend(["--set", set]);
        }
        s.json(&args)
    };
    let (r1, one_too_big) = run_with(&["webCpu=3"]);
    let (r2, too_many) = run_with(&["webCpu=1", "replicas=3"]);
    // A pre-delete hook (kruise's kruise-finalizer) asking for more than the node has: it
    // never runs at install, so it is no install pod.
    let (r3, fits) = run_with(&["webCpu=500m", "replicas=2", "finalizerHook=true"]);
    c.delete(&["node", &worker]);
    assert_eq!(r1.code(), 1, "{}", r1.stdout());
    assert_eq!(
        findings(&one_too_big, "cluster.schedulable")[0],
        (
            "pod-unschedulable".to_string(),
            serde_json::json!({"type": "object", "kind": "Deployment", "namespace": "blueking", "name": "bk-web", "release": "bk", "template": "storage-app/templates/deployment.yaml"})
        )
    );
    assert_eq!(
        message(&one_too_big, "cluster.schedulable").lines().next().unwrap(),
        "Deployment bk-web (release bk, storage-app/templates/deployment.yaml): 0/1 nodes are available for cpu 3, memory 0.1 GiB: 1 Insufficient cpu."
    );
    assert_eq!(r2.code(), 1, "{}", r2.stdout());
    assert_eq!(codes(&too_many, "cluster.schedulable"), ["not-enough-capacity"]);
    assert_eq!(
        message(&too_many, "cluster.schedulable"),
        "the install's 4 pod(s) request cpu 3, memory 0.4 GiB in all; the 1 schedulable node(s) have cpu 2, memory 4.0 GiB allocatable: pods stay Pending"
    );
    assert_eq!(r3.code(), 0, "{}", r3.stdout());
    assert_eq!(
        message(&fits, "cluster.schedulable"),
        "every pod of the install fits a node; the install's 3 pod(s) request cpu 1, memory 0.2 GiB in all; the 1 schedulable node(s) have cpu 2, memory 4.0 GiB allocatable"
    );
    // The real helm install creates no such Job.
    let ns = unique("hooks");
    let rel = unique("hk");
    let (ok, out) = helm(
        &s,
        &c,
        &[
            "install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            ns.as_str(),
            "--create-namespace",
            "--set",
            "finalizerHook=true",
        ],
    );
    let (_, jobs) = c.kubectl(&["get", "jobs", "-n", &ns, "-o", "name"], None);
    let _ = helm(
        &s,
        &c,
        &["uninstall", rel.as_str(), "-n", ns.as_str(), "--no-hooks"],
    );
    c.delete(&["namespace", &ns]);
    assert!(ok, "{out}");
    assert!(
        !jobs.contains("finalizer"),
        "helm install created the pre-delete hook: {jobs}"
    );
}

#[test]
fn airgap_images_that_slip_past_the_private_registry() {
    let private = Registry::start(RegistryOpts::default());
    let public = Registry::start(RegistryOpts::default());
    let s = with_tools();
    let profile = s.profile(&format!(
        "registries: [{{host: \"{}\"}}]\nchecks:\n  network.registry: {{airgap: true}}\n",
        private.host()
    ));
    let chart = fixture("storage-app");
    let (set_a, set_b, set_init) = (
        format!("imageA={}/blueking/bk-repo:1.0.0", private.host()),
        format!("imageB={}/library/busybox:1.36", public.host()),
        format!("initImage={}/blueking/bk-repo:1.0.0", private.host()),
    );
    let (run, doc) = s.json(&[
        "--profile",
        profile.as_str(),
        "--chart",
        chart.as_str(),
        "--release",
        "bk",
        "--namespace",
        "blueking",
        "--set",
        set_a.as_str(),
        "--set",
        set_b.as_str(),
        "--set",
        set_init.as_str(),
    ]);
    assert_eq!(run.code(), 0, "a warning: {}", run.stdout());
    assert_eq!(status(&doc, "network.registry"), "warn");
    assert_eq!(codes(&doc, "network.registry"), ["image-outside-registries"]);
    assert_eq!(
        subjects_of(&doc, "image-outside-registries", "image"),
        vec![format!("{}/library/busybox:1.36", public.host())]
    );
    let msg = message(&doc, "network.registry");
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(
        lines[..2],
        [
            format!("{}/library/busybox:1.36 (used by release bk, storage-app/templates/deployment.yaml; release bk, storage-app/templates/statefulset.yaml)", public.host()).as_str(),
            "airgap: 1 image(s) come from registries outside the profile's registries: and will never pull here"
        ]
    );
}

#[test]
fn seed003_the_api_servers_own_verdict_webhook_and_quota() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let kc = c.kubeconfig();
    let chart = fixture("mini-release");
    let (hooked, quoted, clean) = (unique("kruise-system"), unique("quota-ns"), unique("clean-ns"));
    let hook = unique("vcm");
    // A Fail webhook with no backend, scoped to one namespace so other tests are untouched.
    // Its URL is a closed loopback port: this control plane (no kube-proxy, no cluster DNS)
    // would resolve a service's name through the host's DNS, and tests stay on 127.0.0.0/8.
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {hooked}, labels: {{preflight-hook: {hook}}}}}\n---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {{name: {hook}}}\nwebhooks:\n- name: vcm.kb.io\n  failurePolicy: Fail\n  sideEffects: None\n  admissionReviewVersions: [v1]\n  namespaceSelector: {{matchLabels: {{preflight-hook: {hook}}}}}\n  clientConfig: {{url: \"https://127.0.0.1:1/validate\"}}\n  rules: [{{apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}}]\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {quoted}}}\n---\napiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: no-configmaps, namespace: {quoted}}}\nspec: {{hard: {{configmaps: \"0\"}}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {clean}}}\n"
    ));
    // The API server picks up a new webhook configuration (and quota) through its informers,
    // a moment after the create: wait until a server-side dry-run meets both.
    let effective = |ns: &str, words: &str| {
        let started = std::time::Instant::now();
        loop {
            let (ok, out) = c.kubectl(
                &["create", "configmap", "probe", "-n", ns, "--dry-run=server"],
                None,
            );
            if !ok && out.contains(words) {
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "not in effect: {out}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    effective(&hooked, "failed calling webhook");
    effective(&quoted, "exceeded quota");
    let judge = |ns: &str, rel: &str| {
        s.json(&[
            "--chart",
            chart.as_str(),
            "--release",
            rel,
            "--namespace",
            ns,
            "--kubeconfig",
            kc.as_str(),
            "--only",
            "cluster.api,cluster.dry-run",
        ])
    };
    let (rel_h, rel_q, rel_c) = (unique("h"), unique("q"), unique("c"));
    let (r1, behind_webhook) = judge(&hooked, &rel_h);
    let (r2, over_quota) = judge(&quoted, &rel_q);
    let (r3, fine) = judge(&clean, &rel_c);
    let (ok_h, out_h) = helm(
        &s,
        &c,
        &["install", rel_h.as_str(), chart.as_str(), "-n", hooked.as_str()],
    );
    let (ok_q, out_q) = helm(
        &s,
        &c,
        &["install", rel_q.as_str(), chart.as_str(), "-n", quoted.as_str()],
    );
    for (rel, ns) in [(&rel_h, &hooked), (&rel_q, &quoted)] {
        let _ = helm(&s, &c, &["uninstall", rel.as_str(), "-n", ns.as_str()]);
    }
    c.delete(&["validatingwebhookconfiguration", &hook]);
    for ns in [&hooked, &quoted, &clean] {
        c.delete(&["namespace", ns]);
    }
    assert_eq!(r1.code(), 1, "{}", r1.stdout());
    assert_eq!(
        findings(&behind_webhook, "cluster.dry-run"),
        vec![(
            "object-rejected".to_string(),
            serde_json::json!({"type": "object", "kind": "ConfigMap", "namespace": hooked, "name": format!("{rel_h}-settings"), "release": rel_h, "template": "mini-release/templates/configmap.yaml"})
        )]
    );
    let msg = message(&behind_webhook, "cluster.dry-run");
    assert!(
        msg.ends_with("\nthe API server rejects 1 of 2 object(s)"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "ConfigMap {rel_h}-settings (release {rel_h}, mini-release/templates/configmap.yaml): "
        )),
        "{msg}"
    );
    assert!(msg.contains("failed calling webhook \"vcm.kb.io\""), "{msg}");
    assert!(msg.contains("connect: connection refused"), "{msg}");
    assert!(
        !ok_h && out_h.contains("failed calling webhook \"vcm.kb.io\""),
        "the real helm install: {out_h}"
    );
    assert_eq!(r2.code(), 1, "{}", r2.stdout());
    let msg = message(&over_quota, "cluster.dry-run");
    assert_eq!(codes(&over_quota, "cluster.dry-run"), ["object-rejected"]);
    assert!(
        msg.contains(&format!(
            "configmaps \"{rel_q}-settings\" is forbidden: exceeded quota: no-configmaps"
        )),
        "{msg}"
    );
    assert!(
        !ok_q && out_q.contains("exceeded quota: no-configmaps"),
        "the real helm install: {out_q}"
    );
    assert_eq!(r3.code(), 0, "{}", r3.stdout());
    assert_eq!(
        message(&fine, "cluster.dry-run"),
        "the API server accepts all 2 object(s) it was asked about (2 objects from 1 release)"
    );
}

#[test]
fn seed004_local_pv_directory_sized_by_the_installs_claims() {
    let s = with_tools();
    s.host_dir("mnt/blueking");
    let profile = s.profile("checks:\n  node.localpv-disk:\n    paths:\n      - {path: /mnt/blueking, storage_class: local-storage, shared: true}\n");
    let chart = fixture("storage-app");
    let (run, doc) = s.json(&[
        "--profile",
        profile.as_str(),
        "--chart",
        chart.as_str(),
        "--release",
        "bk",
        "--namespace",
        "blueking",
    ]);
    let msg = message(&doc, "node.localpv-disk");
    assert_eq!(codes(&doc, "node.localpv-disk"), ["disk-short"]);
    // The PVC of that class counts; the StatefulSet's claim names no class, so it does not.
    assert!(
        msg.ends_with("90.0 GiB needed (1 claim(s) of StorageClass local-storage from the install: PersistentVolumeClaim bk-data 90Gi)"),
        "{msg}"
    );
    assert!(["pass", "fail"].contains(&status(&doc, "node.localpv-disk").as_str()));
    assert_ne!(run.code(), 2);
    // Without an install there is nothing to size it by: the check cannot decide.
    let (run, doc) = s.json(&["--profile", profile.as_str()]);
    assert_eq!(run.code(), 3, "{}", run.stdout());
    assert_eq!(
        message(&doc, "node.localpv-disk"),
        "/mnt/blueking: no install given (--chart / --helmfile) to take the claims of StorageClass local-storage from"
    );
}

#[test]
fn seed003_the_installs_own_webhook_intercepts_its_own_pods() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let kc = c.kubeconfig();
    let chart = fixture("self-webhook");
    let (_, doc) = s.json(&[
        "--chart",
        chart.as_str(),
        "--release",
        "kruise",
        "--namespace",
        "kruise-system",
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "cluster.api,cluster.webhooks",
    ]);
    // Other tests' webhooks may make it fail meanwhile; the install's own one is named either way.
    assert!(["warn", "fail"].contains(&status(&doc, "cluster.webhooks").as_str()));
    assert_eq!(
        subjects_of(&doc, "own-webhook-intercepts-install", "template"),
        vec!["self-webhook/templates/webhookconfiguration.yaml".to_string()]
    );
    let msg = message(&doc, "cluster.webhooks");
    assert!(
        msg.contains("the install's own ValidatingWebhookConfiguration kruise-validating webhook \"vpod.kb.io\" (release kruise, self-webhook/templates/webhookconfiguration.yaml) has failurePolicy Fail and intercepts what the install creates (the pods its workloads start): until its backend is ready, those creates fail (\"failed calling webhook\")"),
        "{msg}"
    );
}

#[test]
fn a_custom_resource_its_own_crds_schema_rejects() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let kc = c.kubeconfig();
    let chart = fixture("cr-schema");
    let crd = "scopes.schema.preflight.test";
    // The verdict must come from the CRD the install brings, not from one a run left behind.
    c.delete(&["crd", crd]);
    let rel = unique("vela");
    let judge = |extra: &[&str]| {
        let mut args = vec![
            "--chart",
            chart.as_str(),
            "--release",
            rel.as_str(),
            "--namespace",
            "default",
            "--kubeconfig",
            kc.as_str(),
            "--only",
            "cluster.api,cluster.dry-run",
        ];
        args.extend_from_slice(extra);
        s.json(&args)
    };
    let (unset, unset_doc) = judge(&["--set", "workloadRefPath=null"]);
    let (clean, clean_doc) = judge(&[]);
    let (ok_unset, out_unset) = helm(
        &s,
        &c,
        &[
            "install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            "default",
            "--set",
            "workloadRefPath=null",
        ],
    );
    let (ok_clean, out_clean) = helm(
        &s,
        &c,
        &[
            "install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            "default",
            "--replace",
        ],
    );
    let _ = helm(&s, &c, &["uninstall", rel.as_str(), "-n", "default"]);
    c.delete(&["crd", crd]);

    let server = format!("Scope.schema.preflight.test \"{rel}-scope\" is invalid: spec.workloadRefPath: Invalid value: \"null\": spec.workloadRefPath in body must be of type string: \"null\"");
    assert_eq!(unset.code(), 1, "{}", unset.stdout());
    assert_eq!(status(&unset_doc, "cluster.dry-run"), "fail");
    assert_eq!(codes(&unset_doc, "cluster.dry-run"), ["object-rejected"]);
    assert_eq!(
        message(&unset_doc, "cluster.dry-run").lines().next().unwrap(),
        format!("Scope {rel}-scope (release {rel}, cr-schema/templates/scope.yaml): {server} (checked against the schema of its CRD {crd}, which the install brings)")
    );
    assert!(
        !ok_unset && out_unset.contains(&server),
        "the real helm install: {out_unset}"
    );
    assert_eq!(clean.code(), 0, "{}", clean.stdout());
    assert_eq!(
        message(&clean_doc, "cluster.dry-run"),
        "the API server accepts all 1 object(s) it was asked about (2 objects from 1 release); 1 custom resource(s) of kinds the install's own CRDs bring pass those CRDs' schemas"
    );
    assert!(ok_clean, "the real helm install: {out_clean}");
}

#[test]
fn objects_in_a_namespace_the_install_creates_are_dry_run_in_its_stead() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let kc = c.kubeconfig();
    let chart = fixture("storage-app");
    let ns = unique("new-ns");
    let rel = unique("web");
    let judge = |replicas: &str| {
        s.json(&[
            "--chart",
            chart.as_str(),
            "--release",
            rel.as_str(),
            "--namespace",
            ns.as_str(),
            "--create-namespace",
            "--set",
            replicas,
            "--kubeconfig",
            kc.as_str(),
            "--only",
            "cluster.api,cluster.dry-run",
        ])
    };
    let (bad, bad_doc) = judge("replicas=-1");
    let (good, good_doc) = judge("replicas=1");
    let install = |replicas: &str| {
        helm(
            &s,
            &c,
            &[
                "install",
                rel.as_str(),
                chart.as_str(),
                "-n",
                ns.as_str(),
                "--create-namespace",
                "--set",
                replicas,
            ],
        )
    };
    let (ok_bad, out_bad) = install("replicas=-1");
    let _ = helm(&s, &c, &["uninstall", rel.as_str(), "-n", ns.as_str()]);
    c.delete(&["namespace", &ns]);
    let ns2 = unique("new-ns");
    let (ok_good, out_good) = helm(
        &s,
        &c,
        &[
            "install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            ns2.as_str(),
            "--create-namespace",
        ],
    );
    let _ = helm(&s, &c, &["uninstall", rel.as_str(), "-n", ns2.as_str()]);
    c.delete(&["namespace", &ns2]);

    let server = format!("Deployment.apps \"{rel}-web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0");
    assert_eq!(bad.code(), 1, "{}", bad.stdout());
    assert_eq!(codes(&bad_doc, "cluster.dry-run"), ["object-rejected"]);
    let msg = message(&bad_doc, "cluster.dry-run");
    assert!(
        msg.contains(&server)
            && msg.lines().next().unwrap().ends_with(&format!(
                "(dry-run in namespace default, standing in for {ns}, which the install creates)"
            )),
        "{msg}"
    );
    assert!(
        !ok_bad && out_bad.contains(&server),
        "the real helm install: {out_bad}"
    );
    assert_eq!(good.code(), 0, "{}", good.stdout());
    assert!(
        message(&good_doc, "cluster.dry-run")
            .starts_with("the API server accepts all 3 object(s) it was asked about"),
        "{}",
        message(&good_doc, "cluster.dry-run")
    );
    assert!(ok_good, "the real helm install: {out_good}");
}

#[test]
fn an_upgrade_by_a_user_who_may_not_patch_what_already_exists() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let (rel, ns, user) = (unique("up"), unique("up-ns"), unique("deploy"));
    // helm's storage in full, ConfigMaps without patch, ClusterRoles in full.
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: {user}, namespace: {ns}}}\nrules:\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [get, list, create, update, patch, delete]\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [get, list, create, update, delete]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: {user}, namespace: {ns}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {user}}}\nsubjects:\n- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {user}}}\nrules:\n- apiGroups: [rbac.authorization.k8s.io]\n  resources: [clusterroles]\n  verbs: [get, create, patch]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {user}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {user}}}\nsubjects:\n- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}\n"
    ));
    let chart = fixture("mini-release");
    let (installed, out) = helm(
        &s,
        &c,
        &["install", rel.as_str(), chart.as_str(), "-n", ns.as_str()],
    );
    assert!(installed, "{out}");
    let kc = c.kubeconfig_as(s.dir.path(), &user);
    let judge = |kc: &str| {
        s.json(&[
            "--chart",
            chart.as_str(),
            "--release",
            rel.as_str(),
            "--namespace",
            ns.as_str(),
            "--set",
            "mode=online",
            "--kubeconfig",
            kc,
            "--only",
            "cluster.install-rbac",
        ])
    };
    let (run, doc) = judge(&kc);
    let (admin, admin_doc) = judge(&c.kubeconfig());
    let (ok, out) = helm(
        &s,
        &c,
        &[
            "upgrade",
            rel.as_str(),
            chart.as_str(),
            "-n",
            ns.as_str(),
            "--set",
            "mode=online",
            "--kube-as-user",
            user.as_str(),
        ],
    );
    let _ = helm(&s, &c, &["uninstall", rel.as_str(), "-n", ns.as_str()]);
    c.delete(&["namespace", &ns]);
    c.delete(&["clusterrolebinding", &user]);
    c.delete(&["clusterrole", &user]);

    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(
        message(&doc, "cluster.install-rbac"),
        format!("may not patch configmaps in namespace {ns}: needed by release {rel}, mini-release/templates/configmap.yaml")
    );
    assert_eq!(codes(&doc, "cluster.install-rbac"), ["verb-denied"]);
    assert_eq!(
        fix_commands(&doc, "cluster.install-rbac"),
        vec![format!("kubectl auth can-i patch configmaps -n {ns}")]
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("User \"{user}\" cannot patch resource \"configmaps\" in API group \"\" in the namespace \"{ns}\"")),
        "{out}"
    );
    assert_eq!(admin.code(), 0, "{}", admin.stdout());
    assert_eq!(
        message(&admin_doc, "cluster.install-rbac"),
        "this user may get and create every kind of the 2 objects from 1 release, and patch the 2 that already exist (9 permission(s) reviewed)"
    );
}

/// `helmfile sync` of one release of the bkce7-like helmfile, as the installer runs it.
fn helmfile_sync(s: &Scenario, c: &Cluster, file: &str, release: &str) -> (bool, String) {
    let selector = format!("name={release}");
    helmfile(
        s,
        c,
        &[
            "--file",
            file,
            "--selector",
            &selector,
            "sync",
            "--kube-context",
            "test",
        ],
    )
}

#[test]
fn seed004_a_bkce7_like_helmfile_release_by_release_runs_no_hook() {
    let Some(c) = cluster() else { return };
    let _turn = NEW_KUBE_CRD.lock().unwrap_or_else(|p| p.into_inner());
    let mut s = with_tools();
    // The helmfile's prepare hook runs `kubectl apply -f -`: a recorder stands in for kubectl.
    let calls = s.dir.path().join("kubectl-calls");
    s.script_on_path(
        "kubectl",
        &format!("#!/bin/sh\necho \"kubectl $*\" >> {}\n", calls.display()),
    );
    let ns = unique("bk");
    let (ok, kv, es, hook) = (
        unique("bk-ok"),
        unique("bk-kv"),
        unique("bk-es"),
        unique("bk-hook"),
    );
    for (k, v) in [
        ("REL_OK", &ok),
        ("REL_KV", &kv),
        ("REL_ES", &es),
        ("REL_HOOK", &hook),
        ("NS", &ns),
    ] {
        s.env.insert(k.into(), v.into());
    }
    let file = fixture("bk-like/base.yaml.gotmpl");
    let kc = c.kubeconfig();
    let (run, doc) = s.json(&[
        "--helmfile",
        file.as_str(),
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "tools.helmfile-hooks,cluster.kube-version,cluster.helm-ownership",
    ]);
    // A preflight changes nothing: no hook ran (not even the prepare hook helmfile
    // template fires).
    assert!(
        !calls.exists(),
        "a hook ran during the preflight: {}",
        std::fs::read_to_string(&calls).unwrap_or_default()
    );
    assert_eq!(run.code(), 1, "{}", run.stdout());
    // Each release that does not render is named with its one sentence; the others render.
    assert_eq!(status(&doc, "tools.install-render"), "fail");
    assert_eq!(
        codes(&doc, "tools.install-render"),
        [
            "release-does-not-render",
            "release-does-not-render",
            "release-blocked",
            "release-blocked"
        ]
    );
    assert_eq!(
        subjects_of(&doc, "release-does-not-render", "release"),
        vec![kv.clone(), es.clone()]
    );
    // The values of es stop helmfile before it syncs any release of the file.
    assert_eq!(
        subjects_of(&doc, "release-blocked", "release"),
        vec![ok.clone(), hook.clone()]
    );
    let render = message(&doc, "tools.install-render");
    let lines: Vec<&str> = render.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!("release {kv} (base.yaml.gotmpl): chart requires kubeVersion: >= 1.22.0-0 which is incompatible with Kubernetes v1.20.2").as_str(),
            format!("release {es} (base.yaml.gotmpl): failed to render values file environments/default/elasticsearch-values.yaml.gotmpl:1:17: executing \"stringTemplate\" at <.Values.imageRegistry2>: map has no entry for key \"imageRegistry2\" (helmfile skipped the missing values file(s) environments/default/custom.yaml, environments/default/custom-generated.yaml (missingFileHandler), where `imageRegistry2` may be defined)").as_str(),
            format!("release {ok} (base.yaml.gotmpl): renders, but helmfile sync stops before it: the values of {es} in the same file do not render").as_str(),
            format!("release {hook} (base.yaml.gotmpl): renders, but helmfile sync stops before it: the values of {es} in the same file do not render").as_str(),
            "2 of 4 release(s) rendered, 5 object(s)",
        ],
        "{render}"
    );
    // Not installed (installed: false, a false condition): not in the install.
    let rendered: Vec<(String, bool)> = doc["install"]["releases_rendered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["rendered"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rendered,
        vec![
            (ok.clone(), true),
            (kv.clone(), false),
            (es.clone(), false),
            (hook.clone(), true)
        ]
    );
    // The hook whose script lost its execute bit fails before anything runs.
    assert_eq!(status(&doc, "tools.helmfile-hooks"), "fail");
    assert_eq!(
        findings(&doc, "tools.helmfile-hooks"),
        vec![
            (
                "hook-not-executable".to_string(),
                serde_json::json!({"type": "tool", "tool": "./scripts/add_bkrepo_bucket.sh"})
            ),
            (
                "hook-calls-missing-command".to_string(),
                serde_json::json!({"type": "tool", "tool": "./scripts/add_bkrepo_bucket.sh"})
            ),
        ]
    );
    let hooks = message(&doc, "tools.helmfile-hooks");
    assert!(
        hooks.starts_with(&format!("presync hook of release {hook} (base.yaml.gotmpl): fork/exec ./scripts/add_bkrepo_bucket.sh: permission denied")),
        "{hooks}"
    );
    assert!(
        hooks.contains("calls bkrepo-cli by name, not on PATH (a scan"),
        "{hooks}"
    );
    assert_eq!(
        doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "tools.helmfile-hooks")
            .unwrap()["fix"]["commands"][0],
        format!("chmod +x {}", fixture("bk-like/scripts/add_bkrepo_bucket.sh"))
    );
    assert_eq!(status(&doc, "cluster.kube-version"), "fail");
    assert_eq!(codes(&doc, "cluster.kube-version"), ["kube-version-refused"]);
    assert_eq!(
        subjects_of(&doc, "kube-version-refused", "release"),
        vec![kv.clone()]
    );
    // The releases that rendered are checked as usual.
    assert_eq!(status(&doc, "cluster.helm-ownership"), "pass");
    assert!(
        message(&doc, "cluster.helm-ownership")
            .contains(&format!("(not checked: release {kv}, {es} did not render")),
        "{}",
        message(&doc, "cluster.helm-ownership")
    );

    // The real helmfile sync of the whole file installs none of its releases.
    let (synced, out) = helmfile(&s, &c, &["--file", &file, "sync", "--kube-context", "test"]);
    let (_, listed) = helm(&s, &c, &["list", "-n", &ns, "-q"]);
    assert!(
        !synced && out.contains("map has no entry for key \"imageRegistry2\""),
        "{out}"
    );
    assert_eq!(listed.trim(), "", "{out}");
    // Release by release, it fails exactly where preflight said.
    let (synced, out) = helmfile_sync(&s, &c, &file, &kv);
    let _ = c.kubectl(&["delete", "crd", NEW_KUBE_CRD_NAME, "--ignore-not-found"], None);
    assert!(
        !synced
            && out.contains(
                "chart requires kubeVersion: >= 1.22.0-0 which is incompatible with Kubernetes v1.20.2"
            ),
        "{out}"
    );
    let (synced, out) = helmfile_sync(&s, &c, &file, &es);
    assert!(
        !synced && out.contains("map has no entry for key \"imageRegistry2\""),
        "{out}"
    );
    let (synced, out) = helmfile_sync(&s, &c, &file, &hook);
    assert!(
        !synced && out.contains("fork/exec ./scripts/add_bkrepo_bucket.sh: permission denied"),
        "{out}"
    );
    let (synced, out) = helmfile_sync(&s, &c, &file, &ok);
    let _ = helm(&s, &c, &["uninstall", ok.as_str(), "--namespace", ns.as_str()]);
    c.delete(&["namespace", &ns]);
    assert!(synced, "the release preflight passed installs: {out}");
    // The real sync ran the prepare hook, as it should; the preflight did not.
    assert!(std::fs::read_to_string(&calls)
        .unwrap_or_default()
        .contains("kubectl apply -f -"));
}

#[test]
fn a_nested_helmfile_selected_by_labels_renders_what_helmfile_selects_and_runs_no_hook() {
    let mut s = with_tools();
    let calls = s.dir.path().join("kubectl-calls");
    s.script_on_path(
        "kubectl",
        &format!("#!/bin/sh\necho \"kubectl $*\" >> {}\n", calls.display()),
    );
    let (top, a, b, ns) = (
        unique("top"),
        unique("tier-a"),
        unique("tier-b"),
        unique("nested"),
    );
    for (k, v) in [("REL_TOP", &top), ("REL_A", &a), ("REL_B", &b), ("NS", &ns)] {
        s.env.insert(k.into(), v.into());
    }
    // The scripts next to the helmfiles (a global and a release's prepare hook, commands
    // written as relative paths) leave a mark where they run.
    let mark = s.dir.path().join("hook-mark");
    s.env.insert("HOOK_MARK".into(), mark.clone().into());
    let file = fixture("nested/helmfile.yaml");
    let (run, doc) = s.json(&[
        "--helmfile",
        file.as_str(),
        "--only",
        "tools.install-render,tools.helmfile-hooks",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert!(!calls.exists(), "a hook ran during the preflight");
    assert!(!mark.exists(), "a hook script ran during the preflight");
    let mut rendered: Vec<(String, String, bool)> = doc["install"]["releases_rendered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["file"].as_str().unwrap().to_string(),
                r["rendered"].as_bool().unwrap(),
            )
        })
        .collect();
    rendered.sort();
    let mut want = vec![
        (top.clone(), "helmfile.yaml".to_string(), true),
        (a.clone(), "monitor/helmfile.yaml".to_string(), true),
    ];
    want.sort();
    // The nested helmfile's `selectors: [tier=a]` leaves its tier-b release out.
    assert_eq!(rendered, want);
    assert_eq!(doc["install"]["objects"], 4);
    assert_eq!(message(&doc, "tools.helmfile-hooks"), "3 hook(s) can start");
    // The real `helmfile template` runs all three.
    let out = Command::new(real_tool("helmfile-0.166.0/helmfile"))
        .env_clear()
        .envs(&s.env)
        .args(["--file", file.as_str(), "template"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ran = std::fs::read_to_string(&mark).unwrap_or_default();
    assert!(
        ran.contains("prepare.sh top") && ran.contains(&format!("dashboards.sh {a}")),
        "{ran}"
    );
    assert!(std::fs::read_to_string(&calls)
        .unwrap_or_default()
        .contains("kubectl apply -f -"));
}

#[test]
fn a_prepare_hook_with_an_absolute_command_leaves_its_release_unrendered_and_the_rest_checked() {
    let s = with_tools();
    let dir = s.dir.path().join("abs-hook");
    std::fs::create_dir_all(&dir).unwrap();
    let mark = s.dir.path().join("abs-mark");
    let script = dir.join("prepare.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho ran >> {}\n", mark.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let file = dir.join("helmfile.yaml");
    std::fs::write(
        &file,
        format!(
            "releases:\n  - name: abs-a\n    namespace: abs\n    chart: {chart}\n    hooks:\n      - events: [prepare]\n        command: {script}\n  - name: abs-b\n    namespace: abs\n    chart: {chart}\n",
            chart = fixture("mini-release"),
            script = script.display()
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    let (run, doc) = s.json(&["--helmfile", &file, "--only", "tools.install-render"]);
    // An absolute path cannot be stood in for: that release is not rendered (error), the
    // other is, and nothing ran.
    assert_eq!(run.code(), 3, "{}", run.stdout());
    assert!(!mark.exists(), "the hook ran during the preflight");
    assert_eq!(status(&doc, "tools.install-render"), "error");
    assert_eq!(codes(&doc, "tools.install-render"), ["release-not-rendered"]);
    assert_eq!(subjects_of(&doc, "release-not-rendered", "release"), ["abs-a"]);
    let rendered: Vec<(String, bool)> = doc["install"]["releases_rendered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["rendered"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rendered,
        vec![("abs-a".to_string(), false), ("abs-b".to_string(), true)]
    );
    let msg = message(&doc, "tools.install-render");
    assert!(
        msg.contains(&format!("release abs-a (helmfile.yaml): not rendered: `helmfile template` would run the prepare hook `{}`", script.display())),
        "{msg}"
    );
}

#[test]
fn a_local_chart_with_dependencies_renders_them_without_writing_into_the_chart() {
    let s = with_tools();
    let dir = s.dir.path().join("deps");
    for (path, text) in [
        (
            "app/Chart.yaml",
            "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: sub\n    version: 0.1.0\n    repository: file://../sub\n",
        ),
        (
            "app/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
        ),
        ("sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\n"),
        (
            "sub/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sub}\n",
        ),
        (
            "helmfile.yaml",
            "releases:\n  - name: deps\n    namespace: deps\n    chart: ./app\n",
        ),
    ] {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let file = dir.join("helmfile.yaml").display().to_string();
    let listing = |d: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let (run, doc) = s.json(&["--helmfile", &file, "--only", "tools.install-render"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    // helmfile built the dependency (its ConfigMap is there) in a copy of the chart.
    assert_eq!(doc["install"]["objects"], 2);
    assert_eq!(listing(&dir.join("app")), ["Chart.yaml", "templates"]);
    // The real `helmfile template` writes them into the chart.
    let out = Command::new(real_tool("helmfile-0.166.0/helmfile"))
        .env_clear()
        .envs(&s.env)
        .args(["--file", file.as_str(), "template"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        listing(&dir.join("app")),
        ["Chart.lock", "Chart.yaml", "charts", "templates"]
    );
}

#[test]
fn the_helm_a_helmfile_names_in_helm_binary_is_the_one_judged() {
    let s = with_tools();
    let dir = s.dir.path().join("hb");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::os::unix::fs::symlink(real_tool("helm-3.11.1/helm"), dir.join("bin/helm")).unwrap();
    let file = dir.join("helmfile.yaml");
    std::fs::write(
        &file,
        format!(
            "helmBinary: ./bin/helm\nreleases:\n  - name: hb\n    namespace: hb\n    chart: {}\n",
            fixture("mini-release")
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    let (run, doc) = s.json(&[
        "--helmfile",
        &file,
        "--only",
        "tools.helm-version,tools.install-render",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    // helm 3.17.2 is on PATH, but helmfile sync will run the helmfile's helm 3.11.1.
    assert_eq!(status(&doc, "tools.helm-version"), "fail");
    assert_eq!(codes(&doc, "tools.helm-version"), ["helm-too-old"]);
    let msg = message(&doc, "tools.helm-version");
    assert!(msg.starts_with("helm v3.11.1"), "{msg}");
    assert!(
        msg.contains(&format!("{}", dir.join("bin/helm").display())),
        "{msg}"
    );
    // A helmBinary that is nowhere: helmfile itself cannot start (it panics), said in one line.
    std::fs::remove_file(dir.join("bin/helm")).unwrap();
    let (run, doc) = s.json(&["--helmfile", &file, "--only", "tools.install-render"]);
    assert_eq!(run.code(), 3, "{}", run.stdout());
    assert_eq!(
        message(&doc, "tools.install-render"),
        format!("the install could not be rendered: helmfile --file {file} list: fork/exec ./bin/helm: no such file or directory")
    );
}

#[test]
fn on_a_terminal_a_long_render_says_how_far_it_is() {
    let mut s = with_tools();
    let (top, a, b, ns) = (
        unique("top"),
        unique("tier-a"),
        unique("tier-b"),
        unique("nested"),
    );
    for (k, v) in [("REL_TOP", &top), ("REL_A", &a), ("REL_B", &b), ("NS", &ns)] {
        s.env.insert(k.into(), v.into());
    }
    s.script_on_path("kubectl", "#!/bin/sh\n");
    let file = fixture("nested/helmfile.yaml");
    let script = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("script"))
        .find(|p| p.exists())
        .expect("script(1) from util-linux (bsdutils)");
    let cmd = format!(
        "{} --helmfile {file} --only tools.install-render",
        bin().display()
    );
    let out = Command::new(script)
        .env_clear()
        .envs(&s.env)
        .env("TERM", "xterm")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains(&format!("reading helmfile {file}")) || shown.contains("release(s) templated"),
        "{shown}"
    );
    // On a pipe: nothing of it.
    let run = s.run(&["--helmfile", &file, "--only", "tools.install-render"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert!(
        !run.stderr().contains("templated") && !run.stderr().contains("reading helmfile"),
        "{}",
        run.stderr()
    );
}

#[test]
fn yaml_1_1_as_helm_reads_it_octal_modes_pass_the_dry_run_and_install() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let kc = c.kubeconfig();
    let (rel, ns) = (unique("redis"), unique("yaml11"));
    let chart = fixture("yaml11");
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    let (run, doc) = s.json(&[
        "--chart",
        chart.as_str(),
        "--release",
        rel.as_str(),
        "--namespace",
        ns.as_str(),
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "cluster.api,cluster.dry-run",
    ]);
    let (ok, out) = helm(
        &s,
        &c,
        &["install", rel.as_str(), chart.as_str(), "-n", ns.as_str()],
    );
    let (_, mode) = c.kubectl(
        &[
            "get",
            "deployment",
            &format!("{rel}-redis"),
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.template.spec.volumes[0].configMap.defaultMode}",
        ],
        None,
    );
    let _ = helm(&s, &c, &["uninstall", rel.as_str(), "-n", ns.as_str()]);
    c.delete(&["namespace", &ns]);
    // `defaultMode: 0755` is the number 493 to helm, not the string "0755" (which the server
    // would refuse: readUint32: unexpected character).
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        status(&doc, "cluster.dry-run"),
        "pass",
        "{}",
        message(&doc, "cluster.dry-run")
    );
    assert!(ok, "{out}");
    assert_eq!(mode.trim(), "493");
}

/// The same YAML through the real kubectl (sigs.k8s.io/yaml, as helm decodes) and the API
/// server's dry-run, and through preflight's decoder, gives the same JSON.
#[test]
fn the_decoder_agrees_with_kubectl_and_the_api_server_on_yaml_1_1() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let group = format!("{}.yaml11.test", unique("g"));
    c.echo_crd(&group);
    let cases = [
        "0755",
        "'0755'",
        "0644",
        "0o17",
        "0x1F",
        "08",
        "1_000",
        "yes",
        "no",
        "on",
        "off",
        "y",
        "N",
        "True",
        "~",
        "null",
        "1.0",
        ".5",
        "12e3",
        "+12",
        "-7",
        "2001-12-14",
        "!!str 0755",
        "\"on\"",
        "v1.2",
        "3.12.0",
        "18446744073709551615",
        "1e3",
        "0.0",
        "-0",
    ];
    let mut spec = String::new();
    for (i, case) in cases.iter().enumerate() {
        spec.push_str(&format!("  k{i}: {case}\n"));
    }
    spec.push_str("  base: &b {a: 1, b: 2}\n  merged:\n    <<: *b\n    b: 3\n  yes: key\n  10: ten\n");
    let text = format!(
        "apiVersion: {group}/v1\nkind: Echo\nmetadata: {{name: e, namespace: default}}\nspec:\n{spec}"
    );
    let file = s.dir.path().join("echo.yaml");
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
    c.delete(&["crd", &format!("echoes.{group}")]);
    assert!(ok, "{out}");
    let server: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ours = preflight::install::yaml11::to_json(&text).unwrap().unwrap();
    for (i, case) in cases.iter().enumerate() {
        let k = format!("k{i}");
        assert_eq!(
            ours["spec"][&k], server["spec"][&k],
            "{case}: preflight {} vs kubectl + API server {}",
            ours["spec"][&k], server["spec"][&k]
        );
    }
    assert_eq!(ours["spec"], server["spec"]);
}

#[test]
fn helms_client_side_openapi_validation_is_predicted_in_its_words() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let kc = c.kubeconfig();
    let group = format!("{}.gateway.test", unique("g"));
    let reversed: Vec<&str> = group.split('.').rev().collect();
    c.apply(&format!("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: bkgatewayresources.{group}}}\nspec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: bkgatewayresources, singular: bkgatewayresource, kind: BkGatewayResource}}\n  versions:\n  - name: v1beta1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            properties:\n              name: {{type: string}}\n"));
    let (ok, out) = c.kubectl(
        &[
            "wait",
            "--for=condition=Established",
            &format!("crd/bkgatewayresources.{group}"),
            "--timeout=30s",
        ],
        None,
    );
    assert!(ok, "{out}");
    // The server publishes the CRD's schema in /openapi/v2 a moment after it is established.
    let published = (0..50).any(|_| {
        let (_, doc) = c.kubectl(&["get", "--raw", "/openapi/v2"], None);
        if doc.contains(&format!("\"group\":\"{group}\"")) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        false
    });
    assert!(published, "the CRD's schema never appeared in /openapi/v2");
    let (rel, ns) = (unique("gw"), unique("bcs"));
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    let chart = fixture("openapi");
    let set_group = format!("group={group}");
    let check = |extra: &[&str]| {
        let mut args = vec![
            "--chart",
            chart.as_str(),
            "--release",
            rel.as_str(),
            "--namespace",
            ns.as_str(),
            "--set",
            set_group.as_str(),
            "--kubeconfig",
            kc.as_str(),
            "--only",
            "cluster.api,cluster.openapi-validation",
        ];
        args.extend_from_slice(extra);
        s.json(&args)
    };
    let (run, doc) = check(&["--set", "badDeployment=true"]);
    let (helm_ok, helm_out) = helm(
        &s,
        &c,
        &[
            "install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            ns.as_str(),
            "--set",
            set_group.as_str(),
            "--set",
            "badDeployment=true",
        ],
    );
    let (run_off, doc_off) = check(&["--disable-openapi-validation"]);
    // The helm plugin form (what `helm preflight install …` runs) honours the flag too.
    let (run_plugin_off, doc_plugin_off) = s.json(&[
        "install",
        rel.as_str(),
        chart.as_str(),
        "-n",
        ns.as_str(),
        "--set",
        set_group.as_str(),
        "--set",
        "badDeployment=true",
        "--disable-openapi-validation",
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "cluster.api,cluster.openapi-validation",
    ]);
    let (off_ok, off_out) = helm(
        &s,
        &c,
        &[
            "install",
            rel.as_str(),
            chart.as_str(),
            "-n",
            ns.as_str(),
            "--set",
            set_group.as_str(),
            "--disable-openapi-validation",
        ],
    );
    let _ = helm(&s, &c, &["uninstall", rel.as_str(), "-n", ns.as_str()]);
    c.delete(&["namespace", &ns]);
    c.delete(&["crd", &format!("bkgatewayresources.{group}")]);

    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(status(&doc, "cluster.openapi-validation"), "fail");
    assert_eq!(
        codes(&doc, "cluster.openapi-validation"),
        ["schema-invalid", "schema-invalid"]
    );
    let mut invalid = subjects_of(&doc, "schema-invalid", "kind");
    invalid.sort();
    assert_eq!(invalid, ["BkGatewayResource", "Deployment"]);
    let msg = message(&doc, "cluster.openapi-validation");
    let cr_errors = format!(
        "ValidationError(BkGatewayResource.spec): unknown field \"http\" in {}.v1beta1.BkGatewayResource.spec",
        reversed.join(".")
    );
    let deploy_errors = "[ValidationError(Deployment.spec.replicas): invalid type for io.k8s.api.apps.v1.DeploymentSpec.replicas: got \"string\", expected \"integer\", ValidationError(Deployment.spec.template.spec.containers[0].ports[0]): unknown field \"bogus\" in io.k8s.api.core.v1.ContainerPort, ValidationError(Deployment.spec): missing required field \"selector\" in io.k8s.api.apps.v1.DeploymentSpec]";
    assert!(
        msg.contains(&format!("error validating data: {cr_errors}\"")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("error validating data: {deploy_errors}\"")),
        "{msg}"
    );
    // The real helm install fails with one of these sentences (the first object it builds).
    assert!(!helm_ok, "{helm_out}");
    assert!(
        helm_out.contains(&format!("error validating data: {cr_errors}"))
            || helm_out.contains(&format!("error validating data: {deploy_errors}")),
        "{helm_out}"
    );
    // With --disable-openapi-validation helm does not judge, and the install goes through.
    assert_eq!(run_off.code(), 0, "{}", run_off.stdout());
    assert_eq!(status(&doc_off, "cluster.openapi-validation"), "skip");
    assert_eq!(run_plugin_off.code(), 0, "{}", run_plugin_off.stdout());
    assert_eq!(status(&doc_plugin_off, "cluster.openapi-validation"), "skip");
    assert!(off_ok, "{off_out}");
}

#[test]
fn seed004_a_node_port_another_service_holds() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let kc = c.kubeconfig();
    let (squat_ns, ns, rel) = (unique("squatter"), unique("ingress"), unique("ing"));
    c.apply(&format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {squat_ns}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: old-web, namespace: {squat_ns}}}\nspec: {{type: NodePort, selector: {{app: x}}, ports: [{{port: 80, nodePort: 32080}}]}}\n"));
    let chart = fixture("hostnet");
    let (run, doc) = s.json(&[
        "--chart",
        chart.as_str(),
        "--release",
        rel.as_str(),
        "--namespace",
        ns.as_str(),
        "--kubeconfig",
        kc.as_str(),
        "--only",
        "cluster.api,cluster.dry-run",
    ]);
    let (ok, out) = helm(
        &s,
        &c,
        &["install", rel.as_str(), chart.as_str(), "-n", ns.as_str()],
    );
    let _ = helm(&s, &c, &["uninstall", rel.as_str(), "-n", ns.as_str()]);
    c.delete(&["namespace", &ns]);
    c.delete(&["namespace", &squat_ns]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let msg = message(&doc, "cluster.dry-run");
    assert_eq!(codes(&doc, "cluster.dry-run"), ["object-rejected"]);
    assert!(msg.contains("provided port is already allocated"), "{msg}");
    assert!(
        msg.contains(&format!("(nodePort 32080 is held by Service {squat_ns}/old-web)")),
        "{msg}"
    );
    assert!(!ok && out.contains("provided port is already allocated"), "{out}");
}

#[test]
fn seed004_a_host_port_a_pod_on_the_only_node_already_holds() {
    let Some(c) = cluster() else { return };
    let s = with_tools();
    let (worker, profile) = schedulable_worker(&s, &c, "8", "16Gi");
    // A node-exporter of someone else's, already bound to the node, holding 9100.
    let other = unique("monitoring");
    c.apply(&format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {other}}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: old-exporter, namespace: {other}}}\nspec:\n  nodeName: {worker}\n  containers: [{{name: e, image: quay.io/prometheus/node-exporter:v1.3.1, ports: [{{containerPort: 9100, hostPort: 9100}}]}}]\n"));
    let chart = fixture("hostnet");
    let kc = c.kubeconfig();
    let (run, doc) = s.json(&[
        "--profile",
        profile.as_str(),
        "--chart",
        chart.as_str(),
        "--release",
        "ing",
        "--namespace",
        "ingress",
        "--kubeconfig",
        kc.as_str(),
    ]);
    c.delete(&["namespace", &other]);
    c.delete(&["node", &worker]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let msg = message(&doc, "cluster.schedulable");
    assert_eq!(codes(&doc, "cluster.schedulable"), ["pod-unschedulable"]);
    assert_eq!(
        msg.lines().next().unwrap(),
        "DaemonSet ing-node-exporter (release ing, hostnet/templates/all.yaml): 0/1 nodes are available for cpu 0, memory 0.0 GiB: 1 node(s) didn't have free ports for the requested pod ports.",
        "{msg}"
    );
    // The controller's hostNetwork ports (80, 443) are free there.
    assert!(!msg.contains("Deployment ing-controller"), "{msg}");
}
