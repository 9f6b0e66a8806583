//! `add` and `rotate`: issue a certificate into the output Secret.
//!
//! `add` issues when the Secret is absent or its certificate does not fit
//! (other CA, missing names, expired); `rotate` issues when the certificate
//! expires within `renew_before`, names too little, or `force` is set, and
//! otherwise writes nothing and reports `changed = false`.

use dbops_certs::{LeafSpec, TrustBundle};
use dbops_plugin_sdk::serde_json::json;
use dbops_plugin_sdk::{EventType, Outputs, StepError, StepResult};
use time::OffsetDateTime;

use crate::config::{Action, RotationPolicy};
use crate::issuer::{Issuer, Request};
use crate::job::{Current, Job};
use crate::material::certs_error;
use crate::sans;

/// Run `add` or `rotate`.
pub fn run(job: &mut Job<'_, '_>, spec: &LeafSpec) -> StepResult<Outputs> {
    let ctx = job.ctx;
    let Some(issuer_config) = job.config.issuer.clone() else {
        return Err(StepError::permanent(
            "InvalidConfig",
            "an issuer is required",
        ));
    };
    let current = job.current()?;
    let issuer = Issuer::resolve(
        ctx,
        job.config,
        &issuer_config,
        &job.secrets,
        &mut job.state,
    )?;
    let resumed = job.state.touched(&job.secret_name);

    let reason = match (&current, job.config.action) {
        (None, Action::Rotate) => {
            return Err(StepError::permanent(
                "NothingToRotate",
                format!(
                    "Secret {} does not exist, so there is nothing to rotate; use action \"add\"",
                    job.secret_name
                ),
            ));
        }
        (None, _) => Some("the Secret does not exist".to_owned()),
        (Some(current), action) => why_issue(job, current, spec, &issuer, action)?,
    };
    let Some(reason) = reason else {
        let info = current.as_ref().map(|c| &c.info);
        if let Some(info) = info {
            let message = format!(
                "certificate serial {} in Secret {} is valid until {} and fits; nothing to do",
                info.serial_hex,
                job.secret_name,
                rfc3339(info.not_after)
            );
            ctx.info(&message);
            if !resumed {
                ctx.event(EventType::Normal, "CertificateNotDue", &message);
            }
        }
        let outputs = job.outputs(resumed, info);
        return job.finish(outputs);
    };

    if ctx.dry_run() {
        ctx.info(&format!(
            "dry run: would issue a certificate from {} into Secret {}: {reason}",
            issuer.kind_name(),
            job.secret_name
        ));
        return Ok(job.outputs(true, current.as_ref().map(|c| &c.info)));
    }
    let keep_key = job.config.certificate.rotation_policy == RotationPolicy::Never;
    let reuse_key = match (&current, keep_key) {
        (Some(c), true) => c
            .key
            .as_ref()
            .filter(|k| k.algorithm() == job.config.certificate.key_algorithm.into())
            .map(|k| dbops_certs::PrivateKey::from_pkcs8_der(k.pkcs8_der(), "current key"))
            .transpose()
            .map_err(certs_error)?,
        _ => None,
    };
    let mut span = ctx.span(
        "issue-cert.issue",
        &[
            ("issuer.kind", json!(issuer.kind_name())),
            (
                "key.algorithm",
                json!(job.config.certificate.key_algorithm_name()),
            ),
            ("reason", json!(reason)),
        ],
    );
    let request = Request {
        spec,
        algorithm: job.config.certificate.key_algorithm.into(),
        reuse_key,
        keep_key,
        renew: current.is_some(),
    };
    let fresh = issuer.issue(ctx, request, &mut job.state)?;
    let mut bundle = match (&current, job.config.action) {
        (Some(c), Action::Rotate) => c.bundle.clone(),
        _ => TrustBundle::new(),
    };
    bundle.add_der(fresh.ca_der.clone());
    let existing = current.as_ref().map(|c| &c.secret);
    job.write_output(existing, &fresh.chain_pem, &fresh.key, &bundle)?;
    let info = dbops_certs::inspect::inspect_pem(&fresh.chain_pem, "issued certificate")
        .map_err(certs_error)?;
    span.set("serial", info.serial_hex.clone());
    span.end();
    let message = format!(
        "issued certificate serial {} (valid until {}) into Secret {}: {reason}",
        info.serial_hex,
        rfc3339(info.not_after),
        job.secret_name
    );
    ctx.info(&message);
    ctx.event(EventType::Normal, "CertificateIssued", &message);
    let outputs = job.outputs(true, Some(&info));
    job.finish(outputs)
}

/// Why the current certificate must be replaced, or `None` when it fits.
fn why_issue(
    job: &Job<'_, '_>,
    current: &Current,
    spec: &LeafSpec,
    issuer: &Issuer,
    action: Action,
) -> StepResult<Option<String>> {
    let config = job.config;
    let now = OffsetDateTime::now_utc();
    if config.force && action == Action::Rotate {
        return Ok(Some("force = true".into()));
    }
    let missing = sans::missing_names(spec, &current.info);
    if !missing.is_empty() {
        return Ok(Some(format!(
            "the certificate does not name {}",
            missing.join(", ")
        )));
    }
    if current.key.is_none() {
        return Ok(Some("the Secret has no usable tls.key".into()));
    }
    if current.info.not_after <= now {
        return Ok(Some("the certificate has expired".into()));
    }
    if let Issuer::BuiltIn(_) = issuer {
        let ca = issuer.ca_der(job.ctx)?;
        if !dbops_certs::inspect::is_signed_by(&current.leaf_der, &ca).map_err(certs_error)? {
            if action == Action::Rotate {
                return Err(StepError::permanent(
                    "IssuerChanged",
                    format!(
                        "the certificate in Secret {} was not issued by CA Secret {}; switching CA without downtime needs action \"update-issuer\"",
                        job.secret_name,
                        config
                            .issuer
                            .as_ref()
                            .map(|i| i.name.as_str())
                            .unwrap_or_default()
                    ),
                ));
            }
            return Ok(Some("the certificate was issued by another CA".into()));
        }
    }
    if action == Action::Rotate {
        let left = current.info.remaining(now);
        let window =
            time::Duration::try_from(config.renew_before.get()).unwrap_or(time::Duration::MAX);
        if left <= window {
            return Ok(Some(format!(
                "it expires in {}h, within renew_before {}",
                left.whole_hours(),
                dbops_plugin_sdk::duration::format(config.renew_before.get())
            )));
        }
    }
    Ok(None)
}

/// RFC 3339 text of a time.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
