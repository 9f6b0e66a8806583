//! Engine knowledge for dbops, kept as data in one place per engine.
//!
//! Start at [`Engine`]: every supported database engine, parsed from the
//! pipeline's `target.engine`. Each engine declares
//! - its configuration files and their format, the TLS settings that adding
//!   TLS sets and removing TLS deletes, and the keys it reloads without a
//!   restart (module `config`, used by patch-config);
//! - its member roles, restart order, default health probe and ports
//!   (module `members`, used by rolling-restart and health-check).
//!
//! A new engine is a new variant plus its data in those two modules.

pub mod config;
pub mod members;
pub mod tls;

use serde::{Deserialize, Serialize};

/// A database engine dbops knows how to operate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Apache ZooKeeper (zoo.cfg, Java properties).
    Zookeeper,
    /// Apache Kafka in KRaft mode (server.properties).
    Kafka,
    /// Apache Druid (common.runtime.properties and per-role runtime.properties).
    Druid,
    /// Percona XtraDB Cluster and other MySQL-protocol servers (my.cnf, INI).
    Perconaxtradb,
    /// Any StatefulSet: no engine-specific knowledge.
    Generic,
}

impl Engine {
    /// Every engine, in documentation order.
    pub const ALL: [Engine; 5] = [
        Engine::Zookeeper,
        Engine::Kafka,
        Engine::Druid,
        Engine::Perconaxtradb,
        Engine::Generic,
    ];

    /// The name used in pipelines (`target.engine`).
    pub fn name(self) -> &'static str {
        match self {
            Engine::Zookeeper => "zookeeper",
            Engine::Kafka => "kafka",
            Engine::Druid => "druid",
            Engine::Perconaxtradb => "perconaxtradb",
            Engine::Generic => "generic",
        }
    }

    /// The OpenTelemetry `db.system` attribute value for this engine.
    pub fn db_system(self) -> &'static str {
        match self {
            Engine::Zookeeper => "zookeeper",
            Engine::Kafka => "kafka",
            Engine::Druid => "druid",
            Engine::Perconaxtradb => "mysql",
            Engine::Generic => "other_sql",
        }
    }

    /// Parse a pipeline's engine name (case-insensitive; `mysql`, `mariadb`
    /// and `pxc` are accepted for PerconaXtraDB).
    pub fn parse(name: &str) -> Option<Engine> {
        match name.to_ascii_lowercase().as_str() {
            "zookeeper" => Some(Engine::Zookeeper),
            "kafka" => Some(Engine::Kafka),
            "druid" => Some(Engine::Druid),
            "perconaxtradb" | "pxc" | "mysql" | "mariadb" => Some(Engine::Perconaxtradb),
            "generic" => Some(Engine::Generic),
            _ => None,
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
