//! Compensation (`on_failure = "rollback"`): put back exactly what the
//! step changed, newest change first: Secrets it wrote or deleted are
//! restored from their backups, Secrets it created are deleted, the
//! Certificate gets its previous spec back (or is deleted if created).

use dbops_plugin_sdk::kube::{DeleteParams, Patch};
use dbops_plugin_sdk::serde_json::json;
use dbops_plugin_sdk::{Context, EventType, StepResult};

use crate::certmanager::certificate_resource;
use crate::secrets::Secrets;
use crate::state::State;

/// Undo the step.
pub fn run(ctx: &Context<'_>) -> StepResult<()> {
    let Some(state) = ctx.state::<State>()? else {
        ctx.info("issue-cert changed nothing in this run; nothing to restore");
        return Ok(());
    };
    let secrets = Secrets::new(ctx);
    if let Some(change) = &state.certificate {
        let api = ctx
            .kube()
            .dynamic(certificate_resource(), Some(&ctx.target().namespace));
        match &change.previous_spec {
            Some(spec) => {
                if api.get_opt(&change.name)?.is_some() {
                    api.patch(&change.name, &Patch::Merge(json!({ "spec": spec })))?;
                } else {
                    api.create(&json!({
                        "apiVersion": "cert-manager.io/v1",
                        "kind": "Certificate",
                        "metadata": {"name": change.name, "namespace": ctx.target().namespace,
                                     "labels": secrets.labels(crate::secrets::Role::Tls)},
                        "spec": spec,
                    }))?;
                }
            }
            None => {
                api.delete(&change.name, &DeleteParams::default())?;
            }
        }
    }
    let mut restored = Vec::new();
    for touched in state.touched.iter().rev() {
        match &touched.backup {
            Some(backup) => secrets.restore(&touched.secret, backup)?,
            None => {
                secrets.delete_if_ours(&touched.secret)?;
            }
        }
        restored.push(touched.secret.clone());
    }
    let message = format!(
        "restored {}",
        if restored.is_empty() {
            "nothing".to_owned()
        } else {
            restored.join(", ")
        }
    );
    ctx.info(&message);
    ctx.event(EventType::Normal, "CertificateRestored", &message);
    Ok(())
}
