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

/// What the stand-in kubelet does on a node.
#[derive(Clone)]
enum OnNode {
    Run(PathBuf),
    PullFails,
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
                let status = match &nodes[&node] {
                    OnNode::PullFails => {
                        c.apply(&format!("apiVersion: v1\nkind: Event\nmetadata: {{name: {name}.pull, namespace: {ns}}}\ninvolvedObject: {{kind: Pod, name: {name}, namespace: {ns}}}\ntype: Warning\nreason: Failed\nmessage: 'Failed to pull image \"127.0.0.1:1/preflight:test\": connection refused'\n"));
                        serde_json::json!({"status": {"phase": "Pending", "containerStatuses": [{
                            "name": "preflight", "image": "127.0.0.1:1/preflight:test", "imageID": "", "ready": false, "restartCount": 0,
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
                        std::fs::write(&file, profile).unwrap();
                        let args: Vec<String> = pod["spec"]["containers"][0]["args"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|a| match a.as_str().unwrap() {
                                "/host" => host.display().to_string(),
                                "/etc/preflight/profile.yaml" => file.display().to_string(),
                                other => other.to_string(),
                            })
                            .collect();
                        let out = std::process::Command::new(bin())
                            .args(&args)
                            .env_clear()
                            .output()
                            .unwrap();
                        let message = String::from_utf8_lossy(&out.stdout).trim().to_string();
                        assert!(
                            message.len() < 4096,
                            "over the termination message limit: {}",
                            message.len()
                        );
                        let code = out.status.code().unwrap_or(2);
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
    let _nodes = Nodes(&c, names.clone());
    for n in &names {
        c.apply(&format!(
            "apiVersion: v1\nkind: Node\nmetadata: {{name: {n}, labels: {{preflight-test: {label}}}}}\n"
        ));
    }
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
    let profile = s.profile("checks:\n  node.conntrack: {}\n  node.localpv-disk: {paths: [{path: /mnt/data, need: 1Ki}]}\n  network.registry: {}\n");
    let kc = c.kubeconfig();
    let selector = format!("preflight-test={label}");
    let (run, doc) = s.json(&[
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
        "--timeout",
        "1s",
    ]);
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
    let schema: serde_json::Value = serde_json::from_str(include_str!("../schema/report-v1.json")).unwrap();
    let errors: Vec<String> = jsonschema::validator_for(&schema)
        .unwrap()
        .iter_errors(&doc)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "schema 1 with the node field: {errors:?}");
    let entries = doc["checks"].as_array().unwrap();
    let find = |id: &str, node: Option<&str>| {
        entries
            .iter()
            .find(|e| e["id"] == id && e.get("node").and_then(|n| n.as_str()) == node)
            .unwrap_or_else(|| panic!("{id}@{node:?} in {doc}"))
    };
    // Only node checks run on the nodes.
    assert!(entries.iter().all(|e| e["phase"] == "node"), "{doc}");
    assert_eq!(find("node.conntrack", Some(&names[0]))["status"], "pass");
    assert_eq!(find("node.conntrack", Some(&names[1]))["status"], "fail");
    assert!(find("node.conntrack", Some(&names[1]))["message"]
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
            "passes on 1 of 3 node(s); not on: {} (fail), {} (error) — enough that some node has room: {}",
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
        "preflight: nodes: this user may not: list nodes; create pods in namespace default; get pods in namespace default; list pods in namespace default; delete pods in namespace default; create configmaps in namespace default; list configmaps in namespace default; delete configmaps in namespace default; list events in namespace default"
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
