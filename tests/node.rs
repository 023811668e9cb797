//! node phase: a host tree under --host-root, real statvfs, real DNS over loopback.

mod common;

use common::*;

const RELEASE: &str = "5.15.0-91-generic";

const PROC_MODULES_WITH: &str = "nf_nat 49152 2 xt_MASQUERADE,iptable_nat, Live 0x0000000000000000\nnf_conntrack 172032 4 xt_conntrack,nf_nat,xt_MASQUERADE, Live 0x0000000000000000\nnf_defrag_ipv6 24576 1 nf_conntrack, Live 0x0000000000000000\n";
const PROC_MODULES_WITHOUT: &str =
    "overlay 151552 0 - Live 0x0000000000000000\nbr_netfilter 32768 0 - Live 0x0000000000000000\n";

fn kernel(s: &Scenario, modules_dir: bool) {
    s.host_file("proc/sys/kernel/osrelease", &format!("{RELEASE}\n"));
    if modules_dir {
        s.host_file(&format!("lib/modules/{RELEASE}/modules.dep"), "");
    }
}

#[test]
fn conntrack_loaded_passes() {
    let s = Scenario::new();
    kernel(&s, true);
    s.host_file("proc/modules", PROC_MODULES_WITH);
    let (run, doc) = s.json(&["--only", "node.conntrack"]);
    assert_eq!(run.code(), 0);
    assert_eq!(status(&doc, "node.conntrack"), "pass");
    assert_eq!(
        message(&doc, "node.conntrack"),
        "module nf_conntrack is loaded (/proc/modules)"
    );
}

#[test]
fn old_ip_conntrack_name_passes() {
    let s = Scenario::new();
    kernel(&s, true);
    s.host_file("proc/modules", "ip_conntrack 54000 1 - Live 0x0\n");
    let (_, doc) = s.json(&["--only", "node.conntrack"]);
    assert_eq!(
        message(&doc, "node.conntrack"),
        "module ip_conntrack is loaded (/proc/modules)"
    );
}

#[test]
fn seed001_lsmod_grep_conntrack_is_empty() {
    let s = Scenario::new();
    kernel(&s, true);
    s.host_file("proc/modules", PROC_MODULES_WITHOUT);
    let (run, doc) = s.json(&["--only", "node.conntrack"]);
    assert_eq!(run.code(), 1);
    assert_eq!(status(&doc, "node.conntrack"), "fail");
    assert_eq!(codes(&doc, "node.conntrack"), ["conntrack-not-loaded"]);
    assert!(message(&doc, "node.conntrack").starts_with("conntrack is not loaded"));
    assert_eq!(
        fix_commands(&doc, "node.conntrack"),
        vec![
            "modprobe nf_conntrack || modprobe ip_conntrack".to_string(),
            "echo nf_conntrack > /etc/modules-load.d/preflight-conntrack.conf".to_string()
        ]
    );
    assert_eq!(entry(&doc, "node.conntrack")["fix"]["safety"], "safe");
}

#[test]
fn conntrack_built_into_the_kernel_passes() {
    let s = Scenario::new();
    kernel(&s, true);
    s.host_file("proc/modules", PROC_MODULES_WITHOUT);
    s.host_file(
        &format!("lib/modules/{RELEASE}/modules.builtin"),
        "kernel/net/ipv4/tcp_cubic.ko\nkernel/net/netfilter/nf_conntrack.ko\n",
    );
    let (_, doc) = s.json(&["--only", "node.conntrack"]);
    assert_eq!(status(&doc, "node.conntrack"), "pass");
    assert_eq!(
        message(&doc, "node.conntrack"),
        format!("built into kernel {RELEASE} (modules.builtin)")
    );
}

#[test]
fn nf_conntrack_max_present_passes() {
    let s = Scenario::new();
    kernel(&s, true);
    s.host_file("proc/modules", PROC_MODULES_WITHOUT);
    s.host_file("proc/sys/net/netfilter/nf_conntrack_max", "262144\n");
    let (_, doc) = s.json(&["--only", "node.conntrack"]);
    assert_eq!(status(&doc, "node.conntrack"), "pass");
}

