//! cluster phase against the REAL kube-apiserver + kube-controller-manager v1.20.2
//! (scripts/test-cluster.sh). Every scenario makes its own uniquely named objects, so tests
//! run in parallel and rerun; checks that look cluster-wide keep their scenarios in one test.

mod common;

use common::cluster::{cluster, nosign_cluster, unique, Cluster};
use common::*;

const RELEASE: &str = "release: {name: kubevela, namespace: vela-system}\n";

fn run(s: &Scenario, c: &Cluster, profile: &str, extra: &[&str]) -> (Run, serde_json::Value) {
    let p = s.profile(profile);
    let kc = c.kubeconfig();
    let mut args = vec!["--profile", p.as_str(), "--kubeconfig", kc.as_str()];
    args.extend_from_slice(extra);
    s.json(&args)
}

fn helm_annotated_ns(name: &str, release: &str, release_ns: &str, extra_meta: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels: {{app.kubernetes.io/managed-by: Helm}}\n  annotations: {{meta.helm.sh/release-name: {release}, meta.helm.sh/release-namespace: {release_ns}}}\n{extra_meta}"
    )
}

#[test]
fn api_answers_and_the_admin_may_create_namespaces() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let (r, doc) = run(&s, &c, "checks:\n  cluster.api: {verbs: [{verb: create, resource: namespaces}, {verb: delete, resource: scopedefinitions, group: core.oam.dev}]}\n", &[]);
    assert_eq!(r.code(), 0, "{}", r.stdout());
    assert_eq!(
        message(&doc, "cluster.api"),
        format!(
            "Kubernetes v1.20.2 at https://127.0.0.1:6443/ (context test of {}); may create namespaces, delete scopedefinitions.core.oam.dev",
            c.kubeconfig()
        )
    );
}

#[test]
fn limited_user_may_not_create_namespaces_and_the_rest_skips() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let profile = format!("{RELEASE}checks:\n  cluster.api: {{verbs: [{{verb: create, resource: namespaces}}]}}\n  cluster.webhooks: {{}}\n  cluster.storageclass: {{}}\n");
    let (r, doc) = run(&s, &c, &profile, &["--context", "test-limited"]);
    assert_eq!(r.code(), 1);
    assert_eq!(status(&doc, "cluster.api"), "fail");
    let denied = |f: &(String, serde_json::Value)| {
        format!(
            "{} {} {}",
            f.0,
            f.1["verb"].as_str().unwrap_or("?"),
            f.1["resource"].as_str().unwrap_or("?")
        )
    };
    assert_eq!(
        findings(&doc, "cluster.api")
            .iter()
            .map(denied)
            .collect::<Vec<_>>(),
        vec![
            "verb-denied create namespaces",
            "read-denied get endpoints",
            "read-denied get services",
            "read-denied list mutatingwebhookconfigurations.admissionregistration.k8s.io",
            "read-denied list validatingwebhookconfigurations.admissionregistration.k8s.io",
            "read-denied list storageclasses.storage.k8s.io",
        ]
    );
    assert!(
        entry(&doc, "cluster.api")["message"]
            .as_str()
            .unwrap_or_default()
            .ends_with(
                " answers; 2 check(s) cannot decide and are skipped: cluster.storageclass, cluster.webhooks"
            ),
        "{doc}"
    );
    assert!(message(&doc, "cluster.api")
        .contains("this user may not list storageclasses.storage.k8s.io: needed by cluster.storageclass\n"));
    let cmds = fix_commands(&doc, "cluster.api");
    assert_eq!(cmds[0], "kubectl auth can-i create namespaces -A");
    assert!(cmds.contains(&"kubectl create clusterrole preflight-read --verb=get,list --resource=endpoints,mutatingwebhookconfigurations.admissionregistration.k8s.io,services,storageclasses.storage.k8s.io,validatingwebhookconfigurations.admissionregistration.k8s.io".to_string()), "{cmds:?}");
    // One message: the starved checks say why in cluster.api's words, not with their own 403.
    assert_eq!(
        message(&doc, "cluster.storageclass"),
        "skipped: cluster.api: this user may not list storageclasses.storage.k8s.io"
    );
    assert_eq!(status(&doc, "cluster.webhooks"), "skip");
    assert!(message(&doc, "cluster.webhooks")
        .starts_with("skipped: cluster.api: this user may not get endpoints, get services, list "));
}

#[test]
fn a_user_who_may_read_some_things_starves_only_the_checks_that_need_the_rest() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let user = unique("reader");
    c.grant(
        &user,
        "- apiGroups: [\"\"]\n  resources: [namespaces, nodes]\n  verbs: [get, list]",
    );
    let kc = c.kubeconfig_as(s.dir.path(), &user);
    let p = s.profile("checks:\n  cluster.api: {}\n  cluster.terminating-namespaces: {}\n  cluster.storageclass: {}\n  cluster.schedulable: {}\n");
    let (r, doc) = s.json(&["--profile", &p, "--kubeconfig", &kc]);
    assert_eq!(status(&doc, "cluster.api"), "error", "{}", r.stdout());
    assert_eq!(codes(&doc, "cluster.api"), ["read-denied", "read-denied"]);
    let denied = subjects_of(&doc, "read-denied", "resource");
    assert!(
        denied.contains(&"apiservices.apiregistration.k8s.io".to_string()),
        "{denied:?}"
    );
    assert!(
        denied.contains(&"storageclasses.storage.k8s.io".to_string()),
        "{denied:?}"
    );
    assert!(
        !denied.contains(&"nodes".to_string()),
        "granted, so not named: {denied:?}"
    );
    assert!(message(&doc, "cluster.api").contains(
        "this user may not list apiservices.apiregistration.k8s.io: needed by cluster.terminating-namespaces\n"
    ));
    assert_eq!(
        message(&doc, "cluster.terminating-namespaces"),
        "skipped: cluster.api: this user may not list apiservices.apiregistration.k8s.io"
    );
    assert_eq!(status(&doc, "cluster.storageclass"), "skip");
    // The check whose access was granted still runs and decides.
    assert!(
        ["pass", "warn", "fail"].contains(&status(&doc, "cluster.schedulable").as_str()),
        "{}",
        message(&doc, "cluster.schedulable")
    );
    let failed = status(&doc, "cluster.schedulable") == "fail";
    assert_eq!(r.code(), if failed { 1 } else { 3 });
    c.delete(&["clusterrole,clusterrolebinding", &user]);
}

#[test]
fn forbidden_everywhere_is_error_never_pass() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let profile = format!(
        "{RELEASE}checks:\n  cluster.leftover-cert-manager: {{namespace: {}}}\n  cluster.terminating-namespaces: {{}}\n  cluster.webhooks: {{}}\n  cluster.csr-controllers: {{}}\n  cluster.storageclass: {{}}\n  cluster.schedulable: {{}}\n  cluster.helm-ownership: {{objects: [{{kind: Namespace, name: default}}]}}\n  cluster.leftover-scopedefinition: {{}}\n",
        unique("cm")
    );
    // The OAM API must exist, or leftover-scopedefinition rightly passes without a forbidden
    // call (discovery is open to everyone). Same CRD as seed000's test: applying it is idempotent.
    c.apply("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: scopedefinitions.core.oam.dev}\nspec:\n  group: core.oam.dev\n  scope: Cluster\n  names: {kind: ScopeDefinition, plural: scopedefinitions, singular: scopedefinition}\n  versions:\n  - name: v1alpha2\n    served: true\n    storage: true\n    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}\n");
    let (ok, out) = c.kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/scopedefinitions.core.oam.dev",
        ],
        None,
    );
    assert!(ok, "{out}");
    // cluster.api is not in the profile, so nothing is skipped: each check meets the 403 itself.
    // (Discovery may lag the new CRD by a moment.)
    let mut tries = 0;
    let (r, doc) = loop {
        let (r, doc) = run(&s, &c, &profile, &["--context", "test-limited"]);
        tries += 1;
        if status(&doc, "cluster.leftover-scopedefinition") != "pass" || tries == 20 {
            break (r, doc);
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert_eq!(r.code(), 3, "{}", r.stdout());
    for check in doc["checks"].as_array().unwrap() {
        assert_eq!(check["status"], "error", "{check}");
        let id = check["id"].as_str().unwrap();
        assert_eq!(codes(&doc, id), ["api-error"], "{id}");
        let msg = message(&doc, id);
        assert!(
            msg.contains("is forbidden: User \"limited-user\" cannot") && msg.ends_with("(403)"),
            "{msg}"
        );
    }
}

#[test]
fn closed_port_fails_fast_and_names_the_refusal() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let text = std::fs::read_to_string(&c.kubeconfig)
        .unwrap()
        .replace("127.0.0.1:6443", "127.0.0.1:1");
    let kc = s.dir.path().join("closed.kubeconfig");
    std::fs::write(&kc, text).unwrap();
    let p = s.profile("checks:\n  cluster.api: {}\n  cluster.webhooks: {}\n");
    let (r, doc) = s.json(&["--profile", &p, "--kubeconfig", kc.to_str().unwrap()]);
    assert_eq!(r.code(), 1);
    assert_eq!(
        findings(&doc, "cluster.api"),
        vec![(
            "api-unreachable".to_string(),
            serde_json::json!({"type": "cluster"})
        )]
    );
    let msg = message(&doc, "cluster.api");
    assert!(
        msg.starts_with("cannot reach https://127.0.0.1:1/ (context test of "),
        "{msg}"
    );
    assert!(msg.contains("Connection refused"), "{msg}");
    assert_eq!(status(&doc, "cluster.webhooks"), "skip");
}

