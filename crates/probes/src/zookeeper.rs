//! The `zookeeper` probe: four-letter words (`ruok`, `srvr`) and the quorum check.
//!
//! Four-letter words work on the plain client port and, with the Netty
//! connection factory, on the secure client port over TLS (checked against
//! Debian's ZooKeeper 3.8). The server must allow them:
//! `4lw.commands.whitelist=ruok,srvr` (or `*`).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{ProbeError, Result};
use crate::net::{Conn, Endpoint};
use crate::tls::TlsSession;

/// The most a probe reads of one four-letter-word answer.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The role a ZooKeeper server reports in `srvr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The ensemble's leader.
    Leader,
    /// A voting follower.
    Follower,
    /// A non-voting observer.
    Observer,
    /// A single server without an ensemble.
    Standalone,
    /// Read-only mode (lost quorum, `readonlymode.enabled`).
    ReadOnly,
    /// Anything else the server printed.
    Other(String),
}

impl Mode {
    fn parse(text: &str) -> Mode {
        match text.trim() {
            "leader" => Mode::Leader,
            "follower" => Mode::Follower,
            "observer" => Mode::Observer,
            "standalone" => Mode::Standalone,
            "read-only" => Mode::ReadOnly,
            other => Mode::Other(other.to_string()),
        }
    }

    /// The name ZooKeeper uses.
    pub fn as_str(&self) -> &str {
        match self {
            Mode::Leader => "leader",
            Mode::Follower => "follower",
            Mode::Observer => "observer",
            Mode::Standalone => "standalone",
            Mode::ReadOnly => "read-only",
            Mode::Other(other) => other,
        }
    }
}

/// A parsed `srvr` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerStats {
    /// e.g. "3.8.0-…, built on …".
    pub version: String,
    /// The server's role.
    pub mode: Mode,
    /// Last transaction id.
    pub zxid: u64,
    /// Number of znodes.
    pub node_count: u64,
    /// Open client connections.
    pub connections: u64,
    /// Queued requests.
    pub outstanding: u64,
}

/// The result of the `zookeeper` probe against one server.
#[derive(Debug, Clone, Serialize)]
pub struct ZookeeperReport {
    /// `srvr`, parsed.
    pub stats: ServerStats,
    /// The TLS session when the secure port was probed.
    pub tls: Option<TlsSession>,
    /// Time for `ruok` plus `srvr`.
    pub latency: Duration,
}

/// Send one four-letter word and return the whole answer.
pub fn four_letter_word(endpoint: &Endpoint, word: &str) -> Result<(String, Option<TlsSession>)> {
    if word.len() != 4 || !word.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(ProbeError::Protocol {
            protocol: "zookeeper",
            address: endpoint.address.clone(),
            detail: format!("{word:?} is not a four-letter word"),
        });
    }
    let mut conn = Conn::open(endpoint, Instant::now() + endpoint.timeout)?;
    conn.send(word.as_bytes(), &format!("sending {word}"))?;
    let answer = conn.read_to_end(MAX_ANSWER_BYTES, &format!("reading the {word} answer"))?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    Ok((text, conn.take_tls_session()))
}

/// `ruok` must be answered `imok`.
pub fn ruok(endpoint: &Endpoint) -> Result<Option<TlsSession>> {
    let (answer, tls) = four_letter_word(endpoint, "ruok")?;
    if answer.trim() == "imok" {
        return Ok(tls);
    }
    Err(ProbeError::Unhealthy {
        address: endpoint.address.clone(),
        detail: if answer.contains("not in the whitelist") {
            "ruok is not allowed: add ruok,srvr to 4lw.commands.whitelist".to_string()
        } else if answer.is_empty() {
            "ruok got no answer (is 4lw.commands.whitelist set?)".to_string()
        } else {
            format!("ruok answered {:?} instead of imok", first_line(&answer))
        },
    })
}

/// `srvr`, parsed; a server that is not serving (no quorum) is unhealthy.
pub fn srvr(endpoint: &Endpoint) -> Result<(ServerStats, Option<TlsSession>)> {
    let (answer, tls) = four_letter_word(endpoint, "srvr")?;
    let stats = parse_srvr(&answer).map_err(|detail| {
        if answer.contains("not currently serving") {
            ProbeError::Unhealthy {
                address: endpoint.address.clone(),
                detail: "not currently serving requests (no quorum?)".to_string(),
            }
        } else if answer.contains("not in the whitelist") {
            ProbeError::Unhealthy {
                address: endpoint.address.clone(),
                detail: "srvr is not allowed: add ruok,srvr to 4lw.commands.whitelist".to_string(),
            }
        } else {
            ProbeError::Protocol {
                protocol: "zookeeper",
                address: endpoint.address.clone(),
                detail,
            }
        }
    })?;
    Ok((stats, tls))
}