#[test]
fn seed001_modules_upgraded_under_the_running_kernel_warns() {
    let s = Scenario::new();
    kernel(&s, false);
    s.host_file("proc/modules", PROC_MODULES_WITH);
    let (run, doc) = s.json(&["--only", "node.conntrack"]);
    assert_eq!(run.code(), 0, "warnings do not fail the run");
    assert_eq!(status(&doc, "node.conntrack"), "warn");
    assert_eq!(codes(&doc, "node.conntrack"), ["kernel-modules-missing"]);
    assert!(message(&doc, "node.conntrack").contains(&format!("/lib/modules/{RELEASE} is missing")));
    assert!(fix_commands(&doc, "node.conntrack").contains(&"reboot".to_string()));
}

#[test]
fn not_loaded_and_modules_missing_fails_with_reboot() {
    let s = Scenario::new();
    kernel(&s, false);
    s.host_file("proc/modules", PROC_MODULES_WITHOUT);
    let (_, doc) = s.json(&["--only", "node.conntrack"]);
    assert_eq!(status(&doc, "node.conntrack"), "fail");
    assert_eq!(codes(&doc, "node.conntrack"), ["conntrack-unloadable"]);
    assert!(message(&doc, "node.conntrack").contains("cannot be"));
    assert!(fix_commands(&doc, "node.conntrack").contains(&"reboot".to_string()));
}

#[test]
fn unreadable_proc_modules_is_an_error_not_a_pass() {
    let s = Scenario::new();
    kernel(&s, true);
    let (run, doc) = s.json(&["--only", "node.conntrack"]);
    assert_eq!(run.code(), 3);
    assert_eq!(status(&doc, "node.conntrack"), "error");
    assert_eq!(
        findings(&doc, "node.conntrack"),
        vec![(
            "host-file-unreadable".to_string(),
            serde_json::json!({"type": "path", "path": "/proc/modules"})
        )]
    );
}

#[test]
fn a_host_file_that_cannot_be_read_is_an_error_naming_it() {
    // A directory where the kernel has a file: reading it fails (EISDIR) as an unreadable
    // file does, even for root.
    let s = Scenario::new();
    sysctls(&s, "1", Some("1"), "8192", "524288");
    std::fs::remove_file(s.host().join("proc/sys/net/ipv4/ip_forward")).unwrap();
    s.host_dir("proc/sys/net/ipv4/ip_forward");
    s.host_dir("proc/net/tcp");
    let p = s.profile("checks:\n  node.kernel-settings: {}\n  node.host-ports: {ports: [{port: 80, what: ingress-nginx}]}\n");
    let (run, doc) = s.json(&["--profile", &p]);
    assert_eq!(run.code(), 3, "{}", run.stdout());
    for (id, path) in [
        ("node.kernel-settings", "/proc/sys/net/ipv4/ip_forward"),
        ("node.host-ports", "/proc/net/tcp"),
    ] {
        assert_eq!(status(&doc, id), "error");
        assert_eq!(
            findings(&doc, id),
            vec![(
                "host-file-unreadable".to_string(),
                serde_json::json!({"type": "path", "path": path})
            )],
            "{id}"
        );
        assert!(
            message(&doc, id).starts_with("cannot read "),
            "{}",
            message(&doc, id)
        );
    }
}

fn disk_profile(s: &Scenario, entries: &str) -> String {
    s.profile(&format!("checks:\n  node.localpv-disk:\n    paths:\n{entries}"))
}

#[test]
fn localpv_dir_with_room_passes() {
    let s = Scenario::new();
    s.host_dir("mnt/blueking");
    let profile = disk_profile(&s, "      - {path: /mnt/blueking, need: 1Mi}\n");
    let (run, doc) = s.json(&["--profile", &profile]);
    assert_eq!(run.code(), 0);
    let msg = message(&doc, "node.localpv-disk");
    assert!(
        msg.starts_with("/mnt/blueking: ") && msg.ends_with("GiB free, 0.0 GiB needed"),
        "{msg}"
    );
}

