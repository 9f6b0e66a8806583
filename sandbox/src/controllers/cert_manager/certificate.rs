//! The Certificate reconcile, after cert-manager's trigger + issuing
//! controllers: decide whether to issue (and why), set `Issuing`, sign,
//! write the Secret, then `Ready`, `revision` and the validity times.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::issuer::{self, Signer};
use super::sign;
use super::types::{CertificateSpec, issuance_inputs};
use super::{Context, Error};
use crate::controllers::conditions::{self, Condition};
use crate::controllers::events;
use crate::controllers::hash::canonical_hash;

/// Annotation on the Secret with the hash of the spec fields it was issued
/// for (a changed spec means a new certificate).
pub const SPEC_HASH: &str = "sandbox.dbops.io/certificate-spec-hash";

/// Why a certificate must be (re)issued: `(reason, message)`.
pub type Trigger = (String, String);

/// Reconciles one Certificate; always works on a fresh read.
pub(super) async fn reconcile(
    cached: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let (Some(namespace), Some(name)) = (
        cached.metadata.namespace.clone(),
        cached.metadata.name.clone(),
    ) else {
        return Ok(Action::await_change());
    };
    let certs: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &namespace, &ctx.resources.certificate);
    let api_error = |action: String| move |source| Error::Api { action, source };
    let Some(cert) = certs
        .get_opt(&name)
        .await
        .map_err(api_error(format!("get Certificate {namespace}/{name}")))?
    else {
        return Ok(Action::await_change());
    };
    if cert.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let spec_value = cert.data.get("spec").cloned().unwrap_or_default();
    let status = cert.data.get("status").cloned().unwrap_or_default();
    let generation = cert.metadata.generation;
    let update = StatusWriter {
        api: &certs,
        name: &name,
        status: &status,
        generation,
    };
    let spec: CertificateSpec = match serde_json::from_value(spec_value.clone()) {
        Ok(spec) => spec,
        Err(err) => {
            let ready = Condition::new(
                "Ready",
                false,
                "InvalidSpec",
                format!("invalid spec: {err}"),
            );
            update.conditions(&[ready], &[]).await?;
            return Ok(Action::await_change());
        }
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let secret = secrets
        .get_opt(&spec.secret_name)
        .await
        .map_err(api_error(format!(
            "get Secret {namespace}/{}",
            spec.secret_name
        )))?;
    let inputs_hash = canonical_hash(&issuance_inputs(&spec_value));
    let now = OffsetDateTime::now_utc();

    let Some((reason, message)) = trigger(&status, secret.as_ref(), &spec, &inputs_hash, now)
    else {
        let ready = Condition::new(
            "Ready",
            true,
            "Ready",
            "Certificate is up to date and has not expired",
        );
        update.conditions(&[ready], &["Issuing"]).await?;
        sync_secret_template(&secrets, &spec, secret.as_ref()).await?;
        return Ok(requeue_at(status.get("renewalTime"), now));
    };

    let regarding = events::reference(
        "cert-manager.io/v1",
        "Certificate",
        &namespace,
        &name,
        cert.metadata.uid.as_deref(),
    );
    if status_of(&status, "Issuing") != Some("True") {
        ctx.events
            .normal(&regarding, None, "Issuing", "Trigger", message.clone());
    }

    // 1. Issuing=True (Ready=False while there is no usable Secret).
    let mut marks = vec![Condition::new("Issuing", true, &reason, message.clone())];
    if secret.is_none() || reason == "MissingData" {
        marks.push(Condition::new("Ready", false, &reason, message.clone()));
    }
    update.conditions(&marks, &[]).await?;

    // 2. The signer.
    let signer =
        match issuer::signer(&ctx.client, &ctx.resources, &spec.issuer_ref, &namespace).await {
            Ok(signer) => signer,
            Err(err) => {
                let note = err.to_string();
                ctx.events
                    .warning(&regarding, None, "IssuerNotReady", "Issue", note);
                let waiting = Condition::new("Ready", false, "Pending", err.to_string());
                update.failure(&[marks[0].clone(), waiting]).await?;
                return Ok(Action::requeue(Duration::from_secs(2)));
            }
        };

    // 3. Sign (blocking: key generation, openssl).
    let reuse = (spec.private_key.rotation_policy.as_deref() == Some("Never"))
        .then(|| secret_text(secret.as_ref(), "tls.key"))
        .flatten();
    let sign_spec = spec.clone();
    let signed = tokio::task::spawn_blocking(move || {
        let ca = match &signer {
            Signer::SelfSigned => None,
            Signer::Ca(ca) => Some(ca.as_ref()),
        };
        sign::issue(&sign_spec, ca, reuse.as_deref())
    })
    .await;
    let issued = match signed {
        Ok(Ok(issued)) => issued,
        Ok(Err(err)) => {
            ctx.events
                .warning(&regarding, None, "Failed", "Issue", err.to_string());
            let failed = Condition::new("Ready", false, "Failed", err.to_string());
            update.failure(&[marks[0].clone(), failed]).await?;
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
        Err(join) => {
            let failed = Condition::new(
                "Ready",
                false,
                "Failed",
                format!("signing task failed: {join}"),
            );
            update.failure(&[marks[0].clone(), failed]).await?;
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
    };

    // 4. The Secret.
    write_secret(
        &secrets,
        &namespace,
        &name,
        &spec,
        secret.as_ref(),
        &issued,
        &inputs_hash,
    )
    .await?;

    // 5. Ready, revision, times.
    let revision = status.get("revision").and_then(Value::as_i64).unwrap_or(0) + 1;
    let ready = Condition::new(
        "Ready",
        true,
        "Ready",
        "Certificate is up to date and has not expired",
    );
    let conditions =
        conditions::merge(status.get("conditions"), &[ready], &["Issuing"], generation);
    let renewal = format_time(issued.renewal);
    let patch = json!({"status": {
        "conditions": conditions,
        "revision": revision,
        "notBefore": format_time(issued.not_before),
        "notAfter": format_time(issued.not_after),
        "renewalTime": renewal,
        "lastFailureTime": null,
        "failedIssuanceAttempts": null,
    }});
    certs
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(api_error(format!(
            "patch status of Certificate {namespace}/{name}"
        )))?;
    tracing::info!(certificate = %name, namespace = %namespace, revision, reason = %reason, "certificate issued");
    let note = "The certificate has been successfully issued".to_owned();
    ctx.events
        .normal(&regarding, None, "Issuing", "Issue", note);
    Ok(requeue_at(Some(&Value::String(renewal)), now))
}

/// Why the certificate needs issuing now, if it does (pure).
pub fn trigger(
    status: &Value,
    secret: Option<&Secret>,
    spec: &CertificateSpec,
    inputs_hash: &str,
    now: OffsetDateTime,
) -> Option<Trigger> {
    let conditions = status.get("conditions").and_then(Value::as_array);
    if let Some(issuing) = conditions
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Issuing"))
        .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
    {
        let text = |key: &str| {
            issuing
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        return Some((text("reason"), text("message")));
    }
    let Some(secret) = secret else {
        return Some((
            "DoesNotExist".into(),
            "Issuing certificate as Secret does not exist".into(),
        ));
    };
    if secret_text(Some(secret), "tls.crt").is_none()
        || secret_text(Some(secret), "tls.key").is_none()
    {
        return Some((
            "MissingData".into(),
            "Issuing certificate as Secret does not contain a certificate".into(),
        ));
    }
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    let issuer_name = annotations
        .get("cert-manager.io/issuer-name")
        .map(String::as_str);
    let issuer_kind = annotations
        .get("cert-manager.io/issuer-kind")
        .map(String::as_str);
    if issuer_name != Some(spec.issuer_ref.name.as_str())
        || issuer_kind != Some(spec.issuer_ref.kind())
    {
        return Some((
            "IncorrectIssuer".into(),
            format!(
                "Issuing certificate as Secret was previously issued by {}.cert-manager.io/{}",
                issuer_kind.unwrap_or(""),
                issuer_name.unwrap_or("")
            ),
        ));
    }
    if annotations.get(SPEC_HASH).map(String::as_str) != Some(inputs_hash) {
        return Some((
            "RequestChanged".into(),
            "Fields on existing CertificateRequest resource not up to date".into(),
        ));
    }
    let renewal = status
        .get("renewalTime")
        .and_then(Value::as_str)
        .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok());
    if let Some(renewal) = renewal.filter(|at| *at <= now) {
        return Some((
            "Renewing".into(),
            format!(
                "Renewing certificate as renewal was scheduled at {}",
                format_time(renewal)
            ),
        ));
    }
    None
}

async fn write_secret(
    secrets: &Api<Secret>,
    namespace: &str,
    certificate: &str,
    spec: &CertificateSpec,
    existing: Option<&Secret>,
    issued: &sign::Issued,
    inputs_hash: &str,
) -> Result<(), Error> {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let mut annotations: BTreeMap<String, String> = spec.secret_template.annotations.clone();
    annotations.extend([
        (
            "cert-manager.io/certificate-name".to_owned(),
            certificate.to_owned(),
        ),
        (
            "cert-manager.io/issuer-name".to_owned(),
            spec.issuer_ref.name.clone(),
        ),
        (
            "cert-manager.io/issuer-kind".to_owned(),
            spec.issuer_ref.kind().to_owned(),
        ),
        (
            "cert-manager.io/issuer-group".to_owned(),
            spec.issuer_ref
                .group
                .clone()
                .unwrap_or_else(|| "cert-manager.io".to_owned()),
        ),
        (
            "cert-manager.io/common-name".to_owned(),
            spec.common_name.clone().unwrap_or_default(),
        ),
        (
            "cert-manager.io/alt-names".to_owned(),
            spec.dns_names.join(","),
        ),
        (
            "cert-manager.io/ip-sans".to_owned(),
            spec.ip_addresses.join(","),
        ),
        ("cert-manager.io/uri-sans".to_owned(), spec.uris.join(",")),
        (SPEC_HASH.to_owned(), inputs_hash.to_owned()),
    ]);
    let mut labels = spec.secret_template.labels.clone();
    labels.insert(
        "controller.cert-manager.io/fao".to_owned(),
        "true".to_owned(),
    );
    let data = json!({
        "tls.crt": b64(&issued.chain_pem),
        "tls.key": b64(&issued.key_pem),
        "ca.crt": b64(&issued.ca_pem),
    });
    let action = format!("write Secret {namespace}/{}", spec.secret_name);
    let result = match existing {
        Some(_) => secrets
            .patch(
                &spec.secret_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": annotations, "labels": labels}, "data": data})),
            )
            .await
            .map(|_| ()),
        None => {
            let secret: Secret = serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": spec.secret_name, "namespace": namespace, "annotations": annotations, "labels": labels},
                "type": "kubernetes.io/tls",
                "data": data,
            }))
            .map_err(|err| Error::Internal(format!("building Secret: {err}")))?;
            secrets.create(&PostParams::default(), &secret).await.map(|_| ())
        }
    };
    result.map_err(|source| Error::Api { action, source })
}

