//! Metadata (brokers, partitions, in-sync replicas), `min.insync.replicas`
//! from DescribeConfigs, and the restart-safety check built on them.
//!
//! The check follows Strimzi's rolling restarter: a broker may restart when
//! no partition it is in-sync for would drop below `min.insync.replicas`.
//! Partitions whose replication factor is not above `min.insync.replicas`
//! can never survive a broker restart and do not block it (they are reported).

use std::collections::BTreeMap;

use serde::Serialize;

use super::KafkaClient;
use super::wire::{Reader, WireResult, Writer};
use crate::error::Result;
use crate::net::Endpoint;

const METADATA_KEY: i16 = 3;
const METADATA_VERSIONS: (i16, i16) = (1, 13);
const DESCRIBE_CONFIGS_KEY: i16 = 32;
const DESCRIBE_CONFIGS_VERSIONS: (i16, i16) = (1, 4);
const TOPIC_RESOURCE: i8 = 2;
/// Kafka's default `min.insync.replicas`.
pub const DEFAULT_MIN_INSYNC_REPLICAS: i32 = 1;

/// One broker as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broker {
    /// `node.id` / `broker.id`.
    pub node_id: i32,
    /// Advertised host (in Kubernetes usually the pod's DNS name).
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// `broker.rack`.
    pub rack: Option<String>,
}

/// One partition's replica placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// Partition number.
    pub index: i32,
    /// Partition-level error code (0 = none).
    pub error_code: i16,
    /// Leader broker id (-1 when none).
    pub leader: i32,
    /// Assigned replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
}

/// One topic's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topic {
    /// Topic name.
    pub name: String,
    /// Topic-level error code (0 = none).
    pub error_code: i16,
    /// Internal topics such as `__consumer_offsets`.
    pub is_internal: bool,
    /// Its partitions.
    pub partitions: Vec<Partition>,
}

/// What Metadata returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterMetadata {
    /// The Metadata version used.
    pub version: i16,
    /// Live brokers.
    pub brokers: Vec<Broker>,
    /// Cluster id (v2+).
    pub cluster_id: Option<String>,
    /// Controller id as reported to clients (in KRaft a random live broker:
    /// use [`super::quorum`] for the active controller).
    pub controller_id: i32,
    /// All topics.
    pub topics: Vec<Topic>,
    /// Top-level error code (v13+, otherwise 0).
    pub error_code: i16,
}

impl KafkaClient {
    /// Metadata for all topics, at the highest version both sides speak (1..=13).
    pub fn metadata(&mut self) -> Result<ClusterMetadata> {
        let version = self.pick_version(METADATA_KEY, METADATA_VERSIONS, "Metadata")?;
        let body = metadata_request(version);
        let flexible = version >= 9;
        let response = self.call(METADATA_KEY, version, flexible, flexible, &body)?;
        let metadata =
            parse_metadata(&response, version).map_err(|detail| self.protocol(detail))?;
        if metadata.error_code != 0 {
            return Err(self.refused("Metadata", metadata.error_code));
        }
        Ok(metadata)
    }

    /// The effective `min.insync.replicas` of each named topic.
    pub fn min_insync_replicas(&mut self, topics: &[String]) -> Result<BTreeMap<String, i32>> {
        if topics.is_empty() {
            return Ok(BTreeMap::new());
        }
        let version = self.pick_version(
            DESCRIBE_CONFIGS_KEY,
            DESCRIBE_CONFIGS_VERSIONS,
            "DescribeConfigs",
        )?;
        let flexible = version >= 4;
        let body = describe_configs_request(version, topics);
        let response = self.call(DESCRIBE_CONFIGS_KEY, version, flexible, flexible, &body)?;
        let results = parse_describe_configs(&response, version).map_err(|d| self.protocol(d))?;
        let mut out = BTreeMap::new();
        for result in results {
            if result.error_code != 0 {
                return Err(self.refused(
                    &format!("DescribeConfigs of topic {}", result.name),
                    result.error_code,
                ));
            }
            let value = result.configs.get("min.insync.replicas").cloned().flatten();
            let min_isr = match value {
                Some(text) => text.parse::<i32>().map_err(|_| {
                    self.protocol(format!(
                        "topic {} has min.insync.replicas {text:?}, not a number",
                        result.name
                    ))
                })?,
                None => DEFAULT_MIN_INSYNC_REPLICAS,
            };
            out.insert(result.name, min_isr);
        }
        Ok(out)
    }
}

