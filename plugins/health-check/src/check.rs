//! One attempt: probe every target once, then judge the whole (every
//! target passed, and for ZooKeeper one leader with the rest following).

use std::time::Instant;

use dbops_plugin_sdk::serde_json::{Value, json};
use dbops_probes::zookeeper::{self, MemberState, Quorum, ServerStats};
use dbops_probes::{Endpoint, Outcome, ProbeError};

use crate::config::Probe;
use crate::targets::{ProbeTarget, Settings};

/// The result of probing one target once.
#[derive(Debug, Clone)]
pub struct TargetResult {
    /// Pod name or `service/NAME`.
    pub name: String,
    /// Whether it is a member.
    pub member: bool,
    /// The flattened probe result.
    pub outcome: Outcome,
    /// ZooKeeper's `srvr`, for the quorum judgement.
    pub zookeeper: Option<ServerStats>,
}

/// Every target probed once, and the verdict.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Per target, in order (members by ordinal, then the Service).
    pub results: Vec<TargetResult>,
    /// The ZooKeeper quorum judgement, when asked for.
    pub quorum: Option<Quorum>,
}

/// Probe one target.
pub fn probe_target(settings: &Settings, target: &ProbeTarget) -> TargetResult {
    let probe = settings.probe.name();
    let (outcome, zookeeper) = match &target.endpoint {
        Err(reason) => {
            let error = ProbeError::Unhealthy {
                address: target.name.clone(),
                detail: reason.clone(),
            };
            let outcome = Outcome::from_result::<dbops_probes::tcp::TcpReport>(
                probe,
                "-",
                std::time::Duration::ZERO,
                Err(error),
            );
            (outcome, None)
        }
        Ok(endpoint) => run_probe(settings, endpoint),
    };
    TargetResult {
        name: target.name.clone(),
        member: target.member,
        outcome,
        zookeeper,
    }
}

fn run_probe(settings: &Settings, endpoint: &Endpoint) -> (Outcome, Option<ServerStats>) {
    let probe = settings.probe.name();
    let address = endpoint.address.as_str();
    match settings.probe {
        Probe::Tcp => (
            Outcome::run(probe, address, || dbops_probes::tcp::probe(endpoint)),
            None,
        ),
        Probe::Tls => (
            Outcome::run(probe, address, || dbops_probes::tls::probe(endpoint)),
            None,
        ),
        Probe::Http | Probe::Https | Probe::Druid => (
            Outcome::run(probe, address, || {
                dbops_probes::http::probe(endpoint, &settings.http)
            }),
            None,
        ),
        Probe::Kafka => (
            Outcome::run(probe, address, || dbops_probes::kafka::probe(endpoint)),
            None,
        ),
        Probe::Mysql => (
            Outcome::run(probe, address, || {
                dbops_probes::mysql::probe(endpoint, &settings.mysql)
            }),
            None,
        ),
        Probe::Zookeeper => {
            let started = Instant::now();
            let result = zookeeper::probe(endpoint);
            let stats = result.as_ref().ok().map(|r| r.stats.clone());
            let outcome = Outcome::from_result(probe, address, started.elapsed(), result);
            (outcome, stats)
        }
    }
}

/// Probe every target once (in order; each probe is bounded by its timeout).
pub fn attempt(settings: &Settings, targets: &[ProbeTarget]) -> Attempt {
    let results: Vec<TargetResult> = targets
        .iter()
        .map(|target| probe_target(settings, target))
        .collect();
    let quorum = settings.quorum.then(|| judge(&results));
    Attempt { results, quorum }
}

fn judge(results: &[TargetResult]) -> Quorum {
    let states: Vec<MemberState> = results
        .iter()
        .filter(|r| r.member)
        .map(|r| MemberState {
            name: r.name.clone(),
            stats: r.zookeeper.clone().ok_or_else(|| ProbeError::Unhealthy {
                address: r.outcome.address.clone(),
                detail: r
                    .outcome
                    .reason
                    .clone()
                    .unwrap_or_else(|| "no srvr answer".into()),
            }),
        })
        .collect();
    zookeeper::judge_quorum(&states)
}

impl Attempt {
    /// Every target passed and the quorum (if judged) is healthy.
    pub fn healthy(&self) -> bool {
        !self.results.is_empty()
            && self.results.iter().all(|r| r.outcome.ok)
            && self.quorum.as_ref().is_none_or(Quorum::is_healthy)
    }