/// Copies `spec.secretTemplate` annotations and labels onto an existing
/// Secret (no new certificate needed for that).
async fn sync_secret_template(
    secrets: &Api<Secret>,
    spec: &CertificateSpec,
    secret: Option<&Secret>,
) -> Result<(), Error> {
    let Some(secret) = secret else {
        return Ok(());
    };
    let missing = |wanted: &BTreeMap<String, String>, have: Option<&BTreeMap<String, String>>| {
        wanted
            .iter()
            .any(|(k, v)| have.and_then(|h| h.get(k)) != Some(v))
    };
    let template = &spec.secret_template;
    if !missing(&template.annotations, secret.metadata.annotations.as_ref())
        && !missing(&template.labels, secret.metadata.labels.as_ref())
    {
        return Ok(());
    }
    let patch =
        json!({"metadata": {"annotations": template.annotations, "labels": template.labels}});
    secrets
        .patch(
            &spec.secret_name,
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .map(|_| ())
        .map_err(|source| Error::Api {
            action: format!("apply secretTemplate to Secret {}", spec.secret_name),
            source,
        })
}

/// Writes status conditions when they differ from the current ones.
struct StatusWriter<'a> {
    api: &'a Api<DynamicObject>,
    name: &'a str,
    status: &'a Value,
    generation: Option<i64>,
}

