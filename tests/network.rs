//! network phase against the REAL distribution registry (Debian's docker-registry) on
//! 127.0.0.1 — plain HTTP, TLS with a test CA, htpasswd auth — and a fault server for 429,
//! 403, 404 and a hang. Only 127.0.0.0/8 is ever contacted.

mod common;

use common::registry::*;
use common::*;

fn registries(s: &Scenario, entries: &str, extra: &[&str]) -> (Run, serde_json::Value) {
    let p = s.profile(&format!(
        "checks:\n  network.registry:\n    registries:\n{entries}"
    ));
    let mut args = vec!["--profile", p.as_str()];
    args.extend_from_slice(extra);
    s.json(&args)
}

#[test]
fn plain_http_registry_marked_insecure_answers() {
    let r = Registry::start(RegistryOpts::default());
    let s = Scenario::new();
    let (run, doc) = registries(
        &s,
        &format!("      - {{host: \"{}\", insecure: true}}\n", r.host()),
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "network.registry"),
        format!("{}: registry API answers 200 over http", r.host())
    );
}

#[test]
fn seed001_plain_http_registry_not_marked_insecure() {
    let r = Registry::start(RegistryOpts::default());
    let s = Scenario::new();
    // Loopback is insecure by default, as docker treats it: say `insecure: false` to see
    // what a registry on another address gets.
    let (run, doc) = registries(
        &s,
        &format!("      - {{host: \"{}\", insecure: false}}\n", r.host()),
        &[],
    );
    assert_eq!(run.code(), 1);
    assert_eq!(
        message(&doc, "network.registry"),
        format!(
            "https://{}/v2/: the server answered plain HTTP on an HTTPS port",
            r.host()
        )
    );
    assert_eq!(codes(&doc, "network.registry"), ["registry-unreachable"]);
    assert!(fix_commands(&doc, "network.registry")[0]
        .contains(&format!("\"insecure-registries\": [\"{}\"]", r.host())));
}

#[test]
fn seed001_tls_registry_with_a_private_ca() {
    let r = Registry::start(RegistryOpts {
        tls: true,
        ..Default::default()
    });
    let s = Scenario::new();
    let host = r.host();
    // No CA given: docker's own wording.
    let (run, doc) = registries(
        &s,
        &format!("      - {{host: \"{host}\", insecure: false}}\n"),
        &[],
    );
    assert_eq!(run.code(), 1);
    assert_eq!(
        findings(&doc, "network.registry"),
        vec![(
            "registry-unreachable".to_string(),
            serde_json::json!({"type": "registry", "host": host})
        )]
    );
    assert_eq!(
        message(&doc, "network.registry"),
        format!("https://{host}/v2/: TLS: x509: certificate signed by unknown authority")
    );
    let cmds = fix_commands(&doc, "network.registry");
    assert_eq!(
        cmds[0],
        format!(
            "mkdir -p /etc/docker/certs.d/{host} && cp <registry-ca.crt> /etc/docker/certs.d/{host}/ca.crt   # and ca_file: in the profile's registries:"
        )
    );
    assert!(cmds[1].contains("skip_verify = true"));
    // With the CA: verified.
    let (run, doc) = registries(
        &s,
        &format!(
            "      - {{host: \"{host}\", insecure: false, ca_file: {}}}\n",
            r.ca_file().display()
        ),
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "network.registry"),
        format!("{host}: registry API answers 200 over https")
    );
    // Marked insecure: not verified, still reachable.
    let (run, doc) = registries(
        &s,
        &format!("      - {{host: \"{host}\", insecure: true}}\n"),
        &[],
    );
    assert_eq!(run.code(), 0);
    assert_eq!(
        message(&doc, "network.registry"),
        format!("{host}: registry API answers 200 over https, not verified")
    );
}

#[test]
fn registry_with_basic_auth_answers_401_and_that_is_reachable() {
    let r = Registry::start(RegistryOpts {
        htpasswd: Some(("puller".into(), "s3cret".into())),
        ..Default::default()
    });
    let s = Scenario::new();
    let (run, doc) = registries(
        &s,
        &format!("      - {{host: \"{}\", insecure: true}}\n", r.host()),
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "network.registry"),
        format!(
            "{}: registry API answers 401 over http (pulls need a login or token)",
            r.host()
        )
    );
}