#[test]
fn bad_credentials_are_unauthorized() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let text = std::fs::read_to_string(&c.kubeconfig)
        .unwrap()
        .replace("admin-token-0123456789", "wrong-token");
    let kc = s.dir.path().join("wrong.kubeconfig");
    std::fs::write(&kc, text).unwrap();
    let p = s.profile("checks:\n  cluster.api: {}\n");
    let (r, doc) = s.json(&[
        "--profile",
        &p,
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--context",
        "test-token",
    ]);
    assert_eq!(r.code(), 1);
    assert!(message(&doc, "cluster.api").ends_with("rejected the credentials: Unauthorized (401)"));
    assert_eq!(codes(&doc, "cluster.api"), ["credentials-rejected"]);
}

#[test]
fn missing_and_malformed_kubeconfig_are_named() {
    let s = Scenario::new();
    let p = s.profile("checks:\n  cluster.api: {}\n");
    let (r, doc) = s.json(&["--profile", &p]);
    assert_eq!(r.code(), 1);
    assert_eq!(
        message(&doc, "cluster.api"),
        "no kubeconfig: --kubeconfig not given, $KUBECONFIG unset, ~/.kube/config missing, and not running in a pod"
    );
    assert_eq!(codes(&doc, "cluster.api"), ["kubeconfig-unusable"]);
    let kc = s.dir.path().join("broken.kubeconfig");
    std::fs::write(&kc, "apiVersion: v1\nclusters: [\n").unwrap();
    let (_, doc) = s.json(&["--profile", &p, "--kubeconfig", kc.to_str().unwrap()]);
    assert_eq!(status(&doc, "cluster.api"), "fail");
    assert!(message(&doc, "cluster.api").starts_with(&format!("kubeconfig {}: ", kc.display())));
    // an unknown --context is named too
    if let Some(c) = cluster() {
        let (_, doc) = run(&s, &c, "checks:\n  cluster.api: {}\n", &["--context", "nope"]);
        assert_eq!(status(&doc, "cluster.api"), "fail");
        assert!(
            message(&doc, "cluster.api").contains("nope"),
            "{}",
            message(&doc, "cluster.api")
        );
    }
}

fn cert_manager_profile(ns: &str) -> String {
    format!("{RELEASE}checks:\n  cluster.leftover-cert-manager: {{namespace: {ns}}}\n")
}

#[test]
fn seed000_cert_manager_namespace_not_owned_by_this_release() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let ns = unique("cert-manager");
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    let (r, doc) = run(&s, &c, &cert_manager_profile(&ns), &[]);
    c.delete(&["namespace", &ns]);
    assert_eq!(r.code(), 1);
    assert_eq!(
        findings(&doc, "cluster.leftover-cert-manager"),
        vec![(
            "namespace-of-another-release".to_string(),
            serde_json::json!({"type": "object", "kind": "Namespace", "name": ns})
        )]
    );
    assert_eq!(
        message(&doc, "cluster.leftover-cert-manager"),
        format!(
            "Namespace \"{ns}\" in namespace \"\" exists and cannot be imported into the current release: invalid ownership metadata; label validation error: missing key \"app.kubernetes.io/managed-by\": must be set to \"Helm\"; annotation validation error: missing key \"meta.helm.sh/release-name\": must be set to \"kubevela\"; annotation validation error: missing key \"meta.helm.sh/release-namespace\": must be set to \"vela-system\""
        )
    );
    // No helm release behind it: nothing to uninstall, and the fix says so.
    assert_eq!(
        fix_commands(&doc, "cluster.leftover-cert-manager"),
        vec![format!("kubectl delete namespace {ns}")]
    );
    assert_eq!(
        fix_summary(&doc, "cluster.leftover-cert-manager"),
        format!(
            "(no helm release {ns}/cert-manager exists) delete namespace {ns} (destroys everything in it)"
        )
    );
    assert_eq!(
        entry(&doc, "cluster.leftover-cert-manager")["fix"]["safety"],
        "unsafe"
    );
}

#[test]
fn cert_manager_namespace_of_another_release_names_it_in_the_fix() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let ns = unique("cert-manager");
    c.apply(&helm_annotated_ns(&ns, "cert-manager", "cert-manager", ""));
    let (_, doc) = run(&s, &c, &cert_manager_profile(&ns), &[]);
    c.delete(&["namespace", &ns]);
    let msg = message(&doc, "cluster.leftover-cert-manager");
    assert_eq!(
        codes(&doc, "cluster.leftover-cert-manager"),
        ["namespace-of-another-release"]
    );
    assert!(msg.ends_with("invalid ownership metadata; annotation validation error: key \"meta.helm.sh/release-name\" must equal \"kubevela\": current value is \"cert-manager\"; annotation validation error: key \"meta.helm.sh/release-namespace\" must equal \"vela-system\": current value is \"cert-manager\""), "{msg}");
    assert_eq!(
        fix_summary(&doc, "cluster.leftover-cert-manager"),
        format!("(no helm release cert-manager/cert-manager exists) delete namespace {ns} (destroys everything in it)")
    );
}

#[test]
fn cert_manager_namespace_owned_by_us_or_absent_passes() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let ns = unique("cert-manager");
    let (_, doc) = run(&s, &c, &cert_manager_profile(&ns), &[]);
    assert_eq!(
        message(&doc, "cluster.leftover-cert-manager"),
        format!("no namespace {ns}")
    );
    c.apply(&helm_annotated_ns(&ns, "kubevela", "vela-system", ""));
    let (r, doc) = run(&s, &c, &cert_manager_profile(&ns), &[]);
    c.delete(&["namespace", &ns]);
    assert_eq!(r.code(), 0);
    assert_eq!(
        message(&doc, "cluster.leftover-cert-manager"),
        format!("namespace {ns} belongs to release vela-system/kubevela")
    );
}

#[test]
fn seed000_cert_manager_namespace_being_terminated() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let ns = unique("cert-manager");
    // A finalizer of our own keeps it Terminating for as long as the test needs.
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  finalizers: [preflight.test/hold]\n"
    ));
    c.delete(&["namespace", &ns]);
    let (r, doc) = run(&s, &c, &cert_manager_profile(&ns), &[]);
    let release = c.kubectl(
        &[
            "patch",
            "namespace",
            &ns,
            "--type=merge",
            "-p",
            "{\"metadata\":{\"finalizers\":null}}",
        ],
        None,
    );
    assert!(release.0, "{}", release.1);
    assert_eq!(r.code(), 1);
    assert_eq!(
        message(&doc, "cluster.leftover-cert-manager"),
        format!("namespace {ns} is being terminated: helm would fail with \"unable to create new content in namespace {ns} because it is being terminated\"")
    );
    assert_eq!(
        codes(&doc, "cluster.leftover-cert-manager"),
        ["namespace-terminating"]
    );
}

#[test]
fn seed000_scopedefinition_owned_by_release_oam() {
    let Some(c) = cluster() else { return };
    c.apply(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: scopedefinitions.core.oam.dev}
spec:
  group: core.oam.dev
  scope: Cluster
  names: {kind: ScopeDefinition, plural: scopedefinitions, singular: scopedefinition}
  versions:
  - name: v1alpha2
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
",
    );
    let (ok, out) = c.kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "crd/scopedefinitions.core.oam.dev",
            "--timeout=30s",
        ],
        None,
    );
    assert!(ok, "{out}");
    let scope = |release: &str, ns: &str| {
        format!("apiVersion: core.oam.dev/v1alpha2\nkind: ScopeDefinition\nmetadata:\n  name: healthscopes.core.oam.dev\n  labels: {{app.kubernetes.io/managed-by: Helm}}\n  annotations: {{meta.helm.sh/release-name: {release}, meta.helm.sh/release-namespace: {ns}}}\nspec: {{definitionRef: {{name: healthscopes.core.oam.dev}}}}\n")
    };
    c.apply(&scope("oam", "oam-system"));
    let s = Scenario::new();
    let profile = format!("{RELEASE}checks:\n  cluster.leftover-scopedefinition: {{}}\n");
    let (r, doc) = run(&s, &c, &profile, &[]);
    assert_eq!(r.code(), 1);
    assert_eq!(
        findings(&doc, "cluster.leftover-scopedefinition"),
        vec![(
            "owned-by-another-release".to_string(),
            serde_json::json!({"type": "object", "kind": "ScopeDefinition", "name": "healthscopes.core.oam.dev"})
        )]
    );
    // Word for word what helm printed in seed 000.
    assert_eq!(
        entry(&doc, "cluster.leftover-scopedefinition")["findings"][0]["message"],
        "ScopeDefinition \"healthscopes.core.oam.dev\" in namespace \"\" exists and cannot be imported into the current release: invalid ownership metadata; annotation validation error: key \"meta.helm.sh/release-name\" must equal \"kubevela\": current value is \"oam\"; annotation validation error: key \"meta.helm.sh/release-namespace\" must equal \"vela-system\": current value is \"oam-system\""
    );
    assert_eq!(
        fix_commands(&doc, "cluster.leftover-scopedefinition"),
        vec!["kubectl delete scopedefinitions.core.oam.dev healthscopes.core.oam.dev".to_string()]
    );
    // Once it is ours, it passes.
    c.apply(&scope("kubevela", "vela-system"));
    let (r, doc) = run(&s, &c, &profile, &[]);
    assert_eq!(r.code(), 0, "{}", r.stdout());
    assert!(message(&doc, "cluster.leftover-scopedefinition")
        .ends_with("ScopeDefinition object(s), none owned by another release"));
}

