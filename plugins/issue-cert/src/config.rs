//! The `with` table of `issue-cert`, its defaults and its validation
//! (no cluster access here).

use std::net::IpAddr;
use std::time::Duration;

use dbops_certs::KeyAlgorithm;
use dbops_engines::tls::KeystoreFormat;
use dbops_plugin_sdk::schemars::JsonSchema;
use dbops_plugin_sdk::{DurationStr, Target};
use serde::{Deserialize, Serialize};

/// `with` table of `issue-cert`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct Config {
    /// What to do: `add` TLS, `rotate` the certificate, `update-issuer`
    /// (one phase of a zero-downtime CA switch per run of the step), or
    /// `remove` what `add` created.
    pub action: Action,
    /// Who signs. Required for every action but `remove`.
    #[serde(default)]
    pub issuer: Option<IssuerConfig>,
    /// The output Secret (`kubernetes.io/tls`: tls.crt with chain, tls.key,
    /// ca.crt, plus keystores). Default `<target name>-tls`.
    #[serde(default)]
    pub secret_name: Option<String>,
    /// The Secret holding the keystore password (key `password`),
    /// generated when absent. Default `<secret_name>-keystore-password`.
    #[serde(default)]
    pub password_secret: Option<String>,
    /// Keystore formats to write besides PEM: `pkcs12`, `jks`. Default: what
    /// the engine needs (ZooKeeper, Kafka, Druid: both; others: none).
    #[serde(default)]
    pub keystores: Option<Vec<Format>>,
    /// Alias of the key entry in keystore.p12 / keystore.jks.
    #[serde(default = "default_alias")]
    pub keystore_alias: String,
    /// The certificate to issue.
    #[serde(default)]
    pub certificate: CertificateConfig,
    /// `rotate`: only rotate when the certificate expires within this
    /// (e.g. "720h"); otherwise report `changed = false` and write nothing.
    #[serde(default = "default_renew_before")]
    pub renew_before: DurationStr,
    /// `rotate`: rotate even when not due. `remove`: delete even while the
    /// workload still mounts the Secret.
    #[serde(default)]
    pub force: bool,
    /// `update-issuer`: the phase to run: `trust-both` (ca.crt holds old
    /// and new CA), `issue` (new leaf from the new issuer), `drop-old`
    /// (ca.crt holds only the new CA). Default: the next phase the cluster
    /// needs, so three runs of the step (each followed by a rolling
    /// restart) complete the switch.
    #[serde(default)]
    pub phase: Option<Phase>,
    /// `remove`: also delete the built-in CA Secret when dbops created it
    /// for this target (other clients may still trust it: off by default).
    #[serde(default)]
    pub delete_ca: bool,
    /// How many previous revisions of the Secret to keep as backups.
    #[serde(default = "default_keep_backups")]
    pub keep_backups: u32,
    /// cert-manager: how long to wait for the Certificate to become Ready
    /// with a new revision (clamped to the step deadline).
    #[serde(default = "default_wait_timeout")]
    pub wait_timeout: DurationStr,
}

/// The actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub enum Action {
    /// Issue a certificate for a database without TLS.
    Add,
    /// Renew the certificate when due (or `force`).
    Rotate,
    /// Move to another CA in three phases.
    UpdateIssuer,
    /// Delete the Secrets `add` created.
    Remove,
}

/// The phases of `update-issuer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub enum Phase {
    /// Members trust the old and the new CA.
    TrustBoth,
    /// Members get certificates from the new issuer.
    Issue,
    /// Members trust only the new CA.
    DropOld,
}

impl Phase {
    /// The name used in `with` and outputs.
    pub fn name(self) -> &'static str {
        match self {
            Phase::TrustBoth => "trust-both",
            Phase::Issue => "issue",
            Phase::DropOld => "drop-old",
        }
    }

    /// The phase after this one, `None` after `drop-old`.
    pub fn next(self) -> Option<Phase> {
        match self {
            Phase::TrustBoth => Some(Phase::Issue),
            Phase::Issue => Some(Phase::DropOld),
            Phase::DropOld => None,
        }
    }
}

/// Keystore formats in `keystores`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub enum Format {
    /// keystore.p12 and truststore.p12.
    Pkcs12,
    /// keystore.jks and truststore.jks.
    Jks,
}

impl From<Format> for KeystoreFormat {
    fn from(f: Format) -> KeystoreFormat {
        match f {
            Format::Pkcs12 => KeystoreFormat::Pkcs12,
            Format::Jks => KeystoreFormat::Jks,
        }
    }
}

/// Who signs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct IssuerConfig {
    /// `ca`: the built-in CA, signing in-process with the CA in Secret
    /// `name`; `Issuer` / `ClusterIssuer`: cert-manager signs.
    pub kind: IssuerKind,
    /// The CA Secret (kind `ca`; `tls.crt` + `tls.key`) or the
    /// cert-manager Issuer/ClusterIssuer name.
    pub name: String,
    /// kind `ca`: create the CA when its Secret does not exist.
    #[serde(default)]
    pub create_if_missing: bool,
    /// kind `ca`: common name of a created CA. Default `<target name>-ca`.
    #[serde(default)]
    pub ca_common_name: Option<String>,
    /// kind `ca`: validity of a created CA.
    #[serde(default = "default_ca_duration")]
    pub ca_duration: DurationStr,
    /// kind `ca`: key algorithm of a created CA.
    #[serde(default)]
    pub ca_key_algorithm: KeyAlgo,
    /// cert-manager: the Certificate object. Default `<secret_name>`.
    #[serde(default)]
    pub certificate_name: Option<String>,
    /// cert-manager: the issuer's API group.
    #[serde(default = "default_group")]
    pub group: String,
    /// cert-manager: a Secret holding the issuer's CA certificate (`ca.crt`,
    /// else `tls.crt`), for the trust bundle during `update-issuer`.
    /// Default: the `spec.ca.secretName` of a CA issuer.
    #[serde(default)]
    pub ca_secret: Option<String>,
    /// cert-manager: namespace of ClusterIssuer CA Secrets (cert-manager's
    /// cluster resource namespace).
    #[serde(default = "default_cluster_resource_namespace")]
    pub cluster_resource_namespace: String,
}

