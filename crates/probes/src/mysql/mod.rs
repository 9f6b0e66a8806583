//! The `mysql` probe: handshake, optional TLS upgrade, authentication,
//! `SELECT 1`, and the Galera (PerconaXtraDB / MariaDB Galera) cluster state.
//!
//! TLS: when `endpoint.tls` is set the probe sends SSLRequest after the
//! server's greeting and upgrades the connection (MySQL does not speak TLS
//! from the first byte), verifying the certificate like the `tls` probe.
//! Authentication supports `mysql_native_password`, `caching_sha2_password`
//! (fast path; the full path only over TLS) and `mysql_clear_password` (only
//! over TLS), including the server's auth-switch request.

mod auth;
mod packet;

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{ProbeError, Result};
use crate::net::{Conn, Endpoint};
use crate::tls::TlsSession;
use packet::{Cursor, Packets};

/// A password that never appears in Debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wrap a password.
    pub fn new(password: impl Into<String>) -> Password {
        Password(password.into())
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A database account for the probe (needs no privileges beyond `USAGE`).
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Its password.
    pub password: Password,
}

/// What to do about Galera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GaleraCheck {
    /// Do not ask.
    Skip,
    /// Report the state without judging it.
    #[default]
    Report,
    /// Fail unless the node is in a Primary component (PerconaXtraDB).
    RequirePrimary,
    /// Fail when the node is a Galera node outside a Primary component; a
    /// plain MySQL/MariaDB server (no wsrep) passes.
    PrimaryIfGalera,
}

impl GaleraCheck {
    /// Whether `galera` fails this check.
    pub fn rejects(self, galera: &Galera) -> bool {
        match self {
            GaleraCheck::Skip | GaleraCheck::Report => false,
            GaleraCheck::RequirePrimary => !galera.is_primary(),
            GaleraCheck::PrimaryIfGalera => {
                matches!(galera, Galera::Node { .. }) && !galera.is_primary()
            }
        }
    }
}

/// What to check beyond the handshake.
#[derive(Debug, Clone, Default)]
pub struct MysqlCheck {
    /// Log in and run `SELECT 1` (without credentials only the handshake and TLS are checked).
    pub credentials: Option<Credentials>,
    /// The Galera check (needs credentials).
    pub galera: GaleraCheck,
}

/// The node's Galera state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Galera {
    /// Not asked.
    NotChecked,
    /// `wsrep_on` is OFF or absent: a plain MySQL/MariaDB server.
    NotAGaleraNode,
    /// A Galera node and what it reports.
    Node {
        /// `wsrep_cluster_status`: Primary, Non-Primary or Disconnected.
        cluster_status: String,
        /// `wsrep_ready`: ON when it accepts queries.
        ready: Option<String>,
        /// `wsrep_cluster_size`.
        cluster_size: Option<u32>,
        /// `wsrep_local_state_comment`: Synced, Donor/Desynced, Joining …
        local_state: Option<String>,
    },
}

impl Galera {
    /// True for a node in a Primary component.
    pub fn is_primary(&self) -> bool {
        matches!(self, Galera::Node { cluster_status, .. } if cluster_status == "Primary")
    }
}

/// The result of the `mysql` probe.
#[derive(Debug, Clone, Serialize)]
pub struct MysqlReport {
    /// The server's version string (e.g. "10.11.19-MariaDB-0+deb12u1").
    pub server_version: String,
    /// The connection id the server assigned.
    pub connection_id: u32,
    /// The auth plugin that authenticated us (None without credentials).
    pub auth_plugin: Option<String>,
    /// Whether `SELECT 1` returned 1.
    pub select_one: bool,
    /// The TLS session when the connection was upgraded.
    pub tls: Option<TlsSession>,
    /// The Galera state.
    pub galera: Galera,
    /// Time for the whole exchange.
    pub latency: Duration,
}

/// Rows of a text result set (each value `None` for SQL NULL).
pub type Rows = Vec<Vec<Option<String>>>;

/// The most rows a probe query reads.
pub const MAX_ROWS: usize = 1000;

