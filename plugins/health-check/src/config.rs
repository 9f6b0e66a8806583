//! The `with` table of `health-check` and its validation (no cluster access).

use std::time::Duration;

use dbops_engines::Engine;
use dbops_engines::members::{self, ProbeKind};
use dbops_plugin_sdk::schemars::JsonSchema;
use dbops_plugin_sdk::{DurationStr, Problem, Target};
use dbops_probes::cluster::{CredentialsSettings, TlsSettings};
use serde::Deserialize;

/// The protocol spoken to each target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// A TCP connection opens.
    Tcp,
    /// A TLS handshake verifies against the CA in `tls.ca_secret` and the
    /// expected name; optionally the leaf has `tls.expected_serial`/`expected_sha256`.
    Tls,
    /// `GET http.path` answers an expected status.
    Http,
    /// `http` over TLS (needs `tls`).
    Https,
    /// `ruok` answers `imok` and `srvr` reports a serving mode; with
    /// `quorum`, exactly one leader and the rest followers.
    Zookeeper,
    /// Kafka ApiVersions (over TLS when `tls` is set).
    Kafka,
    /// MySQL handshake (TLS upgrade when `tls` is set), login and `SELECT 1`
    /// with `credentials`, Galera `wsrep_cluster_status` per `galera`.
    Mysql,
    /// Druid `GET /status/health` answers `true` (HTTPS when `tls` is set).
    Druid,
}

impl Probe {
    /// The probe an engine uses by default.
    pub fn default_for(engine: Engine) -> Probe {
        match members::profile(engine).default_probe {
            ProbeKind::Tcp => Probe::Tcp,
            ProbeKind::Tls => Probe::Tls,
            ProbeKind::Http => Probe::Http,
            ProbeKind::Https => Probe::Https,
            ProbeKind::Zookeeper => Probe::Zookeeper,
            ProbeKind::Kafka => Probe::Kafka,
            ProbeKind::Mysql => Probe::Mysql,
            ProbeKind::Druid => Probe::Druid,
        }
    }

    /// The name in pipelines, logs and outputs.
    pub fn name(self) -> &'static str {
        match self {
            Probe::Tcp => "tcp",
            Probe::Tls => "tls",
            Probe::Http => "http",
            Probe::Https => "https",
            Probe::Zookeeper => "zookeeper",
            Probe::Kafka => "kafka",
            Probe::Mysql => "mysql",
            Probe::Druid => "druid",
        }
    }

    fn needs_tls(self) -> bool {
        matches!(self, Probe::Tls | Probe::Https)
    }

    fn is_http(self) -> bool {
        matches!(self, Probe::Http | Probe::Https)
    }
}

/// What is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
#[serde(rename_all = "lowercase")]
pub enum Against {
    /// Every member, through its pod IP (`status.podIP`).
    #[default]
    Members,
    /// The client Service only.
    Service,
    /// Every member and the Service.
    Both,
}

impl Against {
    /// Whether members are probed.
    pub fn members(self) -> bool {
        matches!(self, Against::Members | Against::Both)
    }

    /// Whether the Service is probed.
    pub fn service(self) -> bool {
        matches!(self, Against::Service | Against::Both)
    }
}

/// The Galera check of the `mysql` probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
#[serde(rename_all = "kebab-case")]
pub enum GaleraChoice {
    /// With credentials: for PerconaXtraDB/MySQL targets, a Galera node must
    /// be Primary (a plain MySQL/MariaDB server passes); otherwise `report`.
    #[default]
    Auto,
    /// Fail unless `wsrep_cluster_status = Primary`.
    RequirePrimary,
    /// Report the Galera state without judging it.
    Report,
    /// Do not ask.
    Skip,
}

/// The `http`/`https` request and what counts as healthy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Path and query (default `/`).
    #[serde(default = "slash")]
    pub path: String,
    /// Accepted status codes (default: any 2xx).
    #[serde(default)]
    pub expected_status: Vec<u16>,
    /// When set, the trimmed body must equal this.
    pub expected_body: Option<String>,
    /// `Host` header (default: the TLS server name or the address).
    pub host: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            path: slash(),
            expected_status: Vec::new(),
            expected_body: None,
            host: None,
        }
    }
}

