//! The `with` table of `rolling-restart` and its validation (no cluster access).

use dbops_engines::Engine;
use dbops_plugin_sdk::{DurationStr, Problem, Target};
use dbops_probes::cluster::{CredentialsSettings, TlsSettings};
use serde::Deserialize;
use std::time::Duration;

/// How a member is restarted.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, dbops_plugin_sdk::schemars::JsonSchema,
)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Delete the pod; the StatefulSet controller recreates it. Works with
    /// every update strategy and allows the engine-aware order.
    #[default]
    Delete,
    /// Bump an annotation of the pod template and let the controller replace
    /// the pods, one partition step at a time (RollingUpdate workloads). The
    /// order is then the controller's: highest ordinal first.
    Template,
}

/// Whether to check, before each member, that the rest can lose it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, dbops_plugin_sdk::schemars::JsonSchema,
)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
#[serde(rename_all = "lowercase")]
pub enum PreCheckChoice {
    /// The engine's check: ZooKeeper quorum majority, Kafka in-sync
    /// replicas, Galera Primary, nothing for generic workloads.
    #[default]
    Auto,
    /// No pre-check (only "the previous member is Ready").
    None,
}

fn one() -> u32 {
    1
}

fn ten_minutes() -> DurationStr {
    DurationStr(Duration::from_secs(600))
}

fn five_minutes() -> DurationStr {
    DurationStr(Duration::from_secs(300))
}

fn five_seconds() -> DurationStr {
    DurationStr(Duration::from_secs(5))
}

fn default_restart_annotation() -> String {
    "dbops.io/restarted-at".to_string()
}

/// How members are probed to find their roles and for pre-checks.
#[derive(Debug, Clone, Deserialize, dbops_plugin_sdk::schemars::JsonSchema)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Port to probe on each pod's IP (default: the engine's client port,
    /// its TLS port when `tls` is set).
    pub port: Option<u16>,
    /// Speak TLS to the members.
    pub tls: Option<TlsSettings>,
    /// Longest time one probe may take (default "5s").
    #[serde(default = "five_seconds")]
    pub timeout: DurationStr,
    /// MySQL account for the Galera pre-check (needs no privileges beyond USAGE).
    pub credentials: Option<CredentialsSettings>,
    /// Pod label naming a member's role (`primary`, or a Druid node type);
    /// default: the engine's (KubeDB's `kubedb.com/role`).
    pub role_label: Option<String>,
}

impl Default for ProbeConfig {
    fn default() -> ProbeConfig {
        ProbeConfig {
            port: None,
            tls: None,
            timeout: five_seconds(),
            credentials: None,
            role_label: None,
        }
    }
}

/// `with` table of `rolling-restart`.
#[derive(Debug, Clone, Deserialize, dbops_plugin_sdk::schemars::JsonSchema)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `delete` (default) or `template`.
    #[serde(default)]
    pub mode: Mode,
    /// How many members may restart at once (default 1). Quorum engines
    /// still refuse any batch that would lose the majority.
    #[serde(default = "one")]
    pub max_unavailable: u32,
    /// Pod names to restart first, in this order (e.g. ["zk-2", "zk-0"]);
    /// members not listed follow in the engine's order.
    #[serde(default)]
    pub order: Vec<String>,
    /// Longest wait for one member to be back Ready on the wanted revision
    /// (default "10m"); past it the step fails naming the member.
    #[serde(default = "ten_minutes")]
    pub member_timeout: DurationStr,
    /// `auto` (default) or `none`.
    #[serde(default)]
    pub pre_check: PreCheckChoice,
    /// How long a failing pre-check is retried before the step fails (default "5m").
    #[serde(default = "five_minutes")]
    pub pre_check_timeout: DurationStr,
    /// How members are probed.
    #[serde(default)]
    pub probe: ProbeConfig,
    /// Pod annotation carrying the hash of the configuration a pod runs
    /// (set in the pod template by whoever changed the configuration).
    pub config_hash_annotation: Option<String>,
    /// The wanted value of `config_hash_annotation`, e.g.
    /// `${steps.config.outputs.hash}`: members already carrying it are skipped.
    pub config_hash: Option<String>,
    /// Template mode: the pod template annotation bumped to roll the pods.
    #[serde(default = "default_restart_annotation")]
    pub restart_annotation: String,
}

/// Every problem with `config` for `target`.
pub fn problems(config: &Config, target: &Target) -> Vec<Problem> {
    let mut problems = Vec::new();
    let engine = Engine::parse(&target.engine);
    if engine.is_none() {
        problems.push(Problem {
            path: String::new(),
            message: format!(
                "target engine {:?} is unknown; use one of zookeeper, kafka, druid, perconaxtradb, generic",
                target.engine
            ),
        });
    }
    if config.max_unavailable == 0 {
        problems.push(Problem {
            path: "/max_unavailable".into(),
            message: "max_unavailable must be at least 1".into(),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for (index, name) in config.order.iter().enumerate() {
        if !seen.insert(name) {
            problems.push(Problem {
                path: format!("/order/{index}"),
                message: format!("{name:?} appears twice in order"),
            });
        }
        if !target.workload.name.is_empty()
            && !name.starts_with(&format!("{}-", target.workload.name))
        {
            problems.push(Problem {
                path: format!("/order/{index}"),
                message: format!(
                    "{name:?} is not a pod of {} {} (pods are named {}-0, {}-1, ...)",
                    target.workload.kind,
                    target.workload.name,
                    target.workload.name,
                    target.workload.name
                ),
            });
        }
    }
    if config.mode == Mode::Template && !config.order.is_empty() {
        problems.push(Problem {
            path: "/order".into(),
            message: "mode = \"template\" restarts in the StatefulSet's order (highest ordinal first); use mode = \"delete\" to choose the order".into(),
        });
    }
    if config.config_hash.is_some() != config.config_hash_annotation.is_some() {
        problems.push(Problem {
            path: "/config_hash".into(),
            message: "config_hash and config_hash_annotation go together: the annotation names where pods carry the hash, config_hash the wanted value".into(),
        });
    }
    if let Some(tls) = &config.probe.tls {
        problems.extend(tls.problems("/probe/tls"));
    }
    if engine == Some(Engine::Perconaxtradb)
        && config.pre_check == PreCheckChoice::Auto
        && config.probe.credentials.is_none()
    {
        problems.push(Problem {
            path: "/probe/credentials".into(),
            message: "the Galera pre-check logs in to each member: set probe.credentials (a Secret with username and password), or pre_check = \"none\"".into(),
        });
    }
    problems
}
