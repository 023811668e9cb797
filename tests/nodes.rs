//! `preflight nodes`: node checks on every node through the REAL API server. There is no
//! kubelet here, so the test plays it: it watches the pods preflight creates, runs the real
//! preflight binary with the pod's own arguments (its `/host` is a per-node host tree, its
//! profile the ConfigMap's), and writes the result as the container's termination message
//! through the status subresource — or, for one node, the image pull failure a kubelet reports.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::cluster::{cluster, unique, Cluster};
use common::*;

const RELEASE: &str = "5.15.0-91-generic";

/// Deletes the test's Node objects however the test ends (other suites count nodes).
struct Nodes<'a>(&'a Cluster, Vec<String>);

impl Drop for Nodes<'_> {
    fn drop(&mut self) {
        for n in &self.1 {
            self.0.delete(&["node", n]);
        }
    }
}

/// What every run here gives: the image the stand-in kubelet answers for, the test's
/// nodes, namespace and profile, the test cluster, a 1s probe bound.
fn on_test_nodes<'a>(selector: &'a str, ns: &'a str, profile: &'a str, kc: &'a str) -> [&'a str; 12] {
    [
        "--image",
        "127.0.0.1:1/preflight:test",
        "--node-selector",
        selector,
        "--pod-namespace",
        ns,
        "--profile",
        profile,
        "--kubeconfig",
        kc,
        "--timeout",
        "1s",
    ]
}

/// What the stand-in kubelet does on a node.
#[derive(Clone)]
enum OnNode {
    Run(PathBuf),
    PullFails,
    /// Never answers (a node whose kubelet is gone).
    Silent,
}

/// The termination message as a kubelet makes it ("Customizing the termination message"):
/// the terminationMessagePath file, at most 4096 bytes; only when that file is empty, the
/// policy is FallbackToLogsOnError and the container exited with an error, the tail of its
/// log (at most 80 lines and 2048 bytes).
fn kubelet_termination_message(file: &[u8], log: &[u8], exit_code: i32, policy: &str) -> String {
    if !file.is_empty() {
        return String::from_utf8_lossy(&file[..file.len().min(4096)]).into_owned();
    }
    if policy != "FallbackToLogsOnError" || exit_code == 0 {
        return String::new();
    }
    let text = String::from_utf8_lossy(log);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(80)..].join("\n");
    let start = tail.len().saturating_sub(2048);
    let start = (start..=tail.len())
        .find(|i| tail.is_char_boundary(*i))
        .unwrap_or(tail.len());
    tail[start..].to_string()
}

