//! The Kafka probe against an in-test fake broker (Kafka has no Debian
//! package). The fake decodes requests and encodes responses byte by byte
//! from the protocol specification (the message JSON schemas of
//! apache/kafka), independently of the probe's own codec: ApiVersions v0-v3
//! (v3 request header v2, response header v0), Metadata v1-v13,
//! DescribeConfigs v1-v4 and DescribeQuorum v0-v1, over plaintext or TLS.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dbops_probes::kafka::{self, KafkaClient, metadata, quorum};
use dbops_probes::testing::TestCa;
use dbops_probes::{Endpoint, ProbeError, TlsOptions};

const TIMEOUT: Duration = Duration::from_secs(10);

// ---- encoding helpers of the fake, written from the spec ----------------

#[derive(Default)]
struct Out(Vec<u8>);

impl Out {
    fn i8(&mut self, v: i8) -> &mut Self {
        self.0.push(v as u8);
        self
    }
    fn i16(&mut self, v: i16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn varint(&mut self, mut v: u32) -> &mut Self {
        loop {
            if v < 0x80 {
                self.0.push(v as u8);
                return self;
            }
            self.0.push((v & 0x7f) as u8 | 0x80);
            v >>= 7;
        }
    }
    /// STRING (int16 length) or COMPACT_STRING (varint length+1).
    fn str(&mut self, s: &str, compact: bool) -> &mut Self {
        if compact {
            self.varint(s.len() as u32 + 1);
        } else {
            self.i16(s.len() as i16);
        }
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn null_str(&mut self, compact: bool) -> &mut Self {
        if compact {
            self.varint(0)
        } else {
            self.i16(-1)
        }
    }
    fn len(&mut self, n: usize, compact: bool) -> &mut Self {
        if compact {
            self.varint(n as u32 + 1)
        } else {
            self.i32(n as i32)
        }
    }
    fn tags(&mut self, compact: bool) -> &mut Self {
        if compact {
            self.varint(0);
        }
        self
    }
    fn ints(&mut self, values: &[i32], compact: bool) -> &mut Self {
        self.len(values.len(), compact);
        for v in values {
            self.i32(*v);
        }
        self
    }
}

struct In<'a>(&'a [u8]);

impl In<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    fn varint(&mut self) -> u32 {
        let mut value = 0;
        let mut shift = 0;
        loop {
            let b = self.take(1)[0];
            value |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return value;
            }
            shift += 7;
        }
    }
    fn str(&mut self, compact: bool) -> String {
        let n = if compact {
            self.varint() as usize - 1
        } else {
            self.i16() as usize
        };
        String::from_utf8(self.take(n).to_vec()).unwrap()
    }
}

// ---- the fake broker ------------------------------------------------------

