//! rolling-restart against sandbox pods without a server process (engine
//! `generic`): resuming from durable state, template mode with a partition,
//! `max_unavailable`, the pipeline's order override, and dry run. The
//! engine-specific order and pre-checks are proven with real servers in
//! zookeeper_e2e.rs and mariadb_e2e.rs.

use crate::support;

use std::time::Duration;

use dbops_plugin_rolling_restart::RollingRestart;
use dbops_plugin_rolling_restart::plan::{Done, Saved};
use dbops_plugin_sdk::serde_json::{Value, json};
use dbops_plugin_sdk::testing::TestHost;
use dbops_probes::testing::manifests::{self, PodSet};

use support::{World, outputs, pod, target, text};

const NS: &str = "apps";
const NAME: &str = "web";

fn world(strategy: &str) -> World {
    let world = World::start();
    let set = PodSet {
        namespace: NS,
        name: NAME,
        replicas: 3,
        update_strategy: strategy,
        data_root: world.data.path(),
    };
    world.apply([manifests::namespace(NS)]);
    world.apply(manifests::delayed_pods(&set, "200ms"));
    let host = world.host(Duration::from_secs(60));
    support::wait_all_ready(&host, NS, NAME, 3, Duration::from_secs(60));
    world
}

fn uids(host: &TestHost) -> Vec<String> {
    (0..3)
        .map(|i| {
            pod(host, NS, &format!("{NAME}-{i}"))
                .and_then(|p| p.metadata.uid)
                .expect("pod uid")
        })
        .collect()
}

fn request(with: Value) -> dbops_plugin_sdk::protocol::RunRequest {
    TestHost::request("restart", target("generic", NS, NAME), with)
}

#[test]
fn a_resumed_run_finishes_the_member_in_flight_and_skips_the_ones_done() {
    let world = world("OnDelete");
    let host = world.host(Duration::from_secs(120));
    let before = uids(&host);
    // As a runner killed while web-1 was being restarted would have left it:
    // web-2 done, web-1 in flight (its pod not yet deleted).
    let saved = Saved {
        done: vec![Done {
            name: "web-2".into(),
            seconds: 1.0,
            role: "unknown".into(),
        }],
        in_flight: [("web-1".to_string(), before[1].clone())].into(),
        ..Default::default()
    };
    *host.state.lock().expect("state") =
        Some(dbops_plugin_sdk::serde_json::to_value(&saved).expect("state"));
    let out = outputs(host.run::<RollingRestart>(&request(json!({}))));
    assert_eq!(text(&out, "order"), "web-2,web-1,web-0");
    let after = uids(&host);
    assert_eq!(
        after[2], before[2],
        "web-2 was done before the crash: not restarted again"
    );
    assert_ne!(after[1], before[1]);
    assert_ne!(after[0], before[0]);
    let state: Saved = dbops_plugin_sdk::serde_json::from_value(
        host.state.lock().expect("state").clone().expect("saved"),
    )
    .expect("state decodes");
    assert!(state.in_flight.is_empty());
}

#[test]
fn the_set_is_read_once_before_each_batch_and_once_at_the_end() {
    use dbops_sandbox::{FaultAction, FaultRule};

    let world = world("OnDelete");
    let host = world.host(Duration::from_secs(120));
    let set_reads = world.sandbox.faults().add(
        FaultRule::new(FaultAction::Latency(Duration::ZERO))
            .verb("get")
            .resource("statefulsets"),
    );
    let out = outputs(host.run::<RollingRestart>(&request(json!({}))));
    assert_eq!(text(&out, "order"), "web-2,web-1,web-0");
    // The step's first read serves the first batch; then one read before
    // each later batch and one that finds no member left.
    assert_eq!(world.sandbox.faults().fired(set_reads), 4);
}

#[test]
fn order_override_max_unavailable_and_dry_run() {
    let world = world("OnDelete");
    let host = world.host(Duration::from_secs(120));
    let before = uids(&host);
    let mut dry = request(json!({"order": ["web-0"]}));
    dry.dry_run = true;
    let planned = outputs(host.run::<RollingRestart>(&dry));
    assert_eq!(text(&planned, "order"), "web-0,web-2,web-1");
    assert_eq!(uids(&host), before, "dry run touches nothing");

    let host = world.host(Duration::from_secs(120));
    let out = outputs(
        host.run::<RollingRestart>(&request(json!({"order": ["web-0"], "max_unavailable": 2}))),
    );
    assert_eq!(text(&out, "order"), "web-0,web-2,web-1");
    let after = uids(&host);
    assert!(after.iter().zip(&before).all(|(a, b)| a != b));
    // Two batches: web-0 and web-2 together, then web-1.
    let events = host.events.lock().expect("events");
    let restarting: Vec<&str> = events
        .iter()
        .filter(|e| e.reason == "MemberRestarting" || e.reason == "MemberRestarted")
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(
        restarting,
        [
            "MemberRestarting",
            "MemberRestarting",
            "MemberRestarted",
            "MemberRestarted",
            "MemberRestarting",
            "MemberRestarted"
        ]
    );
}

