//! End-to-end: a real 3-member ZooKeeper ensemble (Debian's zookeeper), each
//! member a process run by the sandbox kubelet on its own loopback pod IP,
//! serving TLS from a Secret. After the certificate in the Secret changes,
//! rolling-restart (engine order, TLS role probes, quorum pre-checks)
//! restarts the two followers first and the actual leader (as ZooKeeper
//! itself reported it before the run) last; a background prober asserts that
//! a majority answers `ruok` at every moment and that the ensemble keeps a
//! leader for as long as the original leader pod lives; then health-check
//! proves every member serves the new certificate and the quorum is whole.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use dbops_plugin_health_check::HealthCheck;
use dbops_plugin_rolling_restart::RollingRestart;
use dbops_plugin_sdk::serde_json::json;
use dbops_plugin_sdk::testing::TestHost;
use dbops_probes::testing::manifests::{self, PodSet, ZK_CLIENT_PORT};
use dbops_probes::testing::zk_watch::{self, PodView, Sample};
use dbops_probes::testing::{self, TestCa};

use support::{World, outputs, pod, ready_ip, target, text};

const NS: &str = "db";
const NAME: &str = "zk";

fn pods() -> Vec<String> {
    (0..3).map(|i| format!("{NAME}-{i}")).collect()
}

/// A pod as the prober sees it, read through the test host.
fn view(host: &TestHost, pod_name: &str) -> Option<PodView> {
    let pod = pod(host, NS, pod_name)?;
    Some(PodView {
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        ip: pod.status.and_then(|s| s.pod_ip),
        deleting: pod.metadata.deletion_timestamp.is_some(),
    })
}

fn look(host: &TestHost) -> Sample {
    zk_watch::look(&pods(), ZK_CLIENT_PORT, |p| view(host, p))
}

/// The leader, once exactly one member leads and all serve.
fn leader(host: &TestHost) -> Result<String, String> {
    zk_watch::whole_quorum_leader(&look(host), 3)
}

