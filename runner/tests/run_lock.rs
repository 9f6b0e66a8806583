//! End-to-end: the per-target Lease lock. A live holder makes `dbops run`
//! exit LOCK_HELD before writing anything; an expired lease is taken over.

use crate::common;

use chrono::{Duration, SecondsFormat, Utc};
use common::{World, header, text};
use serde_json::json;

fn seed_lease(
    w: &World,
    ns: &str,
    target: &str,
    holder: &str,
    renewed_ago: Duration,
    seconds: i64,
) {
    let renewed = (Utc::now() - renewed_ago).to_rfc3339_opts(SecondsFormat::Micros, true);
    w.sandbox
        .apply(json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": format!("dbops-lock-{target}"), "namespace": ns},
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": seconds,
                "acquireTime": renewed,
                "renewTime": renewed,
                "leaseTransitions": 0
            }
        }))
        .expect("seed lease");
}

fn pipeline(w: &World, ns: &str) -> std::path::PathBuf {
    w.pipeline(
        ns,
        &(header(ns, "db1", "halt")
            + r#"
[[step]]
id = "a"
uses = "test-step"
with = { record = "calls" }
"#),
    )
}

#[test]
fn a_live_lock_holder_blocks_the_run_and_nothing_changes() {
    let w = World::start();
    seed_lease(&w, "lk", "db1", "other-run", Duration::seconds(1), 300);
    let out = w.run(&pipeline(&w, "lk"), "lk-1", &[]);
    assert_eq!(out.status.code(), Some(5), "LOCK_HELD: {}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("other-run") && t.contains("expires"),
        "names holder and expiry: {t}"
    );
    assert!(w.journal("lk", "lk-1").is_none(), "no journal written");
    assert!(w.calls("lk", "calls").is_empty(), "no step ran");
    let lease = w
        .sandbox
        .get("coordination.k8s.io/v1", "Lease", "lk", "dbops-lock-db1")
        .expect("get")
        .expect("lease");
    assert_eq!(lease["spec"]["holderIdentity"], "other-run");
}

#[test]
fn an_expired_lock_is_taken_over() {
    let w = World::start();
    seed_lease(&w, "ex", "db1", "dead-run", Duration::hours(1), 30);
    let out = w.run(&pipeline(&w, "ex"), "ex-1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.calls("ex", "calls"), ["run a 1"]);
    let lease = w
        .sandbox
        .get("coordination.k8s.io/v1", "Lease", "ex", "dbops-lock-db1")
        .expect("get")
        .expect("lease");
    assert_eq!(lease["spec"]["leaseTransitions"], 1, "{lease}");
    assert!(
        lease["spec"]["holderIdentity"].is_null(),
        "released after the run: {lease}"
    );
}