impl StatusWriter<'_> {
    async fn conditions(&self, desired: &[Condition], remove: &[&str]) -> Result<(), Error> {
        let old = self.status.get("conditions");
        let merged = conditions::merge(old, desired, remove, self.generation);
        if old == Some(&Value::Array(merged.clone())) {
            return Ok(());
        }
        self.patch(json!({"status": {"conditions": merged}})).await
    }

    async fn failure(&self, desired: &[Condition]) -> Result<(), Error> {
        let merged =
            conditions::merge(self.status.get("conditions"), desired, &[], self.generation);
        let unchanged = self.status.get("conditions") == Some(&Value::Array(merged.clone()));
        if unchanged && self.status.get("lastFailureTime").is_some() {
            return Ok(());
        }
        self.patch(
            json!({"status": {"conditions": merged, "lastFailureTime": conditions::now_rfc3339()}}),
        )
        .await
    }

    async fn patch(&self, patch: Value) -> Result<(), Error> {
        self.api
            .patch_status(self.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|_| ())
            .map_err(|source| Error::Api {
                action: format!("patch status of Certificate {}", self.name),
                source,
            })
    }
}

fn status_of<'a>(status: &'a Value, kind: &str) -> Option<&'a str> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))?
        .get("status")?
        .as_str()
}

