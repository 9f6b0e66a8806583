//! patch-config against the sandbox: merge with the TLS shorthand on a
//! real zoo.cfg, Secrets, replace from a source object, remove-custom,
//! compensation restoring exactly, dry run writing nothing, restart
//! detection, refusal of content that does not parse.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dbops_plugin_patch_config::PatchConfig;
use dbops_plugin_sdk::protocol::{RunRequest, RunResponse, Target, Workload};
use dbops_plugin_sdk::testing::TestHost;
use dbops_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

const NS: &str = "db";
const ZOO_CFG: &str = include_str!("../../../crates/config-formats/tests/data/zoo.cfg");
const SERVER_CNF: &str = include_str!("../../../crates/config-formats/tests/data/50-server.cnf");

fn sandbox() -> Sandbox {
    Sandbox::start_background(SandboxConfig {
        controllers: false,
        ..SandboxConfig::default()
    })
    .expect("sandbox starts")
}

fn host(sandbox: &Sandbox) -> TestHost {
    TestHost::new(&sandbox.url(), Some(&sandbox.admin_token()))
}

fn target(engine: &str) -> Target {
    Target {
        engine: engine.into(),
        namespace: NS.into(),
        name: "db".into(),
        workload: Workload {
            kind: "StatefulSet".into(),
            name: "db".into(),
            api_version: "apps/v1".into(),
        },
        database: None,
    }
}

fn config_map(sandbox: &Sandbox, name: &str, data: Value) {
    sandbox
        .apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}, "data": data}))
        .expect("seed");
}

fn data(sandbox: &Sandbox, kind: &str, name: &str) -> Option<Value> {
    sandbox
        .get("v1", kind, NS, name)
        .expect("get")
        .map(|o| o["data"].clone())
}

fn request(engine: &str, step: &str, with: Value) -> RunRequest {
    TestHost::request(step, target(engine), with)
}

fn ok(response: RunResponse) -> Value {
    match response {
        RunResponse::Ok { outputs, .. } => serde_json::to_value(outputs).expect("json"),
        RunResponse::Error {
            reason, message, ..
        } => panic!("step failed: {reason}: {message}"),
    }
}

#[test]
fn tls_add_on_a_real_zoo_cfg_backs_up_and_compensation_restores_exactly() {
    let sandbox = sandbox();
    config_map(
        &sandbox,
        "zk-config",
        json!({"zoo.cfg": ZOO_CFG, "log4j.properties": "a=1\n"}),
    );
    let before = data(&sandbox, "ConfigMap", "zk-config");
    let host = host(&sandbox);
    let req = request(
        "zookeeper",
        "tls-config",
        json!({"config_map": "zk-config", "tls": "add"}),
    );

    let out = ok(host.run::<PatchConfig>(&req));
    assert_eq!(out["changed"], true);
    assert_eq!(out["restart_required"], true);
    assert_eq!(out["config_hash"].as_str().map(str::len), Some(64));
    assert!(out["diff_lines"].as_u64().unwrap_or(0) >= 10, "{out}");
    let after = data(&sandbox, "ConfigMap", "zk-config").expect("exists");
    let zoo = after["zoo.cfg"].as_str().expect("text");
    assert!(
        zoo.starts_with(ZOO_CFG),
        "existing lines and comments are kept"
    );
    assert!(
        zoo.contains("secureClientPort=2182\n")
            && zoo.contains("ssl.keyStore.location=/etc/dbops/tls/keystore.p12\n")
    );
    assert_eq!(after["log4j.properties"], "a=1\n");

    let backup = out["backup"].as_str().expect("name");
    assert_eq!(
        data(&sandbox, "ConfigMap", backup).expect("backup")["zoo.cfg"],
        ZOO_CFG
    );
    let defaults =
        data(&sandbox, "ConfigMap", "zk-config-dbops-config-defaults").expect("defaults");
    assert_eq!(Some(defaults), before);

    // A retry of the finished step changes nothing and reports the same outcome.
    let again = ok(host.run::<PatchConfig>(&req));
    assert_eq!(again["changed"], true);
    assert_eq!(again["config_hash"], out["config_hash"]);

    match host.compensate::<PatchConfig>(&req) {
        RunResponse::Ok { .. } => {}
        RunResponse::Error { message, .. } => panic!("compensate failed: {message}"),
    }
    assert_eq!(data(&sandbox, "ConfigMap", "zk-config"), before);
    let reasons: Vec<String> = host
        .events
        .lock()
        .expect("events")
        .iter()
        .map(|e| e.reason.clone())
        .collect();
    assert!(
        reasons.contains(&"ConfigPatched".into()) && reasons.contains(&"ConfigRestored".into())
    );
}

