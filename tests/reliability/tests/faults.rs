//! API faults and a member that never becomes Ready.
//!
//! 1. With about 10% of the runner's API requests failing or slowed down
//!    (429 with Retry-After, 500, 409 Conflict on writes, closed watch
//!    streams, latency spikes; a fixed seed, so a failure replays), the
//!    ZooKeeper rotate-TLS and reconfigure pipelines still succeed and
//!    leave every member on the new certificate / configuration.
//! 2. A member that never becomes Ready after its restart (the sandbox's
//!    `never-ready` annotation on the pod template): the restart step fails
//!    at its deadline, the rollback restores the previous configuration and
//!    certificates byte for byte, the target is resumed, exit
//!    FAILED_ROLLED_BACK.

use std::time::Duration;

use dbops_reliability::{Db, exit, outcome, state, wait_for};
use dbops_sandbox::SandboxConfig;
use dbops_sandbox::faults::{FaultAction, FaultId, FaultRule};
use serde_json::{Value, json};

/// The fault mix, restricted to `namespace` (the controllers are exempt
/// anyway). Returns (description, rule id) for the figures.
fn inject(db: &Db, namespace: &str) -> Vec<(&'static str, FaultId)> {
    let faults = db.sandbox.faults();
    let rule = |action| FaultRule::new(action).namespace(namespace);
    vec![
        (
            "latency 300ms (3%)",
            faults.add(rule(FaultAction::Latency(Duration::from_millis(300))).probability(0.03)),
        ),
        (
            "429 Retry-After 1s (2%)",
            faults.add(
                rule(FaultAction::TooManyRequests {
                    retry_after_secs: 1,
                })
                .probability(0.02),
            ),
        ),
        (
            "500 (2%)",
            faults.add(rule(FaultAction::ServerError).probability(0.02)),
        ),
        (
            "409 Conflict on writes (10% of writes)",
            faults.add(rule(FaultAction::Conflict).probability(0.1)),
        ),
        (
            "watch closed (10% of watches)",
            faults.add(
                rule(FaultAction::CloseWatch {
                    after_events: Some(1),
                    after: Some(Duration::from_millis(500)),
                })
                .probability(0.1),
            ),
        ),
    ]
}

/// The seed of the fault generator.
const SEED: u64 = 20261125;

