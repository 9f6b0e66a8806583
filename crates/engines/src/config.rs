//! Configuration files, formats, TLS settings and dynamic keys per engine
//! (used by patch-config).
//!
//! Start at [`profile`]: the engine's configuration file and format and the
//! keys it applies without a restart. [`tls_settings`] computes what
//! `tls = "add"` sets and `tls = "remove"` deletes, from [`TlsOptions`]
//! (paths where issue-cert's Secrets are mounted, ports) and the current
//! values of the few keys that are rewritten rather than set (Kafka's
//! listener map, Druid's extension list).
//!
//! Keys are paths: `["ssl.keyStore.location"]` for properties files,
//! `["mysqld", "ssl_ca"]` for my.cnf.
//!
//! Passwords are never written into configuration: ZooKeeper reads them
//! from a file (`ssl.keyStore.passwordPath`), Kafka through its
//! `DirectoryConfigProvider`, Druid from an environment variable (its
//! `environment` password provider; the pod must set that variable from
//! the password Secret).

use crate::Engine;

mod kafka;

/// An engine's configuration profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigProfile {
    /// The main configuration file (ConfigMap/Secret key), e.g. `zoo.cfg`.
    pub file: &'static str,
    /// Its format name as dbops-config-formats reads it.
    pub format: &'static str,
    /// Keys the engine applies at run time without a restart (for
    /// `restart = "auto"`), as `[key]` or `[section, key]`.
    pub dynamic_keys: &'static [&'static [&'static str]],
}

/// Kafka broker configs updatable cluster-wide without a restart (Kafka
/// docs, "Updating Broker Configs", cluster-wide mode).
const KAFKA_DYNAMIC: &[&[&str]] = &[
    &["background.threads"],
    &["compression.type"],
    &["log.cleaner.io.max.bytes.per.second"],
    &["log.cleaner.threads"],
    &["log.cleanup.policy"],
    &["log.flush.interval.messages"],
    &["log.flush.interval.ms"],
    &["log.retention.bytes"],
    &["log.retention.ms"],
    &["log.roll.ms"],
    &["log.segment.bytes"],
    &["max.connections"],
    &["max.connections.per.ip"],
    &["message.max.bytes"],
    &["min.insync.replicas"],
    &["num.io.threads"],
    &["num.network.threads"],
    &["num.recovery.threads.per.data.dir"],
    &["num.replica.fetchers"],
    &["unclean.leader.election.enable"],
];

/// MySQL/MariaDB global system variables that `SET GLOBAL` changes at run
/// time (`[mysqld]` group; `-` and `_` are the same).
const MYSQL_DYNAMIC: &[&[&str]] = &[
    &["mysqld", "binlog_expire_logs_seconds"],
    &["mysqld", "expire_logs_days"],
    &["mysqld", "general_log"],
    &["mysqld", "innodb_buffer_pool_size"],
    &["mysqld", "innodb_flush_log_at_trx_commit"],
    &["mysqld", "interactive_timeout"],
    &["mysqld", "join_buffer_size"],
    &["mysqld", "long_query_time"],
    &["mysqld", "max_allowed_packet"],
    &["mysqld", "max_connect_errors"],
    &["mysqld", "max_connections"],
    &["mysqld", "max_heap_table_size"],
    &["mysqld", "read_only"],
    &["mysqld", "slow_query_log"],
    &["mysqld", "sort_buffer_size"],
    &["mysqld", "sql_mode"],
    &["mysqld", "table_open_cache"],
    &["mysqld", "thread_cache_size"],
    &["mysqld", "tmp_table_size"],
    &["mysqld", "wait_timeout"],
];

/// The configuration profile of `engine` (`None` for `generic`: name the
/// file and format in the pipeline).
pub fn profile(engine: Engine) -> Option<ConfigProfile> {
    match engine {
        Engine::Zookeeper => Some(ConfigProfile {
            file: "zoo.cfg",
            format: "properties",
            // ZooKeeper reads zoo.cfg only at start.
            dynamic_keys: &[],
        }),
        Engine::Kafka => Some(ConfigProfile {
            file: "server.properties",
            format: "properties",
            dynamic_keys: KAFKA_DYNAMIC,
        }),
        Engine::Druid => Some(ConfigProfile {
            file: "common.runtime.properties",
            format: "properties",
            dynamic_keys: &[],
        }),
        Engine::Perconaxtradb => Some(ConfigProfile {
            file: "my.cnf",
            format: "ini",
            dynamic_keys: MYSQL_DYNAMIC,
        }),
        Engine::Generic => None,
    }
}