/// The `zookeeper` probe: `ruok` then `srvr`.
pub fn probe(endpoint: &Endpoint) -> Result<ZookeeperReport> {
    let started = Instant::now();
    ruok(endpoint)?;
    let (stats, tls) = srvr(endpoint)?;
    Ok(ZookeeperReport {
        stats,
        tls,
        latency: started.elapsed(),
    })
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Parse a `srvr` answer.
pub fn parse_srvr(text: &str) -> Result<ServerStats, String> {
    let mut version = None;
    let mut mode = None;
    let mut zxid = None;
    let mut node_count = None;
    let mut connections = 0;
    let mut outstanding = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "Zookeeper version" => version = Some(value.to_string()),
            "Mode" => mode = Some(Mode::parse(value)),
            "Zxid" => {
                let digits = value.trim_start_matches("0x");
                zxid = Some(
                    u64::from_str_radix(digits, 16).map_err(|_| format!("bad Zxid {value:?}"))?,
                );
            }
            "Node count" => {
                node_count = Some(
                    value
                        .parse()
                        .map_err(|_| format!("bad Node count {value:?}"))?,
                )
            }
            "Connections" => connections = value.parse().unwrap_or(0),
            "Outstanding" => outstanding = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    let missing = |field: &str| {
        format!(
            "the srvr answer has no {field} line: {:?}",
            first_line(text)
        )
    };
    Ok(ServerStats {
        version: version.ok_or_else(|| missing("Zookeeper version"))?,
        mode: mode.ok_or_else(|| missing("Mode"))?,
        zxid: zxid.ok_or_else(|| missing("Zxid"))?,
        node_count: node_count.ok_or_else(|| missing("Node count"))?,
        connections,
        outstanding,
    })
}

/// What one ensemble member answered (or why it did not).
#[derive(Debug)]
pub struct MemberState {
    /// The member's name (pod name).
    pub name: String,
    /// Its `srvr` answer or the error.
    pub stats: Result<ServerStats>,
}

/// The quorum verdict over all members of an ensemble.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quorum {
    /// The leader's name, when exactly one member leads.
    pub leader: Option<String>,
    /// Members serving as followers.
    pub followers: Vec<String>,
    /// Members serving as observers.
    pub observers: Vec<String>,
    /// Members that did not answer as part of the ensemble, with the reason.
    pub not_serving: Vec<(String, String)>,
    /// Why the ensemble is not healthy; empty when it is.
    pub problems: Vec<String>,
}

impl Quorum {
    /// One leader, every other member a follower or observer.
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty()
    }

    /// Whether the ensemble keeps a voting majority while `member` restarts:
    /// every other member must be serving now (a restart while another member
    /// is already down risks losing quorum) and the remaining voters must be
    /// a strict majority of `voters` (the ensemble's voting size).
    pub fn can_lose(&self, member: &str, voters: usize) -> Result<(), String> {
        let others_down: Vec<String> = self
            .not_serving
            .iter()
            .filter(|(name, _)| name != member)
            .map(|(name, reason)| format!("{name} ({reason})"))
            .collect();
        if !others_down.is_empty() {
            return Err(format!(
                "other members are not serving: {}",
                others_down.join(", ")
            ));
        }
        let serving_voters = self.followers.len() + usize::from(self.leader.is_some());
        let member_votes = self.leader.as_deref() == Some(member)
            || self.followers.iter().any(|name| name == member);
        let remaining = serving_voters - usize::from(member_votes);
        if remaining * 2 <= voters {
            return Err(format!(
                "only {remaining} of {voters} voting members would remain, no majority"
            ));
        }
        Ok(())
    }
}