/// Issuer kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub enum IssuerKind {
    /// The built-in CA.
    #[serde(rename = "ca")]
    Ca,
    /// A namespaced cert-manager Issuer.
    Issuer,
    /// A cert-manager ClusterIssuer.
    ClusterIssuer,
}

/// The certificate to issue.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct CertificateConfig {
    /// Subject CN. Default: the target name.
    #[serde(default)]
    pub common_name: Option<String>,
    /// Subject O.
    #[serde(default)]
    pub organization: Option<String>,
    /// Validity.
    #[serde(default = "default_duration")]
    pub duration: DurationStr,
    /// `ecdsa-p256`, `ecdsa-p384`, `rsa-2048` or `rsa-4096`.
    #[serde(default)]
    pub key_algorithm: KeyAlgo,
    /// `Always`: a new key on every issuance; `Never`: keep the key.
    #[serde(default)]
    pub rotation_policy: RotationPolicy,
    /// Add `*.<governing service>.<ns>.svc` (and `.svc.<cluster_domain>`).
    #[serde(default)]
    pub wildcard: bool,
    /// Client Services to name (`S`, `S.NS`, `S.NS.svc`, `S.NS.svc.<cluster_domain>`).
    /// Default: the target name.
    #[serde(default)]
    pub client_services: Option<Vec<String>>,
    /// Extra DNS SANs.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// Extra IP SANs.
    #[serde(default)]
    pub ip_addresses: Vec<String>,
    /// The cluster DNS domain.
    #[serde(default = "default_cluster_domain")]
    pub cluster_domain: String,
}

impl Default for CertificateConfig {
    fn default() -> Self {
        CertificateConfig {
            common_name: None,
            organization: None,
            duration: default_duration(),
            key_algorithm: KeyAlgo::default(),
            rotation_policy: RotationPolicy::default(),
            wildcard: false,
            client_services: None,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            cluster_domain: default_cluster_domain(),
        }
    }
}

/// Key algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub enum KeyAlgo {
    /// ECDSA P-256 (default).
    #[default]
    EcdsaP256,
    /// ECDSA P-384.
    EcdsaP384,
    /// RSA 2048.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA 4096.
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

impl From<KeyAlgo> for KeyAlgorithm {
    fn from(k: KeyAlgo) -> KeyAlgorithm {
        match k {
            KeyAlgo::EcdsaP256 => KeyAlgorithm::EcdsaP256,
            KeyAlgo::EcdsaP384 => KeyAlgorithm::EcdsaP384,
            KeyAlgo::Rsa2048 => KeyAlgorithm::Rsa2048,
            KeyAlgo::Rsa4096 => KeyAlgorithm::Rsa4096,
        }
    }
}

/// Private key rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub enum RotationPolicy {
    /// A new key on every issuance (default).
    #[default]
    Always,
    /// Reuse the current key.
    Never,
}

fn default_alias() -> String {
    "server".into()
}
fn default_renew_before() -> DurationStr {
    DurationStr(Duration::from_secs(720 * 3600))
}
fn default_keep_backups() -> u32 {
    3
}
fn default_wait_timeout() -> DurationStr {
    DurationStr(Duration::from_secs(300))
}
fn default_ca_duration() -> DurationStr {
    DurationStr(Duration::from_secs(87_600 * 3600))
}
fn default_duration() -> DurationStr {
    DurationStr(Duration::from_secs(2160 * 3600))
}
fn default_group() -> String {
    "cert-manager.io".into()
}
fn default_cluster_resource_namespace() -> String {
    "cert-manager".into()
}
fn default_cluster_domain() -> String {
    "cluster.local".into()
}

impl Config {
    /// The output Secret's name.
    pub fn secret_name(&self, target: &Target) -> String {
        self.secret_name
            .clone()
            .unwrap_or_else(|| format!("{}-tls", target.name))
    }

    /// The password Secret's name.
    pub fn password_secret(&self, target: &Target) -> String {
        self.password_secret
            .clone()
            .unwrap_or_else(|| format!("{}-keystore-password", self.secret_name(target)))
    }

    /// The keystore formats to write besides PEM.
    pub fn formats(&self, target: &Target) -> Vec<KeystoreFormat> {
        match &self.keystores {
            Some(list) => list.iter().map(|f| KeystoreFormat::from(*f)).collect(),
            None => dbops_engines::Engine::parse(&target.engine)
                .map(|e| dbops_engines::tls::needs(e).formats.to_vec())
                .unwrap_or_default()
                .into_iter()
                .filter(|f| *f != KeystoreFormat::Pem)
                .collect(),
        }
    }

    /// The extra IP SANs, parsed (validation reports bad ones).
    pub fn ip_addresses(&self) -> Vec<IpAddr> {
        self.certificate
            .ip_addresses
            .iter()
            .filter_map(|ip| ip.parse().ok())
            .collect()
    }
}

impl CertificateConfig {
    /// The key algorithm's configuration name.
    pub fn key_algorithm_name(&self) -> &'static str {
        KeyAlgorithm::from(self.key_algorithm).name()
    }
}
