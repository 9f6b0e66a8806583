//! Member roles, restart order, default probes, ports and pre-checks per engine
//! (used by rolling-restart and health-check).
//!
//! Start at [`profile`]: everything rolling-restart and health-check need to
//! know about an engine's members, as data. [`restart_order`] turns the
//! roles the plugins discovered (by asking the servers) into the order to
//! restart in: members whose loss hurts least first, the one whose loss
//! forces a leader election or controller fail-over last.

use serde::{Deserialize, Serialize};

use crate::Engine;

/// A health probe kind (the protocol spoken).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// TCP connect.
    Tcp,
    /// TLS handshake with verification.
    Tls,
    /// HTTP GET.
    Http,
    /// HTTPS GET.
    Https,
    /// ZooKeeper `ruok` and `srvr`.
    Zookeeper,
    /// Kafka ApiVersions.
    Kafka,
    /// MySQL handshake, login, `SELECT 1`, Galera state.
    Mysql,
    /// Druid `GET /status/health`.
    Druid,
}

/// What must hold before a member may be restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreCheck {
    /// ZooKeeper: every other member serving and a voting majority remains.
    ZookeeperQuorum,
    /// Kafka: no partition the broker is in-sync for drops below `min.insync.replicas`.
    KafkaInSyncReplicas,
    /// Galera: the cluster is Primary.
    GaleraPrimary,
    /// Nothing beyond the previous member being Ready.
    None,
}

/// How the restart order is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStrategy {
    /// Followers (and members not answering) first, the leader last; the
    /// leader is found with `srvr`.
    ZookeeperLeaderLast,
    /// Brokers first, then controllers, the active KRaft controller last
    /// (found with DescribeQuorum).
    KafkaActiveControllerLast,
    /// Replicas first, the primary last (from the pod's role label).
    PrimaryLast,
    /// By Druid node role, in [`DRUID_ROLE_ORDER`].
    DruidByRole,
    /// Highest ordinal first (the StatefulSet controller's own order).
    HighestOrdinalFirst,
}

/// A Druid node type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DruidRole {
    /// Stores and serves segments.
    Historical,
    /// Runs ingestion tasks.
    MiddleManager,
    /// Routes queries to historicals.
    Broker,
    /// The API gateway.
    Router,
    /// Segment management.
    Coordinator,
    /// Task management.
    Overlord,
}

/// Druid roles in restart order, as KubeDB restarts them: data and ingestion
/// nodes first, query nodes next, the master nodes last.
pub const DRUID_ROLE_ORDER: [DruidRole; 6] = [
    DruidRole::Historical,
    DruidRole::MiddleManager,
    DruidRole::Broker,
    DruidRole::Router,
    DruidRole::Coordinator,
    DruidRole::Overlord,
];

impl DruidRole {
    /// Druid's default plaintext and TLS ports for this role.
    pub fn ports(self) -> Ports {
        let (plain, tls) = match self {
            DruidRole::Coordinator => (8081, 8281),
            DruidRole::Broker => (8082, 8282),
            DruidRole::Historical => (8083, 8283),
            DruidRole::Overlord => (8090, 8290),
            DruidRole::MiddleManager => (8091, 8291),
            DruidRole::Router => (8888, 9088),
        };
        Ports {
            plain,
            tls: Some(tls),
        }
    }

    /// Recognise a role in a pod, workload or label value such as
    /// `druid-historicals-0`, `middleManagers` or `overlord`.
    pub fn recognise(text: &str) -> Option<DruidRole> {
        let lower = text.to_ascii_lowercase();
        [
            ("middlemanager", DruidRole::MiddleManager),
            ("historical", DruidRole::Historical),
            ("broker", DruidRole::Broker),
            ("router", DruidRole::Router),
            ("coordinator", DruidRole::Coordinator),
            ("overlord", DruidRole::Overlord),
        ]
        .into_iter()
        .find(|(token, _)| lower.contains(token))
        .map(|(_, role)| role)
    }
}

/// A service's ports without and with TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ports {
    /// The plaintext port.
    pub plain: u16,
    /// The TLS port, when the engine uses a separate one (MySQL upgrades on the same port).
    pub tls: Option<u16>,
}

impl Ports {
    /// The port to probe with or without TLS.
    pub fn for_tls(self, tls: bool) -> u16 {
        if tls {
            self.tls.unwrap_or(self.plain)
        } else {
            self.plain
        }
    }
}