/// Whether `engine` applies `key` without a restart.
pub fn is_dynamic(engine: Engine, key: &[String]) -> bool {
    let normalize = |s: &str| s.replace('-', "_");
    profile(engine).is_some_and(|p| {
        p.dynamic_keys.iter().any(|d| {
            d.len() == key.len() && d.iter().zip(key).all(|(a, b)| normalize(a) == normalize(b))
        })
    })
}

/// Where the TLS material is mounted and how TLS is switched on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Directory of the TLS Secret (`tls.crt`, `tls.key`, `ca.crt`,
    /// `keystore.p12`, `truststore.p12`). Default `/etc/dbops/tls`.
    pub dir: String,
    /// Directory of the keystore password Secret (file `password`).
    /// Default `/etc/dbops/tls-password`.
    pub password_dir: String,
    /// The TLS port where the engine uses a separate one (ZooKeeper's
    /// secureClientPort, default 2182).
    pub port: Option<u16>,
    /// Keep the plaintext port open next to TLS (default true, so clients
    /// can move over; set false to close it).
    pub keep_plaintext: bool,
    /// Require client certificates (Kafka `ssl.client.auth=required`,
    /// ZooKeeper `ssl.clientAuth=need`, Druid `requireClientCertificate`).
    pub client_auth: bool,
    /// Encrypt member-to-member traffic too (ZooKeeper quorum TLS).
    pub quorum: bool,
    /// MySQL: refuse unencrypted connections (`require_secure_transport`).
    pub require_secure_transport: bool,
    /// Druid: the environment variable holding the keystore password.
    pub password_env: String,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            dir: "/etc/dbops/tls".into(),
            password_dir: "/etc/dbops/tls-password".into(),
            port: None,
            keep_plaintext: true,
            client_auth: false,
            quorum: true,
            require_secure_transport: true,
            password_env: "DBOPS_TLS_KEYSTORE_PASSWORD".into(),
        }
    }
}

impl TlsOptions {
    pub(crate) fn file(&self, name: &str) -> String {
        format!("{}/{name}", self.dir.trim_end_matches('/'))
    }

    pub(crate) fn password_file(&self) -> String {
        format!("{}/password", self.password_dir.trim_end_matches('/'))
    }
}

/// Add or remove TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsAction {
    /// Switch TLS on.
    Add,
    /// Switch TLS off.
    Remove,
}

/// The settings to change: keys to set (with values) and keys to delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Keys and values to set.
    pub set: Vec<(Vec<String>, String)>,
    /// Keys to delete.
    pub delete: Vec<Vec<String>>,
}

impl TlsSettings {
    pub(crate) fn set(&mut self, key: &[&str], value: impl Into<String>) {
        self.set.push((path(key), value.into()));
    }

    pub(crate) fn delete(&mut self, key: &[&str]) {
        self.delete.push(path(key));
    }

    pub(crate) fn set_or_delete(
        &mut self,
        action: TlsAction,
        key: &[&str],
        value: impl Into<String>,
    ) {
        match action {
            TlsAction::Add => self.set(key, value),
            TlsAction::Remove => self.delete(key),
        }
    }
}

fn path(key: &[&str]) -> Vec<String> {
    key.iter().map(|s| (*s).to_owned()).collect()
}

/// Reads a current value of the file being edited.
pub type Current<'a> = &'a dyn Fn(&[&str]) -> Option<String>;