/// The `mysql` probe.
pub fn probe(endpoint: &Endpoint, check: &MysqlCheck) -> Result<MysqlReport> {
    let started = Instant::now();
    let deadline = started + endpoint.timeout;
    let conn = Conn::open_plain(&endpoint.address, deadline)?;
    let mut packets = Packets { conn, seq: 0 };
    let greeting = packets.read("reading the server greeting")?;
    if greeting.first() == Some(&0xff) {
        return Err(packets.refused(&greeting, "the server refused the connection"));
    }
    let handshake = packet::parse_handshake(&greeting).map_err(|d| packets.protocol(d))?;
    if handshake.capabilities & packet::CLIENT_PROTOCOL_41 == 0 {
        return Err(packets.protocol("the server does not speak protocol 4.1".to_string()));
    }
    let capabilities = packet::client_capabilities(handshake.capabilities, endpoint.tls.is_some());
    if let Some(tls) = &endpoint.tls {
        if handshake.capabilities & packet::CLIENT_SSL == 0 {
            return Err(ProbeError::Unhealthy {
                address: endpoint.address.clone(),
                detail: "the server does not offer TLS (no ssl-cert/ssl-key configured?)"
                    .to_string(),
            });
        }
        packets.write(&packet::ssl_request(capabilities), "sending SSLRequest")?;
        packets.conn.start_tls(tls)?;
    }
    let mut report = MysqlReport {
        server_version: handshake.server_version.clone(),
        connection_id: handshake.connection_id,
        auth_plugin: None,
        select_one: false,
        tls: None,
        galera: Galera::NotChecked,
        latency: Duration::ZERO,
    };
    if let Some(credentials) = &check.credentials {
        let plugin = authenticate(&mut packets, &handshake, capabilities, credentials)?;
        report.auth_plugin = Some(plugin);
        let rows = query(&mut packets, "SELECT 1")?;
        report.select_one = rows
            .first()
            .and_then(|row| row.first())
            .cloned()
            .flatten()
            .as_deref()
            == Some("1");
        if !report.select_one {
            return Err(packets.protocol(format!("SELECT 1 returned {rows:?}")));
        }
        if check.galera != GaleraCheck::Skip {
            report.galera = galera_state(&mut packets)?;
            if check.galera.rejects(&report.galera) {
                return Err(ProbeError::Unhealthy {
                    address: endpoint.address.clone(),
                    detail: match &report.galera {
                        Galera::Node {
                            cluster_status,
                            local_state,
                            ..
                        } => format!(
                            "wsrep_cluster_status is {cluster_status}, not Primary (local state {})",
                            local_state.as_deref().unwrap_or("unknown")
                        ),
                        _ => "not a Galera node (wsrep_on is OFF): cannot be Primary".to_string(),
                    },
                });
            }
        }
        // COM_QUIT; the server closes the connection, so its answer is not awaited.
        packets.seq = 0;
        let _ = packets.write(&[0x01], "sending COM_QUIT");
    }
    report.tls = packets.conn.take_tls_session();
    report.latency = started.elapsed();
    Ok(report)
}

fn authenticate(
    packets: &mut Packets,
    handshake: &packet::Handshake,
    capabilities: u32,
    credentials: &Credentials,
) -> Result<String> {
    let tls = packets.conn.tls_session().is_some();
    let mut plugin = handshake.auth_plugin.clone();
    let mut scramble = handshake.scramble.clone();
    if !matches!(plugin.as_str(), auth::NATIVE | auth::CACHING_SHA2) {
        // Offer native; the server switches us to the account's plugin.
        plugin = auth::NATIVE.to_string();
    }
    let first = scramble_for(&plugin, credentials, &scramble, tls, packets)?;
    let response = packet::handshake_response(capabilities, &credentials.user, &first, &plugin);
    packets.write(&response, "sending the login")?;
    for _round in 0..4 {
        let answer = packets.read("reading the login answer")?;
        match answer.first() {
            Some(0x00) => return Ok(plugin),
            Some(0xff) => {
                return Err(
                    packets.refused(&answer, &format!("login as {:?} failed", credentials.user))
                );
            }
            Some(0xfe) => {
                // AuthSwitchRequest: plugin name, then new scramble.
                let mut cursor = Cursor::new(&answer[1..]);
                plugin = String::from_utf8_lossy(cursor.nul_terminated()).into_owned();
                let rest = cursor
                    .take(cursor.remaining(), "scramble")
                    .unwrap_or_default();
                scramble = rest.strip_suffix(&[0]).unwrap_or(rest).to_vec();
                let reply = scramble_for(&plugin, credentials, &scramble, tls, packets)?;
                packets.write(&reply, "answering the auth switch")?;
            }
            Some(0x01) if plugin == auth::CACHING_SHA2 => match answer.get(1) {
                Some(0x03) => {} // fast auth succeeded; OK follows
                Some(0x04) if tls => {
                    let mut clear = credentials.password.bytes().to_vec();
                    clear.push(0);
                    packets.write(&clear, "sending the password over tls")?;
                }
                Some(0x04) => {
                    return Err(ProbeError::Refused {
                        protocol: "mysql",
                        address: packets.conn.address().to_string(),
                        detail: format!(
                            "caching_sha2_password needs full authentication for {:?}, which this probe only does over TLS: enable tls for the probe",
                            credentials.user
                        ),
                    });
                }
                other => {
                    return Err(packets
                        .protocol(format!("unexpected caching_sha2_password state {other:?}")));
                }
            },
            other => {
                return Err(
                    packets.protocol(format!("unexpected login answer starting with {other:?}"))
                );
            }
        }
    }
    Err(packets.protocol("the login did not finish after four exchanges".to_string()))
}