#[test]
fn seed000_docker_hub_pull_rate_limit() {
    let f = FaultServer::start(Fault::Answer("429 Too Many Requests", "", DOCKER_HUB_429));
    let s = Scenario::new();
    let (run, doc) = registries(
        &s,
        &format!("      - {{host: \"{}\", insecure: true}}\n", f.host()),
        &[],
    );
    assert_eq!(run.code(), 1);
    assert_eq!(
        message(&doc, "network.registry"),
        format!(
            "{}: GET /v2/ answers 429 toomanyrequests: pull rate limit reached",
            f.host()
        )
    );
    assert_eq!(codes(&doc, "network.registry"), ["registry-unreachable"]);
    assert_eq!(
        fix_commands(&doc, "network.registry")[0],
        format!(
            "docker login {}   # authenticated pulls have a higher limit",
            f.host()
        )
    );
}

#[test]
fn seed004_mirror_that_refuses_and_one_that_is_not_a_registry() {
    let refuses = FaultServer::start(Fault::Answer("403 Forbidden", "", "{}"));
    let not_registry = FaultServer::start(Fault::Answer("404 Not Found", "", "not here"));
    let s = Scenario::new();
    let entries = format!(
        "      - {{host: \"{}\", insecure: true}}\n      - {{host: \"{}\", insecure: true}}\n",
        refuses.host(),
        not_registry.host()
    );
    let (run, doc) = registries(&s, &entries, &[]);
    assert_eq!(run.code(), 1);
    assert_eq!(
        message(&doc, "network.registry"),
        format!(
            "{}: GET /v2/ answers 403 Forbidden: the registry or mirror refuses this client\n{}: GET /v2/ answers 404: not a registry API (wrong host, port or path?)",
            refuses.host(),
            not_registry.host()
        )
    );
    assert_eq!(
        codes(&doc, "network.registry"),
        ["registry-unreachable", "registry-unreachable"]
    );
}

#[test]
fn seed004_mirror_that_never_answers_is_cut_off_by_the_timeout() {
    let hang = FaultServer::start(Fault::Hang);
    let s = Scenario::new();
    let (run, doc) = registries(
        &s,
        &format!("      - {{host: \"{}\"}}\n", hang.host()),
        &["--timeout", "1s"],
    );
    assert_eq!(run.code(), 1);
    assert_eq!(
        message(&doc, "network.registry"),
        format!("https://{}/v2/: connected, but no answer within 1s", hang.host())
    );
    assert_eq!(codes(&doc, "network.registry"), ["registry-unreachable"]);
}

#[test]
fn nothing_listening_is_connection_refused() {
    let s = Scenario::new();
    let host = format!("127.0.0.1:{}", closed_port());
    let (run, doc) = registries(&s, &format!("      - {{host: \"{host}\"}}\n"), &[]);
    assert_eq!(run.code(), 1);
    assert_eq!(
        message(&doc, "network.registry"),
        format!("https://{host}/v2/: connection refused (nothing listens there)")
    );
    assert_eq!(codes(&doc, "network.registry"), ["registry-unreachable"]);
}

