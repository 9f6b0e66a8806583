//! The cert-manager issuer: create or update a `cert-manager.io/v1`
//! Certificate referencing an Issuer/ClusterIssuer, trigger a renewal the
//! way `cmctl renew` does (an `Issuing` condition in the status), wait by
//! watch until it is Ready with a new `status.revision`, then read the
//! Secret cert-manager wrote (the "staging" Secret, `<secret_name>-cm`).

use std::time::Duration;

use dbops_certs::summary::{CA_CRT, TLS_CRT, TLS_KEY};
use dbops_certs::{KeyAlgorithm, PrivateKey};
use dbops_plugin_sdk::kube::{Api, ApiResource, Patch};
use dbops_plugin_sdk::serde_json::{Value, json};
use dbops_plugin_sdk::{Context, StepError, StepResult};

use crate::config::{Config, IssuerConfig, IssuerKind};
use crate::issuer::{Fresh, Request};
use crate::material::certs_error;
use crate::secrets::{self, Secrets};
use crate::state::{CertificateChange, State};

/// A cert-manager issuer and the Certificate dbops manages with it.
pub struct CertManager {
    issuer: IssuerConfig,
    /// The Certificate's name.
    pub certificate: String,
    /// The Secret cert-manager writes.
    pub staging_secret: String,
    organization: Option<String>,
    wait_timeout: Duration,
    labels: Value,
}

/// The Certificate resource.
pub fn certificate_resource() -> ApiResource {
    ApiResource::new("cert-manager.io/v1", "Certificate", "certificates")
}

impl CertManager {
    /// The issuer as configured.
    pub fn new(ctx: &Context<'_>, config: &Config, issuer: &IssuerConfig) -> CertManager {
        let target = ctx.target();
        let secret_name = config.secret_name(target);
        CertManager {
            issuer: issuer.clone(),
            certificate: issuer
                .certificate_name
                .clone()
                .unwrap_or_else(|| secret_name.clone()),
            staging_secret: format!("{secret_name}-cm"),
            organization: config.certificate.organization.clone(),
            wait_timeout: config.wait_timeout.get(),
            labels: json!(Secrets::new(ctx).labels(crate::secrets::Role::Tls)),
        }
    }