/// Everything about an engine's members that rolling-restart and health-check use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemberProfile {
    /// The engine.
    pub engine: Engine,
    /// How the restart order is decided.
    pub order: OrderStrategy,
    /// The probe health-check runs when the pipeline names none.
    pub default_probe: ProbeKind,
    /// Client ports (Druid: see [`DruidRole::ports`]).
    pub ports: Ports,
    /// What must hold before each member restarts.
    pub pre_check: PreCheck,
    /// The pod label naming a member's role, when the operator sets one.
    pub role_label: Option<&'static str>,
}

/// The member profile of `engine`.
pub fn profile(engine: Engine) -> MemberProfile {
    match engine {
        Engine::Zookeeper => MemberProfile {
            engine,
            order: OrderStrategy::ZookeeperLeaderLast,
            default_probe: ProbeKind::Zookeeper,
            ports: Ports {
                plain: 2181,
                tls: Some(2182),
            },
            pre_check: PreCheck::ZookeeperQuorum,
            role_label: None,
        },
        Engine::Kafka => MemberProfile {
            engine,
            order: OrderStrategy::KafkaActiveControllerLast,
            default_probe: ProbeKind::Kafka,
            ports: Ports {
                plain: 9092,
                tls: Some(9093),
            },
            pre_check: PreCheck::KafkaInSyncReplicas,
            role_label: None,
        },
        Engine::Druid => MemberProfile {
            engine,
            order: OrderStrategy::DruidByRole,
            default_probe: ProbeKind::Druid,
            ports: DruidRole::Router.ports(),
            pre_check: PreCheck::None,
            role_label: Some("kubedb.com/role"),
        },
        Engine::Perconaxtradb => MemberProfile {
            engine,
            order: OrderStrategy::PrimaryLast,
            default_probe: ProbeKind::Mysql,
            ports: Ports {
                plain: 3306,
                tls: None,
            },
            pre_check: PreCheck::GaleraPrimary,
            role_label: Some("kubedb.com/role"),
        },
        Engine::Generic => MemberProfile {
            engine,
            order: OrderStrategy::HighestOrdinalFirst,
            default_probe: ProbeKind::Tcp,
            ports: Ports {
                plain: 0,
                tls: None,
            },
            pre_check: PreCheck::None,
            role_label: None,
        },
    }
}

/// What a plugin learned about a member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    /// Not known (the member did not answer, or the engine has no roles).
    Unknown,
    /// ZooKeeper follower or observer.
    Follower,
    /// ZooKeeper leader.
    Leader,
    /// A Kafka broker that is not a controller.
    Broker,
    /// A KRaft controller that is not active.
    Controller,
    /// The active KRaft controller.
    ActiveController,
    /// A MySQL/PXC replica.
    Replica,
    /// The MySQL/PXC primary.
    Primary,
    /// A Druid node of this type.
    Druid(DruidRole),
}

/// One member to order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Pod name.
    pub name: String,
    /// StatefulSet ordinal, when the name ends in one.
    pub ordinal: Option<u32>,
    /// Its role.
    pub role: MemberRole,
}

impl Member {
    /// A member whose ordinal is parsed from the name (`zk-2` -> 2).
    pub fn new(name: impl Into<String>, role: MemberRole) -> Member {
        let name = name.into();
        Member {
            ordinal: ordinal_of(&name),
            name,
            role,
        }
    }
}

/// The ordinal at the end of a StatefulSet pod name.
pub fn ordinal_of(pod_name: &str) -> Option<u32> {
    pod_name.rsplit_once('-')?.1.parse().ok()
}

/// How early a role restarts under `strategy` (lower first).
fn rank(strategy: OrderStrategy, role: MemberRole) -> usize {
    match (strategy, role) {
        (OrderStrategy::ZookeeperLeaderLast, MemberRole::Leader) => 1,
        (OrderStrategy::KafkaActiveControllerLast, MemberRole::Controller) => 1,
        (OrderStrategy::KafkaActiveControllerLast, MemberRole::ActiveController) => 2,
        (OrderStrategy::PrimaryLast, MemberRole::Primary) => 1,
        (OrderStrategy::DruidByRole, MemberRole::Druid(role)) => DRUID_ROLE_ORDER
            .iter()
            .position(|r| *r == role)
            .unwrap_or(0),
        // Unknown Druid nodes go first: they are not master nodes we can name.
        _ => 0,
    }
}

