//! The `kafka` probe and the requests rolling-restart needs.
//!
//! [`KafkaClient::connect`] opens one connection (plaintext or TLS) and
//! negotiates versions with ApiVersions (v3 first, lower when the broker asks
//! for it). On top of it: [`metadata`] (brokers, partitions, ISR) with
//! `min.insync.replicas` from DescribeConfigs, and [`quorum`] (the active KRaft
//! controller from DescribeQuorum). SASL listeners are not supported: probe a
//! listener that needs no SASL (ApiVersions itself works before SASL).

pub mod metadata;
pub mod quorum;
mod wire;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{ProbeError, Result};
use crate::net::{Conn, Endpoint};
use crate::tls::TlsSession;
use wire::{Reader, Writer};

/// The largest response a probe accepts (Metadata of a big cluster is a few MiB).
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// ApiVersions' API key.
pub const API_VERSIONS_KEY: i16 = 18;
/// The highest ApiVersions version this client speaks.
pub const API_VERSIONS_MAX: i16 = 3;
/// Kafka's UNSUPPORTED_VERSION error code.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// One API the broker supports and its version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ApiRange {
    /// The API key (e.g. 3 = Metadata).
    pub api_key: i16,
    /// Lowest supported version.
    pub min_version: i16,
    /// Highest supported version.
    pub max_version: i16,
}

/// The result of the `kafka` probe.
#[derive(Debug, Clone, Serialize)]
pub struct KafkaReport {
    /// The ApiVersions version that was answered.
    pub api_versions_version: i16,
    /// Every API the broker announced.
    pub api_keys: Vec<ApiRange>,
    /// The TLS session for a TLS listener.
    pub tls: Option<TlsSession>,
    /// Time for connect plus ApiVersions.
    pub latency: Duration,
}

impl KafkaReport {
    /// The highest version of `api_key` the broker supports.
    pub fn max_version(&self, api_key: i16) -> Option<i16> {
        max_version(&self.api_keys, api_key)
    }
}

fn max_version(ranges: &[ApiRange], api_key: i16) -> Option<i16> {
    ranges
        .iter()
        .find(|range| range.api_key == api_key)
        .map(|range| range.max_version)
}

/// The `kafka` probe: connect and negotiate ApiVersions.
pub fn probe(endpoint: &Endpoint) -> Result<KafkaReport> {
    let started = Instant::now();
    let mut client = KafkaClient::connect(endpoint)?;
    Ok(KafkaReport {
        api_versions_version: client.api_versions_version,
        api_keys: client.api_keys.clone(),
        tls: client.conn.take_tls_session(),
        latency: started.elapsed(),
    })
}

/// A connection to one broker that has negotiated API versions.
pub struct KafkaClient {
    conn: Conn,
    correlation_id: i32,
    api_versions_version: i16,
    api_keys: Vec<ApiRange>,
}

impl KafkaClient {
    /// Connect (TLS when `endpoint.tls` is set) and run ApiVersions; the
    /// whole session must finish within `endpoint.timeout`.
    pub fn connect(endpoint: &Endpoint) -> Result<KafkaClient> {
        let conn = Conn::open(endpoint, Instant::now() + endpoint.timeout)?;
        let mut client = KafkaClient {
            conn,
            correlation_id: 0,
            api_versions_version: API_VERSIONS_MAX,
            api_keys: Vec::new(),
        };
        client.negotiate()?;
        Ok(client)
    }

    /// Every API the broker announced.
    pub fn api_keys(&self) -> &[ApiRange] {
        &self.api_keys
    }

    /// The TLS session, when the listener uses TLS.
    pub fn tls_session(&self) -> Option<&TlsSession> {
        self.conn.tls_session()
    }

    fn address(&self) -> String {
        self.conn.address().to_string()
    }

