//! The Kafka probe against an in-test fake broker (Kafka has no Debian
//! package). The fake decodes requests and encodes responses byte by byte
//! from the protocol specification (the message JSON schemas of
//! apache/kafka), independently of the probe's own codec: ApiVersions v0-v3
//! (v3 request header v2, response header v0), Metadata v1-v13,
//! DescribeConfigs v1-v4 and DescribeQuorum v0-v1, over plaintext or TLS.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::common;

use dbops_probes::testing::kafka_fake::{FakeCluster, Partition, serve_broker};

use std::collections::BTreeMap;
use std::time::Duration;

use dbops_probes::kafka::{self, KafkaClient, metadata, quorum};
use dbops_probes::testing::TestCa;
use dbops_probes::{Endpoint, ProbeError, TlsOptions};

const TIMEOUT: Duration = Duration::from_secs(10);

// ---- encoding helpers of the fake, written from the spec ----------------

fn cluster() -> FakeCluster {
    FakeCluster {
        api_versions_max: 3,
        metadata_max: 13,
        describe_configs_max: 4,
        topics: vec![
            (
                "orders".into(),
                2,
                vec![
                    Partition {
                        index: 0,
                        replicas: vec![0, 1, 2],
                        isr: vec![0, 1],
                    },
                    Partition {
                        index: 1,
                        replicas: vec![0, 1, 2],
                        isr: vec![1, 2, 0],
                    },
                ],
            ),
            (
                "logs".into(),
                1,
                vec![Partition {
                    index: 0,
                    replicas: vec![2],
                    isr: vec![2],
                }],
            ),
        ],
        controller_leader: 1001,
        brokers: (0..3)
            .map(|id| (id, format!("kafka-{id}.kafka-pods.test.svc")))
            .collect(),
        voters: vec![1000, 1001, 1002],
        observers: vec![0],
    }
}

#[test]
fn api_versions_v3_over_plaintext() {
    let address = serve_broker(cluster(), None);
    let report = kafka::probe(&Endpoint::plain(&address, TIMEOUT)).unwrap();
    assert_eq!(report.api_versions_version, 3);
    assert_eq!(report.max_version(3), Some(13));
    assert_eq!(report.max_version(18), Some(3));
    assert!(report.tls.is_none());
}

#[test]
fn api_versions_downgrades_when_the_broker_is_older() {
    let mut old = cluster();
    old.api_versions_max = 2;
    old.metadata_max = 8;
    old.describe_configs_max = 2;
    let address = serve_broker(old, None);
    let report = kafka::probe(&Endpoint::plain(&address, TIMEOUT)).unwrap();
    assert_eq!(report.api_versions_version, 2);
    assert_eq!(report.max_version(3), Some(8));
}

#[test]
fn api_versions_over_tls_reports_the_served_certificate() {
    let ca = TestCa::new("kafka ca").unwrap();
    let cert = ca
        .issue("kafka-0", &["kafka-0.kafka-pods.test.svc"])
        .unwrap();
    let address = serve_broker(cluster(), Some(common::server_config(&cert)));
    let endpoint = Endpoint::plain(&address, TIMEOUT).with_tls(TlsOptions::verify(
        ca.cert_pem.as_bytes(),
        "kafka-0.kafka-pods.test.svc",
    ));
    let report = kafka::probe(&endpoint).unwrap();
    assert_eq!(report.tls.unwrap().leaf.serial, cert.serial);
}

#[test]
fn metadata_is_parsed_at_every_supported_version() {
    for metadata_max in [1, 2, 4, 5, 7, 8, 9, 10, 11, 12, 13] {
        let mut fake = cluster();
        fake.metadata_max = metadata_max;
        let address = serve_broker(fake, None);
        let mut client = KafkaClient::connect(&Endpoint::plain(&address, TIMEOUT)).unwrap();
        let meta = client.metadata().unwrap();
        assert_eq!(meta.version, metadata_max);
        assert_eq!(meta.brokers.len(), 3, "v{metadata_max}");
        assert_eq!(meta.brokers[1].host, "kafka-1.kafka-pods.test.svc");
        assert_eq!(meta.topics.len(), 2);
        assert_eq!(
            meta.topics[0].partitions[0].isr,
            vec![0, 1],
            "v{metadata_max}"
        );
        assert_eq!(meta.topics[0].partitions[1].replicas, vec![0, 1, 2]);
    }
}

#[test]
fn min_insync_replicas_come_from_describe_configs_at_v1_to_v4() {
    for describe_configs_max in [1, 2, 3, 4] {
        let mut fake = cluster();
        fake.describe_configs_max = describe_configs_max;
        let address = serve_broker(fake, None);
        let mut client = KafkaClient::connect(&Endpoint::plain(&address, TIMEOUT)).unwrap();
        let min = client
            .min_insync_replicas(&["orders".to_string(), "logs".to_string()])
            .unwrap();
        assert_eq!(
            min,
            BTreeMap::from([("logs".to_string(), 1), ("orders".to_string(), 2)])
        );
    }
}

#[test]
fn restart_safety_follows_isr_and_min_insync_replicas() {
    let address = serve_broker(cluster(), None);
    let endpoint = Endpoint::plain(&address, TIMEOUT);
    // orders-0 has ISR [0, 1] and min.insync.replicas 2: neither 0 nor 1 may go.
    let zero = metadata::check_restart_safety(&endpoint, 0).unwrap();
    assert!(!zero.is_safe());
    assert_eq!(zero.blocking[0].topic, "orders");
    assert!(
        !metadata::check_restart_safety(&endpoint, 1)
            .unwrap()
            .is_safe()
    );
    // Broker 2 is not in orders-0's ISR; logs-0 has a single replica, so it cannot block.
    let two = metadata::check_restart_safety(&endpoint, 2).unwrap();
    assert!(two.is_safe(), "{}", two.reason());
    assert_eq!(two.unavoidable.len(), 1);
}

#[test]
fn the_active_controller_comes_from_describe_quorum() {
    let address = serve_broker(cluster(), None);
    let quorum = quorum::active_controller(&Endpoint::plain(&address, TIMEOUT)).unwrap();
    assert_eq!(quorum.leader_id, 1001);
    assert_eq!(quorum.voters, vec![1000, 1001, 1002]);
    assert_eq!(quorum.observers, vec![0]);
}

#[test]
fn garbage_from_the_server_is_a_protocol_error() {
    let address = common::serve(None, |stream| {
        let mut buf = [0u8; 64];
        let _ = stream.read(&mut buf);
        // An HTTP server on the Kafka port: the "size" is 'HTTP' = 1.2 GB.
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let err = kafka::probe(&Endpoint::plain(&address, TIMEOUT)).unwrap_err();
    assert!(matches!(err, ProbeError::Protocol { .. }), "{err}");

    let address = common::serve(None, |stream| {
        let mut buf = [0u8; 64];
        let _ = stream.read(&mut buf);
        // A plausible size, the right correlation id, then a truncated body.
        let _ = stream.write_all(&[0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 9]);
    });
    let err = kafka::probe(&Endpoint::plain(&address, TIMEOUT)).unwrap_err();
    assert!(matches!(err, ProbeError::Protocol { .. }), "{err}");
}
