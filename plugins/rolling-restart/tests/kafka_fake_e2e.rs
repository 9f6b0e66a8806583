//! rolling-restart on a Kafka target whose members speak the Kafka protocol
//! through the spec-level fake broker of `dbops_probes::testing::kafka_fake`
//! (there is no Kafka Debian package; this is the most real server
//! available here). Each sandbox pod is Ready once the fake listens on its
//! pod IP; the fake describes a KRaft cluster: kafka-0 a broker, kafka-2 a
//! controller, kafka-1 the active controller. Proves the order comes from
//! Metadata + DescribeQuorum (brokers, controllers, active controller last)
//! and that the min.insync.replicas pre-check refuses a restart that would
//! take a partition below it, naming the partition.

use crate::support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use dbops_plugin_rolling_restart::RollingRestart;
use dbops_plugin_sdk::k8s_openapi::api::core::v1::Pod;
use dbops_plugin_sdk::kube::{Kube, ListParams};
use dbops_plugin_sdk::protocol::RunResponse;
use dbops_plugin_sdk::serde_json::json;
use dbops_plugin_sdk::testing::TestHost;
use dbops_probes::testing::kafka_fake::{FakeCluster, Partition, serve_broker_on};
use dbops_probes::testing::manifests::{self, PodSet};

use support::{World, outputs, target, text};

const NS: &str = "streams";
const PORT: u16 = 9092;

fn cluster(name: &str, isr: Vec<i32>) -> FakeCluster {
    FakeCluster {
        api_versions_max: 3,
        metadata_max: 12,
        describe_configs_max: 4,
        brokers: (0..3)
            .map(|id| (id, format!("{name}-{id}.{name}-pods.{NS}.svc")))
            .collect(),
        topics: vec![(
            "orders".into(),
            2,
            vec![Partition {
                index: 0,
                replicas: vec![0, 1, 2],
                isr,
            }],
        )],
        controller_leader: 1,
        voters: vec![1, 2],
        observers: vec![0],
    }
}

/// Serve the fake on every pod IP of `name` as pods appear (until `stop`).
fn fake_operator(world: &World, name: &'static str, fake: FakeCluster, stop: Arc<AtomicBool>) {
    let (url, token) = (world.sandbox.url(), world.sandbox.admin_token());
    thread::spawn(move || {
        let host = TestHost::new(&url, Some(&token));
        let pods = Kube::new(&host).api::<Pod>(Some(NS));
        let mut served = BTreeSet::new();
        let selector = ListParams::labels(format!("app={name}"));
        while !stop.load(Ordering::SeqCst) {
            let Ok(list) = pods.list(&selector) else {
                continue;
            };
            for pod in &list.items {
                let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
                    continue;
                };
                if served.insert(ip.clone())
                    && let Ok(address) = format!("{ip}:{PORT}").parse::<SocketAddr>()
                {
                    serve_broker_on(address, fake.clone(), None).expect("serve the fake");
                }
            }
            // Wait for the next change of these pods instead of polling.
            if let Ok(mut stream) = pods.watch(&selector, &list.resource_version) {
                let _ = stream.next(Duration::from_millis(500));
            }
        }
    });
}

fn start(world: &World, name: &'static str, isr: Vec<i32>, stop: &Arc<AtomicBool>) {
    let set = PodSet {
        namespace: NS,
        name,
        replicas: 3,
        update_strategy: "OnDelete",
        data_root: world.data.path(),
    };
    world.apply(manifests::fake_servers(&set, PORT));
    fake_operator(world, name, cluster(name, isr), Arc::clone(stop));
    let host = world.host(Duration::from_secs(60));
    support::wait_all_ready(&host, NS, name, 3, Duration::from_secs(60));
}

#[test]
fn brokers_first_then_controllers_and_the_active_controller_last_with_isr_pre_checks() {
    let world = World::start();
    world.apply([manifests::namespace(NS)]);
    let stop = Arc::new(AtomicBool::new(false));
    start(&world, "kafka", vec![0, 1, 2], &stop);
    start(&world, "strict", vec![0, 1], &stop);

    let host = world.host(Duration::from_secs(120));
    let restart = TestHost::request(
        "restart",
        target("kafka", NS, "kafka"),
        json!({"probe": {"port": PORT}, "member_timeout": "1m"}),
    );
    let out = outputs(host.run::<RollingRestart>(&restart));
    assert_eq!(text(&out, "order"), "kafka-0,kafka-2,kafka-1");
    let spans = host.spans.lock().expect("spans");
    let roles: Vec<String> = spans
        .iter()
        .filter(|s| s.name == "restart-member")
        .filter_map(|s| {
            s.attributes
                .get("dbops.member.role")?
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(roles, ["broker", "controller", "active_controller"]);
    drop(spans);

    // orders-0 has ISR [0, 1] and min.insync.replicas 2: broker 0 may not go.
    let host = world.host(Duration::from_secs(60));
    let restart = TestHost::request(
        "restart",
        target("kafka", NS, "strict"),
        json!({"probe": {"port": PORT}, "pre_check_timeout": "2s"}),
    );
    match host.run::<RollingRestart>(&restart) {
        RunResponse::Error {
            reason, message, ..
        } => {
            assert_eq!(reason, "PreCheckFailed", "{message}");
            assert!(
                message.starts_with("not restarting strict-0: "),
                "{message}"
            );
            assert!(message.contains("orders"), "{message}");
        }
        RunResponse::Ok { outputs, .. } => {
            panic!("restarted below min.insync.replicas: {outputs:?}")
        }
    }
    stop.store(true, Ordering::SeqCst);
}
