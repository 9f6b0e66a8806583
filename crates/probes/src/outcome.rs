//! One flat record per probe attempt, for logs, Events and step outputs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::ProbeError;
use crate::tls::TlsSession;

/// What a probe report contributes to an [`Outcome`].
pub trait Report {
    /// Key facts as text (e.g. `mode = leader`).
    fn details(&self) -> BTreeMap<String, String>;
    /// The TLS session, when TLS was spoken.
    fn tls(&self) -> Option<&TlsSession> {
        None
    }
}

/// The result of one probe attempt against one address.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The probe kind (`tcp`, `tls`, `zookeeper` …).
    pub probe: String,
    /// The address probed.
    pub address: String,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed (the whole error chain), when it did.
    pub reason: Option<String>,
    /// The error kind (PascalCase), when it failed.
    pub error_kind: Option<String>,
    /// Whether a retry may help.
    pub retryable: bool,
    /// Wall time of the attempt in milliseconds.
    pub latency_ms: u64,
    /// Probe-specific facts.
    pub details: BTreeMap<String, String>,
    /// The TLS session, when TLS was spoken.
    pub tls: Option<TlsSession>,
    /// Things the caller must log as warnings (e.g. verification disabled).
    pub warnings: Vec<String>,
}

impl Outcome {
    /// Run `attempt`, timing it, and flatten its result.
    pub fn run<R: Report>(
        probe: &str,
        address: &str,
        attempt: impl FnOnce() -> Result<R, ProbeError>,
    ) -> Outcome {
        let started = Instant::now();
        let result = attempt();
        Outcome::from_result(probe, address, started.elapsed(), result)
    }

    /// Flatten a finished attempt.
    pub fn from_result<R: Report>(
        probe: &str,
        address: &str,
        latency: Duration,
        result: Result<R, ProbeError>,
    ) -> Outcome {
        let mut outcome = Outcome {
            probe: probe.to_string(),
            address: address.to_string(),
            ok: false,
            reason: None,
            error_kind: None,
            retryable: false,
            latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            details: BTreeMap::new(),
            tls: None,
            warnings: Vec::new(),
        };
        match result {
            Ok(report) => {
                outcome.ok = true;
                outcome.details = report.details();
                outcome.tls = report.tls().cloned();
                if let Some(tls) = &outcome.tls {
                    outcome
                        .details
                        .insert("tls.serial".into(), tls.leaf.serial.clone());
                    outcome
                        .details
                        .insert("tls.sha256".into(), tls.leaf.sha256.clone());
                    outcome
                        .details
                        .insert("tls.not_after".into(), tls.leaf.not_after.clone());
                    if !tls.verified {
                        outcome.warnings.push(format!(
                            "tls certificate of {address} was NOT verified (insecure_skip_verify)"
                        ));
                    }
                }
            }
            Err(err) => {
                outcome.reason = Some(err.chain());
                outcome.error_kind = Some(err.kind().to_string());
                outcome.retryable = err.is_retryable();
            }
        }
        outcome
    }

    /// One line: `zookeeper 10.0.0.1:2181 ok (12 ms) mode=leader` or the reason.
    pub fn summary(&self) -> String {
        if self.ok {
            let facts: Vec<String> = self
                .details
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            format!(
                "{} {} ok ({} ms) {}",
                self.probe,
                self.address,
                self.latency_ms,
                facts.join(" ")
            )
            .trim_end()
            .to_string()
        } else {
            format!(
                "{} {} failed ({} ms): {}",
                self.probe,
                self.address,
                self.latency_ms,
                self.reason.as_deref().unwrap_or("unknown")
            )
        }
    }
}

fn map<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
}

impl Report for crate::tcp::TcpReport {
    fn details(&self) -> BTreeMap<String, String> {
        map([("peer", self.peer.clone())])
    }
}

impl Report for crate::tls::TlsReport {
    fn details(&self) -> BTreeMap<String, String> {
        map([
            ("tls.version", self.session.protocol_version.clone()),
            ("tls.subject", self.session.leaf.subject.clone()),
            ("tls.issuer", self.session.leaf.issuer.clone()),
        ])
    }
    fn tls(&self) -> Option<&TlsSession> {
        Some(&self.session)
    }
}

impl Report for crate::http::HttpReport {
    fn details(&self) -> BTreeMap<String, String> {
        map([("status", self.status.to_string())])
    }
    fn tls(&self) -> Option<&TlsSession> {
        self.tls.as_ref()
    }
}

impl Report for crate::zookeeper::ZookeeperReport {
    fn details(&self) -> BTreeMap<String, String> {
        map([
            ("mode", self.stats.mode.as_str().to_string()),
            ("zxid", format!("{:#x}", self.stats.zxid)),
            ("node_count", self.stats.node_count.to_string()),
        ])
    }
    fn tls(&self) -> Option<&TlsSession> {
        self.tls.as_ref()
    }
}

impl Report for crate::kafka::KafkaReport {
    fn details(&self) -> BTreeMap<String, String> {
        let mut details = map([
            (
                "api_versions_version",
                self.api_versions_version.to_string(),
            ),
            ("api_keys", self.api_keys.len().to_string()),
        ]);
        if let Some(metadata) = self.max_version(3) {
            details.insert("metadata_max_version".into(), metadata.to_string());
        }
        details
    }
    fn tls(&self) -> Option<&TlsSession> {
        self.tls.as_ref()
    }
}

impl Report for crate::mysql::MysqlReport {
    fn details(&self) -> BTreeMap<String, String> {
        let mut details = map([("server_version", self.server_version.clone())]);
        if let Some(plugin) = &self.auth_plugin {
            details.insert("auth_plugin".into(), plugin.clone());
            details.insert("select_one".into(), self.select_one.to_string());
        }
        match &self.galera {
            crate::mysql::Galera::NotChecked => {}
            crate::mysql::Galera::NotAGaleraNode => {
                details.insert("galera".into(), "not a Galera node".into());
            }
            crate::mysql::Galera::Node {
                cluster_status,
                local_state,
                ..
            } => {
                details.insert("wsrep_cluster_status".into(), cluster_status.clone());
                if let Some(state) = local_state {
                    details.insert("wsrep_local_state".into(), state.clone());
                }
            }
        }
        details
    }
    fn tls(&self) -> Option<&TlsSession> {
        self.tls.as_ref()
    }
}