#[test]
fn no_oam_api_at_all_is_a_pass_not_an_error() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let profile =
        format!("{RELEASE}checks:\n  cluster.leftover-scopedefinition: {{group: absent.preflight.test}}\n");
    let (r, doc) = run(&s, &c, &profile, &[]);
    assert_eq!(r.code(), 0);
    assert_eq!(
        message(&doc, "cluster.leftover-scopedefinition"),
        "no absent.preflight.test API in the cluster: no ScopeDefinition objects"
    );
}

#[test]
fn seed000_mutating_webhook_configuration_without_helm_labels() {
    let Some(c) = cluster() else { return };
    c.apply("apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {name: mutating-webhook-configuration}\nwebhooks: []\n");
    let s = Scenario::new();
    let profile = format!("{RELEASE}checks:\n  cluster.helm-ownership: {{objects: [{{kind: MutatingWebhookConfiguration, apiVersion: admissionregistration.k8s.io/v1, name: mutating-webhook-configuration}}, {{kind: Namespace, name: {}}}]}}\n", unique("absent"));
    let (r, doc) = run(&s, &c, &profile, &[]);
    assert_eq!(r.code(), 1);
    assert_eq!(
        findings(&doc, "cluster.helm-ownership"),
        vec![(
            "owned-by-another-release".to_string(),
            serde_json::json!({"type": "object", "kind": "MutatingWebhookConfiguration", "name": "mutating-webhook-configuration", "release": "kubevela"})
        )]
    );
    assert_eq!(
        message(&doc, "cluster.helm-ownership"),
        "MutatingWebhookConfiguration \"mutating-webhook-configuration\" in namespace \"\" exists and cannot be imported into the current release: invalid ownership metadata; label validation error: missing key \"app.kubernetes.io/managed-by\": must be set to \"Helm\"; annotation validation error: missing key \"meta.helm.sh/release-name\": must be set to \"kubevela\"; annotation validation error: missing key \"meta.helm.sh/release-namespace\": must be set to \"vela-system\""
    );
    assert_eq!(
        fix_commands(&doc, "cluster.helm-ownership"),
        vec!["kubectl delete mutatingwebhookconfigurations.admissionregistration.k8s.io mutating-webhook-configuration".to_string()]
    );
    assert!(fix_summary(&doc, "cluster.helm-ownership").contains("--take-ownership"));
}

#[test]
fn seed000_kind_without_api_version_is_looked_up_in_every_group() {
    let Some(c) = cluster() else { return };
    let name = unique("mwc");
    c.apply(&format!("apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {{name: {name}}}\nwebhooks: []\n"));
    let s = Scenario::new();
    // The seed's object as a user writes it: no apiVersion.
    let profile = format!("{RELEASE}checks:\n  cluster.helm-ownership: {{objects: [{{kind: MutatingWebhookConfiguration, name: {name}}}]}}\n");
    let (r, doc) = run(&s, &c, &profile, &[]);
    c.delete(&["mutatingwebhookconfiguration", &name]);
    assert_eq!(r.code(), 1, "{}", r.stdout());
    assert_eq!(
        message(&doc, "cluster.helm-ownership"),
        format!("MutatingWebhookConfiguration \"{name}\" in namespace \"\" exists and cannot be imported into the current release: invalid ownership metadata; label validation error: missing key \"app.kubernetes.io/managed-by\": must be set to \"Helm\"; annotation validation error: missing key \"meta.helm.sh/release-name\": must be set to \"kubevela\"; annotation validation error: missing key \"meta.helm.sh/release-namespace\": must be set to \"vela-system\"")
    );
    assert_eq!(
        codes(&doc, "cluster.helm-ownership"),
        ["owned-by-another-release"]
    );
}

#[test]
fn a_kind_the_api_does_not_serve_is_named_never_counted_as_free() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let profile = format!("{RELEASE}checks:\n  cluster.helm-ownership: {{objects: [{{kind: Namespace, name: {}}}, {{kind: NoSuchPreflightKind, name: a}}, {{kind: ScopeDefinition, apiVersion: absent.preflight.test/v1, name: b}}]}}\n", unique("absent"));
    let (r, doc) = run(&s, &c, &profile, &[]);
    assert_eq!(r.code(), 0, "a warning, not a failure: {}", r.stdout());
    assert_eq!(status(&doc, "cluster.helm-ownership"), "warn");
    assert_eq!(
        findings(&doc, "cluster.helm-ownership"),
        vec![
            (
                "kind-not-served".to_string(),
                serde_json::json!({"type": "object", "kind": "NoSuchPreflightKind", "name": "a", "release": "kubevela"})
            ),
            (
                "kind-not-served".to_string(),
                serde_json::json!({"type": "object", "kind": "ScopeDefinition", "name": "b", "release": "kubevela"})
            ),
        ]
    );
    assert_eq!(
        message(&doc, "cluster.helm-ownership"),
        "NoSuchPreflightKind a is not served by the API, so not looked up (its CRD must come first, or helm will say \"no matches for kind\")\nScopeDefinition b (absent.preflight.test/v1) is not served by the API, so not looked up (its CRD must come first, or helm will say \"no matches for kind\")\n1 of 3 object(s) looked up: none belongs to another release"
    );
}

#[test]
fn a_kind_two_groups_serve_needs_an_api_version() {
    let Some(c) = cluster() else { return };
    for group in ["a.preflight.test", "b.preflight.test"] {
        c.apply(&format!("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: gadgets.{group}}}\nspec:\n  group: {group}\n  names: {{kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}}\n  scope: Cluster\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}\n"));
        let (ok, out) = c.kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                &format!("crd/gadgets.{group}"),
            ],
            None,
        );
        assert!(ok, "{out}");
    }
    let s = Scenario::new();
    let profile =
        format!("{RELEASE}checks:\n  cluster.helm-ownership: {{objects: [{{kind: Gadget, name: g1}}]}}\n");
    // Discovery may lag the CRD by a moment.
    let mut last = String::new();
    for _ in 0..20 {
        let (r, doc) = run(&s, &c, &profile, &[]);
        last = message(&doc, "cluster.helm-ownership");
        if status(&doc, "cluster.helm-ownership") == "error" {
            assert_eq!(r.code(), 3);
            assert_eq!(
                findings(&doc, "cluster.helm-ownership"),
                vec![(
                    "kind-ambiguous".to_string(),
                    serde_json::json!({"type": "object", "kind": "Gadget", "name": "g1"})
                )]
            );
            assert_eq!(
                last,
                "kind Gadget (object g1) is served by 2 API groups: a.preflight.test/v1, b.preflight.test/v1; give apiVersion in the profile entry\n0 of 1 object(s) looked up: none belongs to another release"
            );
            let profile = format!("{RELEASE}checks:\n  cluster.helm-ownership: {{objects: [{{kind: Gadget, apiVersion: b.preflight.test/v1, name: g1}}]}}\n");
            let (r, doc) = run(&s, &c, &profile, &[]);
            assert_eq!(r.code(), 0, "{}", r.stdout());
            assert_eq!(
                message(&doc, "cluster.helm-ownership"),
                "1 object(s) looked up: none belongs to another release"
            );
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("never reported the ambiguity: {last}");
}

#[test]
fn namespaced_objects_are_looked_up_in_their_namespace_or_the_release_one() {
    let Some(c) = cluster() else { return };
    let ns = unique("owned-ns");
    c.apply(&format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {ns}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: creds, namespace: {ns}}}\n"));
    let s = Scenario::new();
    // The ConfigMap in an explicit namespace; the Secret in the release's namespace.
    let profile = format!("release: {{name: mine, namespace: {ns}}}\nchecks:\n  cluster.helm-ownership: {{objects: [{{kind: ConfigMap, name: settings, namespace: {ns}}}, {{kind: Secret, apiVersion: v1, name: creds}}, {{kind: ConfigMap, name: settings, namespace: default}}]}}\n");
    let (r, doc) = run(&s, &c, &profile, &[]);
    c.delete(&["namespace", &ns]);
    assert_eq!(r.code(), 1, "{}", r.stdout());
    let msg = message(&doc, "cluster.helm-ownership");
    assert_eq!(
        codes(&doc, "cluster.helm-ownership"),
        ["owned-by-another-release", "owned-by-another-release"]
    );
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(lines.len(), 2, "{msg}");
    assert!(lines[0].starts_with(&format!("ConfigMap \"settings\" in namespace \"{ns}\" exists and cannot be imported into the current release: invalid ownership metadata; label validation error: missing key")), "{msg}");
    assert!(
        lines[1].starts_with(&format!(
            "Secret \"creds\" in namespace \"{ns}\" exists and cannot be imported"
        )),
        "{msg}"
    );
    assert_eq!(
        fix_commands(&doc, "cluster.helm-ownership"),
        vec![
            format!("kubectl delete configmaps settings -n {ns}"),
            format!("kubectl delete secrets creds -n {ns}")
        ]
    );
}