fn slash() -> String {
    "/".to_string()
}

fn five_seconds() -> DurationStr {
    DurationStr(Duration::from_secs(5))
}

fn five_minutes() -> DurationStr {
    DurationStr(Duration::from_secs(300))
}

fn two_seconds() -> DurationStr {
    DurationStr(Duration::from_secs(2))
}

fn yes() -> bool {
    true
}

/// `with` table of `health-check`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The protocol (default: the engine's: zookeeper, kafka, druid, mysql; tcp for generic).
    pub probe: Option<Probe>,
    /// `members` (default), `service` or `both`.
    #[serde(default)]
    pub against: Against,
    /// Port probed (default: the engine's client port, its TLS port when
    /// `tls` is set; Druid: the port of each member's node role).
    pub port: Option<u16>,
    /// The client Service's name (default: the target's name).
    pub service: Option<String>,
    /// `host:port` to reach the Service at, instead of its clusterIP or DNS name.
    pub service_address: Option<String>,
    /// Speak TLS, verifying against `ca_secret` (required by `tls` and `https`).
    pub tls: Option<TlsSettings>,
    /// The `http`/`https` request.
    #[serde(default)]
    pub http: HttpConfig,
    /// MySQL account for login, `SELECT 1` and the Galera check (needs only USAGE).
    pub credentials: Option<CredentialsSettings>,
    /// `auto` (default), `require-primary`, `report` or `skip`.
    #[serde(default)]
    pub galera: GaleraChoice,
    /// ZooKeeper: also require one leader and every other member a
    /// follower or observer (default true; members only).
    #[serde(default = "yes")]
    pub quorum: bool,
    /// Longest time one probe attempt against one target may take (default "5s").
    #[serde(default = "five_seconds")]
    pub timeout: DurationStr,
    /// Keep retrying until every target passes or this much time passed
    /// (default "5m"; the step's own timeout also applies).
    #[serde(default = "five_minutes")]
    pub deadline: DurationStr,
    /// Pause between attempts (default "2s", doubling up to 10s).
    #[serde(default = "two_seconds")]
    pub interval: DurationStr,
}

