//! A fake Kafka broker for tests (Kafka has no Debian package): it decodes
//! requests and encodes responses byte by byte from the protocol
//! specification (the message JSON schemas of apache/kafka), independently
//! of the probe's own codec: ApiVersions v0-v3 (v3 request header v2,
//! response header v0), Metadata v1-v13, DescribeConfigs v1-v4 and
//! DescribeQuorum v0-v1, over plaintext or TLS. The cluster it describes
//! (brokers, KRaft quorum, topics with their ISR and min.insync.replicas) is
//! data, so one fake per sandbox pod IP can play a whole cluster.
#![allow(clippy::unwrap_used)] // Reason: test support; a malformed request should fail loudly.

use std::net::SocketAddr;
use std::sync::Arc;

use super::servers::{self, Duplex};

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

/// A partition of a fake topic.
#[derive(Debug, Clone)]
pub struct Partition {
    /// Partition index.
    pub index: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids (the first one leads).
    pub isr: Vec<i32>,
}

/// The cluster the fake describes.
#[derive(Debug, Clone)]
pub struct FakeCluster {
    /// Highest ApiVersions version the fake accepts.
    pub api_versions_max: i16,
    /// Highest Metadata version.
    pub metadata_max: i16,
    /// Highest DescribeConfigs version.
    pub describe_configs_max: i16,
    /// Brokers in Metadata: (node id, advertised host).
    pub brokers: Vec<(i32, String)>,
    /// Topics: (name, min.insync.replicas, partitions).
    pub topics: Vec<(String, i32, Vec<Partition>)>,
    /// The active KRaft controller (DescribeQuorum leader).
    pub controller_leader: i32,
    /// KRaft voters.
    pub voters: Vec<i32>,
    /// KRaft observers.
    pub observers: Vec<i32>,
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

/// Serve `cluster` on 127.0.0.1 (any port); returns the address.
pub fn serve_broker(cluster: FakeCluster, tls: Option<Arc<rustls::ServerConfig>>) -> String {
    servers::serve(tls, move |stream| handle(&cluster, stream))
}

/// Serve `cluster` on `address` (e.g. a sandbox pod IP and port 9092).
pub fn serve_broker_on(
    address: SocketAddr,
    cluster: FakeCluster,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<SocketAddr> {
    servers::serve_on(address, tls, move |stream| handle(&cluster, stream))
}

fn handle(cluster: &FakeCluster, stream: &mut dyn Duplex) {
    {
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
            let (body, response_header_flexible) = respond(cluster, key, version, &mut input);
            let mut out = Out::default();
            out.i32(correlation);
            out.tags(response_header_flexible);
            out.0.extend_from_slice(&body);
            let mut frame = (out.0.len() as i32).to_be_bytes().to_vec();
            frame.extend_from_slice(&out.0);
            stream.write_all(&frame).unwrap();
            stream.flush().unwrap();
        }
    }
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
            out.len(cluster.brokers.len(), c);
            for (id, host) in &cluster.brokers {
                out.i32(*id).str(host, c).i32(9092);
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
            out.len(cluster.voters.len(), true);
            for id in &cluster.voters {
                replica(&mut out, *id);
            }
            out.len(cluster.observers.len(), true);
            for id in &cluster.observers {
                replica(&mut out, *id);
            }
            out.tags(true).tags(true).tags(true);
            (out.0, true)
        }
        other => panic!("the fake does not implement api key {other}"),
    }
}
