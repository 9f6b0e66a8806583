//! Retries and resumes: a failed write retried in the same run keeps the
//! first backup; a run that crashed after writing finishes the phase it
//! chose instead of starting the next one; a finished step returns its
//! outputs again without touching the cluster.

use crate::support;

use dbops_sandbox::{FaultAction, FaultRule};
use serde_json::json;
use support::{World, digest, out, run, text, try_run};

fn issuer() -> serde_json::Value {
    json!({"kind": "ca", "name": "zk-ca", "create_if_missing": true})
}

#[test]
fn a_conflict_on_write_is_transient_and_the_retry_keeps_the_original_backup() {
    let world = World::start(&[]);
    run(
        &world.host(),
        "zookeeper",
        json!({"action": "add", "issuer": issuer()}),
    );
    let original = world.secret("zk-tls").expect("secret");

    let fault = world.sandbox.faults().add(
        FaultRule::new(FaultAction::Conflict)
            .verb("update")
            .resource("secrets")
            .name("zk-tls")
            .times(1),
    );
    let host = world.host();
    let rotate = json!({"action": "rotate", "force": true, "issuer": issuer()});
    let err = try_run(&host, "zookeeper", rotate.clone()).expect_err("conflict");
    assert_eq!(err.0, "Conflict", "{err:?}");
    assert_eq!(world.sandbox.faults().fired(fault), 1);
    assert_eq!(
        digest(&world.secret("zk-tls").expect("secret")),
        digest(&original),
        "nothing half-written"
    );

    let outputs = run(&host, "zookeeper", rotate);
    assert_eq!(outputs["changed"], json!(true));
    let backup = world
        .secret(&out(&outputs, "backup_secret"))
        .expect("backup");
    assert_eq!(digest(&backup), digest(&original));
}

#[test]
fn a_run_that_crashed_after_writing_finishes_its_phase_and_does_not_start_the_next() {
    let world = World::start(&[]);
    run(
        &world.host(),
        "kafka",
        json!({"action": "add", "issuer": issuer()}),
    );
    let leaf_before = text(&world.secret("zk-tls").expect("secret"), "tls.crt");
    let update = json!({"action": "update-issuer", "issuer": {"kind": "ca", "name": "zk-ca-2", "create_if_missing": true}});
    let host = world.host();
    let first = run(&host, "kafka", update.clone());
    assert_eq!(out(&first, "phase"), "trust-both");

    // The journal kept everything but the final outputs: the pod died between writing and finishing.
    {
        let mut state = host.state.lock().expect("lock");
        let saved = state.as_mut().expect("state saved");
        assert_eq!(saved["phase"], json!("trust-both"));
        saved["done"] = serde_json::Value::Null;
    }
    let again = run(&host, "kafka", update);
    assert_eq!(
        out(&again, "phase"),
        "trust-both",
        "the same phase, not the next one"
    );
    assert_eq!(
        again["changed"],
        json!(true),
        "members still need the restart for this phase"
    );
    let data = world.secret("zk-tls").expect("secret");
    assert!(
        text(&data, "tls.crt") == leaf_before,
        "no certificate from the new CA yet"
    );
    assert_eq!(
        text(&data, "ca.crt").matches("BEGIN CERTIFICATE").count(),
        2
    );
}

#[test]
fn a_finished_step_returns_its_outputs_without_touching_the_cluster() {
    let world = World::start(&[]);
    let host = world.host();
    let add = json!({"action": "add", "issuer": issuer()});
    let first = run(&host, "generic", add.clone());
    host.requests.lock().expect("lock").clear();
    let second = run(&host, "generic", add);
    assert_eq!(first, second);
    assert!(host.requests.lock().expect("lock").is_empty());
}