    /// One line per problem: `zk-1 (127.0.0.3:2182): reason`, and the quorum's.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .results
            .iter()
            .filter(|r| !r.outcome.ok)
            .map(|r| {
                format!(
                    "{} ({}): {}",
                    r.name,
                    r.outcome.address,
                    r.outcome.reason.as_deref().unwrap_or("failed")
                )
            })
            .collect();
        if self.results.is_empty() {
            problems.push(
                "nothing to probe: the workload has no members (replicas = 0?) and the Service is not probed"
                    .to_string(),
            );
        }
        if let Some(quorum) = &self.quorum {
            // Members not serving are already listed above.
            problems.extend(
                quorum
                    .problems
                    .iter()
                    .filter(|p| !p.starts_with("members not serving"))
                    .map(|p| format!("quorum: {p}")),
            );
        }
        problems
    }

    /// `zk-0=ok,zk-1=failed`.
    pub fn member_states(&self) -> String {
        self.results
            .iter()
            .map(|r| format!("{}={}", r.name, if r.outcome.ok { "ok" } else { "failed" }))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `zk-0=1a2b,zk-1=1a2b`: the serial each target served (TLS only).
    pub fn serials(&self) -> String {
        self.results
            .iter()
            .filter_map(|r| {
                Some(format!(
                    "{}={}",
                    r.name,
                    r.outcome.tls.as_ref()?.leaf.serial
                ))
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The per-target report as JSON (for the `report` output and the log).
    pub fn report(&self) -> Value {
        let targets: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                json!({
                    "target": r.name,
                    "address": r.outcome.address,
                    "ok": r.outcome.ok,
                    "latency_ms": r.outcome.latency_ms,
                    "reason": r.outcome.reason,
                    "details": r.outcome.details,
                })
            })
            .collect();
        let mut report = json!({ "targets": targets });
        if let Some(quorum) = &self.quorum {
            report["quorum"] = json!({
                "leader": quorum.leader,
                "followers": quorum.followers,
                "observers": quorum.observers,
                "problems": quorum.problems,
            });
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbops_probes::zookeeper::Mode;

    fn result(name: &str, mode: Option<Mode>) -> TargetResult {
        let stats = mode.map(|mode| ServerStats {
            version: "3.8.0".into(),
            mode,
            zxid: 1,
            node_count: 5,
            connections: 1,
            outstanding: 0,
        });
        let outcome = match &stats {
            Some(_) => Outcome::from_result::<dbops_probes::tcp::TcpReport>(
                "zookeeper",
                "127.0.0.9:2181",
                std::time::Duration::ZERO,
                Ok(dbops_probes::tcp::TcpReport {
                    peer: "127.0.0.9:2181".into(),
                    latency: std::time::Duration::ZERO,
                }),
            ),
            None => Outcome::from_result::<dbops_probes::tcp::TcpReport>(
                "zookeeper",
                "127.0.0.9:2181",
                std::time::Duration::ZERO,
                Err(ProbeError::Unhealthy {
                    address: "127.0.0.9:2181".into(),
                    detail: "refused".into(),
                }),
            ),
        };
        TargetResult {
            name: name.into(),
            member: true,
            outcome,
            zookeeper: stats,
        }
    }

    #[test]
    fn nothing_to_probe_is_not_healthy() {
        let empty = Attempt {
            results: Vec::new(),
            quorum: None,
        };
        assert!(!empty.healthy());
        assert!(empty.problems()[0].starts_with("nothing to probe"));
    }

    #[test]
    fn a_quorum_needs_one_leader_and_every_member_answering() {
        let healthy = Attempt {
            results: vec![
                result("zk-0", Some(Mode::Follower)),
                result("zk-1", Some(Mode::Leader)),
                result("zk-2", Some(Mode::Follower)),
            ],
            quorum: None,
        };
        let judged = Attempt {
            quorum: Some(judge(&healthy.results)),
            ..healthy
        };
        assert!(judged.healthy(), "{:?}", judged.problems());
        assert_eq!(judged.report()["quorum"]["leader"], "zk-1");
        assert_eq!(judged.member_states(), "zk-0=ok,zk-1=ok,zk-2=ok");

        let results = vec![
            result("zk-0", Some(Mode::Follower)),
            result("zk-1", None),
            result("zk-2", Some(Mode::Follower)),
        ];
        let broken = Attempt {
            quorum: Some(judge(&results)),
            results,
        };
        assert!(!broken.healthy());
        let problems = broken.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("zk-1 (127.0.0.9:2181): "));
        assert_eq!(problems[1], "quorum: no member is leader");
        assert_eq!(broken.member_states(), "zk-0=ok,zk-1=failed,zk-2=ok");
    }
}
