//! Issuers and ClusterIssuers: their Ready condition, and the signing CA a
//! Certificate's `issuerRef` resolves to.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::sign::{self, Ca};
use super::types::{IssuerRef, IssuerSpec};
use super::{CLUSTER_RESOURCE_NAMESPACE, Error, Resources};
use crate::controllers::conditions::{self, Condition};

/// What signs a Certificate.
pub enum Signer {
    /// `spec.selfSigned`.
    SelfSigned,
    /// `spec.ca`.
    Ca(Box<Ca>),
}

/// Why an issuer cannot sign now (the Certificate waits, retrying).
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// The issuer does not exist.
    #[error("referenced \"{kind}\" not found: {kind}.cert-manager.io \"{name}\" not found")]
    NotFound {
        /// `Issuer` or `ClusterIssuer`.
        kind: String,
        /// Its name.
        name: String,
    },
    /// Neither `ca` nor `selfSigned`.
    #[error("{kind} {name}: only CA and selfSigned issuers are supported by the sandbox")]
    Unsupported {
        /// `Issuer` or `ClusterIssuer`.
        kind: String,
        /// Its name.
        name: String,
    },
    /// The CA Secret is missing or unusable.
    #[error("{kind} {name}: CA Secret {namespace}/{secret}: {reason}")]
    KeyPair {
        /// `Issuer` or `ClusterIssuer`.
        kind: String,
        /// Its name.
        name: String,
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        secret: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading from the API server failed.
    #[error("reading {what}: {source}")]
    Api {
        /// What was read.
        what: String,
        /// The kube error.
        #[source]
        source: kube::Error,
    },
}

/// Resolves `issuer_ref` (for a Certificate in `namespace`) to its signer.
pub async fn signer(
    client: &Client,
    resources: &Resources,
    issuer_ref: &IssuerRef,
    namespace: &str,
) -> Result<Signer, IssuerError> {
    let kind = issuer_ref.kind().to_owned();
    let (api, secret_namespace) = if kind == "ClusterIssuer" {
        (
            Api::<DynamicObject>::all_with(client.clone(), &resources.cluster_issuer),
            CLUSTER_RESOURCE_NAMESPACE,
        )
    } else {
        (
            Api::namespaced_with(client.clone(), namespace, &resources.issuer),
            namespace,
        )
    };
    let issuer = api
        .get_opt(&issuer_ref.name)
        .await
        .map_err(|source| IssuerError::Api {
            what: format!("{kind} {}", issuer_ref.name),
            source,
        })?;
    let issuer = issuer.ok_or_else(|| IssuerError::NotFound {
        kind: kind.clone(),
        name: issuer_ref.name.clone(),
    })?;
    signer_of(client, &issuer, &kind, secret_namespace).await
}

async fn signer_of(
    client: &Client,
    issuer: &DynamicObject,
    kind: &str,
    secret_namespace: &str,
) -> Result<Signer, IssuerError> {
    let name = issuer.name_any();
    let spec: IssuerSpec =
        serde_json::from_value(issuer.data.get("spec").cloned().unwrap_or_default())
            .unwrap_or_default();
    if spec.self_signed.is_some() {
        return Ok(Signer::SelfSigned);
    }
    let Some(ca) = spec.ca else {
        return Err(IssuerError::Unsupported {
            kind: kind.to_owned(),
            name,
        });
    };
    let bad = |reason: String| IssuerError::KeyPair {
        kind: kind.to_owned(),
        name: name.clone(),
        namespace: secret_namespace.to_owned(),
        secret: ca.secret_name.clone(),
        reason,
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), secret_namespace);
    let secret = secrets
        .get_opt(&ca.secret_name)
        .await
        .map_err(|source| IssuerError::Api {
            what: format!("Secret {secret_namespace}/{}", ca.secret_name),
            source,
        })?;
    let secret = secret.ok_or_else(|| bad("not found".to_owned()))?;
    let data = secret.data.unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
    };
    let chain =
        sign::split_certificates(&text("tls.crt").ok_or_else(|| bad("no tls.crt".to_owned()))?);
    if chain.is_empty() {
        return Err(bad("tls.crt holds no PEM certificate".to_owned()));
    }
    let key_pem = text("tls.key").ok_or_else(|| bad("no tls.key".to_owned()))?;
    let key = tokio::task::spawn_blocking(move || sign::load_key(&key_pem))
        .await
        .map_err(|err| bad(err.to_string()))?
        .map_err(|err| bad(err.to_string()))?;
    Ok(Signer::Ca(Box::new(Ca { chain, key })))
}

/// Reconciles an Issuer or ClusterIssuer: sets its Ready condition.
pub(super) async fn reconcile(
    issuer: Arc<DynamicObject>,
    ctx: Arc<super::Context>,
    cluster: bool,
) -> Result<Action, Error> {
    let name = issuer.name_any();
    let (kind, resource, api) = if cluster {
        let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &ctx.resources.cluster_issuer);
        ("ClusterIssuer", &ctx.resources.cluster_issuer, api)
    } else {
        let namespace = issuer.namespace().unwrap_or_default();
        let api = Api::namespaced_with(ctx.client.clone(), &namespace, &ctx.resources.issuer);
        ("Issuer", &ctx.resources.issuer, api)
    };
    let secret_namespace = if cluster {
        CLUSTER_RESOURCE_NAMESPACE.to_owned()
    } else {
        issuer.namespace().unwrap_or_default()
    };
    let condition = match signer_of(&ctx.client, &issuer, kind, &secret_namespace).await {
        Ok(Signer::SelfSigned) => Condition::new("Ready", true, "IsReady", ""),
        Ok(Signer::Ca(_)) => {
            Condition::new("Ready", true, "KeyPairVerified", "Signing CA verified")
        }
        Err(err @ IssuerError::Api { .. }) => return Err(Error::Issuer(err)),
        Err(err) => Condition::new("Ready", false, "ErrInvalidKeyPair", err.to_string()),
    };
    let old = issuer.data.pointer("/status/conditions");
    let current = old.and_then(Value::as_array).and_then(|all| {
        all.iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
    });
    let unchanged = current.is_some_and(|c| {
        c.get("status").and_then(Value::as_str) == Some(condition.status)
            && c.get("reason").and_then(Value::as_str) == Some(condition.reason.as_str())
            && c.get("message").and_then(Value::as_str) == Some(condition.message.as_str())
    });
    if !unchanged {
        let conditions = conditions::merge(old, &[condition], &[], issuer.metadata.generation);
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": conditions}})),
        )
        .await
        .map_err(|source| Error::Api {
            action: format!("patch status of {} {name}", resource.kind),
            source,
        })?;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}
