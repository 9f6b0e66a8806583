//! `remove`: delete what `add` created, and only that: the output Secret
//! and password Secret when labeled as created by dbops for this target,
//! the cert-manager Certificate dbops created and its Secret, the backups of
//! earlier runs, and the built-in CA only with `delete_ca = true`. Refuses
//! while the workload still mounts the Secret (remove the TLS settings and
//! restart first), unless `force = true`. Everything deleted is backed up
//! for this run, so compensation restores it.

use dbops_plugin_sdk::k8s_openapi::api::core::v1::Secret;
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
    let victims = plan(job)?;
    let names: Vec<String> = victims.iter().map(Victim::describe).collect();
    if ctx.dry_run() {
        ctx.info(&format!(
            "dry run: would delete {}",
            if names.is_empty() {
                "nothing".into()
            } else {
                names.join(", ")
            }
        ));
        let mut outputs = job.outputs(!names.is_empty(), None);
        outputs.insert("deleted".into(), Value::String(names.join(",")));
        return Ok(outputs);
    }
    for victim in victims {
        match victim {
            Victim::Certificate(name, spec) => {
                if job.state.certificate.is_none() {
                    job.state.certificate = Some(CertificateChange {
                        name: name.clone(),
                        previous_spec: Some(spec),
                    });
                    ctx.save_state(&job.state)?;
                }
                ctx.kube()
                    .dynamic(certificate_resource(), Some(&target.namespace))
                    .delete(&name, &DeleteParams::default())?;
            }
            Victim::Secret(name, secret) => {
                job.state
                    .before_write(ctx, &job.secrets, &name, Some(&secret))?;
                job.secrets.api_delete(&name)?;
            }
            Victim::Backup(name) => {
                job.secrets.api_delete(&name)?;
            }
        }
    }

    let resumed = !job.state.touched.is_empty();
    let changed = !names.is_empty() || resumed;
    let message = if names.is_empty() {
        format!("nothing to remove for Secret {}", job.secret_name)
    } else {
        format!("removed {}", names.join(", "))
    };
    ctx.info(&message);
    if !names.is_empty() {
        ctx.event(EventType::Normal, "TlsRemoved", &message);
    }
    let mut outputs = job.outputs(changed, None);
    outputs.insert("deleted".into(), Value::String(names.join(",")));
    job.finish(outputs)
}

/// Something `remove` deletes.
enum Victim {
    /// A Certificate dbops created, with its spec (restored by compensation).
    Certificate(String, Value),
    /// A Secret, backed up before deletion.
    Secret(String, Box<Secret>),
    /// An earlier run's backup (deleted without a copy).
    Backup(String),
}

impl Victim {
    fn describe(&self) -> String {
        match self {
            Victim::Certificate(name, _) => format!("Certificate {name}"),
            Victim::Secret(name, _) | Victim::Backup(name) => format!("Secret {name}"),
        }
    }
}

/// What to delete, in order (reads only). The Certificate comes first, so
/// cert-manager does not re-create its Secret.
fn plan(job: &Job<'_, '_>) -> StepResult<Vec<Victim>> {
    let ctx = job.ctx;
    let target = ctx.target();
    let mut victims = Vec::new();
    let certificate = job
        .config
        .issuer
        .as_ref()
        .and_then(|i| i.certificate_name.clone())
        .unwrap_or_else(|| job.secret_name.clone());
    let certificates = ctx
        .kube()
        .dynamic(certificate_resource(), Some(&target.namespace));
    let label = format!("/metadata/labels/{}", secrets::TARGET.replace('/', "~1"));
    if let Some(object) = certificates.get_opt(&certificate).or_else(absent_api)?
        && object.pointer(&label).and_then(Value::as_str)
            == Some(label_value(&target.name).as_str())
    {
        victims.push(Victim::Certificate(
            certificate,
            object.get("spec").cloned().unwrap_or(Value::Null),
        ));
    }
    let ours_certificate = job.state.certificate.is_some() || !victims.is_empty();

    let staging = format!("{}-cm", job.secret_name);
    let mut candidates = vec![
        job.secret_name.clone(),
        job.password_secret.clone(),
        staging.clone(),
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
        if job.secrets.is_ours(&secret) || (name == staging && ours_certificate) {
            victims.push(Victim::Secret(name, Box::new(secret)));
        } else if name == job.secret_name {
            ctx.warn(&format!(
                "Secret {name} was not created by dbops for this target; leaving it"
            ));
        }
    }
    let this_run: Vec<&str> = job
        .state
        .touched
        .iter()
        .filter_map(|t| t.backup.as_deref())
        .collect();
    for backup in job.secrets.backups_of(&job.secret_name)? {
        let name = backup.metadata.name.unwrap_or_default();
        let made_now = this_run.contains(&name.as_str())
            || victims.iter().any(|v| matches!(v, Victim::Secret(s, _) if secrets::backup_name(s, ctx.run_id(), ctx.step_id()) == name));
        if !made_now {
            victims.push(Victim::Backup(name));
        }
    }
    Ok(victims)
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
