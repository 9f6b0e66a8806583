//! Authentication, RBAC and fault injection through the real kube client.

use crate::common;

use std::time::{Duration, Instant};

use common::{api_error, api_only, client, config};
use dbops_sandbox::faults::{FaultAction, FaultRule};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).expect("configmap")
}

#[tokio::test]
async fn unknown_tokens_are_401() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, Some("not-a-token")).await, "default");
    let (code, reason, _) = api_error(cms.list(&ListParams::default()).await.expect_err("401"));
    assert_eq!((code, reason.as_str()), (401, "Unauthorized"));
}

#[tokio::test]
async fn rbac_allows_what_a_role_grants_and_denies_the_rest() {
    let sb = api_only().await;
    sb.apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "pod-reader", "namespace": "app"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch"], "resourceNames": ["p"]}
        ]}))
    .expect("role");
    sb.apply(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "deploy-reads-pods", "namespace": "app"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "deploy", "namespace": "app"}]}),
    )
    .expect("binding");
    sb.apply(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "app"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .expect("pod");
    let token = sb.service_account_token("app", "deploy");
    let pods: Api<Pod> = Api::namespaced(client(&sb, Some(&token)).await, "app");
    pods.get("p").await.expect("get allowed");
    assert_eq!(
        pods.list(&ListParams::default())
            .await
            .expect("list allowed")
            .items
            .len(),
        1
    );
    pods.patch_status(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .expect("pods/status patch allowed for the named pod");
    let (code, reason, message) = api_error(
        pods.delete("p", &Default::default())
            .await
            .expect_err("delete denied"),
    );
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        "pods \"p\" is forbidden: User \"system:serviceaccount:app:deploy\" cannot delete resource \"pods\" in API group \"\" in the namespace \"app\""
    );
    let elsewhere: Api<Pod> = Api::namespaced(client(&sb, Some(&token)).await, "other");
    let (code, _, message) = api_error(
        elsewhere
            .list(&ListParams::default())
            .await
            .expect_err("other namespace"),
    );
    assert_eq!(code, 403);
    assert!(message.starts_with("pods is forbidden: User \"system:serviceaccount:app:deploy\" cannot list resource \"pods\""), "{message}");
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, Some(&token)).await, "app");
    assert_eq!(
        api_error(
            cms.create(&PostParams::default(), &cm("c"))
                .await
                .expect_err("create denied")
        )
        .0,
        403
    );

    // A ClusterRoleBinding to the built-in `edit` role grants the rest.
    sb.apply(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "deploy-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "deploy", "namespace": "app"}]}),
    )
    .expect("cluster binding");
    cms.create(&PostParams::default(), &cm("c"))
        .await
        .expect("create allowed now");
}

#[tokio::test]
async fn fault_latency_and_server_errors() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "f");
    cms.create(&PostParams::default(), &cm("a"))
        .await
        .expect("create");
    let faults = sb.faults();
    let slow = faults.add(
        FaultRule::new(FaultAction::Latency(Duration::from_millis(200)))
            .verb("get")
            .resource("configmaps")
            .times(1),
    );
    let started = Instant::now();
    cms.get("a").await.expect("slow get");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the injected latency was applied"
    );
    assert_eq!(faults.fired(slow), 1);
    faults.add(
        FaultRule::new(FaultAction::ServerError)
            .verb("list")
            .times(1),
    );
    let (code, reason, _) = api_error(cms.list(&ListParams::default()).await.expect_err("500"));
    assert_eq!((code, reason.as_str()), (500, "InternalError"));
    cms.list(&ListParams::default()).await.expect("only once");
}

#[tokio::test]
async fn fault_429_carries_retry_after_and_kube_retries_it() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "f");
    cms.create(&PostParams::default(), &cm("a"))
        .await
        .expect("create");
    let faults = sb.faults();
    let id = faults.add(
        FaultRule::new(FaultAction::TooManyRequests {
            retry_after_secs: 0,
        })
        .verb("get")
        .times(2),
    );
    cms.get("a")
        .await
        .expect("kube's default retry policy honours Retry-After");
    assert_eq!(faults.fired(id), 2);
    let mut no_retry = config(&sb, None).await;
    no_retry.default_retry = false;
    let raw: Api<ConfigMap> =
        Api::namespaced(kube::Client::try_from(no_retry).expect("client"), "f");
    faults.add(
        FaultRule::new(FaultAction::TooManyRequests {
            retry_after_secs: 3,
        })
        .verb("get")
        .times(1),
    );
    let (code, reason, _) = api_error(raw.get("a").await.expect_err("429"));
    assert_eq!((code, reason.as_str()), (429, "TooManyRequests"));
}

#[tokio::test]
async fn fault_conflicts_on_updates_and_patches_only() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "f");
    cms.create(&PostParams::default(), &cm("a"))
        .await
        .expect("create");
    sb.faults().add(
        FaultRule::new(FaultAction::Conflict)
            .resource("configmaps")
            .name("a")
            .times(1),
    );
    cms.get("a").await.expect("reads unaffected");
    let patch = Patch::Merge(json!({"data": {"x": "1"}}));
    assert_eq!(
        api_error(
            cms.patch("a", &PatchParams::default(), &patch)
                .await
                .expect_err("409")
        )
        .0,
        409
    );
    cms.patch("a", &PatchParams::default(), &patch)
        .await
        .expect("second patch passes");
}

#[tokio::test]
async fn fault_closes_watch_streams_after_n_events() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "f");
    for i in 0..5 {
        cms.create(&PostParams::default(), &cm(&format!("c{i}")))
            .await
            .expect("create");
    }
    sb.faults().add(
        FaultRule::new(FaultAction::CloseWatch {
            after_events: Some(2),
            after: None,
        })
        .resource("configmaps"),
    );
    let stream = cms
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch");
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .expect("stream ends");
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| matches!(e, Ok(WatchEvent::Added(_)))));
}

#[tokio::test]
async fn fault_closes_watch_streams_after_a_duration() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "f");
    let id = sb.faults().add(
        FaultRule::new(FaultAction::CloseWatch {
            after_events: None,
            after: Some(Duration::from_millis(300)),
        })
        .verb("watch"),
    );
    let stream = cms
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch");
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .expect("the stream is closed by the fault");
    assert!(events.iter().all(Result::is_ok));
    assert_eq!(sb.faults().fired(id), 1);
}

#[tokio::test]
async fn faults_from_config_and_system_identity_is_exempt() {
    let config = dbops_sandbox::SandboxConfig {
        controllers: false,
        faults: vec![FaultRule::new(FaultAction::ServerError).verb("create")],
        ..Default::default()
    };
    let sb = dbops_sandbox::Sandbox::start(config).await.expect("start");
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "f");
    assert_eq!(
        api_error(
            cms.create(&PostParams::default(), &cm("a"))
                .await
                .expect_err("500")
        )
        .0,
        500
    );
    // Seeding through the Rust API is not an HTTP request: unaffected.
    sb.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seeded", "namespace": "f"}})).expect("seed");
    assert!(cms.get("seeded").await.is_ok());
}
