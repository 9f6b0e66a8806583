//! `remove`: delete what `add` created, and only that: the output Secret
//! and password Secret when labeled as created by dbops for this target,
//! the cert-manager Certificate dbops created and its Secret, the backups of
//! earlier runs, and the built-in CA only with `delete_ca = true`. Refuses
//! while the workload still mounts the Secret (remove the TLS settings and
//! restart first), unless `force = true`. Everything deleted is backed up
//! for this run, so compensation restores it.

use dbops_plugin_sdk::kube::DeleteParams;
use dbops_plugin_sdk::serde_json::Value;
use dbops_plugin_sdk::{EventType, Outputs, StepError, StepResult};

use crate::certmanager::certificate_resource;
use crate::config::IssuerKind;
use crate::job::Job;
use crate::secrets::{self, label_value};
use crate::state::CertificateChange;

/// Run `remove`.
pub fn run(job: &mut Job<'_, '_>) -> StepResult<Outputs> {
    let ctx = job.ctx;
    let target = ctx.target().clone();
    if !job.config.force {
        let workload =
            dbops_probes::cluster::workload_api(ctx, &target).get(&target.workload.name)?;
        for name in [&job.secret_name, &job.password_secret] {
            if mounts(&workload, name) {
                return Err(StepError::permanent(
                    "SecretStillMounted",
                    format!(
                        "{} {} still uses Secret {name}; remove the TLS settings (patch-config) and restart the members first, or set force = true",
                        target.workload.kind, target.workload.name
                    ),
                ));
            }
        }
    }
    let mut deleted = Vec::new();

    // The cert-manager Certificate first, so cert-manager does not re-create its Secret.
    let certificate = job
        .config
        .issuer
        .as_ref()
        .and_then(|i| i.certificate_name.clone())
        .unwrap_or_else(|| job.secret_name.clone());
    let certificates = ctx
        .kube()
        .dynamic(certificate_resource(), Some(&target.namespace));
    if let Some(object) = certificates.get_opt(&certificate).or_else(absent_api)?
        && object
            .pointer(&format!(
                "/metadata/labels/{}",
                secrets::TARGET.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            == Some(label_value(&target.name).as_str())
    {
        if job.state.certificate.is_none() {
            job.state.certificate = Some(CertificateChange {
                name: certificate.clone(),
                previous_spec: object.get("spec").cloned(),
            });
            ctx.save_state(&job.state)?;
        }
        certificates.delete(&certificate, &DeleteParams::default())?;
        deleted.push(format!("Certificate {certificate}"));
    }

    let mut candidates = vec![
        job.secret_name.clone(),
        job.password_secret.clone(),
        format!("{}-cm", job.secret_name),
    ];
    if let Some(issuer) = job
        .config
        .issuer
        .as_ref()
        .filter(|i| job.config.delete_ca && i.kind == IssuerKind::Ca)
    {
        candidates.push(issuer.name.clone());
    }
    for name in candidates {
        let Some(secret) = job.secrets.get(&name)? else {
            continue;
        };
        let staging = name.ends_with("-cm") && deleted.iter().any(|d| d.starts_with("Certificate"));
        if !job.secrets.is_ours(&secret) && !staging {
            if name == job.secret_name {
                ctx.warn(&format!(
                    "Secret {name} was not created by dbops for this target; leaving it"
                ));
            }
            continue;
        }
        job.state
            .before_write(ctx, &job.secrets, &name, Some(&secret))?;
        job.secrets.api_delete(&name)?;
        deleted.push(format!("Secret {name}"));
    }
    let own_backup = job
        .state
        .backup_of(&job.secret_name)
        .map(str::to_owned)
        .unwrap_or_default();
    for backup in job.secrets.backups_of(&job.secret_name)? {
        let name = backup.metadata.name.unwrap_or_default();
        if name != own_backup
            && job
                .state
                .touched
                .iter()
                .all(|t| t.backup.as_deref() != Some(name.as_str()))
        {
            job.secrets.api_delete(&name)?;
            deleted.push(format!("Secret {name}"));
        }
    }

    let resumed = !job.state.touched.is_empty();
    let changed = !deleted.is_empty() || resumed;
    let message = if deleted.is_empty() {
        format!("nothing to remove for Secret {}", job.secret_name)
    } else {
        format!("removed {}", deleted.join(", "))
    };
    ctx.info(&message);
    if !deleted.is_empty() {
        ctx.event(EventType::Normal, "TlsRemoved", &message);
    }
    let mut outputs = job.outputs(changed, None);
    outputs.insert("deleted".into(), Value::String(deleted.join(",")));
    job.finish(outputs)
}

/// Whether the pod template mounts Secret `name` (volume, projected
/// volume) or reads it in an environment variable.
fn mounts(workload: &Value, name: &str) -> bool {
    let Some(spec) = workload.pointer("/spec/template/spec") else {
        return false;
    };
    let named = |v: Option<&Value>| v.and_then(Value::as_str) == Some(name);
    let volumes = spec
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let in_volumes = volumes.iter().any(|v| {
        named(v.pointer("/secret/secretName"))
            || v.pointer("/projected/sources")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|src| named(src.pointer("/secret/name"))))
    });
    let in_env = ["containers", "initContainers"].iter().any(|list| {
        spec.get(*list).and_then(Value::as_array).is_some_and(|cs| {
            cs.iter().any(|c| {
                let env = c
                    .get("env")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let env_from = c
                    .get("envFrom")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                env.iter()
                    .any(|e| named(e.pointer("/valueFrom/secretKeyRef/name")))
                    || env_from.iter().any(|e| named(e.pointer("/secretRef/name")))
            })
        })
    });
    in_volumes || in_env
}

/// A missing cert-manager API (no CRD) means there is no Certificate.
fn absent_api(
    e: dbops_plugin_sdk::kube::KubeError,
) -> Result<Option<Value>, dbops_plugin_sdk::kube::KubeError> {
    if e.is_not_found() { Ok(None) } else { Err(e) }
}
