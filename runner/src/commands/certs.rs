//! `dbops certs [--namespace NS | --all-namespaces] [--threshold 720h]`:
//! every TLS Secret dbops wrote (label selector
//! `app.kubernetes.io/managed-by=dbops,dbops.io/role=tls`), with its target,
//! issuer, serial, notAfter and days left. Exits `CERT_EXPIRING` when a
//! certificate (or a CA it trusts) expires within the threshold, so a
//! CronJob or a monitoring check notices expiry before users do.
//!
//! Read-only. Only `tls.crt` and `ca.crt` are decoded; the private key is
//! never read into memory by this command.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use dbops_certs::summary::{CA_CRT, LABEL_TARGET, TLS_CRT, TLS_SECRET_SELECTOR};
use serde_json::Value;
use time::OffsetDateTime;

use super::KubeArgs;
use crate::exit;
use crate::run::cluster::encode;

/// Arguments of `dbops certs`.
#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Only Secrets in this namespace.
    #[arg(long, short = 'n', conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,
    /// Secrets in every namespace (the default when no namespace is given).
    #[arg(long, short = 'A')]
    pub all_namespaces: bool,
    /// Exit non-zero when a certificate expires within this duration.
    #[arg(long, default_value = "720h", value_parser = humantime::parse_duration)]
    pub threshold: Duration,
    /// Cluster connection.
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct CertRow {
    /// `namespace/name` of the Secret.
    pub secret: String,
    /// The `dbops.io/target` label.
    pub target: String,
    /// Summary line, or the reason the Secret could not be read.
    pub detail: Result<dbops_certs::summary::SecretSummary, String>,
}

/// Execute `dbops certs`.
pub async fn certs(args: CertsArgs) -> i32 {
    let cluster = match args.kube.connect().await {
        Ok(cluster) => cluster,
        Err(message) => {
            eprintln!("dbops: {message}");
            return exit::INTERNAL;
        }
    };
    let base = match &args.namespace {
        Some(ns) => format!("/api/v1/namespaces/{ns}/secrets"),
        None => "/api/v1/secrets".to_owned(),
    };
    let path = format!("{base}?labelSelector={}", encode(TLS_SECRET_SELECTOR));
    let items = match cluster.get(&path).await {
        Ok(Some(list)) => list
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        Ok(None) => Vec::new(),
        Err(e) => {
            eprintln!("dbops: cannot list TLS Secrets ({path}): {e}");
            return exit::INTERNAL;
        }
    };
    let now = OffsetDateTime::now_utc();
    let mut rows: Vec<CertRow> = items.iter().map(|s| row(s, now)).collect();
    rows.sort_by(|a, b| a.secret.cmp(&b.secret));
    print_rows(&rows, now, args.threshold)
}

/// Summarize one Secret object.
pub fn row(secret: &Value, now: OffsetDateTime) -> CertRow {
    let text = |pointer: &str| {
        secret
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let name = format!("{}/{}", text("/metadata/namespace"), text("/metadata/name"));
    let target = secret
        .pointer("/metadata/labels")
        .and_then(|l| l.get(LABEL_TARGET))
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_owned();
    let mut data = BTreeMap::new();
    let mut detail = Ok(());
    for key in [TLS_CRT, CA_CRT] {
        let Some(encoded) = secret
            .pointer("/data")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
        else {
            continue;
        };
        match base64::engine::general_purpose::STANDARD.decode(encoded) {
            Ok(bytes) => {
                data.insert(key.to_owned(), bytes);
            }
            Err(e) => detail = Err(format!("{key} is not valid base64: {e}")),
        }
    }
    let detail = detail.and_then(|()| {
        dbops_certs::summarize_secret(&data, now, &format!("secret {name}"))
            .map_err(|e| e.to_string())
    });
    CertRow {
        secret: name,
        target,
        detail,
    }
}

/// Print the table; the exit code says whether anything needs attention.
fn print_rows(rows: &[CertRow], now: OffsetDateTime, threshold: Duration) -> i32 {
    if rows.is_empty() {
        println!("no TLS Secrets written by dbops found ({TLS_SECRET_SELECTOR})");
        return exit::SUCCESS;
    }
    let mut code = exit::SUCCESS;
    for r in rows {
        match &r.detail {
            Ok(summary) => {
                let expiring = summary.expires_within(now, threshold);
                if expiring {
                    code = exit::CERT_EXPIRING;
                }
                println!(
                    "{:<40} target={:<20} {}{}",
                    r.secret,
                    r.target,
                    summary.line(),
                    if expiring { "  EXPIRING" } else { "" }
                );
            }
            Err(reason) => {
                code = exit::CERT_EXPIRING;
                println!(
                    "{:<40} target={:<20} UNREADABLE: {reason}",
                    r.secret, r.target
                );
            }
        }
    }
    if code != exit::SUCCESS {
        eprintln!(
            "dbops: some certificates expire within {} or cannot be read; rotate them (pipelines/ENGINE-rotate-tls.toml)",
            humantime::format_duration(threshold)
        );
    }
    code
}