    fn negotiate(&mut self) -> Result<()> {
        let mut version = API_VERSIONS_MAX;
        for _attempt in 0..2 {
            let flexible = version >= 3;
            let mut body = Writer::new();
            if flexible {
                body.string("dbops-probe", true)
                    .string(env!("CARGO_PKG_VERSION"), true)
                    .no_tagged_fields(true);
            }
            // ApiVersions responses always use response header v0 (no tagged
            // fields), even for flexible versions, so old brokers can answer.
            let response = self.call(
                API_VERSIONS_KEY,
                version,
                flexible,
                false,
                &body.into_bytes(),
            )?;
            match parse_api_versions(&response, version).map_err(|detail| self.protocol(detail))? {
                ApiVersionsAnswer::Supported(ranges) => {
                    self.api_versions_version = version;
                    self.api_keys = ranges;
                    return Ok(());
                }
                ApiVersionsAnswer::Downgrade(ranges) => {
                    let broker_max = max_version(&ranges, API_VERSIONS_KEY).unwrap_or(0);
                    if broker_max >= version {
                        break;
                    }
                    version = broker_max.clamp(0, API_VERSIONS_MAX);
                }
            }
        }
        Err(ProbeError::Refused {
            protocol: "kafka",
            address: self.address(),
            detail: "the broker rejected every ApiVersions version (UNSUPPORTED_VERSION)"
                .to_string(),
        })
    }

    /// Pick the highest version both sides support within `ours`.
    pub(crate) fn pick_version(
        &self,
        api_key: i16,
        ours: (i16, i16),
        api_name: &str,
    ) -> Result<i16> {
        let range = self
            .api_keys
            .iter()
            .find(|range| range.api_key == api_key)
            .ok_or_else(|| ProbeError::Refused {
                protocol: "kafka",
                address: self.address(),
                detail: format!("the broker does not support {api_name} (api key {api_key})"),
            })?;
        let version = range.max_version.min(ours.1);
        if version < ours.0 || version < range.min_version {
            return Err(ProbeError::Refused {
                protocol: "kafka",
                address: self.address(),
                detail: format!(
                    "no common {api_name} version: the broker speaks {}..={}, this probe {}..={}",
                    range.min_version, range.max_version, ours.0, ours.1
                ),
            });
        }
        Ok(version)
    }

    /// Send one request and return the response body after its header.
    pub(crate) fn call(
        &mut self,
        api_key: i16,
        version: i16,
        flexible_request_header: bool,
        flexible_response_header: bool,
        body: &[u8],
    ) -> Result<Vec<u8>> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        let during = format!("api key {api_key} v{version}");
        let request = wire::frame_request(
            api_key,
            version,
            correlation_id,
            flexible_request_header,
            body,
        );
        self.conn.send(&request, &format!("sending {during}"))?;
        let mut size = [0u8; 4];
        self.conn
            .read_exact(&mut size, &format!("reading the {during} response size"))?;
        let size = i32::from_be_bytes(size);
        if size < 4 || size as usize > MAX_RESPONSE_BYTES {
            return Err(self.protocol(format!(
                "response size {size} is outside 4..={MAX_RESPONSE_BYTES} (is this a kafka listener of the right kind, tls or plaintext?)"
            )));
        }
        let mut response = vec![0u8; size as usize];
        self.conn
            .read_exact(&mut response, &format!("reading the {during} response"))?;
        let mut reader = Reader::new(&response);
        let answered = reader.i32("correlation id").map_err(|d| self.protocol(d))?;
        if answered != correlation_id {
            return Err(self.protocol(format!(
                "response correlation id {answered} does not match request {correlation_id}"
            )));
        }
        reader
            .skip_tagged_fields(flexible_response_header)
            .map_err(|d| self.protocol(d))?;
        let consumed = response.len() - reader.remaining();
        Ok(response.split_off(consumed))
    }

    pub(crate) fn protocol(&self, detail: String) -> ProbeError {
        ProbeError::Protocol {
            protocol: "kafka",
            address: self.address(),
            detail,
        }
    }

    pub(crate) fn refused(&self, what: &str, code: i16) -> ProbeError {
        ProbeError::Refused {
            protocol: "kafka",
            address: self.address(),
            detail: format!("{what} failed with error {code} ({})", error_name(code)),
        }
    }
}