#[test]
fn template_mode_resumed_after_a_member_came_back_unrecorded_counts_it_restarted() {
    let world = world("RollingUpdate");
    let host = world.host(Duration::from_secs(120));
    outputs(host.run::<RollingRestart>(&request(json!({"mode": "template"}))));
    let after = uids(&host);
    // The state as an attempt killed right after web-0 came back would
    // have left it: web-0 still in flight with its old pod's uid (the state
    // is written once per batch, before the partition moves).
    let mut saved: Saved = dbops_plugin_sdk::serde_json::from_value(
        host.state.lock().expect("state").clone().expect("saved"),
    )
    .expect("state decodes");
    assert_eq!(saved.order(), "web-2,web-1,web-0");
    saved.done.retain(|d| d.name != "web-0");
    saved
        .in_flight
        .insert("web-0".into(), "uid-of-the-replaced-pod".into());
    let again = world.host(Duration::from_secs(60));
    *again.state.lock().expect("state") =
        Some(dbops_plugin_sdk::serde_json::to_value(&saved).expect("state"));
    let out = outputs(again.run::<RollingRestart>(&request(json!({"mode": "template"}))));
    assert_eq!(uids(&again), after, "nothing restarted twice");
    assert_eq!(text(&out, "order"), "web-2,web-1,web-0");
    assert_eq!(
        text(&out, "skipped"),
        "",
        "web-0 was restarted, not skipped"
    );
    let state: Saved = dbops_plugin_sdk::serde_json::from_value(
        again.state.lock().expect("state").clone().expect("saved"),
    )
    .expect("state decodes");
    assert!(
        state.in_flight.is_empty(),
        "the end state is written: {state:?}"
    );
}

#[test]
fn template_mode_rolls_through_the_partition_and_restores_it() {
    let world = world("RollingUpdate");
    let host = world.host(Duration::from_secs(120));
    let before = uids(&host);
    let out = outputs(host.run::<RollingRestart>(&request(json!({"mode": "template"}))));
    assert_eq!(text(&out, "order"), "web-2,web-1,web-0");
    let after = uids(&host);
    assert!(after.iter().zip(&before).all(|(a, b)| a != b));
    let sts = world
        .sandbox
        .get("apps/v1", "StatefulSet", NS, NAME)
        .expect("get")
        .expect("statefulset");
    assert!(
        sts.pointer("/spec/updateStrategy/rollingUpdate/partition")
            .is_none_or(|p| p.is_null() || p == 0),
        "partition restored: {sts}"
    );
    let annotation = sts.pointer("/spec/template/metadata/annotations/dbops.io~1restarted-at");
    assert_eq!(annotation, Some(&json!("test-run.restart")));
    let update = sts.pointer("/status/updateRevision").cloned();
    for i in 0..3 {
        let pod = pod(&host, NS, &format!("{NAME}-{i}")).expect("pod");
        let revision = pod
            .metadata
            .labels
            .and_then(|l| l.get("controller-revision-hash").cloned());
        assert_eq!(
            revision.map(Value::String),
            update,
            "{NAME}-{i} on the new revision"
        );
    }
    // Run again (as after a resume): every member is on the new revision, nothing restarts.
    let again = world.host(Duration::from_secs(60));
    *again.state.lock().expect("state") = host.state.lock().expect("state").clone();
    outputs(again.run::<RollingRestart>(&request(json!({"mode": "template"}))));
    assert_eq!(uids(&again), after, "nothing restarted twice");
}

/// The member's wait starts from the version of its own pod deletion: it
/// sees the new pod come back without reading the pod first (one API
/// round trip less per member). After the watch history is compacted the
/// same wait falls back to reading and watching.
#[test]
fn the_wait_for_a_member_watches_from_its_deletion_without_reading_the_pod_first() {
    use dbops_plugin_rolling_restart::restart::{self, BackWhen};
    use dbops_plugin_sdk::k8s_openapi::api::core::v1::Pod;
    use dbops_plugin_sdk::kube::Kube;
    use dbops_sandbox::{FaultAction, FaultRule};

    let world = world("OnDelete");
    let host = world.host(Duration::from_secs(60));
    let ctx = dbops_plugin_sdk::Context::new(&host, request(json!({})));
    let faults = world.sandbox.faults();
    let pod_lists = faults.add(
        FaultRule::new(FaultAction::Latency(Duration::ZERO))
            .verb("list")
            .resource("pods"),
    );
    let pods = Kube::new(&host).api::<Pod>(Some(NS));

    for (member, compact_first) in [("web-2", false), ("web-1", true)] {
        let old_uid = pod(&host, NS, member).and_then(|p| p.metadata.uid);
        let lists_before = faults.fired(pod_lists);
        let deleted_at = restart::delete_pod(&ctx, NS, member, old_uid.as_deref())
            .expect("delete")
            .expect("the deletion's resourceVersion");
        if compact_first {
            // A later change, then compaction: the deletion's version is
            // older than what the API server still keeps (410 Gone).
            world.apply([json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "later-change", "namespace": NS},
            })]);
            world.sandbox.compact_watch_history();
        }
        let back = BackWhen {
            old_uid: old_uid.clone(),
            revision: None,
            config_hash: None,
        };
        restart::wait_back(
            &ctx,
            NS,
            member,
            &back,
            Some(&deleted_at),
            Duration::from_secs(30),
        )
        .expect("the member comes back");
        let new = pods.get_opt(member).expect("read").expect("recreated");
        assert_ne!(new.metadata.uid, old_uid, "{member}: a new pod");
        let lists = faults.fired(pod_lists) - lists_before;
        if compact_first {
            assert_eq!(
                lists, 1,
                "{member}: expired version, so read once then watch"
            );
        } else {
            assert_eq!(lists, 0, "{member}: watched from the deletion, no read");
        }
    }
}