fn metadata_request(version: i16) -> Vec<u8> {
    let flexible = version >= 9;
    let mut body = Writer::new();
    body.array_len(None, flexible); // null: all topics
    if version >= 4 {
        body.bool(false); // allow_auto_topic_creation
    }
    if (8..=10).contains(&version) {
        body.bool(false); // include_cluster_authorized_operations
    }
    if version >= 8 {
        body.bool(false); // include_topic_authorized_operations
    }
    body.no_tagged_fields(flexible);
    body.into_bytes()
}

/// Parse a Metadata response body of `version` (1..=13).
pub(crate) fn parse_metadata(body: &[u8], version: i16) -> WireResult<ClusterMetadata> {
    let flexible = version >= 9;
    let mut r = Reader::new(body);
    if version >= 3 {
        r.i32("throttle_time_ms")?;
    }
    let broker_count = r.array_len(flexible, 10, "brokers")?.unwrap_or(0);
    let mut brokers = Vec::with_capacity(broker_count);
    for _ in 0..broker_count {
        let node_id = r.i32("node_id")?;
        let host = r.string(flexible, "host")?;
        let port = r.i32("port")?;
        let rack = r.nullable_string(flexible, "rack")?;
        r.skip_tagged_fields(flexible)?;
        brokers.push(Broker {
            node_id,
            host,
            port,
            rack,
        });
    }
    let cluster_id = if version >= 2 {
        r.nullable_string(flexible, "cluster_id")?
    } else {
        None
    };
    let controller_id = r.i32("controller_id")?;
    let topic_count = r.array_len(flexible, 4, "topics")?.unwrap_or(0);
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let error_code = r.i16("topic error_code")?;
        let name = if version >= 12 {
            r.nullable_string(flexible, "topic name")?
                .unwrap_or_default()
        } else {
            r.string(flexible, "topic name")?
        };
        if version >= 10 {
            r.uuid("topic_id")?;
        }
        let is_internal = r.bool("is_internal")?;
        let partition_count = r.array_len(flexible, 14, "partitions")?.unwrap_or(0);
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            let error_code = r.i16("partition error_code")?;
            let index = r.i32("partition_index")?;
            let leader = r.i32("leader_id")?;
            if version >= 7 {
                r.i32("leader_epoch")?;
            }
            let replicas = r.i32_array(flexible, "replica_nodes")?;
            let isr = r.i32_array(flexible, "isr_nodes")?;
            if version >= 5 {
                r.i32_array(flexible, "offline_replicas")?;
            }
            r.skip_tagged_fields(flexible)?;
            partitions.push(Partition {
                index,
                error_code,
                leader,
                replicas,
                isr,
            });
        }
        if version >= 8 {
            r.i32("topic_authorized_operations")?;
        }
        r.skip_tagged_fields(flexible)?;
        topics.push(Topic {
            name,
            error_code,
            is_internal,
            partitions,
        });
    }
    if (8..=10).contains(&version) {
        r.i32("cluster_authorized_operations")?;
    }
    let error_code = if version >= 13 {
        r.i16("error_code")?
    } else {
        0
    };
    r.skip_tagged_fields(flexible)?;
    Ok(ClusterMetadata {
        version,
        brokers,
        cluster_id,
        controller_id,
        topics,
        error_code,
    })
}