#[test]
fn seed004_localpv_dir_too_small_for_bkrepo() {
    let s = Scenario::new();
    s.host_dir("mnt/blueking");
    // More than any test machine's disk: the real statvfs answer is short of it.
    let profile = disk_profile(&s, "      - {path: /mnt/blueking, need: 900Ti}\n");
    let (run, doc) = s.json(&["--profile", &profile]);
    assert_eq!(run.code(), 1);
    assert_eq!(status(&doc, "node.localpv-disk"), "fail");
    assert_eq!(codes(&doc, "node.localpv-disk"), ["disk-short"]);
    let msg = message(&doc, "node.localpv-disk");
    assert!(
        msg.starts_with("/mnt/blueking: ") && msg.ends_with("GiB free, 921600.0 GiB needed"),
        "{msg}"
    );
    assert_eq!(fix_commands(&doc, "node.localpv-disk")[0], "df -h /mnt/blueking");
}

#[test]
fn missing_localpv_dir_fails_with_mkdir() {
    let s = Scenario::new();
    let profile = disk_profile(&s, "      - {path: /mnt/blueking, need: 90Gi}\n");
    let (_, doc) = s.json(&["--profile", &profile]);
    assert_eq!(status(&doc, "node.localpv-disk"), "fail");
    assert_eq!(codes(&doc, "node.localpv-disk"), ["disk-short"]);
    assert_eq!(
        message(&doc, "node.localpv-disk"),
        "/mnt/blueking: does not exist (90.0 GiB needed)"
    );
    assert_eq!(
        fix_commands(&doc, "node.localpv-disk")[0],
        "mkdir -p /mnt/blueking"
    );
}

#[test]
fn claims_sharing_one_disk_are_summed() {
    let s = Scenario::new();
    s.host_dir("data");
    let largest = disk_profile(&s, "      - {path: /data, claims: [50Gi, 90Gi]}\n");
    let (_, doc) = s.json(&["--profile", &largest]);
    assert!(message(&doc, "node.localpv-disk").contains(", 90.0 GiB needed"));
    assert_eq!(codes(&doc, "node.localpv-disk"), ["disk-short"]);
    let shared = disk_profile(&s, "      - {path: /data, claims: [50Gi, 90Gi], shared: true}\n");
    let (_, doc) = s.json(&["--profile", &shared]);
    assert!(message(&doc, "node.localpv-disk").contains(", 140.0 GiB needed"));
}

const BK_PROFILE: &str = "checks:\n  node.hosts:\n    pins: {hub.bktencent.com: [\"49.234.165.79\"]}\n";

#[test]
fn hosts_pin_right_in_etc_hosts_passes() {
    let s = Scenario::new();
    s.host_file(
        "etc/hosts",
        "127.0.0.1 localhost\n49.234.165.79 hub.bktencent.com\n",
    );
    let (run, doc) = s.json(&["--profile", &s.profile(BK_PROFILE)]);
    assert_eq!(run.code(), 0);
    let msg = message(&doc, "node.hosts");
    assert!(
        msg.starts_with("hub.bktencent.com → 49.234.165.79 (") && msg.ends_with("/etc/hosts line 2)"),
        "{msg}"
    );
}