/// The chart fixture rendered by the real helm (or helmfile) through the check's older
/// `render:` spelling of `install:`: its ConfigMap already exists, owned by another release;
/// after relabelling it is ours.
fn render_scenario(via_helmfile: bool) {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    s.on_path("helm", &real_tool("helm-3.17.2/helm"));
    s.on_path("helmfile", &real_tool("helmfile-0.166.0/helmfile"));
    let name = unique("mini");
    let ns = unique("mini-ns");
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    let cm = |release: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-settings\n  namespace: {ns}\n  labels: {{app.kubernetes.io/managed-by: Helm}}\n  annotations: {{meta.helm.sh/release-name: {release}, meta.helm.sh/release-namespace: {ns}}}\n")
    };
    c.apply(&cm("someone-else"));
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let render = if via_helmfile {
        format!("{{helmfile: {}}}", fixtures.join("helmfile.yaml").display())
    } else {
        format!("{{chart: {}}}", fixtures.join("mini-release").display())
    };
    let profile = format!("release: {{name: {name}, namespace: {ns}}}\nchecks:\n  cluster.helm-ownership: {{render: {render}}}\n");
    let mut s = s;
    s.env.insert("MINI_RELEASE".into(), name.clone().into());
    s.env.insert("MINI_NAMESPACE".into(), ns.clone().into());
    let (r, doc) = run(&s, &c, &profile, &[]);
    assert_eq!(r.code(), 1, "{}", r.stdout());
    assert_eq!(
        message(&doc, "cluster.helm-ownership"),
        format!("ConfigMap \"{name}-settings\" in namespace \"{ns}\" exists and cannot be imported into the current release: invalid ownership metadata; annotation validation error: key \"meta.helm.sh/release-name\" must equal \"{name}\": current value is \"someone-else\" (owned by release {ns}/someone-else) [release {name}, mini-release/templates/configmap.yaml]")
    );
    assert_eq!(
        codes(&doc, "cluster.helm-ownership"),
        ["owned-by-another-release"]
    );
    assert_eq!(
        fix_commands(&doc, "cluster.helm-ownership"),
        vec![format!("kubectl delete configmaps {name}-settings -n {ns}")]
    );
    c.apply(&cm(&name));
    let (r, doc) = run(&s, &c, &profile, &[]);
    c.delete(&["namespace", &ns]);
    assert_eq!(r.code(), 0, "{}", r.stdout());
    assert_eq!(
        message(&doc, "cluster.helm-ownership"),
        "2 object(s) looked up: none belongs to another release (2 objects from 1 release)"
    );
}

#[test]
fn helm_template_render_finds_an_object_of_another_release() {
    render_scenario(false);
}

#[test]
fn helmfile_template_render_finds_an_object_of_another_release() {
    render_scenario(true);
}

/// An aggregated API whose service is gone (seed 001), waited until the aggregator finds it
/// unavailable: the namespace controller's discovery then fails.
fn unavailable_apiservice(c: &Cluster, group: &str, ns: &str) {
    c.apply(&format!("apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {{name: v1.{group}, labels: {{preflight-test: apiservice}}}}\nspec:\n  group: {group}\n  version: v1\n  groupPriorityMinimum: 1000\n  versionPriority: 15\n  insecureSkipTLSVerify: true\n  service: {{name: gone, namespace: {ns}}}\n"));
    let (ok, out) = c.kubectl(
        &[
            "wait",
            "--for=condition=Available=False",
            &format!("apiservice/v1.{group}"),
            "--timeout=30s",
        ],
        None,
    );
    assert!(ok, "{out}");
}

/// The tests that put an unavailable APIService in the cluster (it delays every namespace
/// deletion and shows in every terminating-namespaces run) take turns.
static BROKEN_APISERVICE: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn seed001_namespace_stuck_terminating_behind_an_unavailable_apiservice() {
    let Some(c) = cluster() else { return };
    let _turn = BROKEN_APISERVICE.lock().unwrap_or_else(|p| p.into_inner());
    let _ = c.kubectl(
        &["delete", "apiservices", "-l", "preflight-test=apiservice"],
        None,
    );
    let s = Scenario::new();
    let live = unique("live");
    let stuck = unique("stuck");
    let group = format!("{}.preflight.test", unique("g"));
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {live}}}\n"
    ));
    let watch = |names: &str, after: &str| {
        format!("checks:\n  cluster.terminating-namespaces: {{stuck_after: {after}, only: [{names}]}}\n")
    };
    let (r, doc) = run(&s, &c, &watch(&live, "1s"), &[]);
    assert_eq!(r.code(), 0, "{}", r.stdout());
    assert_eq!(
        message(&doc, "cluster.terminating-namespaces"),
        "1 namespaces, none Terminating"
    );

    // The seed: an aggregated API whose service is gone.
    unavailable_apiservice(&c, &group, &live);
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {stuck}\n  finalizers: [preflight.test/hold]\n"
    ));
    c.delete(&["namespace", &stuck]);
    let (r, doc) = run(&s, &c, &watch(&format!("{live}, {stuck}"), "0s"), &[]);
    let (r2, doc2) = run(&s, &c, &watch(&live, "1h"), &[]);
    // The install's own namespace: fails at once, however young, with helm's sentence.
    let install = format!("checks:\n  cluster.terminating-namespaces: {{stuck_after: 1h, only: [{live}], namespaces: [{stuck}]}}\n");
    let (r3, doc3) = run(&s, &c, &install, &[]);
    let release = format!("release: {{name: x, namespace: {stuck}}}\nchecks:\n  cluster.terminating-namespaces: {{stuck_after: 1h, only: [{live}]}}\n");
    let (r4, doc4) = run(&s, &c, &release, &[]);
    c.delete(&["apiservice", &format!("v1.{group}")]);
    let _ = c.kubectl(
        &[
            "patch",
            "namespace",
            &stuck,
            "--type=merge",
            "-p",
            "{\"metadata\":{\"finalizers\":null}}",
        ],
        None,
    );
    c.delete(&["namespace", &live]);

    assert_eq!(r.code(), 1, "{}", r.stdout());
    assert_eq!(subjects_of(&doc, "namespace-stuck", "name"), vec![stuck.clone()]);
    assert!(
        subjects_of(&doc, "apiservice-unavailable", "name").contains(&format!("v1.{group}")),
        "{doc}"
    );
    let msg = message(&doc, "cluster.terminating-namespaces");
    assert!(
        msg.starts_with(&format!("namespace {stuck} (Terminating for ")),
        "{msg}"
    );
    assert!(
        msg.contains("finalizers preflight.test/hold) is stuck Terminating\n"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "APIService v1.{group} (ServiceNotFound: service/gone in \"{live}\" is not present) is unavailable: the deletion above never finishes while it stays so"
        )),
        "{msg}"
    );
    assert!(
        fix_commands(&doc, "cluster.terminating-namespaces").contains(&format!(
        "kubectl delete apiservice v1.{group}   # only if its add-on was removed; else repair its service"
    ))
    );
    for (r, doc) in [(r3, doc3), (r4, doc4)] {
        assert_eq!(r.code(), 1, "{}", r.stdout());
        assert_eq!(
            findings(&doc, "cluster.terminating-namespaces")[0],
            (
                "namespace-terminating".to_string(),
                serde_json::json!({"type": "object", "kind": "Namespace", "name": stuck})
            )
        );
        assert!(
            subjects_of(&doc, "apiservice-unavailable", "name").contains(&format!("v1.{group}")),
            "{doc}"
        );
        let msg = message(&doc, "cluster.terminating-namespaces");
        let lines: Vec<&str> = msg.lines().collect();
        assert!(
            lines[0].starts_with(&format!("namespace {stuck} (Terminating for ")),
            "{msg}"
        );
        assert!(lines[0].ends_with(&format!(", finalizers preflight.test/hold) is used by the install: helm fails with \"unable to create new content in namespace {stuck} because it is being terminated\"")), "{msg}");
    }
    // Nothing terminating, but the broken APIService alone is worth a warning.
    assert_eq!(r2.code(), 0);
    assert_eq!(status(&doc2, "cluster.terminating-namespaces"), "warn");
    assert_eq!(
        codes(&doc2, "cluster.terminating-namespaces")
            .iter()
            .collect::<std::collections::BTreeSet<_>>(),
        [&"apiservice-unavailable".to_string()].into_iter().collect()
    );
    assert!(message(&doc2, "cluster.terminating-namespaces")
        .contains(&format!("APIService v1.{group} (ServiceNotFound")));
    assert!(message(&doc2, "cluster.terminating-namespaces")
        .contains("is unavailable: it will keep any namespace deleted from now on Terminating"));
}