#[test]
fn dry_run_writes_nothing_and_logs_a_masked_diff() {
    let sandbox = sandbox();
    config_map(
        &sandbox,
        "kafka-config",
        json!({"server.properties": "listeners=PLAINTEXT://:9092\nssl.keystore.password=hunter2\n"}),
    );
    let before = sandbox
        .get("v1", "ConfigMap", NS, "kafka-config")
        .expect("get");
    let host = host(&sandbox);
    let mut req = request(
        "kafka",
        "config",
        json!({"config_map": "kafka-config", "set": {"ssl.keystore.password": "s3cret", "num.io.threads": 16}}),
    );
    req.dry_run = true;
    let out = ok(host.run::<PatchConfig>(&req));
    assert_eq!(out["changed"], true);
    assert_eq!(out["backup"], "");
    assert_eq!(
        sandbox
            .get("v1", "ConfigMap", NS, "kafka-config")
            .expect("get"),
        before
    );
    assert!(
        sandbox
            .get("v1", "ConfigMap", NS, "kafka-config-dbops-config-defaults")
            .expect("get")
            .is_none()
    );
    let logs: Vec<String> = host
        .logs
        .lock()
        .expect("logs")
        .iter()
        .map(|l| l.message.clone())
        .collect();
    let diff = logs
        .iter()
        .find(|l| l.contains("configuration diff"))
        .expect("diff logged");
    assert!(diff.contains("+num.io.threads=16"), "{diff}");
    assert!(
        diff.contains("ssl.keystore.password=**** (changed)"),
        "{diff}"
    );
    assert!(
        logs.iter()
            .all(|l| !l.contains("hunter2") && !l.contains("s3cret"))
    );
}

#[test]
fn secret_held_my_cnf_merge_and_dynamic_keys_need_no_restart() {
    let sandbox = sandbox();
    sandbox
        .apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "px-config", "namespace": NS},
            "data": {"my.cnf": STANDARD.encode(SERVER_CNF)}}))
        .expect("seed");
    let host = host(&sandbox);
    let req = request(
        "perconaxtradb",
        "tune",
        json!({"secret": "px-config", "set": {"mysqld": {"max_connections": 500}}}),
    );
    let out = ok(host.run::<PatchConfig>(&req));
    assert_eq!(out["changed"], true);
    assert_eq!(out["restart_required"], false, "max_connections is dynamic");
    let encoded = data(&sandbox, "Secret", "px-config").expect("exists")["my.cnf"]
        .as_str()
        .expect("b64")
        .to_owned();
    let text = String::from_utf8(STANDARD.decode(encoded).expect("base64")).expect("utf-8");
    assert!(text.contains("max_connections = 500\n"), "{text}");
    assert_eq!(
        text.len(),
        SERVER_CNF.len() + "max_connections = 500\n".len()
    );

    // Each step gets its own host: durable state is per step.
    let unchanged = ok(self::host(&sandbox).run::<PatchConfig>(&request(
        "perconaxtradb",
        "tune-again",
        json!({"secret": "px-config", "set": {"mysqld": {"max_connections": "500"}}}),
    )));
    assert_eq!(unchanged["changed"], false);
    assert_eq!(unchanged["backup"], "");

    let tls = ok(self::host(&sandbox).run::<PatchConfig>(&request(
        "perconaxtradb",
        "tls",
        json!({"secret": "px-config", "tls": "add"}),
    )));
    assert_eq!(tls["restart_required"], true);
}

