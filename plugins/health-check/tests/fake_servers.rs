//! health-check's `kafka` and `druid` probes through the plugin, against
//! sandbox pods whose pod IPs are served by protocol fakes (there are no
//! Kafka or Druid Debian packages): the spec-level Kafka broker of
//! `dbops_probes::testing::kafka_fake` and a Druid `/status/health`
//! responder. Default probes and ports come from the engine (Kafka 9092;
//! Druid by node role, historicals 8083).

use std::net::SocketAddr;
use std::time::Duration;

use dbops_plugin_health_check::HealthCheck;
use dbops_plugin_sdk::k8s_openapi::api::core::v1::Pod;
use dbops_plugin_sdk::kube::Kube;
use dbops_plugin_sdk::protocol::{RunResponse, Target, Workload};
use dbops_plugin_sdk::serde_json::json;
use dbops_plugin_sdk::testing::TestHost;
use dbops_plugin_sdk::wait;
use dbops_probes::testing::kafka_fake::{FakeCluster, serve_broker_on};
use dbops_probes::testing::manifests::{self, PodSet};
use dbops_probes::testing::servers;
use dbops_sandbox::{Sandbox, SandboxConfig};

const NS: &str = "lake";

/// Start `replicas` pods of `name`; returns their pod IPs once Ready.
fn pods(sandbox: &Sandbox, data: &std::path::Path, name: &str, replicas: u32) -> Vec<String> {
    let set = PodSet {
        namespace: NS,
        name,
        replicas,
        update_strategy: "OnDelete",
        data_root: data,
    };
    for object in manifests::delayed_pods(&set, "100ms") {
        sandbox.apply(object).expect("apply");
    }
    let host = TestHost::new(&sandbox.url(), Some(&sandbox.admin_token()));
    let pods = Kube::new(&host).api::<Pod>(Some(NS));
    (0..replicas)
        .map(|i| {
            let pod = pods
                .wait_until(
                    &format!("{name}-{i}"),
                    wait::pod_is_ready(),
                    Duration::from_secs(30),
                )
                .expect("pod Ready")
                .expect("pod exists");
            pod.status.and_then(|s| s.pod_ip).expect("pod IP")
        })
        .collect()
}

fn run(
    sandbox: &Sandbox,
    engine: &str,
    workload: &str,
    with: dbops_plugin_sdk::serde_json::Value,
) -> RunResponse {
    let host = TestHost::new(&sandbox.url(), Some(&sandbox.admin_token()));
    host.set_deadline(Some(Duration::from_secs(60)));
    let target = Target {
        engine: engine.into(),
        namespace: NS.into(),
        name: workload.into(),
        workload: Workload {
            kind: "StatefulSet".into(),
            name: workload.into(),
            api_version: "apps/v1".into(),
        },
        database: None,
    };
    host.run::<HealthCheck>(&TestHost::request("health", target, with))
}

/// Serve `body` as the answer to `GET /status/health` on `address`.
fn druid_node(address: SocketAddr, body: &'static str) {
    servers::serve_on(address, None, move |stream| {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let ok = head.starts_with(b"GET /status/health HTTP/1.1\r\n");
        let response = if ok {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        } else {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
        };
        let _ = stream.write_all(response.as_bytes());
    })
    .expect("serve");
}

#[test]
fn kafka_and_druid_members_are_probed_with_the_engine_defaults() {
    let sandbox = Sandbox::start_background(SandboxConfig::default()).expect("sandbox");
    let data = manifests::data_root().expect("temporary directory");
    sandbox.apply(manifests::namespace(NS)).expect("namespace");

    let kafka_ips = pods(&sandbox, data.path(), "kafka", 3);
    let fake = FakeCluster {
        api_versions_max: 3,
        metadata_max: 12,
        describe_configs_max: 4,
        brokers: (0..3)
            .map(|id| (id, format!("kafka-{id}.kafka-pods.{NS}.svc")))
            .collect(),
        topics: Vec::new(),
        controller_leader: 0,
        voters: vec![0, 1, 2],
        observers: Vec::new(),
    };
    for ip in &kafka_ips {
        serve_broker_on(
            format!("{ip}:9092").parse().expect("address"),
            fake.clone(),
            None,
        )
        .expect("serve");
    }
    match run(&sandbox, "kafka", "kafka", json!({"deadline": "20s"})) {
        RunResponse::Ok { outputs, .. } => {
            assert_eq!(outputs["probe"], "kafka");
            assert_eq!(outputs["members"], "kafka-0=ok,kafka-1=ok,kafka-2=ok");
            let report = outputs["report"].as_str().expect("report");
            assert!(
                report.contains("\"api_versions_version\":\"3\""),
                "{report}"
            );
        }
        RunResponse::Error {
            reason, message, ..
        } => panic!("{reason}: {message}"),
    }

    let historicals = pods(&sandbox, data.path(), "druid-historicals", 2);
    for ip in &historicals {
        druid_node(format!("{ip}:8083").parse().expect("address"), "true");
    }
    match run(
        &sandbox,
        "druid",
        "druid-historicals",
        json!({"deadline": "20s"}),
    ) {
        RunResponse::Ok { outputs, .. } => {
            assert_eq!(outputs["probe"], "druid");
            assert_eq!(
                outputs["members"],
                "druid-historicals-0=ok,druid-historicals-1=ok"
            );
        }
        RunResponse::Error {
            reason, message, ..
        } => panic!("{reason}: {message}"),
    }

    let brokers = pods(&sandbox, data.path(), "druid-brokers", 1);
    druid_node(
        format!("{}:8082", brokers[0]).parse().expect("address"),
        "false",
    );
    match run(
        &sandbox,
        "druid",
        "druid-brokers",
        json!({"deadline": "2s", "timeout": "1s"}),
    ) {
        RunResponse::Error {
            reason, message, ..
        } => {
            assert_eq!(reason, "HealthCheckFailed");
            assert!(message.contains("druid-brokers-0 ("), "{message}");
            assert!(
                message.contains(&format!("{}:8082", brokers[0])),
                "{message}"
            );
        }
        RunResponse::Ok { outputs, .. } => panic!("an unhealthy Druid node passed: {outputs:?}"),
    }
}