#[test]
fn seed003_webhooks_without_endpoints() {
    let Some(c) = cluster() else { return };
    let _ = c.kubectl(
        &[
            "delete",
            "validatingwebhookconfigurations,mutatingwebhookconfigurations",
            "-l",
            "preflight-test=webhooks",
        ],
        None,
    );
    let s = Scenario::new();
    let ns = unique("kruise-system");
    let hook = |config: &str, svc: &str, policy: &str| {
        format!("apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {{name: {config}, labels: {{preflight-test: webhooks}}}}\nwebhooks:\n- name: vpod.kb.io\n  failurePolicy: {policy}\n  sideEffects: None\n  admissionReviewVersions: [v1]\n  clientConfig: {{service: {{name: {svc}, namespace: {ns}, path: /validate-pod}}}}\n  rules: [{{apiGroups: [preflight.test], apiVersions: [v1], operations: [CREATE], resources: [nothings]}}]\n")
    };
    c.apply(&format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: healthy, namespace: {ns}}}\nspec: {{ports: [{{port: 443}}]}}\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {{name: healthy, namespace: {ns}}}\nsubsets: [{{addresses: [{{ip: 192.0.2.10}}], ports: [{{port: 443}}]}}]\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: kruise-webhook-service, namespace: {ns}}}\nspec: {{ports: [{{port: 443}}]}}\n"));
    let healthy = unique("healthy-hook");
    c.apply(&hook(&healthy, "healthy", "Fail"));
    let profile = "checks:\n  cluster.webhooks: {}\n";
    let (r, doc) = run(&s, &c, profile, &[]);
    assert_eq!(r.code(), 0, "{}", r.stdout());
    assert_eq!(
        message(&doc, "cluster.webhooks"),
        "1 webhook(s) with failurePolicy Fail, all with ready endpoints"
    );

    let broken = unique("kruise-validating");
    let missing = unique("gone-validating");
    let ignored = unique("ignored-validating");
    c.apply(&hook(&broken, "kruise-webhook-service", "Fail"));
    c.apply(&hook(&missing, "not-there", "Fail"));
    c.apply(&hook(&ignored, "not-there", "Ignore"));
    let (r, doc) = run(&s, &c, profile, &[]);
    let _ = c.kubectl(
        &[
            "delete",
            "validatingwebhookconfigurations",
            "-l",
            "preflight-test=webhooks",
        ],
        None,
    );
    c.delete(&["namespace", &ns]);
    assert_eq!(r.code(), 1);
    let mut down = subjects_of(&doc, "webhook-backend-down", "name");
    down.sort();
    let mut want = vec![broken.clone(), missing.clone()];
    want.sort();
    assert_eq!(down, want);
    let msg = message(&doc, "cluster.webhooks");
    assert!(msg.contains(&format!("ValidatingWebhookConfiguration {broken} webhook \"vpod.kb.io\" (failurePolicy Fail) calls {ns}/kruise-webhook-service: no endpoints available for service \"kruise-webhook-service\"; every request it matches fails")), "{msg}");
    assert!(
        msg.contains(&format!(
            "calls {ns}/not-there: service \"{ns}/not-there\" does not exist"
        )),
        "{msg}"
    );
    assert!(
        !msg.contains(&ignored),
        "failurePolicy Ignore is not judged: {msg}"
    );
    assert_eq!(msg.lines().count(), 2);
    let cmds = fix_commands(&doc, "cluster.webhooks");
    assert!(cmds.contains(&format!("kubectl -n {ns} get endpoints kruise-webhook-service")));
    assert!(cmds.contains(&format!(
        "kubectl delete validatingwebhookconfiguration {broken}   # only if its operator is gone"
    )));
    assert!(!entry(&doc, "cluster.webhooks")["fix"]["automatic"]
        .as_bool()
        .unwrap());

    // A mutating webhook (as cert-manager and kruise ship) and one calling a URL.
    let ns = unique("kruise-system");
    c.apply(&format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: kruise-webhook-service, namespace: {ns}}}\nspec: {{ports: [{{port: 443}}]}}\n"));
    let url_hook = unique("url-validating");
    c.apply(&format!("apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {{name: {url_hook}, labels: {{preflight-test: webhooks}}}}\nwebhooks:\n- name: vurl.kb.io\n  sideEffects: None\n  admissionReviewVersions: [v1]\n  clientConfig: {{url: \"https://webhook.example.test/validate\"}}\n  rules: [{{apiGroups: [preflight.test], apiVersions: [v1], operations: [CREATE], resources: [nothings]}}]\n"));
    let (r, doc) = run(&s, &c, profile, &[]);
    assert_eq!(r.code(), 0, "{}", r.stdout());
    assert_eq!(
        status(&doc, "cluster.webhooks"),
        "warn",
        "a URL webhook is named, never passed"
    );
    assert_eq!(
        findings(&doc, "cluster.webhooks"),
        vec![(
            "webhook-url-not-probed".to_string(),
            serde_json::json!({"type": "object", "kind": "ValidatingWebhookConfiguration", "name": url_hook})
        )]
    );
    assert_eq!(
        message(&doc, "cluster.webhooks"),
        format!("ValidatingWebhookConfiguration {url_hook} webhook \"vurl.kb.io\" (failurePolicy Fail) calls https://webhook.example.test/validate, which is not probed from here (only the API server's network can tell whether it answers)")
    );
    let mutating = unique("kruise-mutating");
    c.apply(&format!("apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {{name: {mutating}, labels: {{preflight-test: webhooks}}}}\nwebhooks:\n- name: mpod.kb.io\n  sideEffects: None\n  admissionReviewVersions: [v1]\n  clientConfig: {{service: {{name: kruise-webhook-service, namespace: {ns}, path: /mutate-pod}}}}\n  rules: [{{apiGroups: [preflight.test], apiVersions: [v1], operations: [CREATE], resources: [nothings]}}]\n"));
    let (r, doc) = run(&s, &c, profile, &[]);
    let _ = c.kubectl(
        &[
            "delete",
            "validatingwebhookconfigurations,mutatingwebhookconfigurations",
            "-l",
            "preflight-test=webhooks",
        ],
        None,
    );
    c.delete(&["namespace", &ns]);
    assert_eq!(r.code(), 1, "{}", r.stdout());
    let msg = message(&doc, "cluster.webhooks");
    assert_eq!(msg.lines().count(), 2, "{msg}");
    assert!(msg.starts_with(&format!("MutatingWebhookConfiguration {mutating} webhook \"mpod.kb.io\" (failurePolicy Fail) calls {ns}/kruise-webhook-service: no endpoints available for service \"kruise-webhook-service\"")), "{msg}");
    assert!(fix_commands(&doc, "cluster.webhooks").contains(&format!(
        "kubectl delete mutatingwebhookconfiguration {mutating}   # only if its operator is gone"
    )));
}

fn kcm_pod(name: &str, controllers: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: kube-system\n  labels: {{component: kube-controller-manager, preflight-test: csr}}\nspec:\n  containers:\n  - name: kube-controller-manager\n    image: registry.k8s.io/kube-controller-manager:v1.20.2\n    command: [kube-controller-manager, --leader-elect=true, \"--controllers={controllers}\"]\n")
}

