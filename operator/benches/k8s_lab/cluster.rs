//! What the bench does and sees in the cluster: it plays the kubelet (the k8s-lab has none) and records
//! when each child of each stack first appeared.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

const STACK_LABEL: &str = "perfstack.dev/stack";
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=perfstack-operator";

/// Marks every new pod in `namespace` as a kubelet would: migration pods Succeeded with a migrate
/// summary as their termination message, every other pod Running and Ready. Runs until aborted.
pub async fn play_kubelet(client: Client, namespace: String, acted: Arc<Mutex<Vec<(Instant, String)>>>) {
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let mut seen = HashSet::new();
    let stream = watcher(pods.clone(), watcher::Config::default()).applied_objects();
    let mut stream = std::pin::pin!(stream);
    loop {
        let pod = match stream.try_next().await {
            Ok(Some(pod)) => pod,
            Ok(None) => return,
            Err(error) => {
                eprintln!("kubelet: pod watch: {error}");
                continue;
            }
        };
        let pending = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_none_or(|p| p == "Pending");
        let uid = pod.uid().unwrap_or_default();
        if !pending || !seen.insert(uid) {
            continue;
        }
        let pods = pods.clone();
        let acted = acted.clone();
        tokio::spawn(async move {
            let name = pod.name_any();
            let migration = pod.labels().get(COMPONENT_LABEL).map(String::as_str) == Some("migration");
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let status = if migration {
                let summary = r#"{"migrationsApplied":4,"indexesCreated":["idx_tasks_project_status"],"indexesRepaired":[],"indexesValid":[]}"#;
                json!({"status": {"phase": "Succeeded", "containerStatuses": [{
                    "name": "migrate", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now,
                                             "finishedAt": now, "message": summary}}}]}})
            } else {
                let condition = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
                json!({"status": {"phase": "Running", "podIP": "127.0.0.9", "conditions": [
                    condition("Initialized"), condition("PodScheduled"),
                    condition("ContainersReady"), condition("Ready")]}})
            };
            match pods
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await
            {
                Ok(_) => {
                    let what = if migration { "pod Succeeded" } else { "pod Ready" };
                    let component = pod.labels().get(COMPONENT_LABEL).cloned().unwrap_or_default();
                    let stack = pod.labels().get(STACK_LABEL).cloned().unwrap_or_default();
                    if let Ok(mut acted) = acted.lock() {
                        acted.push((Instant::now(), format!("{stack}: {component} {what}")));
                    }
                }
                Err(error) => eprintln!("kubelet: {name}: {error}"),
            }
        });
    }
}

/// When each child (`kind/name`) of each stack was first seen.
pub type FirstSeen = Arc<Mutex<HashMap<String, HashMap<String, Instant>>>>;

/// Watches every kind the operator creates in `namespace` and records first sightings into `seen`.
pub async fn track_children(client: Client, namespace: String, hpa: ApiResource, seen: FirstSeen) {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    let kinds = [
        ApiResource::erase::<core::Secret>(&()),
        ApiResource::erase::<core::ConfigMap>(&()),
        ApiResource::erase::<core::Service>(&()),
        ApiResource::erase::<apps::StatefulSet>(&()),
        ApiResource::erase::<apps::Deployment>(&()),
        ApiResource::erase::<batch::Job>(&()),
        hpa,
    ];
    let streams = kinds.into_iter().map(|resource| {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
        let config = watcher::Config::default().labels(MANAGED_SELECTOR);
        watcher(api, config)
            .applied_objects()
            .map(move |object| (resource.kind.clone(), object))
            .boxed()
    });
    let mut all = futures::stream::select_all(streams);
    while let Some((kind, object)) = all.next().await {
        let Ok(object) = object else { continue };
        let Some(stack) = object.labels().get(STACK_LABEL).cloned() else {
            continue;
        };
        let key = format!("{kind}/{}", object.name_any());
        if let Ok(mut seen) = seen.lock() {
            seen.entry(stack)
                .or_default()
                .entry(key)
                .or_insert_with(Instant::now);
        }
    }
}