fn scramble_for(
    plugin: &str,
    credentials: &Credentials,
    scramble: &[u8],
    tls: bool,
    packets: &Packets,
) -> Result<Vec<u8>> {
    let password = credentials.password.bytes();
    match plugin {
        auth::NATIVE => Ok(auth::native_password(password, scramble)),
        auth::CACHING_SHA2 => Ok(auth::caching_sha2_password(password, scramble)),
        auth::CLEAR if tls => {
            let mut clear = password.to_vec();
            clear.push(0);
            Ok(clear)
        }
        other => Err(ProbeError::Refused {
            protocol: "mysql",
            address: packets.conn.address().to_string(),
            detail: format!(
                "account {:?} uses auth plugin {other}, which this probe does not speak{}",
                credentials.user,
                if other == auth::CLEAR {
                    " without TLS"
                } else {
                    ""
                }
            ),
        }),
    }
}

/// Run one text query and return its rows (at most [`MAX_ROWS`]).
fn query(packets: &mut Packets, sql: &str) -> Result<Rows> {
    packets.seq = 0;
    let mut command = vec![0x03];
    command.extend_from_slice(sql.as_bytes());
    packets.write(&command, &format!("sending {sql:?}"))?;
    let during = format!("reading the answer to {sql:?}");
    let first = packets.read(&during)?;
    match first.first() {
        Some(0xff) => return Err(packets.refused(&first, &format!("query {sql:?}"))),
        Some(0x00) => return Ok(Vec::new()),
        _ => {}
    }
    let columns = Cursor::new(&first)
        .lenenc_int("column count")
        .map_err(|d| packets.protocol(d))?
        .unwrap_or(0) as usize;
    if columns == 0 || columns > 4096 {
        return Err(packets.protocol(format!("{columns} columns in the answer to {sql:?}")));
    }
    for _ in 0..columns {
        packets.read(&during)?;
    }
    let eof = packets.read(&during)?;
    if !packet::is_eof(&eof) {
        return Err(packets.protocol("no EOF after the column definitions".to_string()));
    }
    let mut rows = Vec::new();
    loop {
        let row = packets.read(&during)?;
        if packet::is_eof(&row) {
            return Ok(rows);
        }
        if row.first() == Some(&0xff) {
            return Err(packets.refused(&row, &format!("query {sql:?}")));
        }
        if rows.len() >= MAX_ROWS {
            return Err(packets.protocol(format!("more than {MAX_ROWS} rows for {sql:?}")));
        }
        let mut cursor = Cursor::new(&row);
        let values = (0..columns)
            .map(|_| cursor.lenenc_string("value"))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|d| packets.protocol(d))?;
        rows.push(values);
    }
}

fn galera_state(packets: &mut Packets) -> Result<Galera> {
    let wsrep_on = query(packets, "SHOW GLOBAL VARIABLES LIKE 'wsrep_on'")?;
    let on = wsrep_on
        .first()
        .and_then(|row| row.get(1))
        .cloned()
        .flatten()
        .is_some_and(|value| value.eq_ignore_ascii_case("ON"));
    if !on {
        return Ok(Galera::NotAGaleraNode);
    }
    let rows = query(
        packets,
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status', 'wsrep_ready', 'wsrep_cluster_size', 'wsrep_local_state_comment')",
    )?;
    let value = |name: &str| -> Option<String> {
        rows.iter()
            .find(|row| row.first().cloned().flatten().as_deref() == Some(name))
            .and_then(|row| row.get(1).cloned().flatten())
    };
    let Some(cluster_status) = value("wsrep_cluster_status") else {
        return Ok(Galera::NotAGaleraNode);
    };
    Ok(Galera::Node {
        cluster_status,
        ready: value("wsrep_ready"),
        cluster_size: value("wsrep_cluster_size").and_then(|size| size.parse().ok()),
        local_state: value("wsrep_local_state_comment"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_if_galera_passes_plain_servers_and_primary_nodes_only() {
        let node = |status: &str| Galera::Node {
            cluster_status: status.into(),
            ready: None,
            cluster_size: Some(3),
            local_state: None,
        };
        let check = GaleraCheck::PrimaryIfGalera;
        assert!(!check.rejects(&Galera::NotAGaleraNode));
        assert!(!check.rejects(&node("Primary")));
        assert!(check.rejects(&node("non-Primary")));
        assert!(GaleraCheck::RequirePrimary.rejects(&Galera::NotAGaleraNode));
        assert!(!GaleraCheck::Report.rejects(&node("non-Primary")));
    }

    #[test]
    fn passwords_are_redacted_in_debug_output() {
        let check = MysqlCheck {
            credentials: Some(Credentials {
                user: "probe".into(),
                password: Password::new("hunter2"),
            }),
            galera: GaleraCheck::RequirePrimary,
        };
        let text = format!("{check:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("probe"));
    }
}