#[test]
fn certificate_rotation_restarts_followers_then_the_leader_keeping_quorum() {
    if !testing::zookeeper_available() {
        return;
    }
    let world = World::start();
    let set = PodSet {
        namespace: NS,
        name: NAME,
        replicas: 3,
        update_strategy: "OnDelete",
        data_root: world.data.path(),
    };
    let ca = TestCa::new("dbops zookeeper test CA").expect("CA");
    let names = manifests::member_dns_names(&set);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let old = ca.issue("zk", &names).expect("certificate");
    let quorum = manifests::zk_quorum_addresses(3).expect("quorum addresses");
    world.apply([
        manifests::namespace(NS),
        manifests::tls_secret(NS, "zk-tls", &old, &ca.cert_pem),
    ]);
    world.apply(manifests::zookeeper(&set, &quorum, Some("zk-tls")));

    let host = world.host(Duration::from_secs(600));
    support::wait_all_ready(&host, NS, NAME, 3, Duration::from_secs(120));
    let leader_before = testing::wait_for(Duration::from_secs(120), "zookeeper quorum", || {
        leader(&host)
    })
    .expect("the ensemble elects a leader");
    let leader_uid = pod(&host, NS, &leader_before)
        .and_then(|p| p.metadata.uid)
        .expect("leader pod uid");

    // The background prober: every ~100 ms, ask every member.
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = Arc::clone(&stop);
        let (url, token) = (world.sandbox.url(), world.sandbox.admin_token());
        thread::spawn(move || {
            let host = TestHost::new(&url, Some(&token));
            let mut samples = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                samples.push(look(&host));
                thread::sleep(Duration::from_millis(100));
            }
            samples
        })
    };

    // The rotation: a new certificate in the Secret, then the restart.
    let new = ca.issue("zk", &names).expect("new certificate");
    assert_ne!(new.serial, old.serial);
    world.apply([manifests::tls_secret(NS, "zk-tls", &new, &ca.cert_pem)]);
    let restart = TestHost::request(
        "restart",
        target("zookeeper", NS, NAME),
        json!({
            "member_timeout": "3m",
            "pre_check_timeout": "2m",
            "probe": {"tls": {"ca_secret": "zk-tls", "server_name": "{pod}.{service}.{namespace}.svc"}},
        }),
    );
    let restarted = outputs(host.run::<RollingRestart>(&restart));
    stop.store(true, Ordering::SeqCst);
    let samples = prober.join().expect("prober thread");

    eprintln!(
        "leader before: {leader_before}; outputs: {restarted:?}; {} prober samples, {} without a leader",
        samples.len(),
        samples.iter().filter(|s| s.leader.is_none()).count()
    );
    let order = text(&restarted, "order");
    let order: Vec<&str> = order.split(',').collect();
    assert_eq!(order.len(), 3, "every member restarted once: {order:?}");
    assert_eq!(
        order[2], leader_before,
        "the leader (per srvr before the run) goes last"
    );
    assert!(order[..2].iter().all(|m| *m != leader_before));
    let seconds =
        dbops_plugin_rolling_restart::parse_member_seconds(&text(&restarted, "member_seconds"));
    assert_eq!(seconds.len(), 3);

    // Quorum at every moment; the leader pod was replaced, and last.
    zk_watch::assert_quorum_kept(&samples, 3, &leader_before, &leader_uid);
    let uids_before = BTreeMap::from([(leader_before.clone(), leader_uid.clone())]);
    assert_eq!(
        zk_watch::replacement_order(&uids_before, &samples),
        std::slice::from_ref(&leader_before),
        "the leader pod was replaced"
    );

    // Per-member spans and Events.
    let spans = host.spans.lock().expect("spans");
    let members: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "restart-member")
        .collect();
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|s| s.ended && s.error.is_none()));
    drop(spans);
    let events = host.events.lock().expect("events");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.reason == "MemberRestarted")
            .count(),
        3
    );
    drop(events);

    // Every member serves the new certificate, and the quorum is whole.
    let tls_check = TestHost::request(
        "tls",
        target("zookeeper", NS, NAME),
        json!({
            "probe": "tls",
            "deadline": "60s",
            "tls": {"ca_secret": "zk-tls", "expected_serial": new.serial},
        }),
    );
    let checked = outputs(host.run::<HealthCheck>(&tls_check));
    for i in 0..3 {
        assert!(
            text(&checked, "serials").contains(&format!("{NAME}-{i}={}", new.serial)),
            "{checked:?}"
        );
    }
    let quorum_check = TestHost::request(
        "quorum",
        target("zookeeper", NS, NAME),
        json!({"deadline": "60s", "tls": {"ca_secret": "zk-tls"}}),
    );
    let checked = outputs(host.run::<HealthCheck>(&quorum_check));
    let leader_after = text(&checked, "leader");
    assert!(!leader_after.is_empty());
    assert_eq!(leader(&host).as_deref(), Ok(leader_after.as_str()));
    assert!(ready_ip(&host, NS, &leader_before).is_some());

    // Two members at once would lose the majority: the pre-check waits, then fails clearly.
    let greedy = TestHost::request(
        "greedy",
        target("zookeeper", NS, NAME),
        json!({"max_unavailable": 2, "pre_check_timeout": "2s", "probe": {"port": ZK_CLIENT_PORT}}),
    );
    let refusing = world.host(Duration::from_secs(60));
    let before: Vec<Option<String>> = (0..3)
        .map(|i| pod(&refusing, NS, &format!("{NAME}-{i}")).and_then(|p| p.metadata.uid))
        .collect();
    match refusing.run::<RollingRestart>(&greedy) {
        dbops_plugin_sdk::protocol::RunResponse::Error {
            reason, message, ..
        } => {
            assert_eq!(reason, "PreCheckFailed", "{message}");
            assert!(
                message.contains("would leave 1 of 3 voting members: no majority"),
                "{message}"
            );
        }
        other => panic!("two members restarted at once: {other:?}"),
    }
    let after: Vec<Option<String>> = (0..3)
        .map(|i| pod(&refusing, NS, &format!("{NAME}-{i}")).and_then(|p| p.metadata.uid))
        .collect();
    assert_eq!(before, after, "no pod was touched");
    let events = refusing.events.lock().expect("events");
    assert!(events.iter().any(|e| e.reason == "PreCheckWaiting"));
}