#[test]
fn seed004_registry_name_resolving_to_the_wrong_node() {
    let r = Registry::start(RegistryOpts::default());
    let s = Scenario::new();
    s.host_file("etc/hosts", "127.0.0.1 hub.registry.test\n");
    let host = format!("hub.registry.test:{}", r.port);
    // Pinned to the right address: reachable through the name.
    let (run, doc) = registries(
        &s,
        &format!("      - {{host: \"{host}\", insecure: true, ip: [\"127.0.0.1\"]}}\n"),
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let msg = message(&doc, "network.registry");
    assert!(
        msg.starts_with(&format!(
            "{host}: registry API answers 200 over http (127.0.0.1 via "
        )),
        "{msg}"
    );
    // Pinned elsewhere: named before any connection is tried.
    let (run, doc) = registries(
        &s,
        &format!("      - {{host: \"{host}\", ip: [\"49.234.165.79\"]}}\n"),
        &[],
    );
    assert_eq!(run.code(), 1);
    let msg = message(&doc, "network.registry");
    assert_eq!(codes(&doc, "network.registry"), ["registry-unreachable"]);
    assert!(
        msg.starts_with(&format!("{host}: resolves to 127.0.0.1 via "))
            && msg.ends_with(", expected 49.234.165.79"),
        "{msg}"
    );
}

#[test]
fn seed002_registry_name_that_does_not_exist() {
    let _dns = DnsServer::start("127.53.0.9", Dns::Answers(vec![]));
    let s = Scenario::new();
    s.host_file("etc/resolv.conf", "nameserver 127.53.0.9\n");
    let (run, doc) = registries(&s, "      - {host: defult.registry.tke.com}\n", &[]);
    assert_eq!(run.code(), 1);
    assert_eq!(
        message(&doc, "network.registry"),
        "defult.registry.tke.com: no such host (DNS 127.53.0.9)"
    );
    assert_eq!(codes(&doc, "network.registry"), ["registry-unreachable"]);
    assert!(fix_commands(&doc, "network.registry")[0].starts_with("# pin it: node.hosts:"));
}

#[test]
fn no_registries_is_a_skip() {
    let s = Scenario::new();
    let (run, doc) = s.json(&["--only", "network.registry"]);
    assert_eq!(run.code(), 0);
    assert_eq!(
        message(&doc, "network.registry"),
        "the profile lists no registries"
    );
}

/// A chart repository as helm itself makes one: `helm package` + `helm repo index`.
fn real_helm_index(s: &Scenario, base_url: &str) -> String {
    let repo = s.dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini-release");
    let helm = real_tool("helm-3.17.2/helm");
    for args in [
        vec![
            "package".to_string(),
            chart.display().to_string(),
            "-d".into(),
            repo.display().to_string(),
        ],
        vec![
            "repo".into(),
            "index".into(),
            repo.display().to_string(),
            "--url".into(),
            base_url.to_string(),
        ],
    ] {
        let out = std::process::Command::new(&helm)
            .args(&args)
            .env("HOME", s.dir.path().join("home"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::read_to_string(repo.join("index.yaml")).unwrap()
}

#[test]
fn seed004_chart_repo_serves_the_version_or_names_the_missing_one() {
    // Port first, so the index can carry its own URL.
    let probe = FaultServer::start(Fault::Hang);
    let port = probe.port;
    drop(probe);
    let s = Scenario::new();
    let index = real_helm_index(&s, &format!("http://127.0.0.1:{port}/charts"));
    assert!(index.contains("mini-release"));
    let server = FaultServer::start_on(
        port,
        Fault::Files(vec![("/charts/index.yaml".to_string(), index.into_bytes())]),
    );
    let url = format!("http://{}/charts", server.host());
    let profile = |version: &str| {
        format!("checks:\n  network.chart-repos:\n    repos:\n      - {{name: blueking, url: \"{url}\", charts: [{{name: mini-release, version: \"{version}\"}}, {{name: bk-repo, version: \"1.0.0\"}}]}}\n")
    };
    let (run, doc) = s.json(&["--profile", &s.profile(&profile("0.1.0"))]);
    assert_eq!(run.code(), 1);
    assert_eq!(
        findings(&doc, "network.chart-repos"),
        vec![(
            "chart-version-missing".to_string(),
            serde_json::json!({"type": "url", "url": url})
        )]
    );
    assert_eq!(
        message(&doc, "network.chart-repos"),
        format!("blueking: chart bk-repo version 1.0.0 is not in {url}/index.yaml (no versions of it there); helm would say: failed to download \"bk-repo\" at version \"1.0.0\"")
    );
    let only_present = format!("checks:\n  network.chart-repos:\n    repos:\n      - {{name: blueking, url: \"{url}\", charts: [{{name: mini-release, version: \"0.1.0\"}}]}}\n");
    let (run, doc) = s.json(&["--profile", &s.profile(&only_present)]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "network.chart-repos"),
        format!("blueking: {url}/index.yaml lists 1 chart(s), including the 1 needed")
    );
    let (_, doc) = s.json(&["--profile", &s.profile(&profile("0.2.0"))]);
    assert!(message(&doc, "network.chart-repos").starts_with(&format!(
        "blueking: chart mini-release version 0.2.0 is not in {url}/index.yaml (versions there: 0.1.0)"
    )));
}

#[test]
fn chart_repo_that_is_not_one() {
    let f = FaultServer::start(Fault::Answer("200 OK", "", "<html>login</html>"));
    let s = Scenario::new();
    let p = s.profile(&format!(
        "checks:\n  network.chart-repos:\n    repos:\n      - {{name: web, url: \"http://{}\"}}\n",
        f.host()
    ));
    let (run, doc) = s.json(&["--profile", &p]);
    assert_eq!(run.code(), 1);
    assert_eq!(codes(&doc, "network.chart-repos"), ["not-a-repo"]);
    assert!(message(&doc, "network.chart-repos").starts_with(&format!(
        "web: http://{}/index.yaml is not a helm repository index: ",
        f.host()
    )));
}

#[test]
fn seed003_offline_install_finds_every_missing_image_at_once() {
    let r = Registry::start(RegistryOpts::default());
    push_image(&r.host(), "blueking/bk-repo", "1.0.0", None);
    let s = Scenario::new();
    let h = r.host();
    let p = |images: &str| {
        s.profile(&format!(
            "checks:\n  network.images:\n    registries: [{{host: \"{h}\", insecure: true}}]\n    images: [{images}]\n"
        ))
    };
    let (run, doc) = s.json(&["--profile", &p(&format!("\"{h}/blueking/bk-repo:1.0.0\""))]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "network.images"),
        "all 1 images are in their registries"
    );
    let all = format!("\"{h}/blueking/bk-repo:1.0.0\", \"{h}/blueking/bk-repo:2.0.0\", \"{h}/openkruise/kruise-manager:v1.5.0\"");
    let (run, doc) = s.json(&["--profile", &p(&all)]);
    assert_eq!(run.code(), 1);
    assert_eq!(
        subjects_of(&doc, "image-missing", "image"),
        vec![
            format!("{h}/blueking/bk-repo:2.0.0"),
            format!("{h}/openkruise/kruise-manager:v1.5.0")
        ]
    );
    assert_eq!(
        message(&doc, "network.images").lines().last(),
        Some("2 of 3 images are missing")
    );
    assert_eq!(codes(&doc, "network.images"), ["image-missing", "image-missing"]);
    assert_eq!(fix_commands(&doc, "network.images").len(), 2);
}

#[test]
fn images_behind_basic_auth_use_profile_or_docker_config_credentials() {
    let r = Registry::start(RegistryOpts {
        htpasswd: Some(("puller".into(), "s3cret".into())),
        ..Default::default()
    });
    push_image(&r.host(), "app/web", "v1", Some(("puller", "s3cret")));
    let s = Scenario::new();
    let h = r.host();
    let image = format!("{h}/app/web:v1");
    let (run, doc) = s.json(&["--profile", &s.profile(&format!(
        "checks:\n  network.images:\n    registries: [{{host: \"{h}\", insecure: true}}]\n    images: [\"{image}\"]\n"
    ))]);
    // Not a missing image: the lookup could not be made, so `error` with its own fix.
    assert_eq!(run.code(), 3, "{}", run.stdout());
    assert_eq!(status(&doc, "network.images"), "error");
    assert_eq!(
        findings(&doc, "network.images"),
        vec![(
            "image-lookup-failed".to_string(),
            serde_json::json!({"type": "image", "image": image})
        )]
    );
    assert_eq!(
        message(&doc, "network.images"),
        format!("{image}: {h}: needs credentials (401, Basic auth) and none are configured\n1 could not be looked up")
    );
    assert_eq!(
        fix_commands(&doc, "network.images"),
        vec![
            format!("docker login {h}   # preflight reads ~/.docker/config.json"),
            format!("# or username/password for {h} in the profile's registries:"),
        ]
    );
    // Credentials for another port of the same address are not these (docker matches the
    // whole host, never a prefix).
    let docker = s.dir.path().join("home/.docker");
    std::fs::create_dir_all(&docker).unwrap();
    let other = format!(
        "127.0.0.1:{}",
        r.host().rsplit(':').next().unwrap().parse::<u32>().unwrap() * 10 % 65536
    );
    std::fs::write(
        docker.join("config.json"),
        format!("{{\"auths\":{{\"{other}\":{{\"auth\":\"cHVsbGVyOnMzY3JldA==\"}},\"127.0.0.1\":{{\"auth\":\"cHVsbGVyOnMzY3JldA==\"}}}}}}"),
    )
    .unwrap();
    let (run, doc) = s.json(&["--profile", &s.profile(&format!(
        "checks:\n  network.images:\n    registries: [{{host: \"{h}\", insecure: true}}]\n    images: [\"{image}\"]\n"
    ))]);
    assert_eq!(run.code(), 3, "{}", run.stdout());
    assert_eq!(codes(&doc, "network.images"), ["image-lookup-failed"]);
    assert!(message(&doc, "network.images")
        .contains("needs credentials (401, Basic auth) and none are configured\n"));
    let (run, doc) = s.json(&["--profile", &s.profile(&format!(
        "checks:\n  network.images:\n    registries: [{{host: \"{h}\", insecure: true, username: puller, password: s3cret}}]\n    images: [\"{image}\"]\n"
    ))]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "network.images"),
        "all 1 images are in their registries"
    );
    // `docker login` leaves the credentials in ~/.docker/config.json.
    std::fs::write(
        docker.join("config.json"),
        format!("{{\"auths\":{{\"{h}\":{{\"auth\":\"cHVsbGVyOnMzY3JldA==\"}}}}}}"),
    )
    .unwrap();
    let (run, _) = s.json(&["--profile", &s.profile(&format!(
        "checks:\n  network.images:\n    registries: [{{host: \"{h}\", insecure: true}}]\n    images: [\"{image}\"]\n"
    ))]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
}

fn runtime_profile(s: &Scenario, private: &str) -> String {
    s.profile(&format!(
        "registries: [{{host: \"{private}\", insecure: true}}]\nchecks:\n  node.container-runtime-registries: {{}}\n  network.runtime-mirrors: {{}}\n"
    ))
}

#[test]
fn seed004_docker_mirrors_that_refuse_or_time_out_and_seed001_insecure_registry_missing() {
    let good = Registry::start(RegistryOpts::default());
    let refuses = FaultServer::start(Fault::Answer("403 Forbidden", "", "{}"));
    let hangs = FaultServer::start(Fault::Hang);
    let s = Scenario::new();
    let daemon = format!(
        "{{\"registry-mirrors\": [\"http://{}\", \"http://{}\", \"http://{}\"], \"insecure-registries\": [\"10.0.0.0/8\"]}}",
        good.host(),
        refuses.host(),
        hangs.host()
    );
    s.host_file("etc/docker/daemon.json", &daemon);
    let (run, doc) = s.json(&[
        "--profile",
        &runtime_profile(&s, "172.30.120.243:5000"),
        "--timeout",
        "1s",
    ]);
    assert_eq!(run.code(), 1);
    // The file is judged on the node; the mirrors it names are probed in the network phase.
    assert_eq!(
        message(&doc, "node.container-runtime-registries"),
        "/etc/docker/daemon.json: \"insecure-registries\" lacks 172.30.120.243:5000 (docker will insist on verified HTTPS)"
    );
    assert_eq!(
        codes(&doc, "node.container-runtime-registries"),
        ["runtime-distrusts-registry"]
    );
    let msg = message(&doc, "network.runtime-mirrors");
    assert_eq!(
        codes(&doc, "network.runtime-mirrors"),
        ["mirror-broken", "mirror-broken"]
    );
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(
        lines[0],
        format!("mirror http://{r} (/etc/docker/daemon.json) does not work: {r}: GET /v2/ answers 403 Forbidden: the registry or mirror refuses this client", r = refuses.host())
    );
    assert!(
        lines[1].starts_with(&format!(
            "mirror http://{} (/etc/docker/daemon.json) does not work: ",
            hangs.host()
        )),
        "{msg}"
    );
    assert_eq!(lines.len(), 2, "the working mirror is not reported: {msg}");
    assert_eq!(
        fix_commands(&doc, "network.runtime-mirrors")[0],
        format!(
            "# remove or replace http://{} in /etc/docker/daemon.json, then restart the runtime",
            refuses.host()
        )
    );
    // In the CIDR, and the dead mirrors gone: passes.
    s.host_file(
        "etc/docker/daemon.json",
        &format!(
            "{{\"registry-mirrors\": [\"http://{}\"], \"insecure-registries\": [\"172.30.0.0/16\"]}}",
            good.host()
        ),
    );
    let (run, doc) = s.json(&["--profile", &runtime_profile(&s, "172.30.120.243:5000")]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "node.container-runtime-registries"),
        "docker trust(s) the 1 insecure private registry of the profile; 1 mirror(s) configured (probed by network.runtime-mirrors)"
    );
    assert_eq!(
        message(&doc, "network.runtime-mirrors"),
        format!(
            "mirror http://{g} (/etc/docker/daemon.json): {g}: registry API answers 200 over http",
            g = good.host()
        )
    );
}

#[test]
fn node_phase_sends_no_packet_to_a_configured_mirror() {
    // A listening socket that counts every connection it accepts.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let s = Scenario::new();
    s.host_file(
        "etc/docker/daemon.json",
        &format!("{{\"registry-mirrors\": [\"http://127.0.0.1:{port}\"]}}"),
    );
    s.host_file(
        "etc/containerd/config.toml",
        &format!("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"http://127.0.0.1:{port}\"]\n"),
    );
    let p = runtime_profile(&s, "10.0.0.5:5000");
    let (run, doc) = s.json(&["--profile", &p, "--only", "node"]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(status(&doc, "node.container-runtime-registries"), "fail");
    // Neither runtime trusts it: docker's daemon.json and containerd's config.toml each.
    assert_eq!(
        findings(&doc, "node.container-runtime-registries"),
        vec![
            (
                "runtime-distrusts-registry".to_string(),
                serde_json::json!({"type": "registry", "host": "10.0.0.5:5000"})
            );
            2
        ]
    );
    assert!(
        listener.accept().is_err(),
        "--only node connected to the mirror: node checks must send no packet"
    );
    // The same configuration with the network phase: the mirror is reached.
    let (_, doc) = s.json(&["--profile", &p, "--skip", "node", "--timeout", "1s"]);
    assert_eq!(status(&doc, "network.runtime-mirrors"), "fail");
    // The same mirror, configured in both runtimes: one finding per configuration.
    assert_eq!(
        findings(&doc, "network.runtime-mirrors"),
        vec![
            (
                "mirror-broken".to_string(),
                serde_json::json!({"type": "url", "url": format!("http://127.0.0.1:{port}")})
            );
            2
        ]
    );
    assert!(
        listener.accept().is_ok(),
        "network.runtime-mirrors probes the mirror"
    );
}

#[test]
fn seed001_containerd_insecure_registry_in_config_toml() {
    let s = Scenario::new();
    let reg = "temp-registry.daocloud.io";
    // The seed's own config: an http:// endpoint and insecure_skip_verify.
    s.host_file(
        "etc/containerd/config.toml",
        &format!("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"{reg}\".tls]\n  insecure_skip_verify = true\n"),
    );
    let p = s.profile(&format!(
        "checks:\n  node.container-runtime-registries:\n    registries: [{{host: {reg}, insecure: true}}]\n"
    ));
    let (run, _) = s.json(&["--profile", &p]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    // Not configured: the file and key are named.
    s.host_file("etc/containerd/config.toml", "version = 2\n");
    let (run, doc2) = s.json(&["--profile", &p]);
    assert_eq!(run.code(), 1);
    assert_eq!(
        message(&doc2, "node.container-runtime-registries"),
        format!("/etc/containerd/config.toml: {reg} is not configured insecure (no insecure_skip_verify, no http:// endpoint, no skip_verify in certs.d)")
    );
    assert_eq!(
        codes(&doc2, "node.container-runtime-registries"),
        ["runtime-distrusts-registry"]
    );
    assert!(
        fix_commands(&doc2, "node.container-runtime-registries")[0].contains(&format!(
            "registry.configs.\"{reg}\".tls] insecure_skip_verify = true"
        ))
    );
}

#[test]
fn containerd_certs_d_hosts_toml_trusts_and_its_mirror_is_probed() {
    let r = Registry::start(RegistryOpts::default());
    let h = r.host();
    let s = Scenario::new();
    s.host_file(
        "etc/containerd/config.toml",
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
    );
    s.host_file(
        &format!("etc/containerd/certs.d/{h}/hosts.toml"),
        &format!("server = \"http://{h}\"\n[host.\"http://{h}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n"),
    );
    let p = s.profile(&format!("checks:\n  node.container-runtime-registries:\n    registries: [{{host: \"{h}\", insecure: true}}]\n  network.runtime-mirrors: {{}}\n"));
    let (run, doc) = s.json(&["--profile", &p]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    // A loopback registry needs no trust configuration (the runtimes trust it).
    assert_eq!(
        message(&doc, "node.container-runtime-registries"),
        "containerd trust(s) the 0 insecure private registries of the profile; 1 mirror(s) configured (probed by network.runtime-mirrors)"
    );
    assert_eq!(
        message(&doc, "network.runtime-mirrors"),
        format!("mirror http://{h} (containerd mirror of {h}): {h}: registry API answers 200 over http")
    );
}

#[test]
fn no_runtime_configuration_is_a_skip() {
    let s = Scenario::new();
    let (run, doc) = s.json(&["--only", "node.container-runtime-registries"]);
    assert_eq!(run.code(), 0);
    assert!(message(&doc, "node.container-runtime-registries")
        .starts_with("neither /etc/docker/daemon.json nor /etc/containerd/config.toml exists"));
}

#[test]
fn seed000_token_flow_like_docker_hub() {
    let f = FaultServer::start(Fault::TokenRegistry(vec!["oamdev/vela-core:v1.9.0".to_string()]));
    let s = Scenario::new();
    let h = f.host();
    let p = s.profile(&format!(
        "checks:\n  network.images:\n    registries: [{{host: \"{h}\", insecure: true}}]\n    images: [\"{h}/oamdev/vela-core:v1.9.0\", \"{h}/oamdev/vela-core:v9.9.9\"]\n"
    ));
    let (run, doc) = s.json(&["--profile", &p]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    // The first went through 401 → token → HEAD with the token → 200; the second → 404.
    assert_eq!(
        subjects_of(&doc, "image-missing", "image"),
        vec![format!("{h}/oamdev/vela-core:v9.9.9")]
    );
    assert_eq!(codes(&doc, "network.images"), ["image-missing"]);
}

#[test]
fn oci_chart_pushed_by_real_helm_is_found_and_a_missing_version_named() {
    let r = Registry::start(RegistryOpts::default());
    let s = Scenario::new();
    let h = r.host();
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini-release");
    let helm = real_tool("helm-3.17.2/helm");
    let pkg_dir = s.dir.path().join("pkg");
    let home = s.dir.path().join("home");
    for args in [
        vec![
            "package".to_string(),
            chart.display().to_string(),
            "-d".into(),
            pkg_dir.display().to_string(),
        ],
        vec![
            "push".into(),
            pkg_dir.join("mini-release-0.1.0.tgz").display().to_string(),
            format!("oci://{h}/charts"),
            "--plain-http".into(),
        ],
    ] {
        let out = std::process::Command::new(&helm)
            .args(&args)
            .env("HOME", &home)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let profile = |version: &str| {
        s.profile(&format!(
            "checks:\n  network.chart-repos:\n    repos:\n      - {{name: oci-charts, url: \"oci://{h}/charts\", insecure: true, charts: [{{name: mini-release, version: \"{version}\"}}]}}\n"
        ))
    };
    let (run, doc) = s.json(&["--profile", &profile("0.1.0")]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "network.chart-repos"),
        format!("oci-charts: oci://{h}/charts holds the 1 chart(s) needed")
    );
    let (run, doc) = s.json(&["--profile", &profile("0.2.0")]);
    assert_eq!(run.code(), 1);
    assert_eq!(
        message(&doc, "network.chart-repos"),
        format!("oci-charts: oci://{h}/charts/mini-release:0.2.0 is not there (MANIFEST_UNKNOWN); helm would say: failed to download \"mini-release\" at version \"0.2.0\"")
    );
    assert_eq!(codes(&doc, "network.chart-repos"), ["chart-version-missing"]);
}

#[test]
fn proxy_variables_are_honoured_like_container_runtimes_do() {
    let r = Registry::start(RegistryOpts::default());
    // A "proxy" that refuses everything, so going through it is visible.
    let proxy = FaultServer::start(Fault::Answer("502 Bad Gateway", "", "proxy says no"));
    let mut s = Scenario::new();
    let entries = format!("      - {{host: \"{}\", insecure: true}}\n", r.host());
    s.env
        .insert("HTTP_PROXY".into(), format!("http://{}", proxy.host()).into());
    s.env
        .insert("HTTPS_PROXY".into(), format!("http://{}", proxy.host()).into());
    let (run, doc) = registries(&s, &entries, &[]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert!(
        message(&doc, "network.registry").contains("502"),
        "{}",
        message(&doc, "network.registry")
    );
    assert_eq!(codes(&doc, "network.registry"), ["registry-unreachable"]);
    s.env.insert("NO_PROXY".into(), "127.0.0.1".into());
    let (run, doc) = registries(&s, &entries, &[]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "network.registry"),
        format!("{}: registry API answers 200 over http", r.host())
    );
}

#[test]
fn registry_name_behind_a_silent_nameserver_times_out_within_the_timeout() {
    let _dns = DnsServer::start("127.53.0.10", Dns::Silent);
    let s = Scenario::new();
    s.host_file("etc/resolv.conf", "nameserver 127.53.0.10\n");
    let (run, doc) = registries(&s, "      - {host: hub.bktencent.com}\n", &["--timeout", "1s"]);
    assert_eq!(run.code(), 1);
    assert_eq!(
        message(&doc, "network.registry"),
        "hub.bktencent.com: DNS lookup timed out after 1s (nameservers 127.53.0.10 did not answer)"
    );
    assert_eq!(codes(&doc, "network.registry"), ["registry-unreachable"]);
}

/// A registry reached by a name that is not loopback (so nothing is insecure by default):
/// `registry.test` → 127.0.0.1 in the host tree's /etc/hosts.
fn named_registry(s: &Scenario, r: &Registry) -> String {
    s.host_file("etc/hosts", "127.0.0.1 localhost\n127.0.0.1 registry.test\n");
    format!("registry.test:{}", r.host().rsplit(':').next().unwrap())
}

#[test]
fn insecure_declared_once_reaches_every_registry_check() {
    let r = Registry::start(RegistryOpts::default());
    push_image(&r.host(), "app/web", "v1", None);
    let s = Scenario::new();
    let h = named_registry(&s, &r);
    // Declared under network.registry only: network.images uses it too.
    let p = s.profile(&format!(
        "checks:\n  network.registry:\n    registries: [{{host: \"{h}\", insecure: true}}]\n  network.images:\n    images: [\"{h}/app/web:v1\"]\n"
    ));
    let (run, doc) = s.json(&["--profile", &p]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "network.images"),
        "all 1 images are in their registries"
    );
    // The top-level section does the same.
    let p = s.profile(&format!(
        "registries:\n  - {{host: \"{h}\", insecure: true}}\nchecks:\n  network.registry: {{}}\n  network.images:\n    images: [\"{h}/app/web:v1\"]\n"
    ));
    let (run, doc) = s.json(&["--profile", &p]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert!(
        message(&doc, "network.registry").starts_with(&format!("{h}: registry API answers 200 over http"))
    );
    // Not declared anywhere: HTTPS fails, and that is not a missing image.
    let p = s.profile(&format!(
        "checks:\n  network.images:\n    images: [\"{h}/app/web:v1\"]\n"
    ));
    let (run, doc) = s.json(&["--profile", &p]);
    assert_eq!(run.code(), 3, "{}", run.stdout());
    assert_eq!(status(&doc, "network.images"), "error");
    assert_eq!(codes(&doc, "network.images"), ["image-lookup-failed"]);
    assert_eq!(
        message(&doc, "network.images"),
        format!("{h}/app/web:v1: https://{h}/v2/app/web/manifests/v1: the server answered plain HTTP on an HTTPS port\n1 could not be looked up")
    );
    // The image's own fix: make the registry answer, not push the image.
    let fix = &entry(&doc, "network.images")["findings"][0]["fix"];
    assert!(!fix["summary"].as_str().unwrap().contains("push"), "{fix}");
    assert!(fix_commands(&doc, "network.images")[0].contains("insecure: true in the profile's registries:"));
}

#[test]
fn loopback_registries_are_insecure_by_default_as_docker_treats_them() {
    let r = Registry::start(RegistryOpts::default());
    push_image(&r.host(), "app/web", "v1", None);
    let s = Scenario::new();
    s.host_file("etc/hosts", "127.0.0.1 localhost\n");
    let h = r.host();
    let p = s.profile(&format!(
        "registries: [{{host: \"{h}\"}}]\nchecks:\n  network.registry: {{}}\n  network.images:\n    images: [\"{h}/app/web:v1\", \"localhost:{}/app/web:v1\"]\n",
        h.rsplit(':').next().unwrap()
    ));
    let (run, doc) = s.json(&["--profile", &p]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "network.registry"),
        format!("{h}: registry API answers 200 over http")
    );
    assert_eq!(
        message(&doc, "network.images"),
        "all 2 images are in their registries"
    );
}

#[test]
fn only_the_registrys_manifest_unknown_means_missing() {
    // A web server's 404 (no registry error body) and a closed port are not "push it".
    let web404 = FaultServer::start(Fault::Answer("404 Not Found", "", "<html>not found</html>"));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = Scenario::new();
    let p = s.profile(&format!(
        "checks:\n  network.images:\n    images: [\"{}/app/web:v1\", \"127.0.0.1:{closed}/app/web:v1\"]\n",
        web404.host()
    ));
    let (run, doc) = s.json(&["--profile", &p]);
    assert_eq!(run.code(), 3, "{}", run.stdout());
    let msg = message(&doc, "network.images");
    assert_eq!(
        codes(&doc, "network.images"),
        ["image-lookup-failed", "image-lookup-failed"]
    );
    assert!(msg.ends_with("\n2 could not be looked up"), "{msg}");
    assert!(
        msg.contains(&format!(
            "{h}/app/web:v1: {h}: GET /v2/app/web/manifests/v1 answers 404 without the registry's MANIFEST_UNKNOWN: not a registry API (wrong host, port or path?)",
            h = web404.host()
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("127.0.0.1:{closed}/app/web:v1: https://127.0.0.1:{closed}/v2/app/web/manifests/v1: connection refused (nothing listens there)")),
        "{msg}"
    );
}

#[test]
fn runtime_configuration_that_cannot_be_read_is_an_error_in_both_phases() {
    let s = Scenario::new();
    s.host_file(
        "etc/docker/daemon.json",
        "{\"registry-mirrors\": [\"http://127.0.0.1:1\"],",
    );
    let p = runtime_profile(&s, "10.0.0.5:5000");
    let (run, doc) = s.json(&["--profile", &p]);
    assert_eq!(run.code(), 3, "{}", run.stdout());
    for id in ["node.container-runtime-registries", "network.runtime-mirrors"] {
        assert_eq!(status(&doc, id), "error");
        assert!(
            message(&doc, id).starts_with(&format!(
                "{}/etc/docker/daemon.json is not valid JSON: ",
                s.host().display()
            )),
            "{}",
            message(&doc, id)
        );
    }
}