fn describe_configs_request(version: i16, topics: &[String]) -> Vec<u8> {
    let flexible = version >= 4;
    let mut body = Writer::new();
    body.array_len(Some(topics.len()), flexible);
    for topic in topics {
        body.i8(TOPIC_RESOURCE)
            .string(topic, flexible)
            .array_len(Some(1), flexible)
            .string("min.insync.replicas", flexible)
            .no_tagged_fields(flexible);
    }
    body.bool(false); // include_synonyms (v1+)
    if version >= 3 {
        body.bool(false); // include_documentation
    }
    body.no_tagged_fields(flexible);
    body.into_bytes()
}

pub(crate) struct ConfigResult {
    pub(crate) error_code: i16,
    pub(crate) name: String,
    pub(crate) configs: BTreeMap<String, Option<String>>,
}

pub(crate) fn parse_describe_configs(body: &[u8], version: i16) -> WireResult<Vec<ConfigResult>> {
    let flexible = version >= 4;
    let mut r = Reader::new(body);
    r.i32("throttle_time_ms")?;
    let count = r.array_len(flexible, 8, "results")?.unwrap_or(0);
    let mut results = Vec::with_capacity(count);
    for _ in 0..count {
        let error_code = r.i16("error_code")?;
        r.nullable_string(flexible, "error_message")?;
        r.i8("resource_type")?;
        let name = r.string(flexible, "resource_name")?;
        let config_count = r.array_len(flexible, 6, "configs")?.unwrap_or(0);
        let mut configs = BTreeMap::new();
        for _ in 0..config_count {
            let key = r.string(flexible, "config name")?;
            let value = r.nullable_string(flexible, "config value")?;
            r.bool("read_only")?;
            r.i8("config_source")?;
            r.bool("is_sensitive")?;
            let synonyms = r.array_len(flexible, 4, "synonyms")?.unwrap_or(0);
            for _ in 0..synonyms {
                r.string(flexible, "synonym name")?;
                r.nullable_string(flexible, "synonym value")?;
                r.i8("synonym source")?;
                r.skip_tagged_fields(flexible)?;
            }
            if version >= 3 {
                r.i8("config_type")?;
                r.nullable_string(flexible, "documentation")?;
            }
            r.skip_tagged_fields(flexible)?;
            configs.insert(key, value);
        }
        r.skip_tagged_fields(flexible)?;
        results.push(ConfigResult {
            error_code,
            name,
            configs,
        });
    }
    r.skip_tagged_fields(flexible)?;
    Ok(results)
}

/// A partition that would lose availability if the broker restarted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtRiskPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Current in-sync replicas.
    pub isr: Vec<i32>,
    /// The topic's `min.insync.replicas`.
    pub min_insync_replicas: i32,
}

/// Whether a broker can restart without taking partitions below `min.insync.replicas`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestartSafety {
    /// The broker asked about.
    pub broker: i32,
    /// Partitions that would drop below their minimum (empty = safe).
    pub blocking: Vec<AtRiskPartition>,
    /// Partitions whose replication factor is not above their minimum: a
    /// restart makes them unavailable whatever we do, so they do not block.
    pub unavoidable: Vec<AtRiskPartition>,
}

impl RestartSafety {
    /// True when no partition blocks the restart.
    pub fn is_safe(&self) -> bool {
        self.blocking.is_empty()
    }

    /// A short reason naming the first blocking partitions.
    pub fn reason(&self) -> String {
        let names: Vec<String> = self
            .blocking
            .iter()
            .take(5)
            .map(|p| {
                format!(
                    "{}-{} (isr {:?}, min.insync.replicas {})",
                    p.topic, p.partition, p.isr, p.min_insync_replicas
                )
            })
            .collect();
        format!(
            "restarting broker {} would take {} partition(s) below min.insync.replicas: {}",
            self.broker,
            self.blocking.len(),
            names.join(", ")
        )
    }
}

