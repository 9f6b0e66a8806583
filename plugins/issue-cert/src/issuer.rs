//! Who signs: the built-in CA (its certificate and key in a Secret,
//! created when asked, signing in-process) or cert-manager.

use std::collections::BTreeMap;

use dbops_certs::summary::{CA_CRT, TLS_CRT, TLS_KEY};
use dbops_certs::{Ca, CaSpec, KeyAlgorithm, LeafSpec, PrivateKey, Subject};
use dbops_plugin_sdk::{Context, EventType, StepError, StepResult};

use crate::certmanager::CertManager;
use crate::config::{Config, IssuerConfig, IssuerKind};
use crate::material::certs_error;
use crate::secrets::{self, Role, Secrets};
use crate::state::State;

/// A freshly issued certificate and its key.
pub struct Fresh {
    /// Leaf then chain, PEM.
    pub chain_pem: String,
    /// The leaf's key.
    pub key: PrivateKey,
    /// The issuing CA, DER.
    pub ca_der: Vec<u8>,
}

/// A resolved issuer.
pub enum Issuer {
    /// The built-in CA.
    BuiltIn(Ca),
    /// cert-manager.
    CertManager(Box<CertManager>),
}

impl Issuer {
    /// Resolve the configured issuer; creates the built-in CA when absent
    /// and `create_if_missing` (recorded in `state`, undone by compensation).
    pub fn resolve(
        ctx: &Context<'_>,
        config: &Config,
        issuer: &IssuerConfig,
        secrets: &Secrets<'_>,
        state: &mut State,
    ) -> StepResult<Issuer> {
        match issuer.kind {
            IssuerKind::Ca => load_or_create_ca(ctx, issuer, secrets, state).map(Issuer::BuiltIn),
            IssuerKind::Issuer | IssuerKind::ClusterIssuer => Ok(Issuer::CertManager(Box::new(
                CertManager::new(ctx, config, issuer),
            ))),
        }
    }

    /// `ca` or `cert-manager`, for outputs and spans.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Issuer::BuiltIn(_) => "ca",
            Issuer::CertManager(_) => "cert-manager",
        }
    }

    /// The CA certificate members must trust for this issuer's certificates.
    pub fn ca_der(&self, ctx: &Context<'_>) -> StepResult<Vec<u8>> {
        match self {
            Issuer::BuiltIn(ca) => Ok(ca.cert_der().to_vec()),
            Issuer::CertManager(cm) => cm.ca_der(ctx),
        }
    }

    /// Issue a certificate as `request` says.
    pub fn issue(
        &self,
        ctx: &Context<'_>,
        request: Request,
        state: &mut State,
    ) -> StepResult<Fresh> {
        match self {
            Issuer::BuiltIn(ca) => {
                let key = match request.reuse_key {
                    Some(key) => key,
                    None => PrivateKey::generate(request.algorithm).map_err(certs_error)?,
                };
                let issued = ca.issue(request.spec, &key).map_err(certs_error)?;
                Ok(Fresh {
                    chain_pem: issued.chain_pem,
                    key,
                    ca_der: ca.cert_der().to_vec(),
                })
            }
            Issuer::CertManager(cm) => cm.issue(ctx, &request, state),
        }
    }
}

/// What to issue.
pub struct Request<'a> {
    /// Subject, SANs, usages, validity.
    pub spec: &'a LeafSpec,
    /// Key algorithm of a new key.
    pub algorithm: KeyAlgorithm,
    /// The current key, when the rotation policy keeps it (built-in CA).
    pub reuse_key: Option<PrivateKey>,
    /// Whether the private key is kept across issuances.
    pub keep_key: bool,
    /// Force a new issuance even when the issuer has a current certificate (cert-manager).
    pub renew: bool,
}

fn load_or_create_ca(
    ctx: &Context<'_>,
    issuer: &IssuerConfig,
    secrets: &Secrets<'_>,
    state: &mut State,
) -> StepResult<Ca> {
    let name = &issuer.name;
    let what = format!("CA Secret {}/{name}", ctx.target().namespace);
    if let Some(secret) = secrets.get(name)? {
        let (Some(cert), Some(key)) = (
            secrets::text(&secret, TLS_CRT),
            secrets::text(&secret, TLS_KEY),
        ) else {
            return Err(StepError::permanent(
                "CaSecretInvalid",
                format!("{what} must hold {TLS_CRT} (the CA certificate) and {TLS_KEY} (its key)"),
            ));
        };
        return Ca::from_pem(&cert, &key, &what).map_err(|e| {
            StepError::permanent("CaSecretInvalid", format!("{e}; fix or delete {what}"))
        });
    }
    if !issuer.create_if_missing {
        return Err(StepError::permanent(
            "CaSecretMissing",
            format!("{what} does not exist; create it or set issuer.create_if_missing = true"),
        ));
    }
    let spec = CaSpec {
        subject: Subject {
            common_name: issuer
                .ca_common_name
                .clone()
                .unwrap_or_else(|| format!("{}-ca", ctx.target().name)),
            organization: Some("dbops".into()),
            organizational_unit: None,
        },
        validity: issuer.ca_duration.get(),
        algorithm: issuer.ca_key_algorithm.into(),
    };
    let ca = Ca::create(&spec).map_err(certs_error)?;
    if ctx.dry_run() {
        ctx.info(&format!(
            "dry run: would create CA {} in Secret {name}",
            spec.subject.common_name
        ));
        return Ok(ca);
    }
    state.before_write(ctx, secrets, name, None)?;
    let data = BTreeMap::from([
        (TLS_CRT.to_owned(), ca.cert_pem().into_bytes()),
        (TLS_KEY.to_owned(), ca.key().pkcs8_pem().as_bytes().to_vec()),
        (CA_CRT.to_owned(), ca.cert_pem().into_bytes()),
    ]);
    secrets.write(name, Role::Ca, data, None)?;
    ctx.event(
        EventType::Normal,
        "CaCreated",
        &format!("created CA {} in Secret {name}", spec.subject.common_name),
    );
    Ok(ca)
}
