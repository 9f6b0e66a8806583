//! API semantics through the real kube client: discovery, CRUD, 409 on a
//! stale update, selectors and paging, the patch types, status
//! subresources, server-side apply, deletion with finalizers and grace,
//! garbage collection.

use crate::common;

use common::{api_error, api_only, client};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope};
use serde_json::json;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .expect("configmap")
}

#[tokio::test]
async fn discovery_lists_builtin_and_custom_resources() {
    let sb = api_only().await;
    let client = client(&sb, None).await;
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.major, "1");
    let discovery = Discovery::new(client).run().await.expect("discovery");
    let find = |group: &str, plural: &str| {
        discovery
            .groups()
            .filter(|g| g.name() == group)
            .flat_map(|g| g.recommended_resources())
            .find(|(ar, _)| ar.plural == plural)
    };
    let (sts, caps) = find("apps", "statefulsets").expect("statefulsets discovered");
    assert_eq!(sts.kind, "StatefulSet");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural == "statefulsets/status" || sub.plural == "status")
    );
    assert!(find("kubedb.com", "zookeepers").is_some());
    assert!(find("apps.k8s.appscode.com", "petsets").is_some());
    let (ns, caps) = find("", "namespaces").expect("namespaces");
    assert_eq!(
        (ns.kind.as_str(), caps.scope),
        ("Namespace", Scope::Cluster)
    );
}

#[tokio::test]
async fn stale_update_is_a_409_conflict() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "t");
    let created = cms
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let mut first = created.clone();
    first.data = Some([("k".to_string(), "1".to_string())].into());
    cms.replace("a", &PostParams::default(), &first)
        .await
        .expect("first update");
    let mut stale = created;
    stale.data = Some([("k".to_string(), "2".to_string())].into());
    let (code, reason, message) = api_error(
        cms.replace("a", &PostParams::default(), &stale)
            .await
            .expect_err("stale"),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        message.contains("the object has been modified"),
        "{message}"
    );
    let (code, reason, _) = api_error(
        cms.create(&PostParams::default(), &cm("a", json!({})))
            .await
            .expect_err("exists"),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    let (code, reason, message) = api_error(cms.get("missing").await.expect_err("missing"));
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", "configmaps \"missing\" not found")
    );
}

#[tokio::test]
async fn label_and_field_selectors_and_paging() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "sel");
    for (name, app, tier) in [
        ("a", "zk", "db"),
        ("b", "kafka", "db"),
        ("c", "zk", "web"),
        ("d", "druid", "db"),
    ] {
        cms.create(
            &PostParams::default(),
            &cm(name, json!({"app": app, "tier": tier})),
        )
        .await
        .expect("create");
    }
    let names = |list: kube::core::ObjectList<ConfigMap>| {
        list.items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("app=zk"))
                .await
                .expect("eq")
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("app in (kafka,druid),tier=db"))
                .await
                .expect("in")
        ),
        ["b", "d"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("app notin (zk),tier!=web"))
                .await
                .expect("notin")
        ),
        ["b", "d"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().fields("metadata.name=c"))
                .await
                .expect("field")
        ),
        ["c"]
    );
    let page1 = cms
        .list(&ListParams::default().limit(3))
        .await
        .expect("page 1");
    let token = page1.metadata.continue_.clone().expect("continue token");
    assert_eq!(names(page1), ["a", "b", "c"]);
    let page2 = cms
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(names(page2), ["d"]);
    let all: Api<ConfigMap> = Api::all(client(&sb, None).await);
    assert_eq!(
        all.list(&ListParams::default().labels("tier=web"))
            .await
            .expect("all ns")
            .items
            .len(),
        1
    );
    let by_name = all
        .list(&ListParams::default().fields("metadata.name=c"))
        .await
        .expect("name across namespaces");
    assert_eq!(names(by_name), ["c"]);
}