/// Judge whether `broker` can restart, from metadata and per-topic minimums.
pub fn restart_safety(
    metadata: &ClusterMetadata,
    min_isr: &BTreeMap<String, i32>,
    broker: i32,
) -> RestartSafety {
    let mut safety = RestartSafety {
        broker,
        blocking: Vec::new(),
        unavoidable: Vec::new(),
    };
    for topic in &metadata.topics {
        let minimum = min_isr
            .get(&topic.name)
            .copied()
            .unwrap_or(DEFAULT_MIN_INSYNC_REPLICAS);
        for partition in &topic.partitions {
            if !partition.isr.contains(&broker) {
                continue;
            }
            let at_risk = AtRiskPartition {
                topic: topic.name.clone(),
                partition: partition.index,
                isr: partition.isr.clone(),
                min_insync_replicas: minimum,
            };
            if partition.replicas.len() as i32 <= minimum {
                safety.unavoidable.push(at_risk);
            } else if (partition.isr.len() as i32) - 1 < minimum {
                safety.blocking.push(at_risk);
            }
        }
    }
    safety
}

/// Ask the cluster (through `endpoint`) whether `broker` can restart now.
pub fn check_restart_safety(endpoint: &Endpoint, broker: i32) -> Result<RestartSafety> {
    let mut client = KafkaClient::connect(endpoint)?;
    let metadata = client.metadata()?;
    for topic in &metadata.topics {
        if topic.error_code != 0 {
            return Err(client.refused(
                &format!("Metadata of topic {}", topic.name),
                topic.error_code,
            ));
        }
    }
    let names: Vec<String> = metadata.topics.iter().map(|t| t.name.clone()).collect();
    let min_isr = client.min_insync_replicas(&names)?;
    Ok(restart_safety(&metadata, &min_isr, broker))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(index: i32, replicas: &[i32], isr: &[i32]) -> Partition {
        Partition {
            index,
            error_code: 0,
            leader: isr.first().copied().unwrap_or(-1),
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
        }
    }

    fn cluster(partitions: Vec<Partition>) -> ClusterMetadata {
        ClusterMetadata {
            version: 12,
            brokers: Vec::new(),
            cluster_id: None,
            controller_id: 0,
            error_code: 0,
            topics: vec![Topic {
                name: "orders".into(),
                error_code: 0,
                is_internal: false,
                partitions,
            }],
        }
    }

    #[test]
    fn a_broker_blocks_when_its_partition_would_drop_below_min_isr() {
        let meta = cluster(vec![
            partition(0, &[0, 1, 2], &[0, 1]), // under-replicated: 0 and 1 are needed
            partition(1, &[0, 1, 2], &[0, 1, 2]),
        ]);
        let min = BTreeMap::from([("orders".to_string(), 2)]);
        let safety = restart_safety(&meta, &min, 0);
        assert!(!safety.is_safe());
        assert_eq!(safety.blocking.len(), 1);
        assert_eq!(safety.blocking[0].partition, 0);
        assert!(safety.reason().contains("orders-0"), "{}", safety.reason());
        // Broker 2 is not in partition 0's ISR: its restart changes nothing there.
        assert!(restart_safety(&meta, &min, 2).is_safe());
    }

    #[test]
    fn partitions_that_can_never_survive_a_restart_do_not_block() {
        let meta = cluster(vec![partition(0, &[1], &[1])]);
        let safety = restart_safety(&meta, &BTreeMap::new(), 1);
        assert!(safety.is_safe());
        assert_eq!(safety.unavoidable.len(), 1);
    }

    #[test]
    fn metadata_request_v12_is_flexible_and_asks_for_all_topics() {
        assert_eq!(metadata_request(12), vec![0, 0, 0, 0]);
        assert_eq!(metadata_request(1), vec![0xff, 0xff, 0xff, 0xff]);
        assert_eq!(metadata_request(4), vec![0xff, 0xff, 0xff, 0xff, 0]);
    }

    #[test]
    fn truncated_metadata_is_an_error() {
        assert!(parse_metadata(&[0, 0, 0, 0, 2], 12).is_err());
        assert!(parse_metadata(&[0, 0, 0, 1], 1).is_err());
    }
}