fn play_kubelet(
    c: Cluster,
    ns: String,
    nodes: HashMap<String, OnNode>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut done = std::collections::HashSet::new();
        while !stop.load(Ordering::Relaxed) {
            let (ok, out) = c.kubectl(
                &[
                    "get",
                    "pods",
                    "-n",
                    &ns,
                    "-l",
                    "app.kubernetes.io/name=preflight-nodes",
                    "-o",
                    "json",
                ],
                None,
            );
            let pods: serde_json::Value = if ok {
                serde_json::from_str(&out).unwrap_or_default()
            } else {
                Default::default()
            };
            for pod in pods["items"].as_array().cloned().unwrap_or_default() {
                let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let node = pod["spec"]["nodeName"].as_str().unwrap_or_default().to_string();
                if done.contains(&name) || !nodes.contains_key(&node) {
                    continue;
                }
                done.insert(name.clone());
                // What a kubelet would be asked to run.
                let spec = &pod["spec"];
                assert_eq!(
                    spec["tolerations"],
                    serde_json::json!([{"operator": "Exists"}]),
                    "{pod}"
                );
                assert_eq!(spec["restartPolicy"], "Never");
                assert_eq!(spec["volumes"][0]["hostPath"]["path"], "/");
                let container = &spec["containers"][0];
                assert_eq!(container["command"], serde_json::json!(["/preflight"]));
                assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
                let fixing = container["args"].as_array().unwrap().iter().any(|a| a == "--fix");
                assert_eq!(container["volumeMounts"][0]["mountPath"], "/host");
                assert_eq!(
                    container["volumeMounts"][0]["readOnly"]
                        .as_bool()
                        .unwrap_or(false),
                    !fixing,
                    "the host is writable exactly when a node fix is asked for: {pod}"
                );
                let args: Vec<&str> = container["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect();
                let only = args[args.iter().position(|a| *a == "--only").unwrap() + 1];
                assert_eq!(
                    spec["hostNetwork"].as_bool().unwrap_or(false),
                    only.split(',')
                        .any(|c| ["node.conntrack", "node.kernel-settings", "node.host-ports"].contains(&c)),
                    "hostNetwork only for a check that reads the host's network namespace: {pod}"
                );
                let status = match &nodes[&node] {
                    OnNode::Silent => continue,
                    OnNode::PullFails => {
                        let image = container["image"].as_str().unwrap();
                        c.apply(&format!("apiVersion: v1\nkind: Event\nmetadata: {{name: {name}.pull, namespace: {ns}}}\ninvolvedObject: {{kind: Pod, name: {name}, namespace: {ns}}}\ntype: Warning\nreason: Failed\nmessage: 'Failed to pull image \"{image}\": connection refused'\n"));
                        serde_json::json!({"status": {"phase": "Pending", "containerStatuses": [{
                            "name": "preflight", "image": image, "imageID": "", "ready": false, "restartCount": 0,
                            "state": {"waiting": {"reason": "ErrImagePull", "message": "connection refused"}}}]}})
                    }
                    OnNode::Run(host) => {
                        // The pod's arguments, with its mounts where this machine has them.
                        let cm = pod["spec"]["volumes"][1]["configMap"]["name"]
                            .as_str()
                            .unwrap()
                            .to_string();
                        let (_, profile) = c.kubectl(
                            &[
                                "get",
                                "configmap",
                                &cm,
                                "-n",
                                &ns,
                                "-o",
                                "jsonpath={.data.profile\\.yaml}",
                            ],
                            None,
                        );
                        let file = host.parent().unwrap().join(format!("{name}.yaml"));
                        // The file the kubelet mounts at the container's terminationMessagePath.
                        let path = container["terminationMessagePath"]
                            .as_str()
                            .unwrap_or("/dev/termination-log");
                        assert_eq!(path, "/dev/termination-log", "{pod}");
                        let policy = container["terminationMessagePolicy"].as_str().unwrap_or("File");
                        let termination_log = host.parent().unwrap().join(format!("{name}.termination-log"));
                        std::fs::write(&termination_log, "").unwrap();
                        std::fs::write(&file, profile).unwrap();
                        let args: Vec<String> = pod["spec"]["containers"][0]["args"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|a| match a.as_str().unwrap() {
                                "/host" => host.display().to_string(),
                                "/etc/preflight/profile.yaml" => file.display().to_string(),
                                "/dev/termination-log" => termination_log.display().to_string(),
                                other => other.to_string(),
                            })
                            .collect();
                        let out = std::process::Command::new(bin())
                            .args(&args)
                            .env_clear()
                            .output()
                            .unwrap();
                        let code = out.status.code().unwrap_or(2);
                        let file = std::fs::read(&termination_log).unwrap_or_default();
                        assert!(
                            file.len() < 4096,
                            "over the termination message limit: {}",
                            file.len()
                        );
                        let message = kubelet_termination_message(&file, &out.stdout, code, policy);
                        serde_json::json!({"status": {"phase": if code == 0 { "Succeeded" } else { "Failed" }, "containerStatuses": [{
                            "name": "preflight", "image": "127.0.0.1:1/preflight:test", "imageID": "", "ready": false, "restartCount": 0,
                            "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }, "message": message}}}]}})
                    }
                };
                let (ok, out) = c.kubectl(
                    &[
                        "patch",
                        "pod",
                        &name,
                        "-n",
                        &ns,
                        "--subresource=status",
                        "--type=merge",
                        "-p",
                        &status.to_string(),
                    ],
                    None,
                );
                assert!(ok, "status of {name}: {out}");
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    })
}

#[test]
fn node_checks_run_on_every_node_and_roll_up() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let label = unique("nodes");
    let names: Vec<String> = ["good", "low", "pull"].iter().map(|n| unique(n)).collect();
    let other = unique("other");
    let mut all = names.clone();
    all.push(other.clone());
    let _nodes = Nodes(&c, all);
    for n in &names {
        // A tainted node (a control plane, a dedicated one) is checked all the same.
        let taints = if *n == names[1] {
            "spec: {taints: [{key: node-role.kubernetes.io/master, effect: NoSchedule}, {key: dedicated, value: db, effect: NoExecute}]}\n"
        } else {
            ""
        };
        c.apply(&format!(
            "apiVersion: v1\nkind: Node\nmetadata: {{name: {n}, labels: {{preflight-test: {label}}}}}\n{taints}"
        ));
    }
    // Not selected: no pod for it.
    c.apply(&format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {other}}}\n"
    ));
    let ns = unique("preflight-nodes");
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    // Host trees: conntrack loaded and a local-PV directory on one node, neither on the other.
    let tree = |name: &str, good: bool| {
        let root = s.dir.path().join("nodes").join(name);
        let put = |rel: &str, body: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        };
        put("proc/sys/kernel/osrelease", &format!("{RELEASE}\n"));
        put(&format!("lib/modules/{RELEASE}/modules.dep"), "");
        // What kubeadm wants on both; a fresh kernel's inotify limits on the second.
        put("proc/sys/net/ipv4/ip_forward", "1\n");
        put("proc/sys/net/bridge/bridge-nf-call-iptables", "1\n");
        put("proc/sys/net/bridge/bridge-nf-call-ip6tables", "1\n");
        put(
            "proc/sys/fs/inotify/max_user_instances",
            if good { "8192\n" } else { "128\n" },
        );
        put("proc/sys/fs/inotify/max_user_watches", "524288\n");
        // A listener on port 80 (hex 0050) on the second node, on 22 on the first.
        let port = if good { "0016" } else { "0050" };
        put("proc/net/tcp", &format!("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:{port} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n"));
        if good {
            put("proc/modules", "nf_conntrack 172032 4 xt_conntrack, Live 0x0\n");
            std::fs::create_dir_all(root.join("mnt/data")).unwrap();
        } else {
            put("proc/modules", "overlay 151552 0 - Live 0x0\n");
        }
        root
    };
    let mut on = HashMap::new();
    on.insert(names[0].clone(), OnNode::Run(tree(&names[0], true)));
    on.insert(names[1].clone(), OnNode::Run(tree(&names[1], false)));
    on.insert(names[2].clone(), OnNode::PullFails);
    let stop = Arc::new(AtomicBool::new(false));
    let kubelet = play_kubelet(c.clone(), ns.clone(), on, Arc::clone(&stop));
    let profile = s.profile("checks:\n  node.conntrack: {}\n  node.kernel-settings: {}\n  node.host-ports: {ports: [{port: 80, what: ingress-nginx}]}\n  node.localpv-disk: {paths: [{path: /mnt/data, need: 1Ki}]}\n  network.registry: {}\n");
    let kc = c.kubeconfig();
    let selector = format!("preflight-test={label}");
    let (run, doc) = s.json(&[&["nodes"][..], &on_test_nodes(&selector, &ns, &profile, &kc)].concat());
    stop.store(true, Ordering::Relaxed);
    kubelet.join().unwrap();
    let (_, left) = c.kubectl(
        &[
            "get",
            "pods,configmaps",
            "-n",
            &ns,
            "-l",
            "app.kubernetes.io/name=preflight-nodes",
            "-o",
            "name",
        ],
        None,
    );
    c.delete(&["namespace", &ns]);

    assert_eq!(run.code(), 1, "{}\n{}", run.stdout(), run.stderr());
    let schema: serde_json::Value = serde_json::from_str(include_str!("../schema/report-v2.json")).unwrap();
    let errors: Vec<String> = jsonschema::validator_for(&schema)
        .unwrap()
        .iter_errors(&doc)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "schema 2 with the node field: {errors:?}");
    let entries = doc["checks"].as_array().unwrap();
    let find = |id: &str, node: Option<&str>| {
        entries
            .iter()
            .find(|e| e["id"] == id && e.get("node").and_then(|n| n.as_str()) == node)
            .unwrap_or_else(|| panic!("{id}@{node:?} in {doc}"))
    };
    // Only node checks run on the nodes, and only on the selected ones.
    assert!(entries.iter().all(|e| e["phase"] == "node"), "{doc}");
    assert!(!entries.iter().any(|e| e["node"] == other.as_str()), "{doc}");
    assert_eq!(find("node.conntrack", Some(&names[0]))["status"], "pass");
    // Kernel settings read on each node through its pod (hostNetwork: they are per netns).
    assert_eq!(find("node.kernel-settings", Some(&names[0]))["status"], "pass");
    assert_eq!(find("node.kernel-settings", Some(&names[1]))["status"], "warn");
    assert_eq!(find("node.kernel-settings", None)["status"], "error");
    assert_eq!(find("node.host-ports", Some(&names[0]))["status"], "pass");
    assert_eq!(find("node.host-ports", Some(&names[1]))["status"], "fail");
    // The node's findings travel in its pod's termination message.
    let taken = &find("node.host-ports", Some(&names[1]))["findings"][0];
    assert_eq!(taken["code"], "port-taken");
    assert_eq!(
        taken["subject"],
        serde_json::json!({"type": "port", "port": 80, "protocol": "TCP"})
    );
    assert!(taken["message"]
        .as_str()
        .unwrap()
        .starts_with("port 80/TCP is taken on this host (0.0.0.0:80): wanted by ingress-nginx"));
    assert_eq!(find("node.conntrack", Some(&names[1]))["status"], "fail");
    let not_loaded = &find("node.conntrack", Some(&names[1]))["findings"][0];
    assert_eq!(not_loaded["code"], "conntrack-not-loaded");
    assert!(not_loaded["message"]
        .as_str()
        .unwrap()
        .starts_with("conntrack is not loaded"));
    let pulled = find("node.conntrack", Some(&names[2]));
    assert_eq!(pulled["status"], "error");
    let why = pulled["message"].as_str().unwrap();
    assert!(
        why.contains(
            "did not finish within 12s: phase Pending, container waiting: ErrImagePull connection refused"
        ),
        "{why}"
    );
    assert!(
        why.contains(
            "Warning Failed: Failed to pull image \"127.0.0.1:1/preflight:test\": connection refused"
        ),
        "{why}"
    );
    let conntrack = find("node.conntrack", None);
    assert_eq!(conntrack["status"], "fail");
    assert_eq!(
        conntrack["message"],
        format!(
            "passes on 1 of 3 node(s); not on: {} (fail), {} (error)",
            names[1], names[2]
        )
    );
    // A local-PV claim needs one node with room: the scheduler's question.
    let disk = find("node.localpv-disk", None);
    assert_eq!(disk["status"], "pass");
    assert_eq!(
        disk["message"],
        format!(
            "passes on 1 of 3 node(s); not on: {} (fail), {} (error)\n/mnt/data: a 0.0 GiB claim fits on 1 node(s): {}",
            names[1], names[2], names[0]
        )
    );
    assert!(left.trim().is_empty(), "pods or configmaps left behind: {left}");
}

