//! Asking the members themselves: their roles (for the order) and whether
//! the rest of the cluster can lose the next members (the pre-check).
//! Every call goes to the pod's IP from its status, with a short timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use dbops_engines::Engine;
use dbops_engines::members;
use dbops_engines::members::{DruidRole, MemberProfile, MemberRole, OrderStrategy, PreCheck};
use dbops_plugin_sdk::{Context, StepResult, Target};
use dbops_probes::cluster;
use dbops_probes::cluster::{Member, ResolvedTls, Workload};
use dbops_probes::kafka::{KafkaClient, metadata};
use dbops_probes::mysql::{self, Credentials, Galera, GaleraCheck, MysqlCheck};
use dbops_probes::zookeeper::{self, MemberState, Mode};
use dbops_probes::{Endpoint, ProbeError};

use crate::config::{Config, PreCheckChoice};

/// How to reach members.
pub struct Prober<'w> {
    /// The engine's member knowledge.
    pub profile: MemberProfile,
    /// The port probed on each pod IP.
    pub port: u16,
    /// TLS, when members are probed over TLS.
    pub tls: Option<ResolvedTls>,
    /// Per-probe timeout.
    pub timeout: Duration,
    /// MySQL account (Galera pre-check).
    pub credentials: Option<Credentials>,
    /// The workload (service name, namespace).
    pub workload: &'w Workload,
    /// Pod label naming roles.
    pub role_label: Option<String>,
}