/// The order to restart `members` in under `strategy`: by role rank, then
/// highest ordinal first (as the StatefulSet controller rolls), then by name.
/// Members that did not answer (role unknown) come first: they are already
/// unavailable, so restarting them costs nothing.
pub fn restart_order(strategy: OrderStrategy, members: &[Member]) -> Vec<String> {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by(|a, b| {
        rank(strategy, a.role)
            .cmp(&rank(strategy, b.role))
            .then_with(|| b.ordinal.cmp(&a.ordinal))
            .then_with(|| a.name.cmp(&b.name))
    });
    sorted.into_iter().map(|m| m.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zookeeper_restarts_followers_first_and_the_leader_last() {
        let members = [
            Member::new("zk-0", MemberRole::Leader),
            Member::new("zk-1", MemberRole::Follower),
            Member::new("zk-2", MemberRole::Follower),
        ];
        let order = restart_order(profile(Engine::Zookeeper).order, &members);
        assert_eq!(order, ["zk-2", "zk-1", "zk-0"]);
        let members = [
            Member::new("zk-0", MemberRole::Follower),
            Member::new("zk-1", MemberRole::Follower),
            Member::new("zk-2", MemberRole::Leader),
        ];
        assert_eq!(
            restart_order(OrderStrategy::ZookeeperLeaderLast, &members),
            ["zk-1", "zk-0", "zk-2"]
        );
    }

    #[test]
    fn kafka_restarts_brokers_then_controllers_then_the_active_controller() {
        let members = [
            Member::new("kafka-0", MemberRole::ActiveController),
            Member::new("kafka-1", MemberRole::Broker),
            Member::new("kafka-2", MemberRole::Controller),
            Member::new("kafka-3", MemberRole::Broker),
        ];
        assert_eq!(
            restart_order(OrderStrategy::KafkaActiveControllerLast, &members),
            ["kafka-3", "kafka-1", "kafka-2", "kafka-0"]
        );
    }

    #[test]
    fn mysql_restarts_the_primary_last() {
        let members = [
            Member::new("pxc-0", MemberRole::Replica),
            Member::new("pxc-1", MemberRole::Primary),
            Member::new("pxc-2", MemberRole::Replica),
        ];
        assert_eq!(
            restart_order(profile(Engine::Perconaxtradb).order, &members),
            ["pxc-2", "pxc-0", "pxc-1"]
        );
    }

    #[test]
    fn druid_restarts_by_node_role() {
        let role = |name: &str| MemberRole::Druid(DruidRole::recognise(name).unwrap());
        let names = [
            "druid-overlords-0",
            "druid-coordinators-0",
            "druid-routers-0",
            "druid-brokers-0",
            "druid-middleManagers-0",
            "druid-historicals-1",
            "druid-historicals-0",
        ];
        let members: Vec<Member> = names.iter().map(|n| Member::new(*n, role(n))).collect();
        assert_eq!(
            restart_order(OrderStrategy::DruidByRole, &members),
            [
                "druid-historicals-1",
                "druid-historicals-0",
                "druid-middleManagers-0",
                "druid-brokers-0",
                "druid-routers-0",
                "druid-coordinators-0",
                "druid-overlords-0",
            ]
        );
        assert_eq!(DruidRole::Historical.ports().for_tls(true), 8283);
        assert_eq!(DruidRole::Router.ports().for_tls(false), 8888);
    }

    #[test]
    fn generic_restarts_from_the_highest_ordinal_down() {
        let members: Vec<Member> = ["web-0", "web-10", "web-2"]
            .iter()
            .map(|n| Member::new(*n, MemberRole::Unknown))
            .collect();
        assert_eq!(
            restart_order(OrderStrategy::HighestOrdinalFirst, &members),
            ["web-10", "web-2", "web-0"]
        );
    }

    #[test]
    fn members_that_do_not_answer_restart_first() {
        let members = [
            Member::new("zk-0", MemberRole::Follower),
            Member::new("zk-1", MemberRole::Unknown),
            Member::new("zk-2", MemberRole::Leader),
        ];
        assert_eq!(
            restart_order(OrderStrategy::ZookeeperLeaderLast, &members)[0],
            "zk-1"
        );
    }

    #[test]
    fn every_engine_has_a_profile_with_ports_and_probe() {
        for engine in Engine::ALL {
            let p = profile(engine);
            assert_eq!(p.engine, engine);
        }
        assert_eq!(profile(Engine::Zookeeper).ports.for_tls(true), 2182);
        assert_eq!(profile(Engine::Kafka).ports.for_tls(false), 9092);
        assert_eq!(profile(Engine::Perconaxtradb).ports.for_tls(true), 3306);
        assert_eq!(
            profile(Engine::Kafka).pre_check,
            PreCheck::KafkaInSyncReplicas
        );
        assert_eq!(ordinal_of("my-db-12"), Some(12));
        assert_eq!(ordinal_of("nodigits"), None);
    }
}
