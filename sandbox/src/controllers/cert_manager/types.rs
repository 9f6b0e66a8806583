//! The parts of cert-manager's `cert-manager.io/v1` API the stand-in reads.

use serde::Deserialize;
use serde_json::{Value, json};

/// `Certificate.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CertificateSpec {
    /// The Secret to write.
    pub secret_name: String,
    /// Subject common name.
    pub common_name: Option<String>,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// IP SANs.
    pub ip_addresses: Vec<String>,
    /// URI SANs.
    pub uris: Vec<String>,
    /// Email SANs.
    pub email_addresses: Vec<String>,
    /// Validity, Go duration (default 2160h).
    pub duration: Option<String>,
    /// Renew this long before expiry (default a third of the duration).
    pub renew_before: Option<String>,
    /// Key usages and extended key usages, cert-manager spelling.
    pub usages: Vec<String>,
    /// Whether to issue a CA certificate.
    #[serde(rename = "isCA")]
    pub is_ca: bool,
    /// Private key settings.
    pub private_key: PrivateKeySpec,
    /// The issuer.
    pub issuer_ref: IssuerRef,
    /// Subject fields besides the common name.
    pub subject: Subject,
    /// Extra annotations and labels for the Secret.
    pub secret_template: SecretTemplate,
}

/// `spec.privateKey`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PrivateKeySpec {
    /// `RSA` (default), `ECDSA` or `Ed25519`.
    pub algorithm: Option<String>,
    /// Key size: RSA bits (2048) or ECDSA curve size (256).
    pub size: Option<u32>,
    /// `PKCS1` (default) or `PKCS8`.
    pub encoding: Option<String>,
    /// `Always` (default): new key per issuance; `Never`: reuse the Secret's.
    pub rotation_policy: Option<String>,
}

/// `spec.issuerRef`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IssuerRef {
    /// Issuer name.
    pub name: String,
    /// `Issuer` (default) or `ClusterIssuer`.
    pub kind: Option<String>,
    /// API group, `cert-manager.io`.
    pub group: Option<String>,
}

impl IssuerRef {
    /// The kind, defaulted.
    pub fn kind(&self) -> &str {
        self.kind
            .as_deref()
            .filter(|k| !k.is_empty())
            .unwrap_or("Issuer")
    }
}

/// `spec.subject`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subject {
    /// O.
    pub organizations: Vec<String>,
    /// OU.
    pub organizational_units: Vec<String>,
    /// C.
    pub countries: Vec<String>,
    /// L.
    pub localities: Vec<String>,
    /// ST.
    pub provinces: Vec<String>,
}

/// `spec.secretTemplate`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SecretTemplate {
    /// Annotations to add.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Labels to add.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// `Issuer.spec` / `ClusterIssuer.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IssuerSpec {
    /// CA issuer.
    pub ca: Option<CaIssuer>,
    /// Self-signed issuer.
    pub self_signed: Option<Value>,
}

/// `spec.ca`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CaIssuer {
    /// Secret with the CA's `tls.crt` and `tls.key`.
    pub secret_name: String,
}

/// The fields whose change requires a new certificate, as one document
/// (its hash is stored on the Secret).
pub fn issuance_inputs(spec: &Value) -> Value {
    let field = |name: &str| spec.get(name).cloned().unwrap_or(Value::Null);
    let key = spec.get("privateKey").cloned().unwrap_or(Value::Null);
    json!({
        "commonName": field("commonName"),
        "dnsNames": field("dnsNames"),
        "ipAddresses": field("ipAddresses"),
        "uris": field("uris"),
        "emailAddresses": field("emailAddresses"),
        "duration": field("duration"),
        "usages": field("usages"),
        "isCA": field("isCA"),
        "subject": field("subject"),
        "issuerRef": field("issuerRef"),
        "privateKey": {
            "algorithm": key.get("algorithm").cloned().unwrap_or(Value::Null),
            "size": key.get("size").cloned().unwrap_or(Value::Null),
            "encoding": key.get("encoding").cloned().unwrap_or(Value::Null),
        },
    })
}