#[tokio::test]
async fn patches_strategic_merge_json_and_apply() {
    let sb = api_only().await;
    let pods: Api<Pod> = Api::namespaced(client(&sb, None).await, "p");
    let pod: Pod =
        serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "sidecar", "image": "side:1"}
        ]}}))
        .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create");
    let patched = pods
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"containers": [
                {"name": "sidecar", "image": "side:2"},
                {"name": "app", "env": [{"name": "B", "value": "2"}]}
            ]}})),
        )
        .await
        .expect("strategic patch");
    let containers = patched.spec.expect("spec").containers;
    assert_eq!(
        containers
            .iter()
            .map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or_default()))
            .collect::<Vec<_>>(),
        [("app", "app:1"), ("sidecar", "side:2")]
    );
    let env: Vec<_> = containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(env, ["A", "B"], "env merged by name");
    let merged = pods
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(merged.metadata.labels.expect("labels")["x"], "1");
    let json_patched = pods
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([
                    {"op": "replace", "path": "/metadata/labels/x", "value": "2"}
                ]))
                .expect("json patch"),
            ),
        )
        .await
        .expect("json patch");
    assert_eq!(json_patched.metadata.labels.expect("labels")["x"], "2");

    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "p");
    let ssa = PatchParams::apply("test-manager");
    let applied = cms
        .patch("cfg", &ssa, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}})))
        .await
        .expect("apply creates");
    assert_eq!(applied.data.as_ref().map(|d| d.len()), Some(2));
    let reapplied = cms
        .patch("cfg", &ssa, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "3"}})))
        .await
        .expect("apply updates");
    assert_eq!(
        reapplied.data,
        Some([("a".to_string(), "3".to_string())].into()),
        "field dropped by the manager is removed"
    );
    assert!(
        reapplied
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some("test-manager"))
    );
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "4"}});
    let (code, reason, message) = api_error(
        cms.patch("cfg", &PatchParams::apply("other"), &Patch::Apply(&other))
            .await
            .expect_err("conflict"),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        message.contains("conflict with \"test-manager\": .data.a"),
        "{message}"
    );
    let forced = cms
        .patch(
            "cfg",
            &PatchParams::apply("other").force(),
            &Patch::Apply(&other),
        )
        .await
        .expect("forced apply");
    assert_eq!(forced.data.expect("data")["a"], "4");
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let sb = api_only().await;
    let sts: Api<StatefulSet> = Api::namespaced(client(&sb, None).await, "db");
    let obj: StatefulSet = serde_json::from_value(json!({"metadata": {"name": "zk"}, "spec": {
        "replicas": 3, "serviceName": "zk", "selector": {"matchLabels": {"app": "zk"}},
        "template": {"metadata": {"labels": {"app": "zk"}}, "spec": {"containers": [{"name": "zk", "image": "zk"}]}}
    }}))
    .expect("sts");
    let created = sts
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    let status = sts
        .patch_status("zk", &PatchParams::default(), &Patch::Merge(json!({"status": {"replicas": 3, "observedGeneration": 1}, "spec": {"replicas": 9}})))
        .await
        .expect("status patch");
    assert_eq!(
        (
            status.metadata.generation,
            status.spec.as_ref().and_then(|s| s.replicas)
        ),
        (Some(1), Some(3))
    );
    let scaled = sts
        .patch(
            "zk",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}, "status": {"replicas": 0}})),
        )
        .await
        .expect("spec patch");
    assert_eq!(scaled.metadata.generation, Some(2));
    assert_eq!(
        scaled.status.and_then(|s| s.observed_generation),
        Some(1),
        "status kept by a main-resource patch"
    );
    let labelled = sts
        .patch(
            "zk",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .expect("metadata patch");
    assert_eq!(
        labelled.metadata.generation,
        Some(2),
        "metadata changes do not bump generation"
    );
}