#[derive(Clone)]
struct Partition {
    index: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

#[derive(Clone)]
struct FakeCluster {
    /// Highest ApiVersions version the fake accepts.
    api_versions_max: i16,
    metadata_max: i16,
    describe_configs_max: i16,
    topics: Vec<(String, i32, Vec<Partition>)>, // name, min.insync.replicas, partitions
    controller_leader: i32,
}

fn flexible_request(key: i16, version: i16) -> bool {
    match key {
        18 => version >= 3,
        3 => version >= 9,
        32 => version >= 4,
        55 => true,
        _ => false,
    }
}

fn serve_broker(cluster: FakeCluster, tls: Option<Arc<rustls::ServerConfig>>) -> String {
    common::serve(tls, move |stream| {
        loop {
            let mut size = [0u8; 4];
            if stream.read_exact(&mut size).is_err() {
                return;
            }
            let mut request = vec![0u8; i32::from_be_bytes(size) as usize];
            stream.read_exact(&mut request).unwrap();
            let mut input = In(&request);
            let key = input.i16();
            let version = input.i16();
            let correlation = input.i32();
            let client_id = input.str(false); // always a classic nullable string
            assert_eq!(client_id, "dbops-probe");
            let flexible = flexible_request(key, version);
            if flexible {
                assert_eq!(input.varint(), 0, "request header tagged fields");
            }
            let (body, response_header_flexible) = respond(&cluster, key, version, &mut input);
            let mut out = Out::default();
            out.i32(correlation);
            out.tags(response_header_flexible);
            out.0.extend_from_slice(&body);
            let mut frame = (out.0.len() as i32).to_be_bytes().to_vec();
            frame.extend_from_slice(&out.0);
            stream.write_all(&frame).unwrap();
            stream.flush().unwrap();
        }
    })
}

fn respond(cluster: &FakeCluster, key: i16, version: i16, input: &mut In<'_>) -> (Vec<u8>, bool) {
    let mut out = Out::default();
    match key {
        18 => {
            if version > cluster.api_versions_max {
                // UNSUPPORTED_VERSION, answered in v0 format with our ApiVersions range.
                out.i16(35)
                    .len(1, false)
                    .i16(18)
                    .i16(0)
                    .i16(cluster.api_versions_max);
                return (out.0, false);
            }
            let compact = version >= 3;
            if compact {
                assert_eq!(input.str(true), "dbops-probe");
                let _software_version = input.str(true);
                assert_eq!(input.varint(), 0);
            }
            let apis = [
                (18, 0, cluster.api_versions_max),
                (3, 0, cluster.metadata_max),
                (32, 0, cluster.describe_configs_max),
                (55, 0, 1),
            ];
            out.i16(0).len(apis.len(), compact);
            for (api, min, max) in apis {
                out.i16(api).i16(min).i16(max).tags(compact);
            }
            if version >= 1 {
                out.i32(0);
            }
            if compact {
                // A tagged field (SupportedFeatures, tag 0) the probe must skip.
                out.varint(1)
                    .varint(0)
                    .varint(3)
                    .0
                    .extend_from_slice(&[1, 2, 3]);
            }
            // ApiVersions responses always use response header v0.
            (out.0, false)
        }
        3 => {
            let c = version >= 9;
            if version >= 3 {
                out.i32(0); // throttle_time_ms
            }
            out.len(3, c);
            for id in 0..3 {
                out.i32(id)
                    .str(&format!("kafka-{id}.kafka-pods.test.svc"), c)
                    .i32(9092);
                out.null_str(c).tags(c);
            }
            if version >= 2 {
                out.str("cluster-uuid", c);
            }
            out.i32(2); // controller id as clients see it
            out.len(cluster.topics.len(), c);
            for (name, _, partitions) in &cluster.topics {
                out.i16(0).str(name, c);
                if version >= 10 {
                    out.0.extend_from_slice(&[7u8; 16]);
                }
                out.i8(0); // is_internal
                out.len(partitions.len(), c);
                for p in partitions {
                    out.i16(0).i32(p.index).i32(p.isr[0]);
                    if version >= 7 {
                        out.i32(5);
                    }
                    out.ints(&p.replicas, c).ints(&p.isr, c);
                    if version >= 5 {
                        out.ints(&[], c);
                    }
                    out.tags(c);
                }
                if version >= 8 {
                    out.i32(i32::MIN);
                }
                out.tags(c);
            }
            if (8..=10).contains(&version) {
                out.i32(i32::MIN);
            }
            if version >= 13 {
                out.i16(0);
            }
            out.tags(c);
            (out.0, c)
        }
        32 => {
            let c = version >= 4;
            let count = if c {
                input.varint() as usize - 1
            } else {
                input.i32() as usize
            };
            let mut names = Vec::new();
            for _ in 0..count {
                let resource_type = input.take(1)[0];
                assert_eq!(resource_type, 2, "topic resources");
                names.push(input.str(c));
                let keys = if c {
                    input.varint() as usize - 1
                } else {
                    input.i32() as usize
                };
                for _ in 0..keys {
                    assert_eq!(input.str(c), "min.insync.replicas");
                }
                if c {
                    input.varint();
                }
            }
            out.i32(0).len(names.len(), c);
            for name in names {
                let min = cluster
                    .topics
                    .iter()
                    .find(|t| t.0 == name)
                    .map(|t| t.1)
                    .unwrap();
                out.i16(0).null_str(c).i8(2).str(&name, c);
                out.len(1, c)
                    .str("min.insync.replicas", c)
                    .str(&min.to_string(), c);
                out.i8(0).i8(5).i8(0); // read_only, config_source, is_sensitive
                out.len(1, c)
                    .str("min.insync.replicas", c)
                    .str(&min.to_string(), c)
                    .i8(5)
                    .tags(c);
                if version >= 3 {
                    out.i8(3).null_str(c);
                }
                out.tags(c).tags(c);
            }
            out.tags(c);
            (out.0, c)
        }
        55 => {
            out.i16(0)
                .len(1, true)
                .str("__cluster_metadata", true)
                .len(1, true);
            out.i32(0)
                .i16(0)
                .i32(cluster.controller_leader)
                .i32(4)
                .i64(100);
            let replica = |out: &mut Out, id: i32| {
                out.i32(id).i64(100);
                if version >= 1 {
                    out.i64(-1).i64(-1);
                }
                out.tags(true);
            };
            out.len(3, true);
            for id in [1000, 1001, 1002] {
                replica(&mut out, id);
            }
            out.len(1, true);
            replica(&mut out, 0);
            out.tags(true).tags(true).tags(true);
            (out.0, true)
        }
        other => panic!("the fake does not implement api key {other}"),
    }
}

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