impl Prober<'_> {
    /// The endpoint of a member, when its pod has an IP.
    pub fn endpoint(&self, member: &Member) -> Option<Endpoint> {
        let ip = member.ip()?;
        let address = if ip.contains(':') {
            format!("[{ip}]:{}", self.port)
        } else {
            format!("{ip}:{}", self.port)
        };
        let endpoint = Endpoint::plain(address, self.timeout);
        Some(match &self.tls {
            Some(tls) => endpoint.with_tls(tls.for_member(
                &member.name,
                self.workload.service(),
                &self.workload.namespace,
            )),
            None => endpoint,
        })
    }

    fn endpoint_or_err(&self, member: &Member) -> Result<Endpoint, String> {
        self.endpoint(member).ok_or_else(|| {
            format!(
                "{} has no pod IP ({})",
                member.name,
                member.status_summary()
            )
        })
    }

    /// Each member's role; members that do not answer get `Unknown`, with the
    /// reason in the second map (for a log line).
    pub fn roles(
        &self,
        members: &[Member],
    ) -> (BTreeMap<String, MemberRole>, BTreeMap<String, String>) {
        let mut roles = BTreeMap::new();
        let mut problems = BTreeMap::new();
        match self.profile.order {
            OrderStrategy::ZookeeperLeaderLast => {
                for member in members {
                    let role = self
                        .endpoint_or_err(member)
                        .and_then(|e| zookeeper::srvr(&e).map_err(|e| e.to_string()));
                    let role = match role {
                        Ok((stats, _)) => match stats.mode {
                            Mode::Leader => MemberRole::Leader,
                            Mode::Follower | Mode::Observer => MemberRole::Follower,
                            other => {
                                problems.insert(
                                    member.name.clone(),
                                    format!("mode {}", other.as_str()),
                                );
                                MemberRole::Unknown
                            }
                        },
                        Err(reason) => {
                            problems.insert(member.name.clone(), reason);
                            MemberRole::Unknown
                        }
                    };
                    roles.insert(member.name.clone(), role);
                }
            }
            OrderStrategy::KafkaActiveControllerLast => match self.kafka_roles(members) {
                Ok(found) => roles = found,
                Err(reason) => {
                    for member in members {
                        problems.insert(member.name.clone(), reason.clone());
                    }
                }
            },
            OrderStrategy::PrimaryLast => {
                let label = self.role_label.as_deref().or(self.profile.role_label);
                for member in members {
                    let value = label.and_then(|l| member.label(l)).unwrap_or_default();
                    let role = if value.eq_ignore_ascii_case("primary") {
                        MemberRole::Primary
                    } else {
                        MemberRole::Replica
                    };
                    roles.insert(member.name.clone(), role);
                }
            }
            OrderStrategy::DruidByRole => {
                let label = self.role_label.as_deref().or(self.profile.role_label);
                for member in members {
                    let role = label
                        .and_then(|l| member.label(l))
                        .and_then(DruidRole::recognise)
                        .or_else(|| DruidRole::recognise(&member.name))
                        .map(MemberRole::Druid)
                        .unwrap_or(MemberRole::Unknown);
                    roles.insert(member.name.clone(), role);
                }
            }
            OrderStrategy::HighestOrdinalFirst => {}
        }
        for member in members {
            roles
                .entry(member.name.clone())
                .or_insert(MemberRole::Unknown);
        }
        (roles, problems)
    }

    /// Broker ids of members: from Metadata's advertised hosts (pod DNS name
    /// or IP), falling back to the ordinal (KRaft combined mode: node.id = ordinal).
    fn kafka_ids(
        &self,
        client: &mut KafkaClient,
        members: &[Member],
    ) -> Result<BTreeMap<String, i32>, String> {
        let meta = client.metadata().map_err(|e| e.to_string())?;
        let mut ids = BTreeMap::new();
        for member in members {
            let by_host = meta.brokers.iter().find(|b| {
                b.host == member.name
                    || b.host.starts_with(&format!("{}.", member.name))
                    || member.ip() == Some(b.host.as_str())
            });
            let id = by_host.map(|b| b.node_id).unwrap_or(member.ordinal as i32);
            ids.insert(member.name.clone(), id);
        }
        Ok(ids)
    }

    fn any_client(&self, members: &[Member], exclude: &[String]) -> Result<KafkaClient, String> {
        let mut last = "no member has a pod IP".to_string();
        for member in members.iter().filter(|m| !exclude.contains(&m.name)) {
            let Some(endpoint) = self.endpoint(member) else {
                continue;
            };
            match KafkaClient::connect(&endpoint) {
                Ok(client) => return Ok(client),
                Err(err) => last = format!("{}: {err}", member.name),
            }
        }
        Err(last)
    }

    fn kafka_roles(&self, members: &[Member]) -> Result<BTreeMap<String, MemberRole>, String> {
        let mut client = self.any_client(members, &[])?;
        let ids = self.kafka_ids(&mut client, members)?;
        let quorum = client.describe_quorum().map_err(|e| e.to_string())?;
        Ok(ids
            .into_iter()
            .map(|(name, id)| {
                let role = if id == quorum.leader_id {
                    MemberRole::ActiveController
                } else if quorum.voters.contains(&id) {
                    MemberRole::Controller
                } else {
                    MemberRole::Broker
                };
                (name, role)
            })
            .collect())
    }

    /// Whether the cluster can lose `batch` now: Ok(summary) or Err(reason).
    pub fn pre_check(&self, members: &[Member], batch: &[String]) -> Result<String, String> {
        match self.profile.pre_check {
            PreCheck::None => Ok("no pre-check for this engine".to_string()),
            PreCheck::ZookeeperQuorum => self.zookeeper_pre_check(members, batch),
            PreCheck::KafkaInSyncReplicas => self.kafka_pre_check(members, batch),
            PreCheck::GaleraPrimary => self.galera_pre_check(members, batch),
        }
    }

    fn zookeeper_pre_check(&self, members: &[Member], batch: &[String]) -> Result<String, String> {
        let states: Vec<MemberState> = members
            .iter()
            .map(|member| MemberState {
                name: member.name.clone(),
                stats: match self.endpoint(member) {
                    Some(endpoint) => zookeeper::srvr(&endpoint).map(|(stats, _)| stats),
                    None => Err(ProbeError::Unhealthy {
                        address: member.name.clone(),
                        detail: format!("no pod IP ({})", member.status_summary()),
                    }),
                },
            })
            .collect();
        let quorum = zookeeper::judge_quorum(&states);
        let voters = members.len() - quorum.observers.len();
        let others_down: Vec<String> = quorum
            .not_serving
            .iter()
            .filter(|(name, _)| !batch.contains(name))
            .map(|(name, reason)| format!("{name} ({reason})"))
            .collect();
        if !others_down.is_empty() {
            return Err(format!(
                "other members are not serving: {}",
                others_down.join("; ")
            ));
        }
        let serving_voters: Vec<&String> = quorum
            .followers
            .iter()
            .chain(quorum.leader.iter())
            .collect();
        let remaining = serving_voters
            .iter()
            .filter(|name| !batch.contains(name))
            .count();
        if remaining * 2 <= voters {
            return Err(format!(
                "restarting {} would leave {remaining} of {voters} voting members: no majority",
                batch.join(", ")
            ));
        }
        Ok(format!(
            "quorum keeps {remaining} of {voters} voters (leader {})",
            quorum.leader.as_deref().unwrap_or("none")
        ))
    }

    fn kafka_pre_check(&self, members: &[Member], batch: &[String]) -> Result<String, String> {
        let mut client = self.any_client(members, batch)?;
        let ids = self.kafka_ids(&mut client, members)?;
        let meta = client.metadata().map_err(|e| e.to_string())?;
        let names: Vec<String> = meta.topics.iter().map(|t| t.name.clone()).collect();
        let min_isr = client
            .min_insync_replicas(&names)
            .map_err(|e| e.to_string())?;
        let mut reasons = Vec::new();
        for name in batch {
            let Some(id) = ids.get(name) else { continue };
            let safety = metadata::restart_safety(&meta, &min_isr, *id);
            if !safety.is_safe() {
                reasons.push(safety.reason());
            }
        }
        if reasons.is_empty() {
            Ok(format!(
                "no partition would drop below min.insync.replicas ({} topics)",
                names.len()
            ))
        } else {
            Err(reasons.join("; "))
        }
    }

    fn galera_pre_check(&self, members: &[Member], batch: &[String]) -> Result<String, String> {
        let credentials = self
            .credentials
            .clone()
            .ok_or("the Galera pre-check needs probe.credentials")?;
        let check = MysqlCheck {
            credentials: Some(credentials),
            galera: GaleraCheck::PrimaryIfGalera,
        };
        if members.len() <= 1 {
            return Ok("a single member: no other member to keep available".to_string());
        }
        let mut size = None;
        for member in members.iter().filter(|m| !batch.contains(&m.name)) {
            let endpoint = self.endpoint_or_err(member)?;
            let report =
                mysql::probe(&endpoint, &check).map_err(|e| format!("{}: {e}", member.name))?;
            if report.galera == Galera::NotAGaleraNode {
                return Ok(format!(
                    "{} is not a Galera node (plain MySQL/MariaDB): no cluster state to check",
                    member.name
                ));
            }
            if let Galera::Node {
                local_state,
                cluster_size,
                ..
            } = &report.galera
            {
                if local_state.as_deref().is_some_and(|s| s != "Synced") {
                    return Err(format!(
                        "{} is {}, not Synced",
                        member.name,
                        local_state.as_deref().unwrap_or("unknown")
                    ));
                }
                size = size.or(*cluster_size);
            }
        }
        let size = size.unwrap_or(members.len() as u32) as usize;
        let remaining = size.saturating_sub(batch.len());
        if remaining * 2 <= size {
            return Err(format!(
                "restarting {} would leave {remaining} of {size} Galera nodes: no Primary majority",
                batch.join(", ")
            ));
        }
        Ok(format!(
            "Galera cluster Primary, {remaining} of {size} nodes stay"
        ))
    }
}