    fn api<'h>(&self, ctx: &Context<'h>) -> Api<'h, Value> {
        ctx.kube()
            .dynamic(certificate_resource(), Some(&ctx.target().namespace))
    }

    /// Make the Certificate match `request`, renew when asked or needed,
    /// wait until Ready with a new revision, and read what cert-manager wrote.
    pub fn issue(
        &self,
        ctx: &Context<'_>,
        request: &Request<'_>,
        state: &mut State,
    ) -> StepResult<Fresh> {
        let api = self.api(ctx);
        let desired = self.desired_spec(request);
        let current = api.get_opt(&self.certificate)?;
        let mut span = ctx.span(
            "cert-manager.issue",
            &[("cert_manager.certificate", json!(self.certificate))],
        );
        let (previous_revision, must_renew) = match &current {
            None => {
                if state.certificate.is_none() {
                    state.certificate = Some(CertificateChange {
                        name: self.certificate.clone(),
                        previous_spec: None,
                    });
                    ctx.save_state(state)?;
                }
                let object = json!({
                    "apiVersion": "cert-manager.io/v1",
                    "kind": "Certificate",
                    "metadata": {"name": self.certificate, "namespace": ctx.target().namespace, "labels": self.labels},
                    "spec": desired,
                });
                api.create(&object).map_err(|e| {
                    StepError::from(e).context(format!("creating Certificate {}", self.certificate))
                })?;
                (0, false)
            }
            Some(object) => {
                let revision = revision(object);
                let spec = object.get("spec").cloned().unwrap_or(Value::Null);
                let differs = spec_differs(&spec, &desired);
                if differs {
                    if state.certificate.is_none() {
                        state.certificate = Some(CertificateChange {
                            name: self.certificate.clone(),
                            previous_spec: Some(spec),
                        });
                        ctx.save_state(state)?;
                    }
                    api.patch(&self.certificate, &Patch::Merge(json!({ "spec": desired })))?;
                }
                let staging_missing = Secrets::new(ctx).get(&self.staging_secret)?.is_none();
                (
                    revision,
                    request.renew || differs || staging_missing || !is_ready(object),
                )
            }
        };
        if must_renew {
            self.trigger_renewal(&api)?;
        }
        let wanted = if current.is_none() || must_renew {
            previous_revision + 1
        } else {
            previous_revision
        };
        let ready = api.wait_until(
            &self.certificate,
            move |o: Option<&Value>| {
                o.is_some_and(|o| is_ready(o) && revision(o) >= wanted && !is_issuing(o))
            },
            self.wait_timeout,
        );
        let ready = match ready {
            Ok(object) => object,
            Err(e) => {
                let detail = api
                    .get_opt(&self.certificate)
                    .ok()
                    .flatten()
                    .map(|o| conditions_summary(&o))
                    .unwrap_or_default();
                span.set("error", e.to_string());
                return Err(StepError::from(e).context(format!(
                    "Certificate {} did not become Ready with revision {wanted} ({detail}); check the issuer {} {}",
                    self.certificate,
                    kind_name(self.issuer.kind),
                    self.issuer.name
                )));
            }
        };
        span.set(
            "cert_manager.revision",
            ready.as_ref().map(revision).unwrap_or(0),
        );
        span.end();
        self.read_staging(ctx)
    }

    fn desired_spec(&self, request: &Request<'_>) -> Value {
        let (algorithm, size) = match request.algorithm {
            KeyAlgorithm::EcdsaP256 => ("ECDSA", 256),
            KeyAlgorithm::EcdsaP384 => ("ECDSA", 384),
            KeyAlgorithm::Rsa2048 => ("RSA", 2048),
            KeyAlgorithm::Rsa4096 => ("RSA", 4096),
        };
        let spec = request.spec;
        let mut value = json!({
            "secretName": self.staging_secret,
            "commonName": spec.subject.common_name,
            "dnsNames": spec.dns_names,
            "ipAddresses": spec.ip_addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "duration": dbops_plugin_sdk::duration::format(spec.validity),
            "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
            "privateKey": {
                "algorithm": algorithm,
                "size": size,
                "encoding": "PKCS8",
                "rotationPolicy": if request.keep_key { "Never" } else { "Always" },
            },
            "issuerRef": {"name": self.issuer.name, "kind": kind_name(self.issuer.kind), "group": self.issuer.group},
        });
        if let Some(o) = &self.organization {
            value["subject"] = json!({ "organizations": [o] });
        }
        value
    }

    /// Like `cmctl renew`: add `Issuing=True` (reason ManuallyTriggered) to the status.
    fn trigger_renewal(&self, api: &Api<'_, Value>) -> StepResult<()> {
        let object = api.get(&self.certificate)?;
        if is_issuing(&object) {
            return Ok(());
        }
        let mut conditions: Vec<Value> = object
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some("Issuing"));
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        conditions.push(json!({
            "type": "Issuing",
            "status": "True",
            "reason": "ManuallyTriggered",
            "message": "Certificate re-issuance manually triggered by dbops",
            "lastTransitionTime": now,
        }));
        api.patch_status(
            &self.certificate,
            &Patch::Merge(json!({ "status": { "conditions": conditions } })),
        )
        .map_err(|e| {
            StepError::from(e).context(format!(
                "triggering renewal of Certificate {}",
                self.certificate
            ))
        })?;
        Ok(())
    }

    fn read_staging(&self, ctx: &Context<'_>) -> StepResult<Fresh> {
        let what = format!("Secret {} written by cert-manager", self.staging_secret);
        let Some(secret) = Secrets::new(ctx).get(&self.staging_secret)? else {
            return Err(StepError::transient(
                "CertificateSecretMissing",
                format!("{what} does not exist yet"),
            ));
        };
        let (Some(chain), Some(key)) = (
            secrets::text(&secret, TLS_CRT),
            secrets::text(&secret, TLS_KEY),
        ) else {
            return Err(StepError::transient(
                "CertificateSecretIncomplete",
                format!("{what} lacks {TLS_CRT} or {TLS_KEY}"),
            ));
        };
        let key = PrivateKey::from_pem(&key, &what).map_err(certs_error)?;
        let chain_ders = dbops_certs::pem::certificates(&chain, &what).map_err(certs_error)?;
        let ca_ders = match secrets::text(&secret, CA_CRT) {
            Some(ca) => dbops_certs::pem::certificates(&ca, &what).map_err(certs_error)?,
            None => Vec::new(),
        };
        let Some(ca_der) = ca_ders
            .first()
            .or(chain_ders.last().filter(|_| chain_ders.len() > 1))
            .cloned()
        else {
            return Err(StepError::permanent(
                "IssuerCaUnknown",
                format!("{what} has no {CA_CRT} and no chain: cannot tell which CA to trust"),
            ));
        };
        let chain_pem = if chain_ders.contains(&ca_der) {
            chain
        } else {
            format!(
                "{chain}{}",
                dbops_certs::pem::encode(dbops_certs::pem::CERTIFICATE, &ca_der)
            )
        };
        Ok(Fresh {
            chain_pem,
            key,
            ca_der,
        })
    }

    /// The issuer's CA certificate, from `issuer.ca_secret` or the CA
    /// issuer's `spec.ca.secretName` (for trust bundles before issuing).
    pub fn ca_der(&self, ctx: &Context<'_>) -> StepResult<Vec<u8>> {
        let cluster = self.issuer.kind == IssuerKind::ClusterIssuer;
        let namespace = if cluster {
            self.issuer.cluster_resource_namespace.clone()
        } else {
            ctx.target().namespace.clone()
        };
        let secret_name = match &self.issuer.ca_secret {
            Some(name) => name.clone(),
            None => {
                let (plural, ns) = if cluster {
                    ("clusterissuers", None)
                } else {
                    ("issuers", Some(namespace.as_str()))
                };
                let resource = ApiResource::new(
                    &format!("{}/v1", self.issuer.group),
                    kind_name(self.issuer.kind),
                    plural,
                );
                let issuer = ctx.kube().dynamic(resource, ns).get(&self.issuer.name)?;
                issuer
                    .pointer("/spec/ca/secretName")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| StepError::permanent(
                        "IssuerCaUnknown",
                        format!(
                            "{} {} is not a CA issuer, so its CA certificate is unknown; set issuer.ca_secret to a Secret holding it",
                            kind_name(self.issuer.kind), self.issuer.name
                        ),
                    ))?
            }
        };
        let api = ctx
            .kube()
            .api::<dbops_plugin_sdk::k8s_openapi::api::core::v1::Secret>(Some(&namespace));
        let what = format!(
            "CA Secret {namespace}/{secret_name} of {} {}",
            kind_name(self.issuer.kind),
            self.issuer.name
        );
        let secret = api
            .get(&secret_name)
            .map_err(|e| StepError::from(e).context(&what))?;
        let text = secrets::text(&secret, CA_CRT)
            .or_else(|| secrets::text(&secret, TLS_CRT))
            .unwrap_or_default();
        let certs = dbops_certs::pem::certificates(&text, &what).map_err(certs_error)?;
        certs.into_iter().next().ok_or_else(|| {
            StepError::permanent(
                "IssuerCaUnknown",
                format!("{what} holds no certificate in {CA_CRT} or {TLS_CRT}"),
            )
        })
    }
}

/// `Issuer` or `ClusterIssuer`.
fn kind_name(kind: IssuerKind) -> &'static str {
    match kind {
        IssuerKind::ClusterIssuer => "ClusterIssuer",
        IssuerKind::Issuer | IssuerKind::Ca => "Issuer",
    }
}

fn spec_differs(current: &Value, desired: &Value) -> bool {
    desired
        .as_object()
        .is_some_and(|d| d.iter().any(|(k, v)| current.get(k) != Some(v)))
}

fn condition_true(object: &Value, kind: &str) -> bool {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(kind)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn is_ready(object: &Value) -> bool {
    condition_true(object, "Ready")
}

fn is_issuing(object: &Value) -> bool {
    condition_true(object, "Issuing")
}

fn revision(object: &Value) -> u64 {
    object
        .pointer("/status/revision")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn conditions_summary(object: &Value) -> String {
    let conditions = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if conditions.is_empty() {
        return "no status conditions yet".into();
    }
    conditions
        .iter()
        .map(|c| {
            let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
            format!(
                "{}={} {}: {}",
                field("type"),
                field("status"),
                field("reason"),
                field("message")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
