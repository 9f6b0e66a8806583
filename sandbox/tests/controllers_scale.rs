//! Many StatefulSets at once: every pod of every set becomes Ready and every
//! set reports it (the controllers keep up under load; no timing asserted,
//! the time taken is printed). `SANDBOX_SCALE_SETS` sets the number of sets
//! (default 40, 3 pods each).

use crate::controllers_common;

use std::time::Instant;

use controllers_common::{eventually, start};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_statefulsets_all_become_ready() {
    let sets: usize = std::env::var("SANDBOX_SCALE_SETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let (_sandbox, client) = start().await;
    let started = Instant::now();
    for i in 0..sets {
        let namespace = format!("ns-{}", i % 10);
        let name = format!("db-{i}");
        let set: StatefulSet = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 3, "serviceName": name, "podManagementPolicy": if i % 2 == 0 { "Parallel" } else { "OrderedReady" },
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name, "load": "yes"}},
                             "spec": {"containers": [{"name": "db", "image": "db"}]}}
            }
        }))
        .expect("valid set");
        Api::<StatefulSet>::namespaced(client.clone(), &namespace)
            .create(&PostParams::default(), &set)
            .await
            .expect("create set");
    }
    let all_sets: Api<StatefulSet> = Api::all(client.clone());
    eventually("every set reporting 3 ready replicas", || async {
        let list = all_sets.list(&ListParams::default()).await.ok()?;
        let ready = list
            .items
            .iter()
            .filter(|s| s.status.as_ref().and_then(|s| s.ready_replicas) == Some(3))
            .count();
        (ready == sets).then_some(())
    })
    .await;
    let pods: Api<Pod> = Api::all(client.clone());
    let listed = pods
        .list(&ListParams::default().labels("load=yes"))
        .await
        .expect("list pods");
    assert_eq!(listed.items.len(), sets * 3);
    println!(
        "{sets} StatefulSets x 3 pods Ready in {:?}",
        started.elapsed()
    );
}