#[test]
fn seed001_csr_controllers_flags_and_live_probe() {
    let Some(c) = cluster() else { return };
    let _ = c.kubectl(
        &[
            "delete",
            "pods",
            "-n",
            "kube-system",
            "-l",
            "preflight-test=csr",
            "--grace-period=0",
            "--force",
        ],
        None,
    );
    let s = Scenario::new();
    // No controller-manager pod (it runs as a process here, as on managed control planes).
    let (r, doc) = run(&s, &c, "checks:\n  cluster.csr-controllers: {}\n", &[]);
    assert_eq!(r.code(), 0);
    assert_eq!(status(&doc, "cluster.csr-controllers"), "warn");
    assert_eq!(codes(&doc, "cluster.csr-controllers"), ["controllers-unknown"]);
    // The live probe decides: the real controller manager signs it.
    let (r, doc) = run(
        &s,
        &c,
        "checks:\n  cluster.csr-controllers: {live_probe: true}\n",
        &[],
    );
    assert_eq!(r.code(), 0, "{}", r.stdout());
    let msg = message(&doc, "cluster.csr-controllers");
    assert!(
        msg.starts_with("Kubernetes v1.20.2; a probe CSR was approved and signed in "),
        "{msg}"
    );
    let (_, left) = c.kubectl(&["get", "csr", "-o", "name"], None);
    assert!(!left.contains("preflight-probe"), "probe CSR left behind: {left}");

    let pod = unique("kube-controller-manager-node1");
    c.apply(&kcm_pod(&pod, "*,-csrsigning"));
    let (r, doc) = run(&s, &c, "checks:\n  cluster.csr-controllers: {}\n", &[]);
    assert_eq!(r.code(), 1);
    assert_eq!(
        findings(&doc, "cluster.csr-controllers"),
        vec![(
            "controllers-off".to_string(),
            serde_json::json!({"type": "object", "kind": "Pod", "namespace": "kube-system", "name": pod})
        )]
    );
    assert_eq!(
        message(&doc, "cluster.csr-controllers"),
        format!("kube-controller-manager (pod kube-system/{pod}) runs --controllers=*,-csrsigning: csrsigning, bootstrapsigner off (`*` enables only default-on controllers; bootstrapsigner is default-off)")
    );
    let _ = c.kubectl(
        &[
            "delete",
            "pod",
            "-n",
            "kube-system",
            &pod,
            "--grace-period=0",
            "--force",
        ],
        None,
    );
    let pod = unique("kube-controller-manager-node2");
    c.apply(&kcm_pod(&pod, "*,bootstrap-signer-controller"));
    let (r, doc) = run(&s, &c, "checks:\n  cluster.csr-controllers: {}\n", &[]);
    let _ = c.kubectl(
        &[
            "delete",
            "pod",
            "-n",
            "kube-system",
            &pod,
            "--grace-period=0",
            "--force",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stdout());
    assert_eq!(
        message(&doc, "cluster.csr-controllers"),
        "Kubernetes v1.20.2; kube-controller-manager enables csrapproving, csrsigning, csrcleaner, bootstrapsigner"
    );
    let (_, doc) = run(
        &s,
        &c,
        "checks:\n  cluster.csr-controllers: {min_version: \"1.21\"}\n",
        &[],
    );
    assert_eq!(message(&doc, "cluster.csr-controllers"), "Kubernetes v1.20.2 is older than 1.21.0: the CSR API and signing controllers the add-ons need are missing");
}

#[test]
fn live_probe_fails_when_the_controller_manager_does_not_sign() {
    let Some(c) = nosign_cluster() else { return };
    let s = Scenario::new();
    let (r, doc) = run(
        &s,
        &c,
        "checks:\n  cluster.csr-controllers: {live_probe: true, probe_wait: 3s}\n",
        &[],
    );
    assert_eq!(r.code(), 1, "{}", r.stdout());
    let msg = message(&doc, "cluster.csr-controllers");
    assert_eq!(codes(&doc, "cluster.csr-controllers"), ["csr-not-signed"]);
    assert!(msg.starts_with("the probe CSR preflight-probe-"), "{msg}");
    assert!(msg.ends_with("was approved but not signed within 3s: the csrsigning controller is not running (or has no signing key)"), "{msg}");
    // Its own CSR (other tests probe this cluster at the same time).
    let name = msg
        .strip_prefix("the probe CSR ")
        .and_then(|m| m.split(' ').next())
        .unwrap();
    let (found, left) = c.kubectl(&["get", "csr", name], None);
    assert!(!found, "probe CSR must be deleted on timeout too: {left}");
}

#[test]
fn live_probe_with_the_default_settings_reports_and_cleans_up_inside_its_deadline() {
    let Some(c) = nosign_cluster() else { return };
    let s = Scenario::new();
    // probe_wait 30s and --timeout 5s: the check's deadline is 30s too; the wait must end
    // first, so the check reports what it saw and deletes its CSR itself.
    let (r, doc) = run(
        &s,
        &c,
        "checks:\n  cluster.csr-controllers: {live_probe: true}\n",
        &[],
    );
    assert_eq!(r.code(), 1, "{}", r.stdout());
    let msg = message(&doc, "cluster.csr-controllers");
    assert_eq!(codes(&doc, "cluster.csr-controllers"), ["csr-not-signed"]);
    assert!(!msg.contains("did not finish within"), "{msg}");
    assert!(
        msg.contains(
            "(probe_wait 30s capped to fit the check's deadline): the csrsigning controller is not running"
        ),
        "{msg}"
    );
    let name = msg
        .strip_prefix("the probe CSR ")
        .and_then(|m| m.split(' ').next())
        .unwrap()
        .to_string();
    let (found, out) = c.kubectl(&["get", "csr", &name], None);
    assert!(!found, "the probe CSR {name} is left behind: {out}");
}

#[test]
fn seed004_storageclass_named_and_default() {
    let Some(c) = cluster() else { return };
    let _ = c.kubectl(&["delete", "storageclass", "-l", "preflight-test=sc"], None);
    let s = Scenario::new();
    let name = unique("local-storage");
    let sc = |default: bool| {
        format!("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: {name}\n  labels: {{preflight-test: sc}}\n  annotations: {{storageclass.kubernetes.io/is-default-class: \"{default}\"}}\nprovisioner: rancher.io/local-path\n")
    };
    let (r, doc) = run(&s, &c, "checks:\n  cluster.storageclass: {}\n", &[]);
    assert_eq!(r.code(), 1);
    assert_eq!(codes(&doc, "cluster.storageclass"), ["no-default-storageclass"]);
    assert!(message(&doc, "cluster.storageclass").starts_with("no default StorageClass (existing: "));
    assert!(message(&doc, "cluster.storageclass")
        .ends_with("claims without storageClassName never bind (\"no storage class is set\")"));
    let named = format!("checks:\n  cluster.storageclass: {{name: {name}}}\n");
    let (_, doc) = run(&s, &c, &named, &[]);
    assert!(message(&doc, "cluster.storageclass").starts_with(&format!("StorageClass {name} does not exist")));
    c.apply(&sc(false));
    let (r, doc) = run(&s, &c, &named, &[]);
    assert_eq!(r.code(), 0);
    assert_eq!(
        message(&doc, "cluster.storageclass"),
        format!("StorageClass {name} exists (provisioner rancher.io/local-path)")
    );
    c.apply(&sc(true));
    let (r, doc) = run(&s, &c, "checks:\n  cluster.storageclass: {}\n", &[]);
    c.delete(&["storageclass", &name]);
    assert_eq!(r.code(), 0);
    assert_eq!(
        message(&doc, "cluster.storageclass"),
        format!("default StorageClass {name}")
    );
}

#[test]
fn seed002_only_a_tainted_control_plane_node() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let pool = unique("pool");
    let node = |name: &str, taint: &str, cpu: &str, mem: &str| {
        c.apply(&format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{preflight-test: {pool}}}\nspec:\n  taints: [{taint}]\n"));
        let patch = format!("{{\"status\":{{\"capacity\":{{\"cpu\":\"{cpu}\",\"memory\":\"{mem}\",\"pods\":\"110\"}},\"allocatable\":{{\"cpu\":\"{cpu}\",\"memory\":\"{mem}\",\"pods\":\"110\"}}}}}}");
        let (ok, out) = c.kubectl(
            &[
                "patch",
                "node",
                name,
                "--subresource=status",
                "--type=merge",
                "-p",
                &patch,
            ],
            None,
        );
        assert!(ok, "{out}");
    };
    // Nodes without a kubelet get not-ready/unreachable taints from the node controller.
    let profile = format!("checks:\n  cluster.schedulable: {{cpu: \"4\", memory: 8Gi, node_selector: {{preflight-test: {pool}}}, tolerations: [node.kubernetes.io/not-ready, node.kubernetes.io/unreachable]}}\n");
    let master = unique("master");
    node(
        &master,
        "{key: node-role.kubernetes.io/master, effect: NoSchedule}",
        "16",
        "64Gi",
    );
    let (r, doc) = run(&s, &c, &profile, &[]);
    assert_eq!(r.code(), 1, "{}", r.stdout());
    assert_eq!(codes(&doc, "cluster.schedulable"), ["no-node-fits"]);
    assert_eq!(
        message(&doc, "cluster.schedulable"),
        "0/1 nodes are available for cpu 4, memory 8.0 GiB: 1 node(s) had taint {node-role.kubernetes.io/master: }, that the pod didn't tolerate."
    );
    // The taint removal, by name, for the key that node has (seed 002's fix).
    assert_eq!(
        fix_commands(&doc, "cluster.schedulable"),
        vec![format!(
            "kubectl taint nodes {master} node-role.kubernetes.io/master-"
        )]
    );
    // A newer control plane carries both spellings: both are removed.
    let newer = unique("cp");
    node(
        &newer,
        "{key: node-role.kubernetes.io/master, effect: NoSchedule}, {key: node-role.kubernetes.io/control-plane, effect: NoSchedule}",
        "16",
        "64Gi",
    );
    let (_, doc) = run(&s, &c, &profile, &[]);
    assert_eq!(
        fix_commands(&doc, "cluster.schedulable"),
        // (nodes in the API's order, by name)
        vec![
            format!("kubectl taint nodes {newer} node-role.kubernetes.io/control-plane-"),
            format!("kubectl taint nodes {newer} node-role.kubernetes.io/master-"),
            format!("kubectl taint nodes {master} node-role.kubernetes.io/master-"),
        ]
    );
    c.delete(&["node", &newer]);
    let small = unique("small");
    node(&small, "", "2", "4Gi");
    let (_, doc) = run(&s, &c, &profile, &[]);
    assert!(message(&doc, "cluster.schedulable").ends_with(": 1 Insufficient cpu, 1 node(s) had taint {node-role.kubernetes.io/master: }, that the pod didn't tolerate."));
    let big = unique("worker");
    node(&big, "", "8", "16Gi");
    let (r, doc) = run(&s, &c, &profile, &[]);
    for n in [&master, &small, &big] {
        c.delete(&["node", n]);
    }
    assert_eq!(r.code(), 0, "{}", r.stdout());
    assert_eq!(
        message(&doc, "cluster.schedulable"),
        format!("node {big} can take cpu 4, memory 8.0 GiB")
    );
}

#[test]
fn no_nodes_matching_is_a_failure() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let pool = unique("empty-pool");
    let (r, doc) = run(
        &s,
        &c,
        &format!("checks:\n  cluster.schedulable: {{node_selector: {{preflight-test: {pool}}}}}\n"),
        &[],
    );
    assert_eq!(r.code(), 1);
    assert_eq!(
        message(&doc, "cluster.schedulable"),
        format!("no nodes matching preflight-test={pool} are registered: nothing can be scheduled")
    );
    assert_eq!(codes(&doc, "cluster.schedulable"), ["no-nodes"]);
}