#[test]
fn seed004_hosts_file_pins_the_wrong_node() {
    let s = Scenario::new();
    s.host_file(
        "etc/hosts",
        "127.0.0.1 localhost\n# mirror\n43.135.100.7 hub.bktencent.com\n",
    );
    let (run, doc) = s.json(&["--profile", &s.profile(BK_PROFILE)]);
    assert_eq!(run.code(), 1);
    assert_eq!(
        findings(&doc, "node.hosts"),
        vec![(
            "name-misresolves".to_string(),
            serde_json::json!({"type": "host", "host": "hub.bktencent.com"})
        )]
    );
    let msg = message(&doc, "node.hosts");
    assert!(
        msg.starts_with("hub.bktencent.com resolves to 43.135.100.7 via "),
        "{msg}"
    );
    assert!(
        msg.ends_with("/etc/hosts line 3, expected 49.234.165.79"),
        "{msg}"
    );
    assert_eq!(
        fix_commands(&doc, "node.hosts"),
        vec![
            "[ -e /etc/hosts.preflight.bak ] || cp -p /etc/hosts /etc/hosts.preflight.bak".to_string(),
            "sed -i '1i # BEGIN preflight\\n49.234.165.79 hub.bktencent.com\\n# END preflight' /etc/hosts"
                .to_string()
        ]
    );
    let fix = &entry(&doc, "node.hosts")["fix"];
    assert_eq!(
        (fix["automatic"].as_bool(), fix["safety"].as_str()),
        (Some(true), Some("safe"))
    );
}

#[test]
fn seed004_dns_answers_the_singapore_node() {
    let _dns = DnsServer::start(
        "127.53.0.2",
        Dns::Answers(vec![("hub.bktencent.com", "43.135.100.7")]),
    );
    let s = Scenario::new();
    s.host_file("etc/hosts", "127.0.0.1 localhost\n")
        .host_file("etc/resolv.conf", "nameserver 127.53.0.2\n");
    let (run, doc) = s.json(&["--profile", &s.profile(BK_PROFILE)]);
    assert_eq!(run.code(), 1);
    assert_eq!(
        message(&doc, "node.hosts"),
        "hub.bktencent.com resolves to 43.135.100.7 via DNS server 127.53.0.2, expected 49.234.165.79"
    );
    assert_eq!(codes(&doc, "node.hosts"), ["name-misresolves"]);
    assert_eq!(
        fix_commands(&doc, "node.hosts").len(),
        2,
        "the backup and the block insertion"
    );
}

#[test]
fn dns_answering_the_pinned_ip_passes() {
    let _dns = DnsServer::start(
        "127.53.0.3",
        Dns::Answers(vec![("hub.bktencent.com", "49.234.165.79")]),
    );
    let s = Scenario::new();
    s.host_file("etc/resolv.conf", "nameserver 127.53.0.3\noptions timeout:1\n");
    let (run, doc) = s.json(&["--profile", &s.profile(BK_PROFILE)]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "node.hosts"),
        "hub.bktencent.com → 49.234.165.79 (DNS server 127.53.0.3)"
    );
}

#[test]
fn seed002_no_such_host() {
    let _dns = DnsServer::start("127.53.0.4", Dns::Answers(vec![]));
    let s = Scenario::new();
    s.host_file("etc/resolv.conf", "nameserver 127.53.0.4\n");
    let profile = s.profile("checks:\n  node.hosts:\n    pins: {defult.registry.tke.com: [\"10.0.0.5\"]}\n");
    let (run, doc) = s.json(&["--profile", &profile]);
    assert_eq!(run.code(), 1);
    assert_eq!(
        message(&doc, "node.hosts"),
        "defult.registry.tke.com does not resolve: no such host (DNS 127.53.0.4); expected 10.0.0.5"
    );
    assert_eq!(codes(&doc, "node.hosts"), ["name-misresolves"]);
    assert_eq!(
        fix_commands(&doc, "node.hosts"),
        // No hosts file at all: nothing to back up, and sed cannot insert into nothing.
        vec![
            "printf '# BEGIN preflight\\n10.0.0.5 defult.registry.tke.com\\n# END preflight\\n' > /etc/hosts"
                .to_string()
        ]
    );
}

#[test]
fn silent_nameserver_is_cut_off_by_timeout() {
    let _dns = DnsServer::start("127.53.0.5", Dns::Silent);
    let s = Scenario::new();
    s.host_file("etc/resolv.conf", "nameserver 127.53.0.5\n");
    let (run, doc) = s.json(&["--profile", &s.profile(BK_PROFILE), "--timeout", "1s"]);
    assert_eq!(run.code(), 1);
    assert_eq!(
        message(&doc, "node.hosts"),
        "hub.bktencent.com does not resolve: DNS lookup timed out after 1s (nameservers 127.53.0.5 did not answer); expected 49.234.165.79"
    );
    assert_eq!(codes(&doc, "node.hosts"), ["name-misresolves"]);
}

