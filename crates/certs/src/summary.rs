//! Summaries of TLS Secrets for `dbops certs`: issuer, serial, notAfter and
//! days left of the certificate in a Secret's data, without the cluster.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::inspect::{self, CertInfo};

/// Key of the leaf chain in a `kubernetes.io/tls` Secret.
pub const TLS_CRT: &str = "tls.crt";
/// Key of the private key in a `kubernetes.io/tls` Secret.
pub const TLS_KEY: &str = "tls.key";
/// Key of the trust bundle in a `kubernetes.io/tls` Secret.
pub const CA_CRT: &str = "ca.crt";

/// Label `app.kubernetes.io/managed-by` (value `dbops`) on Secrets dbops writes.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label naming the target (database) a Secret belongs to.
pub const LABEL_TARGET: &str = "dbops.io/target";
/// Label saying what a Secret is for: `tls`, `keystore-password`, `ca`, `backup`.
pub const LABEL_ROLE: &str = "dbops.io/role";
/// Selects the TLS Secrets the issue-cert step wrote (for `dbops certs`);
/// the target is in [`LABEL_TARGET`].
pub const TLS_SECRET_SELECTOR: &str = "app.kubernetes.io/managed-by=dbops,dbops.io/role=tls";

/// What a TLS Secret holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSummary {
    /// The leaf (first certificate of `tls.crt`).
    pub certificate: CertInfo,
    /// The CAs of `ca.crt` (empty when absent).
    pub trusted_cas: Vec<CertInfo>,
    /// Whole days until the leaf expires at the time of the summary (negative when expired).
    pub days_left: i64,
}

impl SecretSummary {
    /// Whether the leaf or any trusted CA expires within `threshold` of `now`.
    pub fn expires_within(&self, now: OffsetDateTime, threshold: std::time::Duration) -> bool {
        let limit = now + threshold;
        self.certificate.not_after <= limit
            || self.trusted_cas.iter().any(|ca| ca.not_after <= limit)
    }

    /// One line: `issuer=... serial=... notAfter=RFC3339 daysLeft=N`.
    pub fn line(&self) -> String {
        let not_after = self
            .certificate
            .not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        format!(
            "issuer={} serial={} notAfter={} daysLeft={}",
            self.certificate.issuer, self.certificate.serial_hex, not_after, self.days_left
        )
    }
}

/// Summarize a Secret's `data` (decoded bytes by key) at `now`. `what`
/// names the Secret in errors (e.g. `secret db/zk-tls`).
pub fn summarize_secret(
    data: &BTreeMap<String, Vec<u8>>,
    now: OffsetDateTime,
    what: &str,
) -> Result<SecretSummary> {
    let text = |key: &str| -> Result<Option<&str>> {
        data.get(key)
            .map(|bytes| {
                std::str::from_utf8(bytes).map_err(|_| Error::Pem {
                    what: format!("{key} of {what}"),
                    reason: "not UTF-8 text".into(),
                })
            })
            .transpose()
    };
    let Some(chain) = text(TLS_CRT)? else {
        return Err(Error::Certificate {
            what: what.to_owned(),
            reason: format!("no {TLS_CRT} key; is this a kubernetes.io/tls Secret?"),
        });
    };
    let certificate = inspect::inspect_pem(chain, &format!("{TLS_CRT} of {what}"))?;
    let mut trusted_cas = Vec::new();
    if let Some(bundle) = text(CA_CRT)? {
        let ca_what = format!("{CA_CRT} of {what}");
        for der in crate::pem::certificates(bundle, &ca_what)? {
            trusted_cas.push(inspect::inspect_der(&der, &ca_what)?);
        }
    }
    let days_left = certificate.remaining(now).whole_days();
    Ok(SecretSummary {
        certificate,
        trusted_cas,
        days_left,
    })
}