/// Probe settings with the Secrets read.
pub struct ProbeSettings {
    pub engine: Engine,
    pub port: u16,
    pub tls: Option<cluster::ResolvedTls>,
    pub credentials: Option<dbops_probes::mysql::Credentials>,
    pub timeout: Duration,
    pub role_label: Option<String>,
    pub pre_check: PreCheckChoice,
    pub pre_check_timeout: Duration,
}

impl ProbeSettings {
    /// Read the Secrets the probe settings name.
    pub fn load(
        ctx: &Context<'_>,
        config: &Config,
        target: &Target,
        engine: Engine,
    ) -> StepResult<ProbeSettings> {
        let profile = members::profile(engine);
        let tls = match &config.probe.tls {
            Some(settings) => Some(cluster::resolve_tls(ctx, &target.namespace, settings)?),
            None => None,
        };
        if tls.as_ref().is_some_and(|t| !t.verifies()) {
            ctx.warn("probes of the members do NOT verify TLS certificates (insecure_skip_verify = true)");
        }
        let credentials = match &config.probe.credentials {
            Some(settings) => Some(cluster::load_credentials(ctx, &target.namespace, settings)?),
            None => None,
        };
        Ok(ProbeSettings {
            engine,
            port: config
                .probe
                .port
                .unwrap_or(profile.ports.for_tls(tls.is_some())),
            tls,
            credentials,
            timeout: config.probe.timeout.get(),
            role_label: config.probe.role_label.clone(),
            pre_check: config.pre_check,
            pre_check_timeout: config.pre_check_timeout.get(),
        })
    }

    /// A prober for the members of `workload`.
    pub fn prober<'w>(&self, workload: &'w Workload) -> Prober<'w> {
        Prober {
            profile: members::profile(self.engine),
            port: self.port,
            tls: self.tls.clone(),
            timeout: self.timeout,
            credentials: self.credentials.clone(),
            workload,
            role_label: self.role_label.clone(),
        }
    }
}