#[test]
fn replace_from_a_source_object_then_remove_custom_goes_back_to_the_first_seen_content() {
    let sandbox = sandbox();
    config_map(&sandbox, "app", json!({"config.yaml": "a: 1\nb: [x]\n"}));
    config_map(&sandbox, "custom", json!({"wanted.yaml": "a: 2\n"}));
    let original = data(&sandbox, "ConfigMap", "app");
    let host = host(&sandbox);
    let replace = request(
        "generic",
        "replace",
        json!({
            "mode": "replace", "config_map": "app", "file": "config.yaml",
            "source": {"config_map": "custom", "key": "wanted.yaml"}
        }),
    );
    let out = ok(host.run::<PatchConfig>(&replace));
    assert_eq!(out["restart_required"], true);
    assert_eq!(
        data(&sandbox, "ConfigMap", "app").expect("exists")["config.yaml"],
        "a: 2\n"
    );
    let merge = request(
        "generic",
        "merge",
        json!({"config_map": "app", "files": {"extra.json": {"set": {"k": true}}}}),
    );
    ok(self::host(&sandbox).run::<PatchConfig>(&merge));
    assert_eq!(
        data(&sandbox, "ConfigMap", "app").expect("exists")["extra.json"],
        "{\n  \"k\": true\n}\n"
    );

    let remove = request(
        "generic",
        "remove",
        json!({"mode": "remove-custom", "config_map": "app", "files": {"config.yaml": {}, "extra.json": {}}}),
    );
    ok(self::host(&sandbox).run::<PatchConfig>(&remove));
    assert_eq!(data(&sandbox, "ConfigMap", "app"), original);
}

#[test]
fn content_that_does_not_parse_is_refused_before_anything_is_written() {
    let sandbox = sandbox();
    config_map(&sandbox, "px", json!({"my.cnf": "[mysqld]\n"}));
    let before = sandbox.get("v1", "ConfigMap", NS, "px").expect("get");
    let host = host(&sandbox);
    let req = request(
        "perconaxtradb",
        "bad",
        json!({"mode": "replace", "config_map": "px", "content": "[mysqld\nport=1\n"}),
    );
    match host.run::<PatchConfig>(&req) {
        RunResponse::Error {
            reason, message, ..
        } => {
            assert_eq!(reason, "InvalidConfigChange");
            assert!(message.contains("line 1"), "{message}");
        }
        RunResponse::Ok { .. } => panic!("accepted a broken file"),
    }
    let bad_value = request(
        "perconaxtradb",
        "bad2",
        json!({"config_map": "px", "set": {"mysqld": {"init": "a\nb"}}}),
    );
    assert!(matches!(
        self::host(&sandbox).run::<PatchConfig>(&bad_value),
        RunResponse::Error { .. }
    ));
    assert_eq!(
        sandbox.get("v1", "ConfigMap", NS, "px").expect("get"),
        before
    );
}

#[test]
fn validation_reports_every_problem_without_the_cluster() {
    let problems = TestHost::validate::<PatchConfig>(
        target("generic"),
        json!({"mode": "replace", "config_map": "a", "secret": "b", "file": "x.conf", "set": {"a": 1}}),
        &[],
    )
    .problems;
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&""), "{problems:?}");
    assert!(paths.contains(&"/format"), "{problems:?}");
    let ok = TestHost::validate::<PatchConfig>(
        target("zookeeper"),
        json!({"config_map": "zk", "tls": "add"}),
        &[],
    );
    assert!(ok.problems.is_empty(), "{:?}", ok.problems);
}

#[test]
fn a_write_after_a_concurrent_change_is_a_transient_conflict_not_a_lost_update() {
    use dbops_plugin_patch_config::config::ObjectKind;
    use dbops_plugin_patch_config::store::Store;
    use dbops_plugin_sdk::Context;

    let sandbox = sandbox();
    config_map(&sandbox, "zk-config", json!({"zoo.cfg": "tickTime=2000\n"}));
    let host = host(&sandbox);
    let ctx = Context::new(&host, request("zookeeper", "config", json!({})));
    let store = Store::new(&ctx, ObjectKind::ConfigMap);
    let read = store.read_existing("zk-config").expect("read");
    config_map(&sandbox, "zk-config", json!({"zoo.cfg": "tickTime=3000\n"}));
    let changes =
        std::collections::BTreeMap::from([("zoo.cfg".to_owned(), Some("tickTime=1\n".to_owned()))]);
    let err = store
        .write("zk-config", &changes, &read.resource_version)
        .expect_err("stale write refused");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        data(&sandbox, "ConfigMap", "zk-config").expect("exists")["zoo.cfg"],
        "tickTime=3000\n"
    );
}
