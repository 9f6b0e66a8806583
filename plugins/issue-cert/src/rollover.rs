//! `update-issuer`: move to another CA without downtime, in three phases,
//! each followed by a rolling restart in the pipeline:
//!
//! 1. `trust-both`: `ca.crt` and the truststores hold the old and new CA;
//!    the certificate is unchanged.
//! 2. `issue`: a new certificate from the new issuer; both CAs trusted.
//! 3. `drop-old`: `ca.crt` and the truststores hold only the new CA.
//!
//! The phase comes from `with.phase`, or is the next one the cluster needs
//! (read from the Secret: is the new CA trusted? does it sign the
//! certificate? is anything else still trusted?). A phase that is already
//! done writes nothing (`changed = false`), so a restarted pipeline
//! continues where it stopped. A retry of the same step after a crash
//! finishes the phase its first attempt chose (kept in durable state).

use dbops_certs::{LeafSpec, TrustBundle};
use dbops_plugin_sdk::serde_json::{Value, json};
use dbops_plugin_sdk::{EventType, Outputs, StepError, StepResult};

use crate::add::rfc3339;
use crate::config::{Phase, RotationPolicy};
use crate::issuer::{Issuer, Request};
use crate::job::{Current, Job};
use crate::material::certs_error;

/// Where the switch stands, read from the output Secret.
struct Progress {
    /// The new CA is in `ca.crt`.
    trusted: bool,
    /// The certificate is signed by the new CA.
    issued: bool,
    /// `ca.crt` holds only the new CA.
    only_new: bool,
}

impl Progress {
    fn next(&self) -> Option<Phase> {
        if !self.trusted {
            Some(Phase::TrustBoth)
        } else if !self.issued {
            Some(Phase::Issue)
        } else if !self.only_new {
            Some(Phase::DropOld)
        } else {
            None
        }
    }

    fn done(&self, phase: Phase) -> bool {
        match phase {
            Phase::TrustBoth => self.trusted,
            Phase::Issue => self.issued,
            Phase::DropOld => self.only_new,
        }
    }
}

