//! The `resume` step: restore exactly what this run's pause changed, read
//! from the record on the paused object. Idempotent; a pause by another
//! run is left alone. Meant to run with `always = true`.

use dbops_plugin_sdk::kube::Patch;
use dbops_plugin_sdk::serde_json::{Value, json};
use dbops_plugin_sdk::{Context, EventType, Outputs, Problem, Step, StepError, StepResult, Target};

use crate::config::{Config, resolve};
use crate::pause::{get, object_api};
use crate::record::{self, KUBEDB_CONDITION, PauseRecord};

/// The `resume` step.
pub struct Resume;

impl Step for Resume {
    type Config = Config;
    const NAME: &'static str = "resume";
    const DESCRIPTION: &'static str = "Resume reconciliation paused by this run's pause step, restoring the recorded previous state exactly";
    const OUTPUTS: &'static [(&'static str, &'static str)] = &[
        ("resumed", "true when this step removed the pause"),
        ("object", "the object as kind/name"),
    ];

    fn validate(config: &Config, target: &Target) -> Vec<Problem> {
        resolve(config, target).err().into_iter().collect()
    }

    fn run(ctx: &Context<'_>, config: Config) -> StepResult<Outputs> {
        let owner = config
            .run_id
            .clone()
            .unwrap_or_else(|| ctx.run_id().to_owned());
        let (resumed, object) = undo(ctx, &config, &owner)?;
        let mut out = Outputs::new();
        out.insert("resumed".into(), Value::Bool(resumed));
        out.insert("object".into(), Value::String(object));
        Ok(out)
    }
}

/// Undo the pause made by run `owner`; returns whether anything was undone
/// and the object as kind/name. Shared with `pause`'s compensation.
pub(crate) fn undo(ctx: &Context<'_>, config: &Config, owner: &str) -> StepResult<(bool, String)> {
    let (object_ref, _) = resolve(config, ctx.target())
        .map_err(|p| StepError::permanent("InvalidConfig", p.message))?;
    let shown = format!("{}/{}", object_ref.kind, object_ref.name);
    let api = object_api(ctx, &object_ref);
    let object = match api.get_opt(&object_ref.name)? {
        Some(o) => o,
        None => {
            ctx.warn(&format!("{shown} no longer exists; nothing to resume"));
            return Ok((false, shown));
        }
    };
    match record::paused_by(&object) {
        None => {
            ctx.info(&format!(
                "{shown} is not paused by dbops; nothing to resume"
            ));
            return Ok((false, shown));
        }
        Some(other) if other != owner => {
            let message = format!(
                "{shown} is paused by dbops run {other}, not {owner}; leaving that pause in place"
            );
            ctx.warn(&message);
            ctx.event(EventType::Warning, "ResumeSkipped", &message);
            return Ok((false, shown));
        }
        Some(_) => {}
    }
    let pause_record = get_record(&object, &shown)?;
    if ctx.dry_run() {
        ctx.info(&format!(
            "dry run: would resume {shown} with {}",
            pause_record.restore
        ));
        return Ok((false, shown));
    }
    // Status first: the paused-by annotation, removed last, keeps a crashed
    // resume resumable.
    if let Some(before) = &pause_record.conditions {
        let current = get(&api, &object_ref)?;
        let message = record::condition_message(owner);
        let mut conditions = record::conditions(&current);
        conditions.retain(|c| {
            !(c.get("type").and_then(Value::as_str) == Some(KUBEDB_CONDITION)
                && c.get("message").and_then(Value::as_str) == Some(message.as_str()))
        });
        if let Some((index, previous)) = &before.previous {
            conditions.insert((*index).min(conditions.len()), previous.clone());
        }
        let status = if conditions.is_empty() && before.conditions_absent {
            if before.status_absent && current.get("status").is_some_and(only_conditions) {
                json!({ "status": null })
            } else {
                json!({ "status": { "conditions": null } })
            }
        } else {
            json!({ "status": { "conditions": conditions } })
        };
        api.patch_status(&object_ref.name, &Patch::Merge(status))?;
    }
    api.patch(
        &object_ref.name,
        &Patch::Merge(pause_record.restore.clone()),
    )?;
    let message = format!("resumed {shown} paused by dbops run {owner}");
    ctx.info(&message);
    ctx.event(EventType::Normal, "Resumed", &message);
    Ok((true, shown))
}

fn only_conditions(status: &Value) -> bool {
    status
        .as_object()
        .is_some_and(|m| m.keys().all(|k| k == "conditions"))
}

fn get_record(object: &Value, shown: &str) -> StepResult<PauseRecord> {
    match record::record_of(object) {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(StepError::permanent(
            "PauseRecordCorrupt",
            format!(
                "{shown}: the annotation {} does not parse ({e}); restore the object by hand and remove the dbops.io/ annotations",
                record::RECORD_ANNOTATION
            ),
        )),
        None => Err(StepError::permanent(
            "PauseRecordMissing",
            format!(
                "{shown} is marked paused by dbops but has no {} annotation; restore it by hand and remove {}",
                record::RECORD_ANNOTATION,
                record::PAUSED_BY_ANNOTATION
            ),
        )),
    }
}