#[test]
fn lists_are_read_page_by_page_and_the_last_page_counts() {
    let Some(c) = cluster() else { return };
    // 1,050 objects of a kind of this test's own: three pages of 500; the one of another
    // release sorts last, so only the third page holds it.
    let group = format!("{}.pages.preflight.test", unique("g"));
    c.apply(&format!("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: paged.{group}}}\nspec:\n  group: {group}\n  scope: Cluster\n  names: {{kind: Paged, plural: paged, singular: paged}}\n  versions:\n  - {{name: v1, served: true, storage: true, schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}}}\n"));
    let (ok, out) = c.kubectl(
        &[
            "wait",
            "--for=condition=Established",
            &format!("crd/paged.{group}"),
            "--timeout=30s",
        ],
        None,
    );
    assert!(ok, "{out}");
    let mut list = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for i in 0..1050 {
        let (name, rel) = if i == 1049 {
            ("zz-foreign".to_string(), "oam")
        } else {
            (format!("p-{i:04}"), "kubevela")
        };
        list.push_str(&format!("- {{apiVersion: {group}/v1, kind: Paged, metadata: {{name: {name}, labels: {{app.kubernetes.io/managed-by: Helm}}, annotations: {{meta.helm.sh/release-name: {rel}, meta.helm.sh/release-namespace: vela-system}}}}}}\n"));
    }
    let (ok, out) = c.kubectl(&["create", "-f", "-"], Some(&list));
    assert!(ok, "{out}");
    let s = Scenario::new();
    let profile = format!("release: {{name: kubevela, namespace: vela-system}}\nchecks:\n  cluster.leftover-scopedefinition: {{group: {group}, kind: Paged}}\n");
    let (run, doc) = run(&s, &c, &profile, &[]);
    c.delete(&["crd", &format!("paged.{group}")]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(
        subjects_of(&doc, "owned-by-another-release", "name"),
        vec!["zz-foreign".to_string()]
    );
    assert_eq!(
        entry(&doc, "cluster.leftover-scopedefinition")["message"],
        "1 of 1050 Paged object(s) belong to another release"
    );
    assert_eq!(
        entry(&doc, "cluster.leftover-scopedefinition")["findings"][0]["message"],
        "Paged \"zz-foreign\" in namespace \"\" exists and cannot be imported into the current release: invalid ownership metadata; annotation validation error: key \"meta.helm.sh/release-name\" must equal \"kubevela\": current value is \"oam\""
    );
}

#[test]
fn seed001_a_namespace_the_controller_gave_up_on_fails_at_once() {
    let Some(c) = cluster() else { return };
    let _turn = BROKEN_APISERVICE.lock().unwrap_or_else(|p| p.into_inner());
    let s = Scenario::new();
    let live = unique("live");
    let doomed = unique("doomed");
    let group = format!("{}.preflight.test", unique("g"));
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {live}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {doomed}}}\n"
    ));
    // An aggregated API whose service is gone: the namespace controller's discovery fails.
    unavailable_apiservice(&c, &group, &live);
    let _ = c.kubectl(&["delete", "namespace", &doomed, "--wait=false"], None);
    let (ok, out) = c.kubectl(
        &[
            "wait",
            "--for=condition=NamespaceDeletionDiscoveryFailure",
            &format!("namespace/{doomed}"),
            "--timeout=60s",
        ],
        None,
    );
    // Young (seconds), not the install's: only the controller's condition makes it stuck.
    let profile =
        format!("checks:\n  cluster.terminating-namespaces: {{stuck_after: 1h, only: [{doomed}]}}\n");
    let (r, doc) = run(&s, &c, &profile, &[]);
    c.delete(&["apiservice", &format!("v1.{group}")]);
    c.delete(&["namespace", &live]);
    assert!(
        ok,
        "the namespace controller set no NamespaceDeletionDiscoveryFailure: {out}"
    );
    assert_eq!(r.code(), 1, "{}", r.stdout());
    assert_eq!(subjects_of(&doc, "namespace-stuck", "name"), vec![doomed.clone()]);
    let msg = message(&doc, "cluster.terminating-namespaces");
    assert!(
        msg.starts_with(&format!("namespace {doomed} (Terminating for ")),
        "{msg}"
    );
    assert!(
        msg.contains("): the namespace controller cannot finish it: NamespaceDeletionDiscoveryFailure: Discovery failed for some groups"),
        "{msg}"
    );
    assert!(msg.contains(&group), "{msg}");
}

#[test]
fn metrics_api_that_cannot_be_read_is_an_error_not_a_pass() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    // A user who may read nothing of apiregistration.k8s.io.
    let user = unique("no-apiservices");
    let kc = c.kubeconfig_as(s.dir.path(), &user);
    let p = s.profile("checks:\n  cluster.metrics-api: {required: true}\n");
    let (r, doc) = s.json(&["--profile", &p, "--kubeconfig", &kc]);
    assert_eq!(r.code(), 3, "{}", r.stdout());
    assert_eq!(status(&doc, "cluster.metrics-api"), "error");
    assert_eq!(
        findings(&doc, "cluster.metrics-api"),
        vec![("api-error".to_string(), serde_json::json!({"type": "cluster"}))]
    );
    let msg = message(&doc, "cluster.metrics-api");
    assert!(msg.contains("forbidden") && msg.contains("apiservices"), "{msg}");
}

#[test]
fn seed000_the_metrics_api_an_install_autoscales_with() {
    let Some(c) = cluster() else { return };
    // The APIService is cluster-wide and, unavailable, delays namespace deletions.
    let _turn = BROKEN_APISERVICE.lock().unwrap_or_else(|p| p.into_inner());
    let s = Scenario::new();
    let _ = c.kubectl(
        &[
            "delete",
            "apiservice",
            "v1beta1.metrics.k8s.io",
            "--ignore-not-found",
        ],
        None,
    );
    let profile = "checks:\n  cluster.metrics-api: {required: true}\n";
    // Not installed.
    let (r1, absent) = run(&s, &c, profile, &[]);
    // Installed, but its service is gone (as after a half-removed metrics-server).
    let ns = unique("metrics");
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    let apiservice = |port: u16| {
        format!("apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {{name: v1beta1.metrics.k8s.io}}\nspec: {{group: metrics.k8s.io, version: v1beta1, groupPriorityMinimum: 100, versionPriority: 100, insecureSkipTLSVerify: true, service: {{name: metrics-server, namespace: {ns}, port: {port}}}}}\n")
    };
    let backend = common::https::HttpsServer::start("127.0.0.1", |_, _| {
        (200, r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"metrics.k8s.io/v1beta1","resources":[{"name":"pods","singularName":"","namespaced":true,"kind":"PodMetrics","verbs":["get","list"]}]}"#.to_string())
    });
    c.apply(&apiservice(backend.port));
    let wait = |state: &str| {
        c.kubectl(
            &[
                "wait",
                &format!("--for=condition=Available={state}"),
                "apiservice/v1beta1.metrics.k8s.io",
                "--timeout=30s",
            ],
            None,
        )
    };
    let (ok_false, out_false) = wait("False");
    let (r2, unavailable) = run(&s, &c, profile, &[]);
    // Its service back: an ExternalName to the backend on 127.0.0.1 (the aggregator dials it).
    c.apply(&format!("apiVersion: v1\nkind: Service\nmetadata: {{name: metrics-server, namespace: {ns}}}\nspec: {{type: ExternalName, externalName: 127.0.0.1, ports: [{{port: {}}}]}}\n", backend.port));
    let (ok_true, out_true) = wait("True");
    let (r3, available) = run(&s, &c, profile, &[]);
    // Without an HPA on resource metrics and not required: nothing to look at.
    let (_, not_needed) = run(&s, &c, "checks:\n  cluster.metrics-api: {}\n", &[]);
    c.delete(&["apiservice", "v1beta1.metrics.k8s.io"]);
    c.delete(&["namespace", &ns]);
    drop(backend);

    assert_eq!(r1.code(), 1, "{}", r1.stdout());
    assert_eq!(codes(&absent, "cluster.metrics-api"), ["metrics-api-missing"]);
    assert!(
        message(&absent, "cluster.metrics-api").starts_with("the metrics API is not installed (no APIService v1beta1.metrics.k8s.io); the profile requires it"),
        "{}",
        message(&absent, "cluster.metrics-api")
    );
    assert!(ok_false, "{out_false}");
    assert_eq!(r2.code(), 1, "{}", r2.stdout());
    assert_eq!(
        findings(&unavailable, "cluster.metrics-api"),
        vec![(
            "metrics-api-unavailable".to_string(),
            serde_json::json!({"type": "object", "kind": "APIService", "name": "v1beta1.metrics.k8s.io"})
        )]
    );
    assert!(
        message(&unavailable, "cluster.metrics-api").starts_with(
            "APIService v1beta1.metrics.k8s.io is not Available (ServiceNotFound: service/metrics-server in "
        ),
        "{}",
        message(&unavailable, "cluster.metrics-api")
    );
    assert!(ok_true, "{out_true}");
    assert_eq!(r3.code(), 0, "{}", r3.stdout());
    assert_eq!(status(&available, "cluster.metrics-api"), "pass");
    assert_eq!(status(&not_needed, "cluster.metrics-api"), "skip");
}

#[test]
fn node_clocks_from_what_the_kubelets_write() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let pool = unique("clocks");
    let now = k8s_openapi::jiff::Timestamp::now();
    let at = |secs: i64| {
        (now + k8s_openapi::jiff::SignedDuration::from_secs(secs))
            .strftime("%Y-%m-%dT%H:%M:%S.000000Z")
            .to_string()
    };
    let names: Vec<String> = ["good", "ahead", "behind", "nolease"]
        .iter()
        .map(|n| unique(n))
        .collect();
    for (i, n) in names.iter().enumerate() {
        c.apply(&format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {n}, labels: {{preflight-test: {pool}, clock-case: {}}}}}\n", ["good", "ahead", "behind", "nolease"][i]));
        let patch = format!(
            "{{\"status\":{{\"conditions\":[{{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"message\":\"ok\",\"lastHeartbeatTime\":\"{}\",\"lastTransitionTime\":\"{}\"}}]}}}}",
            at(0),
            at(0)
        );
        let (ok, out) = c.kubectl(
            &[
                "patch",
                "node",
                n,
                "--subresource=status",
                "--type=merge",
                "-p",
                &patch,
            ],
            None,
        );
        assert!(ok, "{out}");
        // What each kubelet wrote with its own clock: on time, 2 minutes ahead, 3 behind.
        let renew = match i {
            0 => Some(at(0)),
            1 => Some(at(120)),
            2 => Some(at(-180)),
            _ => None,
        };
        if let Some(r) = renew {
            c.apply(&format!("apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: {n}, namespace: kube-node-lease}}\nspec: {{holderIdentity: {n}, leaseDurationSeconds: 40, renewTime: \"{r}\"}}\n"));
        }
    }
    let profile = |which: &str| {
        format!("checks:\n  cluster.node-clocks: {{node_selector: {{preflight-test: {pool}}}}}\n{which}")
    };
    let (r, doc) = run(&s, &c, &profile(""), &[]);
    let (r_good, good) = run(
        &s,
        &c,
        &format!("checks:\n  cluster.node-clocks: {{node_selector: {{preflight-test: {pool}, clock-case: good}}}}\n"),
        &[],
    );
    // A node whose kubelet never wrote a Lease cannot be judged: error, not pass.
    let (r_none, none) = run(
        &s,
        &c,
        &format!("checks:\n  cluster.node-clocks: {{node_selector: {{preflight-test: {pool}, clock-case: nolease}}}}\n"),
        &[],
    );
    for n in &names {
        c.delete(&["node", n]);
        let _ = c.kubectl(
            &[
                "delete",
                "lease",
                n,
                "-n",
                "kube-node-lease",
                "--ignore-not-found",
            ],
            None,
        );
    }
    assert_eq!(r_none.code(), 3, "{}", r_none.stdout());
    assert_eq!(status(&none, "cluster.node-clocks"), "error");
    assert_eq!(
        findings(&none, "cluster.node-clocks"),
        vec![(
            "clock-not-judged".to_string(),
            serde_json::json!({"type": "node", "node": names[3]})
        )]
    );
    assert_eq!(
        message(&none, "cluster.node-clocks"),
        format!(
            "{}: its clock cannot be judged: the node has no Lease in kube-node-lease\nno node's clock could be judged",
            names[3]
        )
    );
    assert_eq!(r.code(), 1, "{}", r.stdout());
    let mut skewed = subjects_of(&doc, "clock-skew", "node");
    skewed.sort();
    let mut want = vec![names[1].clone(), names[2].clone()];
    want.sort();
    assert_eq!(skewed, want);
    let msg = message(&doc, "cluster.node-clocks");
    assert_eq!(
        codes(&doc, "cluster.node-clocks"),
        ["clock-skew", "clock-skew", "clock-not-judged"]
    );
    let lines: Vec<&str> = msg.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{}: its clock is about 1", names[1]))
                && l.contains("s ahead of the API server's")),
        "{msg}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{}: its clock is about 1", names[2]))
                && l.contains("s behind the API server's")),
        "{msg}"
    );
    assert!(!msg.contains(&format!("{}: its clock", names[0])), "{msg}");
    assert_eq!(
        subjects_of(&doc, "clock-not-judged", "node"),
        vec![names[3].clone()]
    );
    assert!(
        msg.ends_with(&format!(
            "{}: its clock cannot be judged: the node has no Lease in kube-node-lease\n(allowed skew 30s)",
            names[3]
        )),
        "{msg}"
    );
    assert_eq!(r_good.code(), 0, "{}", r_good.stdout());
    assert_eq!(
        message(&good, "cluster.node-clocks"),
        "1 node clock(s) within 30s of the API server's"
    );
}