fn secret_text(secret: Option<&Secret>, key: &str) -> Option<String> {
    let value = secret?.data.as_ref()?.get(key)?;
    (!value.0.is_empty()).then(|| String::from_utf8_lossy(&value.0).into_owned())
}

fn format_time(at: OffsetDateTime) -> String {
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&Rfc3339).unwrap_or_default()
}

/// Requeue at the renewal time (at most an hour away).
fn requeue_at(renewal: Option<&Value>, now: OffsetDateTime) -> Action {
    let at = renewal
        .and_then(Value::as_str)
        .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok());
    let wait = at
        .map(|at| (at - now).whole_milliseconds().max(0) as u64 + 500)
        .unwrap_or(3_600_000)
        .min(3_600_000);
    Action::requeue(Duration::from_millis(wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CertificateSpec {
        serde_json::from_value(
            json!({"secretName": "tls", "issuerRef": {"name": "ca", "kind": "Issuer"}}),
        )
        .expect("spec")
    }

    fn secret(annotations: Value) -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": "tls", "annotations": annotations},
            "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}
        }))
        .expect("secret")
    }

    fn good_annotations() -> Value {
        json!({"cert-manager.io/issuer-name": "ca", "cert-manager.io/issuer-kind": "Issuer", SPEC_HASH: "h1"})
    }

    #[test]
    fn triggers_in_cert_manager_order() {
        let now = OffsetDateTime::now_utc();
        let s = spec();
        let reason = |status: Value, secret: Option<&Secret>, hash: &str| {
            trigger(&status, secret, &s, hash, now).map(|(reason, _)| reason)
        };
        assert_eq!(
            reason(json!({}), None, "h1").as_deref(),
            Some("DoesNotExist")
        );
        let good = secret(good_annotations());
        assert_eq!(reason(json!({}), Some(&good), "h1"), None);
        assert_eq!(
            reason(json!({}), Some(&good), "h2").as_deref(),
            Some("RequestChanged")
        );
        let manual = json!({"conditions": [{"type": "Issuing", "status": "True", "reason": "ManuallyTriggered"}]});
        assert_eq!(
            reason(manual, Some(&good), "h1").as_deref(),
            Some("ManuallyTriggered")
        );
        let other = secret(
            json!({"cert-manager.io/issuer-name": "other", "cert-manager.io/issuer-kind": "Issuer", SPEC_HASH: "h1"}),
        );
        assert_eq!(
            reason(json!({}), Some(&other), "h1").as_deref(),
            Some("IncorrectIssuer")
        );
        let past = json!({"renewalTime": "2000-01-01T00:00:00Z"});
        assert_eq!(reason(past, Some(&good), "h1").as_deref(), Some("Renewing"));
        let future = json!({"renewalTime": "2999-01-01T00:00:00Z"});
        assert_eq!(reason(future, Some(&good), "h1"), None);
        let empty: Secret =
            serde_json::from_value(json!({"metadata": {"name": "tls"}})).expect("secret");
        assert_eq!(
            reason(json!({}), Some(&empty), "h1").as_deref(),
            Some("MissingData")
        );
    }

    #[test]
    fn requeue_is_bounded() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            requeue_at(None, now),
            Action::requeue(Duration::from_secs(3600))
        );
        let soon = json!(format_time(now + Duration::from_secs(10)));
        let action = requeue_at(Some(&soon), now);
        assert_ne!(action, Action::requeue(Duration::from_secs(3600)));
    }
}