/// Judge an ensemble from every member's `srvr`: exactly one leader, the rest
/// followers (observers allowed); a lone standalone server is healthy too.
pub fn judge_quorum(members: &[MemberState]) -> Quorum {
    let mut quorum = Quorum {
        leader: None,
        followers: Vec::new(),
        observers: Vec::new(),
        not_serving: Vec::new(),
        problems: Vec::new(),
    };
    let mut leaders = Vec::new();
    let mut standalone = Vec::new();
    for member in members {
        match &member.stats {
            Err(err) => quorum
                .not_serving
                .push((member.name.clone(), err.to_string())),
            Ok(stats) => match &stats.mode {
                Mode::Leader => leaders.push(member.name.clone()),
                Mode::Follower => quorum.followers.push(member.name.clone()),
                Mode::Observer => quorum.observers.push(member.name.clone()),
                Mode::Standalone => standalone.push(member.name.clone()),
                other => quorum
                    .not_serving
                    .push((member.name.clone(), format!("mode {}", other.as_str()))),
            },
        }
    }
    if members.len() == 1 && standalone.len() == 1 {
        return quorum;
    }
    if !standalone.is_empty() {
        quorum.problems.push(format!(
            "members run standalone instead of in the ensemble: {}",
            standalone.join(", ")
        ));
    }
    match leaders.len() {
        0 => quorum.problems.push("no member is leader".to_string()),
        1 => quorum.leader = leaders.pop(),
        _ => quorum
            .problems
            .push(format!("more than one leader: {}", leaders.join(", "))),
    }
    if !quorum.not_serving.is_empty() {
        let names: Vec<String> = quorum
            .not_serving
            .iter()
            .map(|(name, reason)| format!("{name} ({reason})"))
            .collect();
        quorum
            .problems
            .push(format!("members not serving: {}", names.join(", ")));
    }
    quorum
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOLLOWER: &str = "Zookeeper version: 3.8.0-abc, built on 2024-12-29 17:54 UTC\n\
        Latency min/avg/max: 0/0.0/0\nReceived: 2\nSent: 1\nConnections: 3\nOutstanding: 0\n\
        Zxid: 0x100000002\nMode: follower\nNode count: 5\n";

    fn stats(mode: Mode) -> Result<ServerStats> {
        Ok(ServerStats {
            version: "3.8.0".into(),
            mode,
            zxid: 1,
            node_count: 5,
            connections: 0,
            outstanding: 0,
        })
    }

    fn member(name: &str, stats: Result<ServerStats>) -> MemberState {
        MemberState {
            name: name.into(),
            stats,
        }
    }

    fn down() -> Result<ServerStats> {
        Err(ProbeError::Unhealthy {
            address: "a".into(),
            detail: "down".into(),
        })
    }

    #[test]
    fn srvr_is_parsed() {
        let stats = parse_srvr(FOLLOWER).unwrap();
        assert_eq!(stats.mode, Mode::Follower);
        assert_eq!(stats.zxid, 0x1_0000_0002);
        assert_eq!(stats.node_count, 5);
        assert_eq!(stats.connections, 3);
        assert!(stats.version.starts_with("3.8.0"));
    }

    #[test]
    fn garbage_srvr_answers_are_errors() {
        assert!(parse_srvr("").is_err());
        assert!(parse_srvr("This ZooKeeper instance is not currently serving requests").is_err());
        assert!(parse_srvr(&FOLLOWER.replace("0x100000002", "0xzz")).is_err());
        assert!(parse_srvr(&"\u{fffd}".repeat(1000)).is_err());
    }

    #[test]
    fn one_leader_and_followers_is_a_healthy_quorum() {
        let quorum = judge_quorum(&[
            member("zk-0", stats(Mode::Follower)),
            member("zk-1", stats(Mode::Leader)),
            member("zk-2", stats(Mode::Follower)),
        ]);
        assert!(quorum.is_healthy(), "{quorum:?}");
        assert_eq!(quorum.leader.as_deref(), Some("zk-1"));
        assert_eq!(quorum.followers, vec!["zk-0", "zk-2"]);
    }

    #[test]
    fn no_leader_two_leaders_or_standalone_members_are_problems() {
        let none = judge_quorum(&[
            member("a", stats(Mode::Follower)),
            member("b", stats(Mode::Follower)),
        ]);
        assert!(!none.is_healthy());
        let two = judge_quorum(&[
            member("a", stats(Mode::Leader)),
            member("b", stats(Mode::Leader)),
        ]);
        assert!(
            two.problems
                .iter()
                .any(|p| p.contains("more than one leader"))
        );
        let split = judge_quorum(&[
            member("a", stats(Mode::Leader)),
            member("b", stats(Mode::Standalone)),
        ]);
        assert!(split.problems.iter().any(|p| p.contains("standalone")));
        assert!(judge_quorum(&[member("solo", stats(Mode::Standalone))]).is_healthy());
    }

    #[test]
    fn a_member_can_restart_only_while_the_others_keep_a_majority() {
        let all_up = judge_quorum(&[
            member("zk-0", stats(Mode::Follower)),
            member("zk-1", stats(Mode::Leader)),
            member("zk-2", stats(Mode::Follower)),
        ]);
        assert!(all_up.can_lose("zk-0", 3).is_ok());
        assert!(all_up.can_lose("zk-1", 3).is_ok());

        let one_down = judge_quorum(&[
            member("zk-0", down()),
            member("zk-1", stats(Mode::Leader)),
            member("zk-2", stats(Mode::Follower)),
        ]);
        // The member that is already down may be restarted (it is the one being fixed) ...
        assert!(one_down.can_lose("zk-0", 3).is_ok());
        // ... but no other member while it is down.
        let err = one_down.can_lose("zk-2", 3).unwrap_err();
        assert!(err.contains("zk-0"), "{err}");

        let two_voters = judge_quorum(&[
            member("zk-0", stats(Mode::Leader)),
            member("zk-1", stats(Mode::Follower)),
        ]);
        assert!(
            two_voters
                .can_lose("zk-1", 2)
                .unwrap_err()
                .contains("no majority")
        );
    }
}