/// A Ready node of the pool whose status points the API server at a kubelet on
/// 127.0.0.1:`port`.
fn ready_node_with_kubelet_at(c: &Cluster, n: &str, pool: &str, port: u16) {
    c.apply(&format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {n}, labels: {{preflight-test: {pool}}}}}\n"
    ));
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let patch = format!(
        "{{\"status\":{{\"addresses\":[{{\"type\":\"InternalIP\",\"address\":\"127.0.0.1\"}}],\"daemonEndpoints\":{{\"kubeletEndpoint\":{{\"Port\":{port}}}}},\"conditions\":[{{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"message\":\"ok\",\"lastHeartbeatTime\":\"{now}\",\"lastTransitionTime\":\"{now}\"}}]}}}}"
    );
    let (ok, out) = c.kubectl(
        &[
            "patch",
            "node",
            n,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ],
        None,
    );
    assert!(ok, "{out}");
}

#[test]
fn without_nodes_proxy_each_kubelet_is_reached_through_a_pod_log_as_kubectl_logs_does() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let pool = unique("logreach");
    // The kubelet serves the last log line of a container (GET /containerLogs/NS/POD/C).
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let kubelet = {
        let seen = seen.clone();
        common::https::HttpsServer::start("127.0.0.1", move |path, _| {
            seen.lock().unwrap().push(path.to_string());
            if path.starts_with("/containerLogs/") {
                (200, "started\n".to_string())
            } else {
                (404, "not found".to_string())
            }
        })
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let names: Vec<String> = ["up", "firewalled"].iter().map(|n| unique(n)).collect();
    for (n, port) in names.iter().zip([kubelet.port, closed]) {
        ready_node_with_kubelet_at(&c, n, &pool, port);
    }
    let ns = unique("logreach");
    let mut objects = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n");
    for n in &names {
        objects.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: on-{n}, namespace: {ns}}}\nspec: {{nodeName: {n}, containers: [{{name: app, image: busybox}}]}}\n"
        ));
    }
    c.apply(&objects);
    // One user may read logs but not use nodes/proxy; the other may do neither.
    let (logs, neither) = (unique("logs"), unique("neither"));
    for (user, log_rule) in [
        (
            &logs,
            "\n- apiGroups: [\"\"]\n  resources: [pods/log]\n  verbs: [get]",
        ),
        (&neither, ""),
    ] {
        c.grant(
            user,
            &format!("- apiGroups: [\"\"]\n  resources: [nodes, pods]\n  verbs: [get, list]{log_rule}"),
        );
    }
    let p = s.profile(&format!(
        "checks:\n  cluster.kubelet-reachable: {{node_selector: {{preflight-test: {pool}}}}}\n"
    ));
    let go = |user: &str| {
        let kc = c.kubeconfig_as(s.dir.path(), user);
        s.json(&["--profile", &p, "--kubeconfig", &kc, "--timeout", "3s"])
    };
    let (r_logs, by_logs) = go(&logs);
    let (r_neither, by_neither) = go(&neither);
    for n in &names {
        c.delete(&["node", n]);
    }
    c.delete(&["namespace", &ns]);
    for u in [&logs, &neither] {
        c.delete(&["clusterrole", u]);
        c.delete(&["clusterrolebinding", u]);
    }
    drop(kubelet);
    assert_eq!(r_logs.code(), 1, "{}", r_logs.stdout());
    assert_eq!(status(&by_logs, "cluster.kubelet-reachable"), "fail");
    assert_eq!(
        codes(&by_logs, "cluster.kubelet-reachable"),
        ["kubelet-unreachable"]
    );
    let msg = message(&by_logs, "cluster.kubelet-reachable");
    assert!(
        msg.lines().next().unwrap().starts_with(&format!(
            "node {}: the API server cannot reach its kubelet at 127.0.0.1:{closed}: ",
            names[1]
        )) && msg.contains(&format!(
            "dial tcp 127.0.0.1:{closed}: connect: connection refused"
        )),
        "{msg}"
    );
    assert!(msg.contains("(1 node(s) reachable)"), "{msg}");
    // The reachable node was asked what kubectl logs --tail=1 asks.
    let asked = seen.lock().unwrap().clone();
    assert!(
        asked.iter().any(
            |p| p.starts_with(&format!("/containerLogs/{ns}/on-{}/app?", names[0]))
                && p.contains("tailLines=1")
        ),
        "{asked:?}"
    );
    // With neither permission: error, naming both ways it tried.
    assert_eq!(r_neither.code(), 3, "{}", r_neither.stdout());
    assert_eq!(status(&by_neither, "cluster.kubelet-reachable"), "error");
    assert_eq!(
        codes(&by_neither, "cluster.kubelet-reachable"),
        ["api-error", "api-error"]
    );
    let mut denied = subjects_of(&by_neither, "api-error", "node");
    denied.sort();
    let mut all = names.clone();
    all.sort();
    assert_eq!(denied, all);
    let msg = message(&by_neither, "cluster.kubelet-reachable");
    assert!(
        msg.lines().any(|l| l.starts_with(&format!(
            "node {}: cannot ask the API server for its kubelet (nodes/proxy, or pods/log of a pod there): ",
            names[0]
        )) && l.contains("nodes/proxy")
            && l.contains("pods/log")),
        "{msg}"
    );
}

#[test]
fn seed004_the_api_server_reaches_each_kubelet() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let pool = unique("kubelets");
    // A kubelet that answers /healthz (TLS), and a node whose kubelet port is closed.
    let kubelet = common::https::HttpsServer::start("127.0.0.1", |path, _| {
        if path.starts_with("/healthz") {
            (200, "ok".to_string())
        } else {
            (404, "not found".to_string())
        }
    });
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let names: Vec<String> = ["up", "firewalled"].iter().map(|n| unique(n)).collect();
    for (n, port) in names.iter().zip([kubelet.port, closed]) {
        ready_node_with_kubelet_at(&c, n, &pool, port);
    }
    let profile = |extra: &str| {
        format!(
            "checks:\n  cluster.kubelet-reachable: {{node_selector: {{preflight-test: {pool}{extra}}}}}\n"
        )
    };
    let (r, doc) = run(&s, &c, &profile(""), &["--timeout", "3s"]);
    c.kubectl(&["label", "node", &names[0], "reach=yes"], None);
    let (r_up, up) = run(&s, &c, &profile(", reach: \"yes\""), &[]);
    for n in &names {
        c.delete(&["node", n]);
    }
    drop(kubelet);
    assert_eq!(r.code(), 1, "{}", r.stdout());
    assert_eq!(
        findings(&doc, "cluster.kubelet-reachable"),
        vec![(
            "kubelet-unreachable".to_string(),
            serde_json::json!({"type": "node", "node": names[1]})
        )]
    );
    let msg = message(&doc, "cluster.kubelet-reachable");
    let first = msg.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "node {}: the API server cannot reach its kubelet at 127.0.0.1:{closed}: ",
            names[1]
        )),
        "{msg}"
    );
    assert!(
        first.contains(&format!(
            "dial tcp 127.0.0.1:{closed}: connect: connection refused"
        )),
        "{msg}"
    );
    assert!(msg.ends_with("kubectl logs/exec on their pods, metrics-server and the installer's scripts fail there (1 node(s) reachable)"), "{msg}");
    assert_eq!(r_up.code(), 0, "{}", r_up.stdout());
    assert_eq!(
        message(&up, "cluster.kubelet-reachable"),
        "the API server reaches the kubelet of 1 node(s)"
    );
}
