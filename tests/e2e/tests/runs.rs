//! Runs that do not go as planned, and the demo: a pipeline that fails
//! after it changed something is rolled back (exit 3, Secrets removed again,
//! target resumed); `dbops demo` rotates its ensemble's certificates.

use dbops_e2e::world::Engine;
use dbops_e2e::{Env, cluster, rbac};
use serde_json::Value;

#[test]
fn a_failed_add_tls_is_rolled_back_and_the_target_resumed() {
    let env = Env::start();
    let engine = Engine::named("kafka");
    let namespace = "rollback";
    for object in engine.objects(namespace) {
        env.sandbox.apply(object).expect("fake database created");
    }
    // The ServiceAccount may not patch ConfigMaps: the certificate step
    // succeeds, the configuration step fails (the journal needs only update).
    let mut rules = rbac::rules();
    for rule in &mut rules {
        if rule["resources"][0] == "configmaps" {
            let verbs: Vec<Value> = rule["verbs"].as_array().cloned().unwrap_or_default();
            rule["verbs"] = Value::Array(verbs.into_iter().filter(|v| v != "patch").collect());
        }
    }
    rbac::apply_with_rules(&env.sandbox, namespace, rules);
    let kubeconfig = env.service_account_kubeconfig(namespace, rbac::SERVICE_ACCOUNT);
    cluster::wait_ready(&env.admin_kubeconfig, namespace, engine.name);
    let config_before = cluster::config_file(&env.sandbox, namespace, "kafka-config", engine.file);

    let mut sets = engine.sets(namespace, "add-tls");
    sets.push("create_ca=true".into());
    let outcome = env.run(
        &engine.pipeline("add-tls"),
        &kubeconfig,
        "failing-add",
        &sets,
    );
    outcome.expect_code(3, "a failed step with on_failure = rollback exits 3");

    let journal = cluster::journal(&env.sandbox, namespace, "failing-add");
    assert_eq!(journal["outcome"], "failed-rolled-back", "{journal}");
    assert_eq!(cluster::step(&journal, "config")["state"], "failed");
    assert_eq!(cluster::step(&journal, "cert")["state"], "compensated");
    assert_eq!(cluster::step(&journal, "restart")["state"], "skipped");
    assert_eq!(cluster::step(&journal, "resume")["state"], "succeeded");
    let message = cluster::step(&journal, "config")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("forbidden"),
        "the failure says what was denied: {message}"
    );
    assert_eq!(
        cluster::config_file(&env.sandbox, namespace, "kafka-config", engine.file),
        config_before,
        "the configuration is untouched"
    );
    assert!(
        cluster::secret(&env.sandbox, namespace, "kafka-tls").is_none(),
        "the certificate Secret add-tls wrote is removed again"
    );
    assert!(
        !cluster::paused(&env.sandbox, namespace, engine.name),
        "the target is resumed"
    );
    cluster::wait_ready(&env.admin_kubeconfig, namespace, engine.name);
}

#[test]
fn the_demo_rotates_every_member_certificate() {
    let env = Env::start();
    let outcome = env.dbops(&["demo"]);
    outcome.expect_code(0, "dbops demo");
    assert_demo_rotated(&outcome.stdout);
}

/// `dbops demo --real`: the same rotation on a real ZooKeeper ensemble
/// (Debian's zookeeper), with the quorum pre-check on.
#[test]
fn the_demo_runs_on_real_zookeeper() {
    if !dbops_probes::testing::zookeeper_available() {
        return;
    }
    let env = Env::start();
    let outcome = env.dbops(&["demo", "--real"]);
    outcome.expect_code(0, "dbops demo --real");
    assert!(
        outcome
            .stdout
            .contains("(followers first, the leader last)"),
        "{}",
        outcome.stdout
    );
    assert_demo_rotated(&outcome.stdout);
}

/// The demo's report: succeeded, an order, a new serial on every member, a trace id.
fn assert_demo_rotated(out: &str) {
    assert!(
        out.contains("run demo-") && out.contains(": succeeded"),
        "{out}"
    );
    assert!(out.contains("restart order: zk-"), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("zk-") && !l.contains("serves"))
        .collect();
    assert_eq!(rows.len(), 3, "one serial row per member: {out}");
    for row in rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_ne!(
            cols[1], cols[2],
            "{} serves a new certificate: {row}",
            cols[0]
        );
    }
    assert!(out.contains("trace id: "), "{out}");
}

/// A variable that makes a step's value invalid is refused before anything
/// runs, saying where and what is expected (not the schema's regular expression).
#[test]
fn an_invalid_variable_is_refused_with_what_is_expected() {
    let env = Env::start();
    let pipeline = dbops_e2e::repo_root().join("pipelines/zookeeper-rotate-tls.toml");
    let pipeline = pipeline.to_str().expect("utf-8 path");
    let outcome = env.dbops(&["validate", pipeline, "--set", "member_timeout=soon"]);
    outcome.expect_code(2, "validate with member_timeout=soon");
    let err = &outcome.stderr;
    assert!(
        err.contains("`with.member_timeout` of step `restart` (plugin `rolling-restart`): \"soon\" is not a valid value"),
        "{err}"
    );
    assert!(
        err.contains("zookeeper-rotate-tls.toml:"),
        "names the file: {err}"
    );
    assert!(
        err.contains("expected: A duration such as \"30s\""),
        "says what is expected: {err}"
    );
    assert!(!err.contains("^\\s*[0-9]"), "no regular expression: {err}");

    let kubeconfig = env.admin_kubeconfig.to_str().expect("utf-8 path");
    let outcome = env.dbops(&[
        "run",
        pipeline,
        "--kubeconfig",
        kubeconfig,
        "--run-id",
        "bad-variable",
        "--set",
        "member_timeout=soon",
    ]);
    outcome.expect_code(2, "run with member_timeout=soon");
    assert!(
        env.sandbox
            .list("v1", "ConfigMap", None)
            .expect("list")
            .iter()
            .all(|c| c["metadata"]["name"] != "dbops-run-bad-variable"),
        "nothing was written: no journal"
    );
}