fn figures(db: &Db, ids: &[(&'static str, FaultId)]) -> (u32, String) {
    let faults = db.sandbox.faults();
    let total = ids.iter().map(|(_, id)| faults.fired(*id)).sum();
    let text = ids
        .iter()
        .map(|(what, id)| format!("{what}: {}", faults.fired(*id)))
        .collect::<Vec<_>>()
        .join(", ");
    (total, text)
}

/// Every step succeeded, except `reroll` (only after a rollback) skipped.
fn all_steps_succeeded(journal: &Value) {
    for s in journal["steps"].as_array().expect("steps") {
        let want = if s["id"] == "reroll" {
            "skipped"
        } else {
            "succeeded"
        };
        assert_eq!(s["state"], want, "{journal}");
    }
    assert_eq!(journal["outcome"], "succeeded", "{journal}");
}

#[test]
fn pipelines_succeed_with_ten_percent_api_faults() {
    let namespaces = ["fr".to_owned(), "fc".to_owned()];
    let config = SandboxConfig {
        fault_seed: SEED,
        ..SandboxConfig::default()
    };
    let db = Db::start_with("zookeeper", &namespaces, config);
    db.run(
        "zookeeper-add-tls.toml",
        "fr",
        "fr-add",
        &["create_ca=true"],
    )
    .expect_code(exit::SUCCESS, "add-tls before the rotation");
    db.wait_ready("fr");
    let old_crt = db.tls_secret("fr").expect("TLS Secret")["tls.crt"].clone();
    db.custom_config("fc", "tickTime=2500\n");

    // One run after the other, each from the same seed, so the sequence
    // of faults a run meets depends on its own requests only.
    db.sandbox.faults().reseed(SEED);
    let rotate_faults = inject(&db, "fr");
    let rotate = db.run(
        "zookeeper-rotate-tls.toml",
        "fr",
        "fr-rotate",
        &["force=true"],
    );
    db.sandbox.faults().reseed(SEED);
    let reconfigure_faults = inject(&db, "fc");
    let reconfigure = db.run(
        "zookeeper-reconfigure.toml",
        "fc",
        "fc-reconfigure",
        &["mode=merge"],
    );
    let (rotate_fired, rotate_text) = figures(&db, &rotate_faults);
    let (reconfigure_fired, reconfigure_text) = figures(&db, &reconfigure_faults);
    db.sandbox.faults().clear();
    println!("rotate-tls: faults fired: {rotate_text}");
    println!("reconfigure: faults fired: {reconfigure_text}");
    rotate.expect_code(
        exit::SUCCESS,
        &format!("rotate-tls under faults ({rotate_text})"),
    );
    reconfigure.expect_code(
        exit::SUCCESS,
        &format!("reconfigure under faults ({reconfigure_text})"),
    );
    assert!(
        rotate_fired > 0 && reconfigure_fired > 0,
        "faults were injected: {rotate_text}; {reconfigure_text}"
    );

    db.wait_ready("fr");
    db.wait_ready("fc");
    all_steps_succeeded(&db.journal("fr", "fr-rotate").expect("journal"));
    all_steps_succeeded(&db.journal("fc", "fc-reconfigure").expect("journal"));
    assert!(!db.paused("fr") && !db.paused("fc"), "targets resumed");
    assert_ne!(db.tls_secret("fr").expect("secret")["tls.crt"], old_crt);
    db.members_serve_secret("fr");
    let config = db.config("fc");
    assert!(config.contains("tickTime=2500"), "{config}");
    for pod in db.engine.pods() {
        assert_eq!(
            db.mounted("fc", &pod, "conf", db.engine.file),
            config,
            "{pod}"
        );
    }
}

/// Every object the rollback must restore exactly: (kind, name) -> data.
fn restorable(db: &Db, ns: &str) -> Vec<(String, Option<Value>)> {
    let mut out = Vec::new();
    for (kind, name) in [
        ("ConfigMap", "zk-config"),
        ("Secret", "zk-tls"),
        ("Secret", "zk-tls-keystore-password"),
        ("Secret", "zk-ca"),
    ] {
        let data = db
            .sandbox
            .get("v1", kind, ns, name)
            .expect("get")
            .map(|o| o["data"].clone());
        out.push((format!("{kind} {name}"), data));
    }
    out
}

/// Every restarted member gets at most 4 s (the pipelines' `member_timeout`).
const SHORT_MEMBER_TIMEOUT: &str = "member_timeout=4s";

fn set_never_ready(db: &Db, ns: &str, on: bool) {
    let mut sts = db
        .sandbox
        .get("apps/v1", "StatefulSet", ns, "zk")
        .expect("get")
        .expect("statefulset");
    let annotations = &mut sts["spec"]["template"]["metadata"]["annotations"];
    if on {
        annotations["sandbox.dbops.io/never-ready"] = json!("true");
    } else if let Some(map) = annotations.as_object_mut() {
        map.remove("sandbox.dbops.io/never-ready");
    }
    db.sandbox.apply(sts).expect("template annotation");
}

/// Run `pipeline` so that the FIRST member it restarts never becomes
/// Ready: the pod template carries the sandbox's never-ready annotation
/// until that member is recreated (the pod keeps it), then the template is
/// clean again, so a later restart (the pipelines' `reroll` after a
/// rollback) brings members back.
fn run_with_one_member_never_ready(
    db: &Db,
    ns: &str,
    pipeline: &str,
    run_id: &str,
    sets: &[&str],
) -> dbops_reliability::Outcome {
    let before = db.pod_uids(ns);
    set_never_ready(db, ns, true);
    let child = db.spawn(pipeline, ns, run_id, sets);
    let stuck = wait_for(Duration::from_secs(60), "a member recreated", || {
        db.pod_uids(ns)
            .into_iter()
            .find(|(pod, uid)| !uid.is_empty() && *uid != before[pod])
            .map(|(pod, _)| pod)
    });
    set_never_ready(db, ns, false);
    let pod = db
        .sandbox
        .get("v1", "Pod", ns, &stuck)
        .expect("get")
        .expect("pod");
    assert_eq!(
        pod.pointer("/metadata/annotations/sandbox.dbops.io~1never-ready"),
        Some(&json!("true")),
        "{stuck} was created never-ready"
    );
    outcome(child)
}

fn rolled_back(
    db: &Db,
    ns: &str,
    run_id: &str,
    before: &[(String, Option<Value>)],
    out: &dbops_reliability::Outcome,
) {
    out.expect_code(
        exit::FAILED_ROLLED_BACK,
        "a member never Ready: rolled back",
    );
    let journal = db.journal(ns, run_id).expect("journal");
    assert_eq!(journal["outcome"], "failed-rolled-back", "{journal}");
    assert_eq!(state(&journal, "restart"), "failed", "{journal}");
    assert_eq!(state(&journal, "reroll"), "succeeded", "{journal}");
    assert_eq!(state(&journal, "resume"), "succeeded", "{journal}");
    let message = journal["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == "restart"))
        .and_then(|s| s["message"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("zk-") && message.to_lowercase().contains("ready"),
        "the failure names the member that is not Ready: {message}"
    );
    assert_eq!(
        restorable(db, ns),
        before,
        "configuration and certificates restored exactly"
    );
    assert!(!db.paused(ns), "the target is resumed");
    db.wait_ready(ns);
}

#[test]
fn a_member_never_ready_after_rotation_is_rolled_back_exactly() {
    let db = Db::start("zookeeper", &["nr".to_owned()]);
    db.run(
        "zookeeper-add-tls.toml",
        "nr",
        "nr-add",
        &["create_ca=true"],
    )
    .expect_code(exit::SUCCESS, "add-tls");
    db.wait_ready("nr");
    let before = restorable(&db, "nr");
    let serial = db.members_serve_secret("nr");
    let out = run_with_one_member_never_ready(
        &db,
        "nr",
        "zookeeper-rotate-tls.toml",
        "nr-rotate",
        &["force=true", SHORT_MEMBER_TIMEOUT],
    );
    rolled_back(&db, "nr", "nr-rotate", &before, &out);
    let journal = db.journal("nr", "nr-rotate").expect("journal");
    assert_eq!(state(&journal, "cert"), "compensated", "{journal}");
    assert_eq!(
        db.members_serve_secret("nr"),
        serial,
        "after the rollback every member serves the previous certificate (all old)"
    );
}

#[test]
fn a_member_never_ready_after_reconfigure_is_rolled_back_exactly() {
    let db = Db::start("zookeeper", &["nc".to_owned()]);
    db.custom_config("nc", "tickTime=4000\n");
    let before = restorable(&db, "nc");
    let config = db.config("nc");
    let out = run_with_one_member_never_ready(
        &db,
        "nc",
        "zookeeper-reconfigure.toml",
        "nc-reconfigure",
        &["mode=merge", SHORT_MEMBER_TIMEOUT],
    );
    rolled_back(&db, "nc", "nc-reconfigure", &before, &out);
    let journal = db.journal("nc", "nc-reconfigure").expect("journal");
    assert_eq!(state(&journal, "config"), "compensated", "{journal}");
    for pod in db.engine.pods() {
        assert_eq!(
            db.mounted("nc", &pod, "conf", db.engine.file),
            config,
            "after the rollback {pod} runs the previous configuration (all old)"
        );
    }
}

/// The runner is the journal's only writer (it holds the lock): a 409 on
/// a journal write (a retried PUT that had succeeded, someone labelling
/// the ConfigMap) is ridden out by re-reading and writing again.
#[test]
fn journal_write_conflicts_are_ridden_out() {
    let db = Db::start("zookeeper", &["jc".to_owned()]);
    db.custom_config("jc", "tickTime=2200\n");
    let conflicts = db.sandbox.faults().add(
        FaultRule::new(FaultAction::Conflict)
            .namespace("jc")
            .name("dbops-run-jc-1")
            .verb("update")
            .times(2),
    );
    let out = db.run("zookeeper-reconfigure.toml", "jc", "jc-1", &["mode=merge"]);
    assert_eq!(
        db.sandbox.faults().fired(conflicts),
        2,
        "conflicts injected"
    );
    out.expect_code(exit::SUCCESS, "two journal conflicts in a row");
    all_steps_succeeded(&db.journal("jc", "jc-1").expect("journal"));
}
