//! The kubelet `scripts/bench-nodes.sh` needs (there is none in the test control plane):
//! it watches the pods `preflight nodes` creates and, after a delay of 0 to MAX_MS drawn
//! per pod, writes the pod's terminal status with MESSAGE_FILE as the container's
//! termination message, through the status subresource as a kubelet does. MESSAGE_FILE plays
//! the file the pod wrote at its terminationMessagePath: a kubelet takes that file first, and
//! the pods exit 0, so there is no log fallback to play. One watch and
//! one status write per pod; it prints when it answered each pod (ms since the Unix epoch);
//! the benchmark measures its CPU time (`time`) to report the harness's cost apart.
//!
//!   fake_kubelet KUBECONFIG NAMESPACE MESSAGE_FILE MAX_MS PODS

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// A delay that is the same for a pod name on every run (FNV-1a), so runs compare.
fn delay_for(name: &str, max_ms: u64) -> Duration {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.rsplit('-').next().unwrap_or(name).bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    Duration::from_millis(h % (max_ms + 1))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, kubeconfig, namespace, message_file, max_ms, pods] = args.as_slice() else {
        return Err("usage: fake_kubelet KUBECONFIG NAMESPACE MESSAGE_FILE MAX_MS PODS".into());
    };
    let message = std::fs::read_to_string(message_file)?.trim().to_string();
    let max_ms: u64 = max_ms.parse()?;
    let expected: usize = pods.parse()?;
    let config =
        Config::from_custom_kubeconfig(Kubeconfig::read_from(kubeconfig)?, &KubeConfigOptions::default())
            .await?;
    let api: Api<Pod> = Api::namespaced(Client::try_from(config)?, namespace);
    let selector = "app.kubernetes.io/name=preflight-nodes";
    let version = api
        .list_metadata(&ListParams::default().labels(selector).limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    println!("ready");
    let mut stream = Box::pin(
        api.watch(&WatchParams::default().labels(selector).timeout(290), &version)
            .await?,
    );
    let mut answering = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < expected {
        let Some(event) = stream.next().await else { break };
        let WatchEvent::Added(pod) = event? else { continue };
        let name = pod.metadata.name.clone().unwrap_or_default();
        if !seen.insert(name.clone()) {
            continue;
        }
        let api = api.clone();
        let message = message.clone();
        answering.push(tokio::spawn(async move {
            tokio::time::sleep(delay_for(&name, max_ms)).await;
            let status = serde_json::json!({"status": {"phase": "Succeeded", "containerStatuses": [{
                "name": "preflight", "image": "bench", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": message}}}]}});
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await
            {
                Ok(_) => println!("answered {name} {}", epoch_ms()),
                Err(e) => println!("failed {name} {e}"),
            }
        }));
    }
    for a in answering {
        let _ = a.await;
    }
    Ok(())
}
