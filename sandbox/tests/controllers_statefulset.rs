//! The StatefulSet and PetSet controller, through the real kube client:
//! ordinal pods that become Ready with loopback IPs, recreation with the new
//! revision, RollingUpdate with a partition, OnDelete, scaling.

use crate::controllers_common;

use std::collections::HashSet;

use controllers_common::{eventually, is_ready, pod_ip, pods, ready_pods, start, text};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

const NS: &str = "default";

fn statefulset(name: &str, replicas: i32, strategy: Value) -> StatefulSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "serviceName": format!("{name}-pods"),
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {"example.com/note": "v1"}},
                "spec": {"containers": [{"name": "main", "image": "example/db:1"}]}
            }
        }
    }))
    .expect("valid StatefulSet")
}

async fn create(client: &kube::Client, set: &StatefulSet) -> Api<StatefulSet> {
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    api.create(&PostParams::default(), set)
        .await
        .expect("create StatefulSet");
    api
}

async fn set_image(api: &Api<StatefulSet>, name: &str, image: &str) {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}});
    api.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("patch template");
}

fn revision(pod: &Pod) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash").cloned())
        .unwrap_or_default()
}

/// Waits until the set's status reports `updateRevision` different from
/// `old` and returns it.
async fn new_update_revision(api: &Api<StatefulSet>, name: &str, old: &str) -> String {
    eventually("a new updateRevision", || async {
        let set = api.get(name).await.ok()?;
        let update = set.status?.update_revision?;
        (update != old).then_some(update)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_ordinal_pods_that_become_ready_with_loopback_ips() {
    let (_sandbox, client) = start().await;
    let api = create(
        &client,
        &statefulset("web", 3, json!({"type": "RollingUpdate"})),
    )
    .await;
    let pods = ready_pods(&client, NS, "app=web", 3).await;

    let names: Vec<String> = pods
        .iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);
    let ips: HashSet<String> = pods.iter().map(pod_ip).collect();
    assert_eq!(ips.len(), 3, "pod IPs are unique: {ips:?}");
    for ip in &ips {
        let addr: std::net::Ipv4Addr = ip.parse().expect("IPv4");
        assert!(
            addr.is_loopback() && addr != std::net::Ipv4Addr::LOCALHOST,
            "{ip}"
        );
    }

    let set = eventually("status with 3 ready replicas", || async {
        let set = api.get("web").await.ok()?;
        (set.status.as_ref()?.ready_replicas == Some(3)).then_some(set)
    })
    .await;
    let status = set.status.clone().expect("status");
    assert_eq!(status.replicas, 3);
    assert_eq!(status.current_revision, status.update_revision);
    assert_eq!(status.observed_generation, set.metadata.generation);
    let update_revision = status.update_revision.expect("updateRevision");
    assert!(update_revision.starts_with("web-"));

    for (ordinal, pod) in pods.iter().enumerate() {
        assert_eq!(revision(pod), update_revision);
        let spec = pod.spec.as_ref().expect("spec");
        assert_eq!(
            spec.hostname.as_deref(),
            Some(format!("web-{ordinal}").as_str())
        );
        assert_eq!(spec.subdomain.as_deref(), Some("web-pods"));
        let owner = &pod.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("StatefulSet", "web", Some(true))
        );
        assert_eq!(
            pod.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("example.com/note"))
                .map(String::as_str),
            Some("v1")
        );
        let container = &pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .expect("container statuses")[0];
        assert!(container.ready && container.started == Some(true));
        assert!(
            container
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .is_some()
        );
    }
    let revisions: Api<ControllerRevision> = Api::namespaced(client.clone(), NS);
    let stored = revisions
        .get(&update_revision)
        .await
        .expect("ControllerRevision exists");
    assert_eq!(stored.revision, 1);

    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), NS);
    let created: Vec<String> = events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("SuccessfulCreate"))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web"))
        .filter_map(|e| e.note)
        .collect();
    assert!(
        created
            .iter()
            .any(|n| n == "create Pod web-2 in StatefulSet web successful"),
        "{created:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_recreates_only_deleted_pods_with_the_new_revision() {
    let (_sandbox, client) = start().await;
    let api = create(&client, &statefulset("od", 2, json!({"type": "OnDelete"}))).await;
    let before = ready_pods(&client, NS, "app=od", 2).await;
    let old = revision(&before[0]);

    set_image(&api, "od", "example/db:2").await;
    let new = new_update_revision(&api, "od", &old).await;
    let unchanged = pods(&client, NS, "app=od").await;
    assert!(
        unchanged.iter().all(|p| revision(p) == old),
        "OnDelete leaves running pods alone"
    );

    let pod_api: Api<Pod> = Api::namespaced(client.clone(), NS);
    let old_uid = before[1].metadata.uid.clone();
    pod_api
        .delete("od-1", &DeleteParams::default())
        .await
        .expect("delete od-1");
    let recreated = eventually("od-1 recreated and Ready", || async {
        let pod = pod_api.get("od-1").await.ok()?;
        (pod.metadata.uid != old_uid && is_ready(&pod)).then_some(pod)
    })
    .await;
    assert_eq!(revision(&recreated), new);
    assert_eq!(
        recreated.spec.as_ref().expect("spec").containers[0]
            .image
            .as_deref(),
        Some("example/db:2")
    );
    let first = pod_api.get("od-0").await.expect("od-0");
    assert_eq!(revision(&first), old);
    assert_eq!(first.metadata.uid, before[0].metadata.uid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_respects_the_partition_then_completes() {
    let (_sandbox, client) = start().await;
    let strategy = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}});
    let api = create(&client, &statefulset("ru", 3, strategy)).await;
    let before = ready_pods(&client, NS, "app=ru", 3).await;
    let old = revision(&before[0]);

    set_image(&api, "ru", "example/db:2").await;
    let new = new_update_revision(&api, "ru", &old).await;
    let status = eventually("ordinals 1 and 2 updated", || async {
        let set = api.get("ru").await.ok()?;
        let status = set.status?;
        (status.updated_replicas == Some(2) && status.ready_replicas == Some(3)).then_some(status)
    })
    .await;
    assert_eq!(
        status.current_revision.as_deref(),
        Some(old.as_str()),
        "partition holds the current revision"
    );
    let pods_now = ready_pods(&client, NS, "app=ru", 3).await;
    let revisions: Vec<String> = pods_now.iter().map(revision).collect();
    assert_eq!(revisions, [old.clone(), new.clone(), new.clone()]);
    assert_eq!(
        pods_now[0].metadata.uid, before[0].metadata.uid,
        "ordinal 0 untouched"
    );

    let patch = json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}});
    api.patch("ru", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("lower partition");
    eventually("all pods updated and currentRevision caught up", || async {
        let status = api.get("ru").await.ok()?.status?;
        (status.updated_replicas == Some(3)
            && status.ready_replicas == Some(3)
            && status.current_revision.as_deref() == Some(new.as_str()))
        .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_down_from_the_highest_ordinal_and_back_up() {
    let (_sandbox, client) = start().await;
    let mut set = statefulset("sc", 3, json!({"type": "RollingUpdate"}));
    if let Some(spec) = set.spec.as_mut() {
        spec.pod_management_policy = Some("Parallel".to_owned());
    }
    let api = create(&client, &set).await;
    ready_pods(&client, NS, "app=sc", 3).await;

    api.patch(
        "sc",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("scale down");
    let left = eventually("only sc-0 left", || async {
        let pods = pods(&client, NS, "app=sc").await;
        (pods.len() == 1).then_some(pods)
    })
    .await;
    assert_eq!(left[0].metadata.name.as_deref(), Some("sc-0"));
    eventually("status.replicas 1", || async {
        (api.get("sc").await.ok()?.status?.replicas == 1).then_some(())
    })
    .await;

    api.patch(
        "sc",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .expect("scale up");
    let pods = ready_pods(&client, NS, "app=sc", 2).await;
    assert_eq!(pods[1].metadata.name.as_deref(), Some("sc-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn petsets_get_pods_owned_by_the_petset() {
    let (_sandbox, client) = start().await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps.k8s.appscode.com", "v1", "PetSet"),
        "petsets",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &resource);
    let petset: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps.k8s.appscode.com/v1",
        "kind": "PetSet",
        "metadata": {"name": "zk", "namespace": NS},
        "spec": {
            "replicas": 2,
            "serviceName": "zk-pods",
            "selector": {"matchLabels": {"app.kubernetes.io/instance": "zk"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/instance": "zk"}},
                "spec": {"containers": [{"name": "zookeeper", "image": "zookeeper:3.8"}]}
            }
        }
    }))
    .expect("valid PetSet");
    api.create(&PostParams::default(), &petset)
        .await
        .expect("create PetSet");
    let pods = ready_pods(&client, NS, "app.kubernetes.io/instance=zk", 2).await;
    let owner = &pods[0].metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.api_version.as_str()),
        ("PetSet", "apps.k8s.appscode.com/v1")
    );
    let status = eventually("PetSet status", || async {
        let object = api.get("zk").await.ok()?;
        (object.data.pointer("/status/readyReplicas") == Some(&json!(2))).then_some(object.data)
    })
    .await;
    assert!(text(&status, "/status/updateRevision").starts_with("zk-"));
    let revisions: Api<ControllerRevision> = Api::namespaced(client.clone(), NS);
    let listed = revisions
        .list(&ListParams::default().labels("app.kubernetes.io/instance=zk"))
        .await
        .expect("list revisions");
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_claim_templates_give_each_ordinal_a_volume_that_outlives_its_pod() {
    let (sandbox, client) = start().await;
    let mut set = statefulset("vol", 1, json!({"type": "RollingUpdate"}));
    let claim = json!({"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let mut value = serde_json::to_value(&set).expect("json");
    value["spec"]["volumeClaimTemplates"] = json!([claim]);
    value["spec"]["template"]["metadata"]["annotations"] = json!({
        "sandbox.dbops.io/process": "command",
        "sandbox.dbops.io/command": "echo started >> data/starts; exec sleep 600",
    });
    value["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "data", "mountPath": "/data"}]);
    set = serde_json::from_value(value).expect("set");
    create(&client, &set).await;
    let first = ready_pods(&client, NS, "app=vol", 1).await.remove(0);
    let volumes = first
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .expect("volumes");
    let claim_name = volumes[0]
        .persistent_volume_claim
        .as_ref()
        .map(|c| c.claim_name.clone());
    assert_eq!(claim_name.as_deref(), Some("data-vol-0"));
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(client.clone(), NS);
    let pvc = claims.get("data-vol-0").await.expect("claim created");
    assert_eq!(pvc.status.and_then(|s| s.phase).as_deref(), Some("Bound"));

    let starts = sandbox
        .state_dir()
        .join("persistent")
        .join(NS)
        .join("data-vol-0")
        .join("starts");
    let lines = |count: usize| {
        let starts = starts.clone();
        async move {
            let text = std::fs::read_to_string(&starts).ok()?;
            (text.lines().count() == count).then_some(())
        }
    };
    eventually("first start recorded on the volume", || lines(1)).await;
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), NS);
    pod_api
        .delete("vol-0", &DeleteParams::default())
        .await
        .expect("delete pod");
    eventually("second start recorded on the same volume", || lines(2)).await;
}
