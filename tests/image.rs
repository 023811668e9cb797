//! `preflight image push`: the running binary published as an OCI image to the REAL
//! docker-registry (plain HTTP and htpasswd), read back through the registry's API, pushed
//! again to the same digest, and found by `network.images`.

mod common;

use common::registry::*;
use common::*;

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_binary_is_pushed_as_an_image_read_back_and_pushed_again_to_the_same_digest() {
    let r = Registry::start(RegistryOpts::default());
    let s = Scenario::new();
    let target = format!("{}/tools/preflight:v1", r.host());
    let first = s.run(&["image", "push", &target]);
    assert_eq!(first.code(), 0, "{}\n{}", first.stdout(), first.stderr());
    let out = first.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("layer    sha256:") && lines[0].ends_with("uploaded"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("config   sha256:") && lines[1].ends_with("uploaded"),
        "{out}"
    );
    assert!(lines[2].ends_with(&format!("pushed as {target}")), "{out}");
    let digest = lines[3]
        .strip_prefix(&format!("{}/tools/preflight@", r.host()))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();

    // Read back through the registry's API: the manifest is the digest printed, its layer
    // unpacks to this very binary, executable, at /preflight.
    let base = format!("http://{}/v2/tools/preflight", r.host());
    let (code, manifest) = registry_get(
        &format!("{base}/manifests/v1"),
        "application/vnd.oci.image.manifest.v1+json",
        None,
    );
    assert_eq!(code, 200);
    assert_eq!(format!("sha256:{}", hex_sha256(&manifest)), digest);
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layer_digest = m["layers"][0]["digest"].as_str().unwrap();
    let (code2, layer) = registry_get(&format!("{base}/blobs/{layer_digest}"), "*/*", None);
    assert_eq!(code2, 200);
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&layer[..]), &mut tar).unwrap();
    let mut archive = tar::Archive::new(&tar[..]);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("preflight"));
    assert_eq!(entry.header().mode().unwrap(), 0o755);
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut body).unwrap();
    assert!(
        body == std::fs::read(bin()).unwrap(),
        "the layer holds the binary that pushed it"
    );
    let (_, config) = registry_get(
        &format!("{base}/blobs/{}", m["config"]["digest"].as_str().unwrap()),
        "*/*",
        None,
    );
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/preflight"]));

    // Again, under another tag: nothing uploaded twice, the same digest.
    let again = s.run(&["image", "push", &format!("{}/tools/preflight:v2", r.host())]);
    assert_eq!(again.code(), 0, "{}", again.stderr());
    let out2 = again.stdout();
    assert!(out2.lines().next().unwrap().ends_with("already there"), "{out2}");
    assert!(out2.lines().nth(1).unwrap().ends_with("already there"), "{out2}");
    assert_eq!(
        out2.lines().nth(3).unwrap(),
        format!("{}/tools/preflight@{digest}", r.host())
    );

    // The registry checks find it.
    let p = s.profile(&format!(
        "checks:\n  network.images:\n    images: [\"{target}\"]\n"
    ));
    let (run, doc) = s.json(&["--profile", &p, "--only", "network.images"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(status(&doc, "network.images"), "pass");
}

#[test]
fn a_registry_that_wants_credentials_gets_the_profiles() {
    let r = Registry::start(RegistryOpts {
        htpasswd: Some(("pusher".into(), "s3cret".into())),
        ..Default::default()
    });
    let s = Scenario::new();
    let target = format!("{}/tools/preflight:v1", r.host());
    let denied = s.run(&["image", "push", &target]);
    assert_eq!(denied.code(), 1);
    assert!(denied.stdout().is_empty());
    assert_eq!(
        denied.stderr().lines().next().unwrap(),
        format!("preflight: image push {target} failed: {}: needs credentials (401, Basic auth) and none are configured", r.host())
    );
    let p = s.profile(&format!(
        "registries:\n  - {{host: \"{}\", username: pusher, password: s3cret}}\nchecks: {{}}\n",
        r.host()
    ));
    let pushed = s.run(&["image", "push", &target, "--profile", &p]);
    assert_eq!(pushed.code(), 0, "{}", pushed.stderr());
    let (code, _) = registry_get(
        &format!("http://{}/v2/tools/preflight/manifests/v1", r.host()),
        "application/vnd.oci.image.manifest.v1+json",
        Some(("pusher", "s3cret")),
    );
    assert_eq!(code, 200);
}

#[test]
fn a_digest_or_a_bad_reference_is_a_usage_error() {
    let s = Scenario::new();
    let run = s.run(&["image", "push", "127.0.0.1:1/x@sha256:abc"]);
    assert_eq!(run.code(), 2);
    assert_eq!(
        run.stderr().trim(),
        "preflight: error: image push takes a tag (REGISTRY/REPO:TAG), not a digest"
    );
    assert_eq!(s.run(&["image", "push", "not an image"]).code(), 2);
}

#[test]
fn without_a_reference_the_image_is_named_after_the_profiles_registry() {
    let r = Registry::start(RegistryOpts::default());
    let s = Scenario::new();
    let profile = s.profile(&format!("registries:\n  - host: {}\nchecks: {{}}\n", r.host()));
    let run = s.run(&["image", "push", "--profile", &profile]);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        run.stdout()
            .contains(&format!("pushed as {}/preflight:{version}\n", r.host())),
        "{}",
        run.stdout()
    );
    let (code, _) = registry_get(
        &format!("http://{}/v2/preflight/manifests/{version}", r.host()),
        "application/vnd.oci.image.manifest.v1+json",
        None,
    );
    assert_eq!(code, 200);
    // `nodes: {image:}` wins; with neither, preflight says what to give.
    let named = s.profile(&format!(
        "registries:\n  - host: {}\nnodes: {{image: \"{}/tools/pf:x\"}}\nchecks: {{}}\n",
        r.host(),
        r.host()
    ));
    let run = s.run(&["image", "push", "--profile", &named]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(run
        .stdout()
        .contains(&format!("pushed as {}/tools/pf:x\n", r.host())));
    let none = s.run(&["image", "push"]);
    assert_eq!(none.code(), 2);
    assert_eq!(
        none.stderr().trim(),
        "preflight: error: no image: give --image REF, or `nodes: {image: REF}` or one `registries:` entry in the profile"
    );
}