/// Run one phase of `update-issuer`.
pub fn run(job: &mut Job<'_, '_>, spec: &LeafSpec) -> StepResult<Outputs> {
    let ctx = job.ctx;
    let Some(issuer_config) = job.config.issuer.clone() else {
        return Err(StepError::permanent(
            "InvalidConfig",
            "an issuer is required",
        ));
    };
    let Some(current) = job.current()? else {
        return Err(StepError::permanent(
            "NothingToUpdate",
            format!(
                "Secret {} does not exist; use action \"add\" to issue the first certificate",
                job.secret_name
            ),
        ));
    };
    let issuer = Issuer::resolve(
        ctx,
        job.config,
        &issuer_config,
        &job.secrets,
        &mut job.state,
    )?;
    let new_ca = issuer.ca_der(ctx)?;
    let progress = progress(&current, &new_ca)?;

    let phase = match (job.state.phase, job.config.phase) {
        (Some(saved), _) => Some(saved),
        (None, Some(asked)) => {
            check_order(asked, &progress, &job.secret_name)?;
            Some(asked)
        }
        (None, None) => progress.next(),
    };
    let Some(phase) = phase else {
        ctx.info(&format!(
            "Secret {} already trusts and uses only the new CA; nothing to do",
            job.secret_name
        ));
        return finish(job, false, &current, None);
    };
    if ctx.dry_run() {
        let done = progress.done(phase);
        ctx.info(&format!(
            "dry run: update-issuer phase {} for Secret {}: {}",
            phase.name(),
            job.secret_name,
            if done { "already done" } else { "would run" }
        ));
        let mut outputs = job.outputs(!done, Some(&current.info));
        outputs.insert("phase".into(), Value::String(phase.name().to_owned()));
        return Ok(outputs);
    }
    if job.state.phase.is_none() {
        job.state.phase = Some(phase);
        ctx.save_state(&job.state)?;
    }
    if progress.done(phase) {
        let resumed = job.state.touched(&job.secret_name);
        ctx.info(&format!(
            "update-issuer phase {} is already done for Secret {}",
            phase.name(),
            job.secret_name
        ));
        return finish(job, resumed, &current, Some(phase));
    }

    let span = ctx.span(
        "issue-cert.update-issuer",
        &[
            ("phase", json!(phase.name())),
            ("issuer.kind", json!(issuer.kind_name())),
        ],
    );
    let Some(current_key) = current.key.as_ref() else {
        return Err(StepError::permanent(
            "TlsSecretInvalid",
            format!(
                "Secret {} has no usable tls.key; re-add TLS with action \"add\"",
                job.secret_name
            ),
        ));
    };
    let existing = Some(&current.secret);
    let message = match phase {
        Phase::TrustBoth => {
            let mut bundle = current.bundle.clone();
            bundle.add_der(new_ca.clone());
            job.write_output(existing, &current.chain_pem, current_key, &bundle)?;
            format!(
                "Secret {} now trusts the old and the new CA ({} CAs)",
                job.secret_name,
                bundle.len()
            )
        }
        Phase::Issue => {
            let keep_key = job.config.certificate.rotation_policy == RotationPolicy::Never;
            let reuse_key = if keep_key {
                Some(
                    dbops_certs::PrivateKey::from_pkcs8_der(current_key.pkcs8_der(), "current key")
                        .map_err(certs_error)?,
                )
            } else {
                None
            };
            let request = Request {
                spec,
                algorithm: job.config.certificate.key_algorithm.into(),
                reuse_key,
                keep_key,
                renew: true,
            };
            let fresh = issuer.issue(ctx, request, &mut job.state)?;
            let mut bundle = current.bundle.clone();
            bundle.add_der(fresh.ca_der.clone());
            job.write_output(existing, &fresh.chain_pem, &fresh.key, &bundle)?;
            let info = dbops_certs::inspect::inspect_pem(&fresh.chain_pem, "issued certificate")
                .map_err(certs_error)?;
            format!(
                "issued certificate serial {} (valid until {}) from the new issuer into Secret {}",
                info.serial_hex,
                rfc3339(info.not_after),
                job.secret_name
            )
        }
        Phase::DropOld => {
            let mut bundle = TrustBundle::new();
            bundle.add_der(new_ca.clone());
            job.write_output(existing, &current.chain_pem, current_key, &bundle)?;
            format!("Secret {} now trusts only the new CA", job.secret_name)
        }
    };
    span.end();
    ctx.info(&message);
    ctx.event(
        EventType::Normal,
        "IssuerUpdatePhaseDone",
        &format!("phase {}: {message}", phase.name()),
    );
    let Some(after) = job.current()? else {
        return Err(StepError::transient(
            "TlsSecretMissing",
            format!("Secret {} vanished after writing it", job.secret_name),
        ));
    };
    finish(job, true, &after, Some(phase))
}

fn progress(current: &Current, new_ca: &[u8]) -> StepResult<Progress> {
    Ok(Progress {
        trusted: current.bundle.contains_der(new_ca),
        issued: dbops_certs::inspect::is_signed_by(&current.leaf_der, new_ca)
            .map_err(certs_error)?,
        only_new: current.bundle.len() == 1 && current.bundle.contains_der(new_ca),
    })
}

/// A phase asked for out of order would break trust between members.
fn check_order(asked: Phase, progress: &Progress, secret: &str) -> StepResult<()> {
    let problem = match asked {
        Phase::Issue if !progress.trusted => {
            Some("phase \"trust-both\" has not run: members do not trust the new CA yet")
        }
        Phase::DropOld if !progress.issued => {
            Some("phase \"issue\" has not run: the certificate still comes from the old CA")
        }
        _ => None,
    };
    match problem {
        Some(problem) => Err(StepError::permanent(
            "PhaseOutOfOrder",
            format!(
                "update-issuer phase {} for Secret {secret}: {problem}; run the phases in order",
                asked.name()
            ),
        )),
        None => Ok(()),
    }
}

fn finish(
    job: &mut Job<'_, '_>,
    changed: bool,
    current: &Current,
    phase: Option<Phase>,
) -> StepResult<Outputs> {
    let mut outputs = job.outputs(changed, Some(&current.info));
    let name = |p: Option<Phase>| Value::String(p.map(Phase::name).unwrap_or("done").to_owned());
    outputs.insert("phase".into(), name(phase));
    let next = match phase {
        Some(p) => p.next(),
        None => None,
    };
    outputs.insert("next_phase".into(), name(next));
    job.finish(outputs)
}