#[test]
fn no_pins_is_a_skip_saying_so() {
    let s = Scenario::new();
    let (run, doc) = s.json(&["--only", "node.hosts"]);
    assert_eq!(run.code(), 0);
    assert_eq!(status(&doc, "node.hosts"), "skip");
    assert_eq!(message(&doc, "node.hosts"), "the profile pins no names");
}

/// A host's kernel settings as /proc/sys shows them.
fn sysctls(s: &Scenario, forward: &str, bridge: Option<&str>, instances: &str, watches: &str) {
    kernel(s, true);
    s.host_file("proc/modules", PROC_MODULES_WITH);
    s.host_file("proc/sys/net/ipv4/ip_forward", &format!("{forward}\n"));
    if let Some(b) = bridge {
        s.host_file("proc/sys/net/bridge/bridge-nf-call-iptables", &format!("{b}\n"));
        s.host_file("proc/sys/net/bridge/bridge-nf-call-ip6tables", &format!("{b}\n"));
    }
    s.host_file(
        "proc/sys/fs/inotify/max_user_instances",
        &format!("{instances}\n"),
    );
    s.host_file("proc/sys/fs/inotify/max_user_watches", &format!("{watches}\n"));
}

#[test]
fn kernel_settings_kubernetes_needs() {
    // As kubeadm wants it: passes.
    let s = Scenario::new();
    sysctls(&s, "1", Some("1"), "8192", "524288");
    let (run, doc) = s.json(&["--only", "node.kernel-settings"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(status(&doc, "node.kernel-settings"), "pass");

    // A fresh host: no forwarding, no br_netfilter, the kernel's small inotify defaults.
    let s = Scenario::new();
    sysctls(&s, "0", None, "128", "8192");
    let (run, doc) = s.json(&["--only", "node.kernel-settings"]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(status(&doc, "node.kernel-settings"), "fail");
    assert_eq!(
        findings(&doc, "node.kernel-settings"),
        [
            ("setting-wrong", "net.ipv4.ip_forward"),
            ("module-not-loaded", "br_netfilter"),
            ("limit-low", "fs.inotify.max_user_instances"),
            ("limit-low", "fs.inotify.max_user_watches"),
        ]
        .map(|(c, k)| (
            c.to_string(),
            serde_json::json!({"type": "setting", "setting": k})
        ))
    );
    let msg = message(&doc, "node.kernel-settings");
    assert!(
        msg.contains("net.ipv4.ip_forward is 0 (/proc/sys/net/ipv4/ip_forward contents are not set to 1)"),
        "{msg}"
    );
    assert!(msg.contains("br_netfilter is not loaded"), "{msg}");
    assert!(
        msg.contains("fs.inotify.max_user_instances is 128, below 8192"),
        "{msg}"
    );
    assert_eq!(
        fix_commands(&doc, "node.kernel-settings"),
        vec![
            "modprobe br_netfilter".to_string(),
            "echo br_netfilter > /etc/modules-load.d/preflight-br_netfilter.conf".to_string(),
            "printf 'net.ipv4.ip_forward = 1\\nnet.bridge.bridge-nf-call-iptables = 1\\nnet.bridge.bridge-nf-call-ip6tables = 1\\nfs.inotify.max_user_instances = 8192\\nfs.inotify.max_user_watches = 524288\\n' > /etc/sysctl.d/99-preflight-kubernetes.conf".to_string(),
            "sysctl -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=524288".to_string(),
        ]
    );
    assert_eq!(entry(&doc, "node.kernel-settings")["fix"]["safety"], "safe");
    // --fix writes preflight's own files under the host root (this is not the live host,
    // so the running kernel is left alone and the commands are said).
    let (run, doc) = s.json(&["--only", "node.kernel-settings", "--fix", "--yes"]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let conf = std::fs::read_to_string(s.host().join("etc/sysctl.d/99-preflight-kubernetes.conf")).unwrap();
    assert!(
        conf.contains("\nnet.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\n"),
        "{conf}"
    );
    assert_eq!(
        std::fs::read_to_string(s.host().join("etc/modules-load.d/preflight-br_netfilter.conf")).unwrap(),
        "br_netfilter\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.host().join("proc/sys/net/ipv4/ip_forward")).unwrap(),
        "0\n"
    );
    let _ = doc;

    // Only inotify too small: a warning.
    let s = Scenario::new();
    sysctls(&s, "1", Some("1"), "128", "524288");
    let (run, doc) = s.json(&["--only", "node.kernel-settings"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(status(&doc, "node.kernel-settings"), "warn");
    assert_eq!(codes(&doc, "node.kernel-settings"), ["limit-low"]);

    // Not a host's /proc: cannot decide.
    let s = Scenario::new();
    kernel(&s, true);
    let (run, doc) = s.json(&["--only", "node.kernel-settings"]);
    assert_eq!(run.code(), 3, "{}", run.stdout());
    assert_eq!(status(&doc, "node.kernel-settings"), "error");
}

/// /proc/net/tcp as the kernel writes it, with one listener (and a process holding it).
fn listening(s: &Scenario, port: u16, comm: &str) {
    s.host_file(
        "proc/net/tcp",
        &format!("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 424242 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0        0 555 1 0000000000000000 20 4 30 10 -1\n"),
    );
    s.host_file("proc/net/udp", "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n");
    s.host_file("proc/4242/comm", &format!("{comm}\n"));
    std::fs::create_dir_all(s.host().join("proc/4242/fd")).unwrap();
    std::os::unix::fs::symlink("socket:[424242]", s.host().join("proc/4242/fd/3")).unwrap();
}

#[test]
fn seed004_ports_the_install_binds_on_the_node() {
    let s = Scenario::new();
    s.on_path("helm", &real_tool("helm-3.17.2/helm"));
    listening(&s, 80, "nginx");
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostnet")
        .display()
        .to_string();
    let args = [
        "--chart",
        chart.as_str(),
        "--release",
        "ingress",
        "--namespace",
        "ingress",
        "--only",
        "node.host-ports",
    ];
    let (run, doc) = s.json(&args);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(status(&doc, "node.host-ports"), "fail");
    assert_eq!(
        findings(&doc, "node.host-ports"),
        vec![(
            "port-taken".to_string(),
            serde_json::json!({"type": "port", "port": 80, "protocol": "TCP"})
        )]
    );
    assert_eq!(
        message(&doc, "node.host-ports"),
        "port 80/TCP is taken on this host (0.0.0.0:80) by nginx (pid 4242): wanted by Deployment ingress-controller (release ingress, hostnet/templates/all.yaml) with hostNetwork; its pod fails with \"bind: address already in use\""
    );
    assert_eq!(
        fix_commands(&doc, "node.host-ports"),
        vec!["ss -ltnp 'sport = :80'".to_string()]
    );
    // Port 80 free (a connection from 8080 is no listener): every port of the install is free.
    let s2 = Scenario::new();
    s2.on_path("helm", &real_tool("helm-3.17.2/helm"));
    listening(&s2, 22, "sshd");
    let (run, doc) = s2.json(&args);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(
        message(&doc, "node.host-ports"),
        "80/TCP, 443/TCP, 9100/TCP, 32080/TCP free on this host"
    );
    // Not a host's /proc: cannot decide.
    let s3 = Scenario::new();
    s3.on_path("helm", &real_tool("helm-3.17.2/helm"));
    let (run, doc) = s3.json(&args);
    assert_eq!(run.code(), 3, "{}", run.stdout());
    assert_eq!(status(&doc, "node.host-ports"), "error");
}
