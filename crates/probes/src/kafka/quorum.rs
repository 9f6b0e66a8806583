//! The active KRaft controller, from DescribeQuorum on `__cluster_metadata`.
//!
//! Brokers forward DescribeQuorum to the controllers (Kafka 3.3+), so any
//! broker or combined node can answer.

use serde::Serialize;

use super::KafkaClient;
use super::wire::{Reader, WireResult, Writer};
use crate::error::Result;
use crate::net::Endpoint;

const DESCRIBE_QUORUM_KEY: i16 = 55;
const DESCRIBE_QUORUM_VERSIONS: (i16, i16) = (0, 1);
/// The KRaft metadata log's topic.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// The KRaft quorum as DescribeQuorum reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KraftQuorum {
    /// The active controller's node id.
    pub leader_id: i32,
    /// Its epoch.
    pub leader_epoch: i32,
    /// Voting controllers' node ids.
    pub voters: Vec<i32>,
    /// Observers (brokers) node ids.
    pub observers: Vec<i32>,
}

impl KafkaClient {
    /// DescribeQuorum for `__cluster_metadata` partition 0.
    pub fn describe_quorum(&mut self) -> Result<KraftQuorum> {
        let version = self.pick_version(
            DESCRIBE_QUORUM_KEY,
            DESCRIBE_QUORUM_VERSIONS,
            "DescribeQuorum",
        )?;
        let mut body = Writer::new();
        body.array_len(Some(1), true)
            .string(METADATA_TOPIC, true)
            .array_len(Some(1), true)
            .i32(0)
            .no_tagged_fields(true)
            .no_tagged_fields(true)
            .no_tagged_fields(true);
        let response = self.call(DESCRIBE_QUORUM_KEY, version, true, true, &body.into_bytes())?;
        let (code, quorum) =
            parse_describe_quorum(&response, version).map_err(|detail| self.protocol(detail))?;
        if code != 0 {
            return Err(self.refused("DescribeQuorum", code));
        }
        quorum.ok_or_else(|| {
            self.protocol(format!("DescribeQuorum did not describe {METADATA_TOPIC}"))
        })
    }
}

/// Ask (through `endpoint`) which node is the active KRaft controller.
pub fn active_controller(endpoint: &Endpoint) -> Result<KraftQuorum> {
    KafkaClient::connect(endpoint)?.describe_quorum()
}

/// Returns the first error code met (top level or partition) and the quorum.
pub(crate) fn parse_describe_quorum(
    body: &[u8],
    version: i16,
) -> WireResult<(i16, Option<KraftQuorum>)> {
    let mut r = Reader::new(body);
    let error_code = r.i16("error_code")?;
    let mut found = None;
    let mut first_error = error_code;
    let topics = r.array_len(true, 3, "topics")?.unwrap_or(0);
    for _ in 0..topics {
        let topic = r.string(true, "topic_name")?;
        let partitions = r.array_len(true, 20, "partitions")?.unwrap_or(0);
        for _ in 0..partitions {
            let index = r.i32("partition_index")?;
            let code = r.i16("partition error_code")?;
            let leader_id = r.i32("leader_id")?;
            let leader_epoch = r.i32("leader_epoch")?;
            r.i64("high_watermark")?;
            let voters = read_replicas(&mut r, version, "current_voters")?;
            let observers = read_replicas(&mut r, version, "observers")?;
            r.skip_tagged_fields(true)?;
            if first_error == 0 {
                first_error = code;
            }
            if topic == METADATA_TOPIC && index == 0 && code == 0 {
                found = Some(KraftQuorum {
                    leader_id,
                    leader_epoch,
                    voters,
                    observers,
                });
            }
        }
        r.skip_tagged_fields(true)?;
    }
    r.skip_tagged_fields(true)?;
    Ok((first_error, found))
}

fn read_replicas(r: &mut Reader<'_>, version: i16, what: &str) -> WireResult<Vec<i32>> {
    let count = r.array_len(true, 13, what)?.unwrap_or(0);
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        ids.push(r.i32("replica_id")?);
        r.i64("log_end_offset")?;
        if version >= 1 {
            r.i64("last_fetch_timestamp")?;
            r.i64("last_caught_up_timestamp")?;
        }
        r.skip_tagged_fields(true)?;
    }
    Ok(ids)
}