#[test]
fn what_the_user_may_not_do_and_no_node_to_run_on_are_named() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let kc = c.kubeconfig();
    let limited = s.run(&[
        "nodes",
        "--image",
        "127.0.0.1:1/p:t",
        "--kubeconfig",
        &kc,
        "--context",
        "test-limited",
    ]);
    assert_eq!(limited.code(), 3);
    assert!(limited.stdout().is_empty());
    assert_eq!(
        limited.stderr().trim(),
        "preflight: nodes: this user may not: list nodes; create pods in namespace default; list pods in namespace default; watch pods in namespace default; delete pods in namespace default; deletecollection pods in namespace default; create configmaps in namespace default; list configmaps in namespace default; delete configmaps in namespace default; list events in namespace default"
    );
    let selector = format!("preflight-test={}", unique("none"));
    let none = s.run(&[
        "nodes",
        "--image",
        "127.0.0.1:1/p:t",
        "--kubeconfig",
        &kc,
        "--node-selector",
        &selector,
    ]);
    assert_eq!(none.code(), 3);
    assert_eq!(
        none.stderr().trim(),
        format!("preflight: nodes: no node matches the selector {selector}")
    );
    let no_checks = s.run(&[
        "nodes",
        "--image",
        "127.0.0.1:1/p:t",
        "--kubeconfig",
        &kc,
        "--only",
        "cluster",
    ]);
    assert_eq!(no_checks.code(), 2);
}