/// What `action` changes for `engine` (`None` for `generic`, which has no
/// TLS knowledge: use an explicit merge).
pub fn tls_settings(
    engine: Engine,
    action: TlsAction,
    options: &TlsOptions,
    current: Current<'_>,
) -> Option<TlsSettings> {
    let mut s = TlsSettings::default();
    match engine {
        Engine::Zookeeper => zookeeper(&mut s, action, options, current),
        Engine::Kafka => kafka::settings(&mut s, action, options, current),
        Engine::Druid => druid(&mut s, action, options, current),
        Engine::Perconaxtradb => mysql(&mut s, action, options),
        Engine::Generic => return None,
    }
    Some(s)
}

/// ZooKeeper: Netty, a secure client port, PKCS#12 stores with password
/// files, `ssl.clientAuth`, and quorum TLS when `quorum`. Note: switching
/// quorum TLS on in a running multi-member ensemble without downtime takes
/// ZooKeeper's three-roll procedure (`portUnification=true` first); with a
/// single roll, members on old and new settings cannot form a quorum until
/// the majority has restarted.
fn zookeeper(s: &mut TlsSettings, action: TlsAction, o: &TlsOptions, current: Current<'_>) {
    let port = o.port.unwrap_or(2182).to_string();
    s.set_or_delete(action, &["secureClientPort"], port);
    s.set_or_delete(
        action,
        &["serverCnxnFactory"],
        "org.apache.zookeeper.server.NettyServerCnxnFactory",
    );
    // Remove deletes quorum TLS too, whether or not it was added.
    let prefixes: &[&str] = if o.quorum || action == TlsAction::Remove {
        &["ssl", "ssl.quorum"]
    } else {
        &["ssl"]
    };
    for prefix in prefixes {
        for (store, file) in [
            ("keyStore", "keystore.p12"),
            ("trustStore", "truststore.p12"),
        ] {
            let k = |suffix: &str| format!("{prefix}.{store}.{suffix}");
            s.set_or_delete(action, &[&k("location")], o.file(file));
            s.set_or_delete(action, &[&k("type")], "PKCS12");
            s.set_or_delete(action, &[&k("passwordPath")], o.password_file());
        }
    }
    // ZooKeeper's default is `need`: clients without a certificate are refused.
    let client_auth = if o.client_auth { "need" } else { "none" };
    s.set_or_delete(action, &["ssl.clientAuth"], client_auth);
    if o.quorum || action == TlsAction::Remove {
        s.set_or_delete(action, &["sslQuorum"], "true");
    }
    match action {
        TlsAction::Add if !o.keep_plaintext => s.delete(&["clientPort"]),
        TlsAction::Remove if current(&["clientPort"]).is_none() => s.set(&["clientPort"], "2181"),
        _ => {}
    }
}

fn druid(s: &mut TlsSettings, action: TlsAction, o: &TlsOptions, current: Current<'_>) {
    let password = format!(
        r#"{{"type": "environment", "variable": "{}"}}"#,
        o.password_env
    );
    s.set_or_delete(action, &["druid.enableTlsPort"], "true");
    match action {
        TlsAction::Add if !o.keep_plaintext => s.set(&["druid.enablePlaintextPort"], "false"),
        TlsAction::Remove => s.delete(&["druid.enablePlaintextPort"]),
        TlsAction::Add => {}
    }
    let server: [(&str, String); 5] = [
        ("keyStorePath", o.file("keystore.p12")),
        ("keyStoreType", "pkcs12".into()),
        ("keyStorePassword", password.clone()),
        ("keyManagerPassword", password.clone()),
        ("requireClientCertificate", o.client_auth.to_string()),
    ];
    for (key, value) in server {
        s.set_or_delete(action, &[&format!("druid.server.https.{key}")], value);
    }
    let client: [(&str, String); 3] = [
        ("trustStorePath", o.file("truststore.p12")),
        ("trustStoreType", "pkcs12".into()),
        ("trustStorePassword", password),
    ];
    for (key, value) in client {
        s.set_or_delete(action, &[&format!("druid.client.https.{key}")], value);
    }
    // druid.client.https.* is read by the simple-client-sslcontext extension.
    let list_key = ["druid.extensions.loadList"];
    let list = current(&list_key).unwrap_or_else(|| "[]".into());
    if let Some(updated) = edit_json_list(&list, "simple-client-sslcontext", action) {
        s.set(&list_key, updated);
    }
}

