//! pause and resume against the sandbox API server: every preset, exact
//! restoration (annotations, labels, spec and status compared as JSON),
//! refusal of a target paused by someone else, idempotence, compensation
//! and dry run.

use dbops_pausing::{Pause, Resume};
use dbops_plugin_sdk::protocol::{DatabaseRef, RunRequest, RunResponse, Target, Workload};
use dbops_plugin_sdk::testing::TestHost;
use dbops_sandbox::{ResourceDef, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const NS: &str = "db";

fn sandbox() -> Sandbox {
    let strimzi = ResourceDef {
        group: "kafka.strimzi.io".into(),
        version: "v1beta2".into(),
        plural: "kafkas".into(),
        singular: "kafka".into(),
        kind: "Kafka".into(),
        namespaced: true,
        short_names: vec![],
        status: true,
        scale: false,
        builtin: false,
        categories: vec![],
    };
    let config = SandboxConfig {
        // No controllers: nothing but the steps changes the objects.
        controllers: false,
        custom_resources: vec![strimzi],
        ..SandboxConfig::default()
    };
    Sandbox::start_background(config).expect("sandbox starts")
}

fn host(sandbox: &Sandbox) -> TestHost {
    TestHost::new(&sandbox.url(), Some(&sandbox.admin_token()))
}

fn target(database: Option<DatabaseRef>) -> Target {
    Target {
        engine: "zookeeper".into(),
        namespace: NS.into(),
        name: "zk".into(),
        workload: Workload {
            kind: "StatefulSet".into(),
            name: "zk".into(),
            api_version: "apps/v1".into(),
        },
        database,
    }
}

fn kubedb_zk() -> Option<DatabaseRef> {
    Some(DatabaseRef {
        api_version: "kubedb.com/v1".into(),
        kind: "ZooKeeper".into(),
        plural: "zookeepers".into(),
        name: "zk".into(),
    })
}

fn statefulset(annotations: Option<Value>) -> Value {
    let mut metadata = json!({"name": "zk", "namespace": NS, "labels": {"app": "zk"}});
    if let Some(a) = annotations {
        metadata["annotations"] = a;
    }
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": metadata,
        "spec": {
            "replicas": 3, "serviceName": "zk",
            "selector": {"matchLabels": {"app": "zk"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {"metadata": {"labels": {"app": "zk"}}, "spec": {"containers": [{"name": "zk", "image": "zookeeper:3.8"}]}}
        }
    })
}

/// The parts of an object a pause may touch, for exact comparison.
fn snapshot(sandbox: &Sandbox, api_version: &str, kind: &str) -> Value {
    let object = sandbox
        .get(api_version, kind, NS, "zk")
        .expect("get")
        .expect("exists");
    json!({
        "annotations": object.pointer("/metadata/annotations"),
        "labels": object.pointer("/metadata/labels"),
        "spec": object.get("spec"),
        "status": object.get("status"),
    })
}

fn request(target: Target, with: Value) -> RunRequest {
    TestHost::request("pause", target, with)
}

fn ok(response: RunResponse) -> Value {
    match response {
        RunResponse::Ok { outputs, .. } => serde_json::to_value(outputs).expect("json"),
        RunResponse::Error {
            reason, message, ..
        } => panic!("step failed: {reason}: {message}"),
    }
}

fn error_reason(response: RunResponse) -> String {
    match response {
        RunResponse::Ok { outputs, .. } => panic!("step succeeded unexpectedly: {outputs:?}"),
        RunResponse::Error { reason, .. } => reason,
    }
}

#[test]
fn statefulset_pause_then_resume_restores_the_object_exactly() {
    let sandbox = sandbox();
    sandbox
        .apply(statefulset(Some(json!({"keep": "me"}))))
        .expect("seed");
    let before = snapshot(&sandbox, "apps/v1", "StatefulSet");
    let host = host(&sandbox);
    let req = request(target(None), json!({"on_delete": true}));

    let out = ok(host.run::<Pause>(&req));
    assert_eq!(out["paused"], true);
    let paused = sandbox
        .get("apps/v1", "StatefulSet", NS, "zk")
        .expect("get")
        .expect("exists");
    assert_eq!(
        paused.pointer("/metadata/annotations/dbops.io~1paused-by"),
        Some(&json!("test-run"))
    );
    assert_eq!(
        paused.pointer("/spec/updateStrategy"),
        Some(&json!({"type": "OnDelete"}))
    );
    assert_eq!(
        paused.pointer("/metadata/annotations/keep"),
        Some(&json!("me"))
    );

    // Idempotent: a retried pause of the same run changes nothing.
    ok(host.run::<Pause>(&req));
    let out = ok(host.run::<Resume>(&req));
    assert_eq!(out["resumed"], true);
    assert_eq!(snapshot(&sandbox, "apps/v1", "StatefulSet"), before);
    // Idempotent: a second resume finds nothing to do.
    assert_eq!(ok(host.run::<Resume>(&req))["resumed"], false);
    let reasons: Vec<String> = host
        .events
        .lock()
        .expect("events")
        .iter()
        .map(|e| e.reason.clone())
        .collect();
    assert!(
        reasons.contains(&"Paused".to_owned()) && reasons.contains(&"Resumed".to_owned()),
        "{reasons:?}"
    );
}

#[test]
fn an_object_without_annotations_gets_none_back() {
    let sandbox = sandbox();
    sandbox.apply(statefulset(None)).expect("seed");
    let before = snapshot(&sandbox, "apps/v1", "StatefulSet");
    assert_eq!(before["annotations"], Value::Null);
    let host = host(&sandbox);
    let req = request(target(None), json!({}));
    ok(host.run::<Pause>(&req));
    // Compensation (rollback) undoes the pause like resume does.
    match host.compensate::<Pause>(&req) {
        RunResponse::Ok { .. } => {}
        RunResponse::Error { message, .. } => panic!("compensate failed: {message}"),
    }
    assert_eq!(snapshot(&sandbox, "apps/v1", "StatefulSet"), before);
}

#[test]
fn kubedb_is_paused_by_its_status_condition_and_restored_exactly() {
    let sandbox = sandbox();
    sandbox
        .apply(json!({
            "apiVersion": "kubedb.com/v1", "kind": "ZooKeeper",
            "metadata": {"name": "zk", "namespace": NS},
            "spec": {"version": "3.8.3", "replicas": 3},
            "status": {"phase": "Ready", "conditions": [
                {"type": "Ready", "status": "True", "reason": "AllReplicasReady", "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ]}
        }))
        .expect("seed");
    let before = snapshot(&sandbox, "kubedb.com/v1", "ZooKeeper");
    let host = host(&sandbox);
    let req = request(target(kubedb_zk()), json!({}));
    assert_eq!(ok(host.run::<Pause>(&req))["preset"], "kubedb");
    let paused = sandbox
        .get("kubedb.com/v1", "ZooKeeper", NS, "zk")
        .expect("get")
        .expect("exists");
    let conditions = paused
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .expect("conditions");
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "DatabasePaused" && c["status"] == "True"),
        "{conditions:?}"
    );
    ok(host.run::<Resume>(&req));
    assert_eq!(snapshot(&sandbox, "kubedb.com/v1", "ZooKeeper"), before);
}

#[test]
fn a_database_paused_by_kubedb_is_refused_untouched() {
    let sandbox = sandbox();
    sandbox
        .apply(json!({
            "apiVersion": "kubedb.com/v1", "kind": "ZooKeeper",
            "metadata": {"name": "zk", "namespace": NS},
            "spec": {"version": "3.8.3"},
            "status": {"conditions": [{"type": "DatabasePaused", "status": "True", "reason": "DatabasePaused", "message": "Paused by KubeDB CLI tool"}]}
        }))
        .expect("seed");
    let before = snapshot(&sandbox, "kubedb.com/v1", "ZooKeeper");
    let host = host(&sandbox);
    let req = request(target(kubedb_zk()), json!({}));
    assert_eq!(error_reason(host.run::<Pause>(&req)), "PausedByAnother");
    // resume (always = true) after the failed pause must not unpause it either.
    assert_eq!(ok(host.run::<Resume>(&req))["resumed"], false);
    assert_eq!(snapshot(&sandbox, "kubedb.com/v1", "ZooKeeper"), before);
}

#[test]
fn a_pause_by_another_run_is_neither_taken_over_nor_undone() {
    let sandbox = sandbox();
    sandbox.apply(statefulset(None)).expect("seed");
    let host = host(&sandbox);
    let mut first = request(target(None), json!({}));
    first.run_id = "other-run".into();
    ok(host.run::<Pause>(&first));
    let paused = snapshot(&sandbox, "apps/v1", "StatefulSet");

    let ours = request(target(None), json!({}));
    assert_eq!(error_reason(host.run::<Pause>(&ours)), "PausedByAnother");
    assert_eq!(ok(host.run::<Resume>(&ours))["resumed"], false);
    assert_eq!(snapshot(&sandbox, "apps/v1", "StatefulSet"), paused);

    // Releasing it explicitly by its run id works.
    let release = request(target(None), json!({"run_id": "other-run"}));
    assert_eq!(ok(host.run::<Resume>(&release))["resumed"], true);
    assert_eq!(
        snapshot(&sandbox, "apps/v1", "StatefulSet")["annotations"],
        Value::Null
    );
}

#[test]
fn strimzi_preset_and_dry_run() {
    let sandbox = sandbox();
    sandbox
        .apply(json!({
            "apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka",
            "metadata": {"name": "zk", "namespace": NS, "annotations": {"strimzi.io/kraft": "enabled"}},
            "spec": {"kafka": {"replicas": 3}}
        }))
        .expect("seed");
    let before = snapshot(&sandbox, "kafka.strimzi.io/v1beta2", "Kafka");
    let host = host(&sandbox);
    let database = Some(DatabaseRef {
        api_version: "kafka.strimzi.io/v1beta2".into(),
        kind: "Kafka".into(),
        plural: "kafkas".into(),
        name: "zk".into(),
    });
    let mut dry = request(target(database.clone()), json!({}));
    dry.dry_run = true;
    assert_eq!(ok(host.run::<Pause>(&dry))["paused"], false);
    assert_eq!(
        snapshot(&sandbox, "kafka.strimzi.io/v1beta2", "Kafka"),
        before
    );

    let req = request(target(database), json!({}));
    ok(host.run::<Pause>(&req));
    let paused = snapshot(&sandbox, "kafka.strimzi.io/v1beta2", "Kafka");
    assert_eq!(
        paused["annotations"]["strimzi.io/pause-reconciliation"],
        "true"
    );
    ok(host.run::<Resume>(&req));
    assert_eq!(
        snapshot(&sandbox, "kafka.strimzi.io/v1beta2", "Kafka"),
        before
    );
}

#[test]
fn validation_explains_missing_settings_without_the_cluster() {
    let problems =
        TestHost::validate::<Pause>(target(kubedb_zk()), json!({"preset": "merge-patch"}), &[])
            .problems;
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, "/patch");
    let problems =
        TestHost::validate::<Pause>(target(kubedb_zk()), json!({"on_delete": true}), &[]).problems;
    assert_eq!(problems[0].path, "/on_delete");
}

#[test]
fn merge_patch_preset_restores_the_spec_and_refuses_an_object_already_holding_it() {
    let sandbox = sandbox();
    let druid = |suspend: Option<bool>| {
        let mut spec = json!({"version": "28.0.1", "topology": {"routers": {"replicas": 1}}});
        if let Some(s) = suspend {
            spec["suspend"] = json!(s);
        }
        json!({"apiVersion": "kubedb.com/v1", "kind": "Druid", "metadata": {"name": "zk", "namespace": NS}, "spec": spec})
    };
    sandbox.apply(druid(Some(false))).expect("seed");
    let before = snapshot(&sandbox, "kubedb.com/v1", "Druid");
    let host = host(&sandbox);
    let with = json!({
        "preset": "merge-patch",
        "resource": {"api_version": "kubedb.com/v1", "kind": "Druid", "plural": "druids", "name": "zk"},
        "patch": {"spec": {"suspend": true}}
    });
    let req = request(target(None), with.clone());
    assert_eq!(ok(host.run::<Pause>(&req))["preset"], "merge-patch");
    assert_eq!(
        snapshot(&sandbox, "kubedb.com/v1", "Druid")["spec"]["suspend"],
        true
    );
    ok(host.run::<Resume>(&req));
    assert_eq!(snapshot(&sandbox, "kubedb.com/v1", "Druid"), before);

    // Suspended by someone else: refused, untouched.
    sandbox
        .apply(druid(Some(true)))
        .expect("suspended elsewhere");
    let suspended = snapshot(&sandbox, "kubedb.com/v1", "Druid");
    let other = self::host(&sandbox);
    assert_eq!(
        error_reason(other.run::<Pause>(&request(target(None), with))),
        "PausedByAnother"
    );
    assert_eq!(snapshot(&sandbox, "kubedb.com/v1", "Druid"), suspended);
}