/// The test's nodes (labelled for a selector) and a namespace for the pods.
fn nodes_and_namespace(c: &Cluster, names: &[String]) -> (String, String) {
    let label = unique("nodes");
    for n in names {
        c.apply(&format!(
            "apiVersion: v1\nkind: Node\nmetadata: {{name: {n}, labels: {{preflight-test: {label}}}}}\n"
        ));
    }
    let ns = unique("preflight-nodes");
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    (format!("preflight-test={label}"), ns)
}

/// The run's objects still there and not being deleted (a pod bound to a node waits for
/// its kubelet to confirm the deletion; there is none here).
fn live_objects(c: &Cluster, ns: &str) -> Vec<String> {
    let (_, out) = c.kubectl(
        &[
            "get",
            "pods,configmaps",
            "-n",
            ns,
            "-l",
            "app.kubernetes.io/name=preflight-nodes",
            "-o",
            "json",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|o| o["metadata"]["deletionTimestamp"].is_null())
        .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
        .collect()
}

#[test]
fn all_nodes_on_a_normal_run_fixes_in_the_pods_and_names_a_silent_node() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let names: Vec<String> = ["fixme", "gone"].iter().map(|n| unique(n)).collect();
    let _nodes = Nodes(&c, names.clone());
    let (selector, ns) = nodes_and_namespace(&c, &names);
    // A wrong pin in the node's own /etc/hosts: the pod fixes it there.
    let root = s.dir.path().join("nodes").join(&names[0]);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/hosts"),
        "127.0.0.1 localhost\n127.0.0.9 registry.test\n",
    )
    .unwrap();
    let mut on = HashMap::new();
    on.insert(names[0].clone(), OnNode::Run(root.clone()));
    on.insert(names[1].clone(), OnNode::Silent);
    let stop = Arc::new(AtomicBool::new(false));
    let kubelet = play_kubelet(c.clone(), ns.clone(), on, Arc::clone(&stop));
    let profile =
        s.profile("checks:\n  node.hosts: {pins: {registry.test: [127.0.0.5]}}\n  cluster.api: {}\n");
    let kc = c.kubeconfig();
    let (run, doc) = s.json(
        &[
            &["--all-nodes", "--fix", "--yes"][..],
            &on_test_nodes(&selector, &ns, &profile, &kc),
        ]
        .concat(),
    );
    stop.store(true, Ordering::Relaxed);
    kubelet.join().unwrap();
    let left = live_objects(&c, &ns);
    c.delete(&["namespace", &ns]);

    // The silent node is an error, nothing failed: exit 3.
    assert_eq!(run.code(), 3, "{}\n{}", run.stdout(), run.stderr());
    let entries = doc["checks"].as_array().unwrap();
    let ids: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{}@{}",
                e["id"].as_str().unwrap(),
                e["node"].as_str().unwrap_or("")
            )
        })
        .collect();
    // Node checks in their phase's place, once per node and a roll-up; the cluster phase ran here.
    let mut want = vec![
        format!("node.hosts@{}", names[0]),
        format!("node.hosts@{}", names[1]),
    ];
    want.sort();
    want.push("node.hosts@".into());
    want.push("cluster.api@".into());
    assert_eq!(ids, want, "{doc}");
    let fixed = &entries[ids
        .iter()
        .position(|i| *i == format!("node.hosts@{}", names[0]))
        .unwrap()];
    assert_eq!(fixed["status"], "pass", "{fixed}");
    assert_eq!(fixed["fixed"], true, "{fixed}");
    let hosts = std::fs::read_to_string(root.join("etc/hosts")).unwrap();
    assert!(
        hosts.starts_with("# BEGIN preflight") && hosts.contains("127.0.0.5 registry.test"),
        "the pod's fix wrote the node's /etc/hosts: {hosts}"
    );
    let silent = &entries[ids
        .iter()
        .position(|i| *i == format!("node.hosts@{}", names[1]))
        .unwrap()];
    assert_eq!(silent["status"], "error");
    let pod_prefix = "pod preflight-";
    let why = silent["message"].as_str().unwrap();
    assert!(
        why.starts_with(pod_prefix) && why.ends_with("did not finish within 12s: phase Pending; no events"),
        "{why}"
    );
    let rolled = &entries[2];
    assert_eq!(rolled["status"], "error");
    assert_eq!(
        rolled["message"],
        format!("passes on 1 of 2 node(s); not on: {} (error)", names[1])
    );
    assert_eq!(entries[3]["status"], "pass", "{doc}");
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn an_interrupted_run_deletes_its_pods_and_a_killed_ones_are_removed_by_the_next() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let names = vec![unique("silent")];
    let _nodes = Nodes(&c, names.clone());
    let (selector, ns) = nodes_and_namespace(&c, &names);
    let profile = s.profile("checks:\n  node.conntrack: {}\n");
    let kc = c.kubeconfig();
    let start = || {
        std::process::Command::new(bin())
            .args([
                "nodes",
                "--image",
                "127.0.0.1:1/preflight:test",
                "--node-selector",
                &selector,
                "--pod-namespace",
                &ns,
                "--profile",
                &profile,
                "--kubeconfig",
                &kc,
                "-o",
                "json",
            ])
            .env_clear()
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let wait_for_pod = || {
        for _ in 0..100 {
            if live_objects(&c, &ns).iter().any(|o| o.starts_with("\"Pod\"")) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("no pod was created");
    };
    // Killed outright: nothing can clean up.
    let mut killed = start();
    wait_for_pod();
    killed.kill().unwrap();
    killed.wait().unwrap();
    let leftovers = live_objects(&c, &ns);
    assert_eq!(leftovers.len(), 2, "a pod and a ConfigMap stay: {leftovers:?}");

    // Ctrl-C: the run deletes its own pods and ConfigMap, and only those.
    let interrupted = start();
    for _ in 0..100 {
        if live_objects(&c, &ns).len() == 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(interrupted.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = interrupted.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.starts_with(
            "preflight: interrupted: stopped; this run's pods and ConfigMap (label preflight.run="
        ) && stderr.trim_end().ends_with(") were deleted"),
        "{stderr}"
    );
    assert_eq!(
        live_objects(&c, &ns),
        leftovers,
        "only the interrupted run's objects went"
    );

    // The next run removes the killed run's leftovers (older than the bound; 0s here).
    let next = s.run(&[
        "nodes",
        "--image",
        "127.0.0.1:1/preflight:test",
        "--node-selector",
        "preflight-test=nothing-matches",
        "--pod-namespace",
        &ns,
        "--profile",
        &profile,
        "--kubeconfig",
        &kc,
        "--leftover-age",
        "0s",
    ]);
    let after = live_objects(&c, &ns);
    c.delete(&["namespace", &ns]);
    assert_eq!(next.code(), 3, "{}", next.stderr());
    assert!(after.is_empty(), "leftovers of the killed run: {after:?}");
}

#[test]
fn the_installs_claims_go_to_the_nodes_and_each_claim_needs_room_on_some_node() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    s.on_path("helm", &real_tool("helm-3.17.2/helm"));
    let names: Vec<String> = ["room", "nodir"].iter().map(|n| unique(n)).collect();
    let _nodes = Nodes(&c, names.clone());
    let (selector, ns) = nodes_and_namespace(&c, &names);
    let root = |name: &str, dir: bool| {
        let root = s.dir.path().join("nodes").join(name);
        std::fs::create_dir_all(&root).unwrap();
        if dir {
            std::fs::create_dir_all(root.join("mnt/blueking")).unwrap();
        }
        root
    };
    let mut on = HashMap::new();
    on.insert(names[0].clone(), OnNode::Run(root(&names[0], true)));
    on.insert(names[1].clone(), OnNode::Run(root(&names[1], false)));
    let stop = Arc::new(AtomicBool::new(false));
    let kubelet = play_kubelet(c.clone(), ns.clone(), on, Arc::clone(&stop));
    // Sized by the install's claims of the class (seed 004), which the pods cannot render.
    let profile = s.profile(
        "checks:\n  node.localpv-disk:\n    paths:\n      - {path: /mnt/blueking, storage_class: local-storage, shared: true}\n",
    );
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/storage-app");
    let kc = c.kubeconfig();
    let (run, doc) = s.json(
        &[
            &["--all-nodes"][..],
            &on_test_nodes(&selector, &ns, &profile, &kc),
            &[
                "--chart",
                chart,
                "--release",
                "bk",
                "--namespace",
                "blueking",
                "--set",
                "dataSize=1Gi",
            ],
        ]
        .concat(),
    );
    stop.store(true, Ordering::Relaxed);
    kubelet.join().unwrap();
    let left = live_objects(&c, &ns);
    c.delete(&["namespace", &ns]);

    assert_eq!(run.code(), 1, "{}\n{}", run.stdout(), run.stderr());
    let entries = doc["checks"].as_array().unwrap();
    let on = |node: Option<&str>| {
        entries
            .iter()
            .find(|e| e["id"] == "node.localpv-disk" && e.get("node").and_then(|n| n.as_str()) == node)
            .unwrap_or_else(|| panic!("{node:?} in {doc}"))
    };
    // The pod on each node measured against the install's 1Gi claim.
    assert_eq!(on(Some(&names[0]))["status"], "pass", "{doc}");
    assert!(on(Some(&names[0]))["message"]
        .as_str()
        .unwrap()
        .ends_with(" free, 1.0 GiB needed"));
    assert_eq!(on(Some(&names[1]))["status"], "fail");
    let short = &on(Some(&names[1]))["findings"][0];
    assert_eq!(short["code"], "disk-short");
    assert_eq!(
        short["subject"],
        serde_json::json!({"type": "path", "path": "/mnt/blueking"})
    );
    assert_eq!(short["message"], "/mnt/blueking: does not exist (1.0 GiB needed)");
    // One node with room is what the scheduler needs.
    let rolled = on(None);
    assert_eq!(rolled["status"], "pass");
    assert_eq!(
        rolled["message"],
        format!(
            "passes on 1 of 2 node(s); not on: {} (fail)\n/mnt/blueking: 1 claim(s) sharing the directory (1.0 GiB in all) fit: 1.0 GiB on {}",
            names[1], names[0]
        )
    );
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Pod Security admission as the API server applies it (v1.23+; this v1.20 test server has
/// none): a validating webhook on 127.0.0.1 that denies every pod with PSA's own words and
/// status (403 Forbidden, `violates PodSecurity "baseline:latest": …`).
fn pod_security_webhook() -> common::https::HttpsServer {
    common::https::HttpsServer::start("127.0.0.1", |_, body| {
        let review: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let name = review["request"]["object"]["metadata"]["name"]
            .as_str()
            .or_else(|| review["request"]["name"].as_str())
            .unwrap_or("")
            .to_string();
        let answer = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": false, "status": {
                "code": 403, "reason": "Forbidden",
                "message": format!("pods \"{name}\" is forbidden: violates PodSecurity \"baseline:latest\": hostPath volumes (volume \"host\")")}}});
        (200, answer.to_string())
    })
}