/// Add or remove `item` in a JSON string array written as a property
/// value; `None` when nothing changes or the value is not such an array.
fn edit_json_list(list: &str, item: &str, action: TlsAction) -> Option<String> {
    let inner = list.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut items: Vec<String> = inner
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let present = items.iter().any(|i| i == item);
    match action {
        TlsAction::Add if !present => items.push(item.to_owned()),
        TlsAction::Remove if present => items.retain(|i| i != item),
        _ => return None,
    }
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    Some(format!("[{}]", quoted.join(", ")))
}

fn mysql(s: &mut TlsSettings, action: TlsAction, o: &TlsOptions) {
    s.set_or_delete(action, &["mysqld", "ssl_ca"], o.file("ca.crt"));
    s.set_or_delete(action, &["mysqld", "ssl_cert"], o.file("tls.crt"));
    s.set_or_delete(action, &["mysqld", "ssl_key"], o.file("tls.key"));
    match action {
        TlsAction::Add if o.require_secure_transport => {
            s.set(&["mysqld", "require_secure_transport"], "ON")
        }
        _ => s.delete(&["mysqld", "require_secure_transport"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &[&str]) -> Option<String> {
        None
    }

    fn keys(s: &TlsSettings) -> Vec<String> {
        s.set.iter().map(|(k, _)| k.join("/")).collect()
    }

    #[test]
    fn zookeeper_add_sets_netty_ports_stores_and_quorum_tls_and_remove_deletes_them() {
        let o = TlsOptions::default();
        let add = tls_settings(Engine::Zookeeper, TlsAction::Add, &o, &none).expect("zk");
        let set = keys(&add);
        for k in [
            "secureClientPort",
            "serverCnxnFactory",
            "ssl.keyStore.location",
            "ssl.keyStore.passwordPath",
            "ssl.trustStore.type",
            "ssl.clientAuth",
            "ssl.quorum.keyStore.location",
            "sslQuorum",
        ] {
            assert!(set.contains(&k.to_owned()), "{k} in {set:?}");
        }
        assert!(add.delete.is_empty());
        let remove = tls_settings(Engine::Zookeeper, TlsAction::Remove, &o, &none).expect("zk");
        let deleted: Vec<String> = remove.delete.iter().map(|k| k.join("/")).collect();
        assert_eq!(deleted.len(), set.len());
        assert_eq!(keys(&remove), ["clientPort"], "plaintext port restored");
    }

    #[test]
    fn druid_adds_the_ssl_context_extension_once() {
        let o = TlsOptions::default();
        let current = |k: &[&str]| {
            (k == ["druid.extensions.loadList"]).then(|| r#"["druid-hdfs-storage"]"#.to_owned())
        };
        let add = tls_settings(Engine::Druid, TlsAction::Add, &o, &current).expect("druid");
        let list = add
            .set
            .iter()
            .find(|(k, _)| k[0] == "druid.extensions.loadList")
            .map(|(_, v)| v.clone());
        assert_eq!(
            list.as_deref(),
            Some(r#"["druid-hdfs-storage", "simple-client-sslcontext"]"#)
        );
        assert!(
            add.set
                .iter()
                .all(|(k, v)| !k[0].contains("Password") || v.contains("environment"))
        );
    }

    #[test]
    fn mysql_tls_lives_in_the_mysqld_group() {
        let add = tls_settings(
            Engine::Perconaxtradb,
            TlsAction::Add,
            &TlsOptions::default(),
            &none,
        )
        .expect("mysql");
        assert_eq!(
            keys(&add),
            [
                "mysqld/ssl_ca",
                "mysqld/ssl_cert",
                "mysqld/ssl_key",
                "mysqld/require_secure_transport"
            ]
        );
        assert!(is_dynamic(
            Engine::Perconaxtradb,
            &["mysqld".into(), "max-connections".into()]
        ));
        assert!(!is_dynamic(
            Engine::Perconaxtradb,
            &["mysqld".into(), "ssl_ca".into()]
        ));
        assert!(
            tls_settings(
                Engine::Generic,
                TlsAction::Add,
                &TlsOptions::default(),
                &none
            )
            .is_none()
        );
    }
}