enum ApiVersionsAnswer {
    Supported(Vec<ApiRange>),
    /// UNSUPPORTED_VERSION: the body is in v0 format and says which versions to use.
    Downgrade(Vec<ApiRange>),
}

fn parse_api_versions(body: &[u8], version: i16) -> Result<ApiVersionsAnswer, String> {
    let mut reader = Reader::new(body);
    let error_code = reader.i16("error_code")?;
    let (flexible, answer_version) = if error_code == UNSUPPORTED_VERSION {
        (false, 0)
    } else {
        (version >= 3, version)
    };
    let count = reader.array_len(flexible, 6, "api_keys")?.unwrap_or(0);
    let mut ranges = Vec::with_capacity(count);
    for _ in 0..count {
        ranges.push(ApiRange {
            api_key: reader.i16("api_key")?,
            min_version: reader.i16("min_version")?,
            max_version: reader.i16("max_version")?,
        });
        reader.skip_tagged_fields(flexible)?;
    }
    if answer_version >= 1 {
        reader.i32("throttle_time_ms")?;
    }
    // v3's trailing tagged fields (supported/finalized features) are not needed.
    reader.skip_tagged_fields(flexible)?;
    match error_code {
        0 => Ok(ApiVersionsAnswer::Supported(ranges)),
        UNSUPPORTED_VERSION => Ok(ApiVersionsAnswer::Downgrade(ranges)),
        code => Err(format!(
            "ApiVersions failed with error {code} ({})",
            error_name(code)
        )),
    }
}

/// The name of a Kafka error code, for messages.
pub fn error_name(code: i16) -> &'static str {
    match code {
        0 => "NONE",
        -1 => "UNKNOWN_SERVER_ERROR",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        9 => "REPLICA_NOT_AVAILABLE",
        19 => "NOT_ENOUGH_REPLICAS",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        31 => "CLUSTER_AUTHORIZATION_FAILED",
        33 => "UNSUPPORTED_SASL_MECHANISM",
        35 => "UNSUPPORTED_VERSION",
        41 => "NOT_CONTROLLER",
        42 => "INVALID_REQUEST",
        58 => "SASL_AUTHENTICATION_FAILED",
        _ => "see the Kafka protocol error codes",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_v3_body_is_parsed() {
        // error 0, compact array of 2 entries, each with empty tagged fields,
        // throttle 0, then a tagged-field section holding one field (tag 0, 2 bytes).
        let body = [
            0, 0, // error_code
            3, // 2 entries + 1
            0, 18, 0, 0, 0, 3, 0, // ApiVersions 0..=3
            0, 3, 0, 0, 0, 12, 0, // Metadata 0..=12
            0, 0, 0, 0, // throttle
            1, 0, 2, 0xaa, 0xbb, // one tagged field
        ];
        let ApiVersionsAnswer::Supported(ranges) = parse_api_versions(&body, 3).unwrap() else {
            panic!("expected a supported answer");
        };
        assert_eq!(max_version(&ranges, 3), Some(12));
        assert_eq!(max_version(&ranges, 18), Some(3));
    }

    #[test]
    fn unsupported_version_answers_are_read_as_v0() {
        let body = [0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 2];
        let ApiVersionsAnswer::Downgrade(ranges) = parse_api_versions(&body, 3).unwrap() else {
            panic!("expected a downgrade");
        };
        assert_eq!(max_version(&ranges, 18), Some(2));
    }

    #[test]
    fn truncated_or_failed_answers_are_errors() {
        assert!(parse_api_versions(&[0, 0, 5], 3).is_err());
        assert!(parse_api_versions(&[], 2).is_err());
        let err = parse_api_versions(&[0, 31, 0, 0, 0, 0, 0, 0, 0, 0], 2)
            .err()
            .unwrap();
        assert!(err.contains("CLUSTER_AUTHORIZATION_FAILED"), "{err}");
    }
}