#[test]
fn a_pod_refused_by_pod_security_admission_names_the_label_that_allows_it() {
    use base64::Engine;
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let names = vec![unique("psa")];
    let _nodes = Nodes(&c, names.clone());
    let (selector, ns) = nodes_and_namespace(&c, &names);
    let hook = pod_security_webhook();
    let config = unique("psa-webhook");
    let ca = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&hook.ca).unwrap());
    // Only this test's namespace: the webhook sees no other test's pods.
    c.apply(&format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {{name: {config}}}\nwebhooks:\n- name: pod-security.preflight.test\n  failurePolicy: Fail\n  sideEffects: None\n  timeoutSeconds: 10\n  admissionReviewVersions: [v1]\n  namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {ns}}}}}\n  objectSelector: {{}}\n  clientConfig: {{url: \"https://127.0.0.1:{}/validate\", caBundle: {ca}}}\n  rules: [{{apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], resources: [pods]}}]\n",
        hook.port
    ));
    // v1.20 does not label namespaces with their name: do it as v1.21+ does.
    c.kubectl(
        &[
            "label",
            "namespace",
            &ns,
            &format!("kubernetes.io/metadata.name={ns}"),
        ],
        None,
    );
    let profile = s.profile("checks:\n  node.conntrack: {}\n");
    let kc = c.kubeconfig();
    let (run, doc) = s.json(&[&["nodes"][..], &on_test_nodes(&selector, &ns, &profile, &kc)].concat());
    let left = live_objects(&c, &ns);
    c.delete(&["validatingwebhookconfiguration", &config]);
    c.delete(&["namespace", &ns]);

    assert_eq!(run.code(), 3, "{}\n{}", run.stdout(), run.stderr());
    let on_node = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"] == names[0].as_str())
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(on_node["status"], "error");
    let why = on_node["message"].as_str().unwrap();
    assert!(
        why.contains("violates PodSecurity \"baseline:latest\": hostPath volumes (volume \"host\")"),
        "the API server's words: {why}"
    );
    assert!(
        why.ends_with(&format!("which needs the privileged Pod Security level: kubectl label --overwrite namespace {ns} pod-security.kubernetes.io/enforce=privileged (or run in another namespace with --pod-namespace)")),
        "{why}"
    );
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `preflight nodes` under a pseudo-terminal (util-linux `script`), as an operator runs it:
/// what the terminal shows, stdout and stderr together.
fn on_tty(s: &Scenario, args: &[&str]) -> String {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let cmd = format!("{} nodes {}", bin().display(), quoted.join(" "));
    let script = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("script"))
        .find(|p| p.exists())
        .expect("script(1) from util-linux (bsdutils)");
    let out = std::process::Command::new(script)
        .env_clear()
        .envs(&s.env)
        .env("TERM", "xterm")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script(1) from util-linux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn on_a_terminal_the_wait_for_the_nodes_shows_who_answered_and_the_slowest() {
    let Some(c) = cluster() else { return };
    let s = Scenario::new();
    let names: Vec<String> = ["quick", "slow"].iter().map(|n| unique(n)).collect();
    let _nodes = Nodes(&c, names.clone());
    let (selector, ns) = nodes_and_namespace(&c, &names);
    let root = s.dir.path().join("nodes").join(&names[0]);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/hosts"), "127.0.0.5 registry.test\n").unwrap();
    let mut on = HashMap::new();
    on.insert(names[0].clone(), OnNode::Run(root.clone()));
    on.insert(names[1].clone(), OnNode::Silent);
    let stop = Arc::new(AtomicBool::new(false));
    let kubelet = play_kubelet(c.clone(), ns.clone(), on, Arc::clone(&stop));
    let profile = s.profile("checks:\n  node.hosts: {pins: {registry.test: [127.0.0.5]}}\n");
    let kc = c.kubeconfig();
    let shown = on_tty(&s, &on_test_nodes(&selector, &ns, &profile, &kc));
    // On a pipe: nothing of it.
    let piped = s.run(&[&["nodes"][..], &on_test_nodes(&selector, &ns, &profile, &kc)].concat());
    stop.store(true, Ordering::Relaxed);
    kubelet.join().unwrap();
    c.delete(&["namespace", &ns]);
    assert!(
        shown.contains(&format!(
            "nodes: 1 of 2 answered, 1 pending; slowest: {} (",
            names[1]
        )),
        "{shown}"
    );
    assert!(!piped.stderr().contains("answered"), "{}", piped.stderr());
    assert!(!piped.stdout().contains("answered"), "{}", piped.stdout());
}