#[tokio::test]
async fn finalizers_delay_deletion_and_owners_collect_dependents() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "fin");
    let mut guarded = cm("guarded", json!({}));
    guarded.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    let owner = cms
        .create(&PostParams::default(), &guarded)
        .await
        .expect("create");
    let mut dep = cm("dependent", json!({}));
    dep.metadata.owner_references = Some(vec![serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "name": "guarded", "uid": owner.metadata.uid.clone().expect("uid")
    })).expect("owner ref")]);
    cms.create(&PostParams::default(), &dep)
        .await
        .expect("dependent");
    cms.delete("guarded", &DeleteParams::default())
        .await
        .expect("delete");
    let terminating = cms.get("guarded").await.expect("still there");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert!(cms.get("dependent").await.is_ok());
    cms.patch(
        "guarded",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("drop finalizer");
    assert_eq!(
        api_error(cms.get("guarded").await.expect_err("gone")).0,
        404
    );
    assert_eq!(
        api_error(cms.get("dependent").await.expect_err("collected")).0,
        404
    );

    // Preconditions and deletecollection.
    cms.create(&PostParams::default(), &cm("x1", json!({"batch": "1"})))
        .await
        .expect("x1");
    cms.create(&PostParams::default(), &cm("x2", json!({"batch": "1"})))
        .await
        .expect("x2");
    let wrong_uid = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("nope".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    assert_eq!(
        api_error(
            cms.delete("x1", &wrong_uid)
                .await
                .expect_err("precondition")
        )
        .0,
        409
    );
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("batch=1"),
    )
    .await
    .expect("deletecollection");
    assert!(
        cms.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn bound_pods_terminate_with_grace_and_go_with_grace_zero() {
    let sb = api_only().await;
    let pods: Api<Pod> = Api::namespaced(client(&sb, None).await, "g");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"nodeName": "sandbox-node", "containers": [{"name": "c", "image": "i"}]}})).expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create");
    pods.delete("p", &DeleteParams::default())
        .await
        .expect("graceful delete");
    let terminating = pods.get("p").await.expect("terminating");
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    pods.delete(
        "p",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .expect("force");
    assert_eq!(api_error(pods.get("p").await.expect_err("gone")).0, 404);
    let unbound: Pod = serde_json::from_value(
        json!({"metadata": {"name": "u"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .expect("pod");
    pods.create(&PostParams::default(), &unbound)
        .await
        .expect("create");
    pods.delete("u", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(
        api_error(pods.get("u").await.expect_err("unbound pods go at once")).0,
        404
    );
}

#[test]
fn background_sandbox_seeds_and_reads_synchronously() {
    let sb = dbops_sandbox::Sandbox::start_background(dbops_sandbox::SandboxConfig {
        controllers: false,
        ..Default::default()
    })
    .expect("start");
    sb.apply(json!({"apiVersion": "kubedb.com/v1", "kind": "ZooKeeper", "metadata": {"name": "zk", "namespace": "demo"},
        "spec": {"replicas": 3}, "status": {"phase": "Ready"}}))
        .expect("seed");
    let zk = sb
        .get("kubedb.com/v1", "ZooKeeper", "demo", "zk")
        .expect("get")
        .expect("exists");
    assert_eq!(zk["status"]["phase"], "Ready");
    sb.apply(json!({"apiVersion": "kubedb.com/v1", "kind": "ZooKeeper", "metadata": {"name": "zk", "namespace": "demo"}, "spec": {"replicas": 5}}))
        .expect("replace");
    let zk = sb
        .get("kubedb.com/v1", "ZooKeeper", "demo", "zk")
        .expect("get")
        .expect("exists");
    assert_eq!(
        (
            zk["spec"]["replicas"].as_i64(),
            zk["metadata"]["generation"].as_i64()
        ),
        (Some(5), Some(2))
    );
    assert!(
        sb.get("v1", "Namespace", "", "demo").expect("ns").is_some(),
        "namespace exists implicitly"
    );
    assert!(matches!(
        sb.apply(json!({"apiVersion": "x/v1", "kind": "Nope", "metadata": {"name": "n"}})),
        Err(dbops_sandbox::Error::UnknownKind { .. })
    ));
    sb.shutdown();
}

#[tokio::test]
async fn scale_subresource_uid_preconditions_and_namespace_deletion() {
    let sb = api_only().await;
    let client = client(&sb, None).await;
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "scale");
    let obj: StatefulSet = serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {
        "replicas": 1, "serviceName": "s", "selector": {"matchLabels": {"app": "s"}},
        "template": {"metadata": {"labels": {"app": "s"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    }}))
    .expect("sts");
    sts.create(&PostParams::default(), &obj)
        .await
        .expect("create");
    let scale = sts
        .patch_scale(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .expect("scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(4));
    assert_eq!(
        sts.get("s")
            .await
            .expect("get")
            .spec
            .and_then(|s| s.replicas),
        Some(4)
    );
    assert_eq!(
        sts.get_scale("s")
            .await
            .expect("get scale")
            .status
            .map(|s| s.selector),
        Some(Some("app=s".into()))
    );

    let wrong_uid =
        Patch::Merge(json!({"metadata": {"uid": "not-the-uid"}, "spec": {"replicas": 2}}));
    let (code, _, message) = api_error(
        sts.patch("s", &PatchParams::default(), &wrong_uid)
            .await
            .expect_err("uid precondition"),
    );
    assert_eq!(code, 409);
    assert!(
        message.contains("Precondition failed: UID in precondition"),
        "{message}"
    );

    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    assert!(
        namespaces.get("scale").await.is_ok(),
        "namespace created with its first object"
    );
    namespaces
        .delete("scale", &DeleteParams::default())
        .await
        .expect("delete namespace");
    assert_eq!(
        api_error(sts.get("s").await.expect_err("contents deleted")).0,
        404
    );
}