/// Every problem with `config` for `target`.
pub fn problems(config: &Config, target: &Target) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |path: &str, message: String| {
        problems.push(Problem {
            path: path.to_string(),
            message,
        })
    };
    let Some(engine) = Engine::parse(&target.engine) else {
        problem(
            "",
            format!(
                "target engine {:?} is unknown; use one of zookeeper, kafka, druid, perconaxtradb, generic",
                target.engine
            ),
        );
        return problems;
    };
    let probe = config.probe.unwrap_or(Probe::default_for(engine));
    if probe.needs_tls() && config.tls.is_none() {
        problem(
            "/tls",
            format!(
                "probe {:?} needs `tls` (at least `ca_secret`, the Secret with the CA to verify against)",
                probe.name()
            ),
        );
    }
    if let Some(tls) = &config.tls {
        if probe == Probe::Tcp {
            problem(
                "/tls",
                "probe \"tcp\" does not speak TLS; use probe = \"tls\" to check certificates"
                    .into(),
            );
        }
        for p in tls.problems("/tls") {
            problem(&p.path, p.message);
        }
    }
    if !probe.is_http() && (config.http.path != "/" || !config.http.expected_status.is_empty()) {
        problem(
            "/http",
            format!(
                "`http` settings only apply to probe \"http\" or \"https\", not {:?}",
                probe.name()
            ),
        );
    }
    if !config.http.path.starts_with('/') {
        problem(
            "/http/path",
            format!("path {:?} must start with /", config.http.path),
        );
    }
    for (index, status) in config.http.expected_status.iter().enumerate() {
        if !(100..=599).contains(status) {
            problem(
                &format!("/http/expected_status/{index}"),
                format!("{status} is not an HTTP status code"),
            );
        }
    }
    if probe != Probe::Mysql && config.credentials.is_some() {
        problem(
            "/credentials",
            format!(
                "credentials are only used by probe \"mysql\", not {:?}",
                probe.name()
            ),
        );
    }
    if probe == Probe::Mysql
        && config.galera == GaleraChoice::RequirePrimary
        && config.credentials.is_none()
    {
        problem(
            "/credentials",
            "galera = \"require-primary\" logs in to read wsrep_cluster_status: set credentials (a Secret with username and password)".into(),
        );
    }
    let port = config
        .port
        .unwrap_or(members::profile(engine).ports.for_tls(config.tls.is_some()));
    if port == 0 && !(engine == Engine::Druid && probe == Probe::Druid) {
        problem(
            "/port",
            format!("engine {engine} has no default port: set `port`"),
        );
    }
    if config.deadline.get() < config.timeout.get() {
        problem(
            "/deadline",
            format!(
                "deadline ({}) is shorter than one probe timeout ({})",
                dbops_plugin_sdk::duration::format(config.deadline.get()),
                dbops_plugin_sdk::duration::format(config.timeout.get())
            ),
        );
    }
    if config.timeout.get().is_zero() || config.interval.get().is_zero() {
        problem(
            "/timeout",
            "timeout and interval must be more than 0s".into(),
        );
    }
    if config.service_address.is_some() && !config.against.service() {
        problem(
            "/service_address",
            "service_address is only used with against = \"service\" or \"both\"".into(),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbops_plugin_sdk::export::decode_config;
    use dbops_plugin_sdk::serde_json::json;

    fn target(engine: &str) -> Target {
        Target {
            engine: engine.into(),
            namespace: "db".into(),
            name: "zk".into(),
            ..Default::default()
        }
    }

    fn config(with: dbops_plugin_sdk::serde_json::Value) -> Config {
        decode_config(with).unwrap()
    }

    #[test]
    fn defaults_follow_the_engine() {
        let c = config(json!({}));
        assert_eq!(c.against, Against::Members);
        assert!(c.quorum);
        assert_eq!(c.deadline.get(), Duration::from_secs(300));
        assert!(problems(&c, &target("zookeeper")).is_empty());
        assert_eq!(Probe::default_for(Engine::Perconaxtradb), Probe::Mysql);
        assert_eq!(Probe::default_for(Engine::Generic), Probe::Tcp);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let c = config(json!({
            "probe": "https",
            "http": {"path": "status", "expected_status": [99]},
            "deadline": "1s", "timeout": "5s",
            "credentials": {"secret": "auth"},
        }));
        let paths: Vec<String> = problems(&c, &target("generic"))
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert_eq!(
            paths,
            [
                "/tls",
                "/http/path",
                "/http/expected_status/0",
                "/credentials",
                "/port",
                "/deadline"
            ]
        );
    }

    #[test]
    fn tls_settings_are_checked_and_tcp_refuses_them() {
        let c = config(json!({"probe": "tcp", "port": 1, "tls": {"server_name": "{pod}.{svc}"}}));
        let messages: Vec<String> = problems(&c, &target("generic"))
            .into_iter()
            .map(|p| format!("{} {}", p.path, p.message))
            .collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].starts_with("/tls probe \"tcp\""));
        assert!(messages[1].starts_with("/tls/ca_secret"));
        assert!(messages[2].contains("{svc}"));
    }

    #[test]
    fn galera_require_primary_needs_credentials_and_unknown_keys_are_refused() {
        let c = config(json!({"galera": "require-primary"}));
        assert_eq!(
            problems(&c, &target("perconaxtradb"))[0].path,
            "/credentials"
        );
        let typo = decode_config::<Config>(json!({"probe": "tls", "tls": {"ca_secrett": "x"}}));
        assert_eq!(typo.unwrap_err().path, "/tls/ca_secrett");
        let bad = decode_config::<Config>(json!({"probe": "redis"}));
        assert_eq!(bad.unwrap_err().path, "/probe");
    }
}
