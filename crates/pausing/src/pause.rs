//! The `pause` step: mark the target so other controllers leave it alone,
//! recording exactly what changed (see [`crate::record`]).

use dbops_plugin_sdk::kube::{Api, Patch};
use dbops_plugin_sdk::serde_json::{Value, json};
use dbops_plugin_sdk::{Context, EventType, Outputs, Problem, Step, StepError, StepResult, Target};

use crate::config::{Config, Preset, ResourceRef, resolve};
use crate::merge;
use crate::record::{
    self, ConditionsBefore, KUBEDB_CONDITION, PAUSED_BY_ANNOTATION, PauseRecord, RECORD_ANNOTATION,
};

/// The `pause` step.
pub struct Pause;

impl Step for Pause {
    type Config = Config;
    const NAME: &'static str = "pause";
    const DESCRIPTION: &'static str = "Pause reconciliation of the target (KubeDB, Strimzi, CloudNativePG, a merge patch, or a StatefulSet annotation), recording what changed";
    const OUTPUTS: &'static [(&'static str, &'static str)] = &[
        ("paused", "true when the object is (now) paused by this run"),
        ("preset", "the preset used"),
        ("object", "the paused object as kind/name"),
    ];
    const COMPENSATES: bool = true;

    fn validate(config: &Config, target: &Target) -> Vec<Problem> {
        resolve(config, target).err().into_iter().collect()
    }

    fn run(ctx: &Context<'_>, config: Config) -> StepResult<Outputs> {
        let (object_ref, preset) = resolve(&config, ctx.target())
            .map_err(|p| StepError::permanent("InvalidConfig", p.message))?;
        let api = object_api(ctx, &object_ref);
        let object = get(&api, &object_ref)?;
        let run_id = ctx.run_id().to_owned();

        match record::paused_by(&object) {
            Some(owner) if owner == run_id => {
                ctx.info(&format!(
                    "{} {} is already paused by this run",
                    object_ref.kind, object_ref.name
                ));
                if let Some(Ok(saved)) = record::record_of(&object) {
                    ctx.save_state(&saved)?;
                }
                return Ok(outputs(true, &preset, &object_ref));
            }
            Some(owner) => return Err(paused_by_other(&object_ref, &format!("dbops run {owner}"))),
            None => {}
        }
        if let Some(by) = foreign_pause(&preset, &object) {
            return Err(paused_by_other(&object_ref, &by));
        }

        let (patch, pause_record) = plan(&preset, &object_ref, &object, &run_id)?;
        if ctx.dry_run() {
            ctx.info(&format!(
                "dry run: would pause {} {} with preset {}: {}",
                object_ref.kind,
                object_ref.name,
                preset.name(),
                patch
            ));
            return Ok(outputs(false, &preset, &object_ref));
        }
        // Saved before writing: a crash after the patch still knows what to undo.
        ctx.save_state(&pause_record)?;
        api.patch(&object_ref.name, &Patch::Merge(patch))?;
        if preset == Preset::Kubedb {
            let generation = object
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let mut conditions = record::conditions(&object);
            conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some(KUBEDB_CONDITION));
            conditions.push(record::kubedb_condition(
                &run_id,
                generation,
                &record::now_rfc3339(),
            ));
            api.patch_status(
                &object_ref.name,
                &Patch::Merge(json!({ "status": { "conditions": conditions } })),
            )?;
        }
        let message = format!(
            "paused {} {} for dbops run {run_id} ({})",
            object_ref.kind,
            object_ref.name,
            preset.name()
        );
        ctx.info(&message);
        ctx.event(EventType::Normal, "Paused", &message);
        Ok(outputs(true, &preset, &object_ref))
    }

    fn compensate(ctx: &Context<'_>, config: Config) -> StepResult<()> {
        crate::resume::undo(ctx, &config, ctx.run_id()).map(|_| ())
    }
}

/// The typed-less API for the object to mark.
pub(crate) fn object_api<'h>(ctx: &Context<'h>, object: &ResourceRef) -> Api<'h, Value> {
    ctx.kube()
        .dynamic(object.api_resource(), Some(&ctx.target().namespace))
}

pub(crate) fn get(api: &Api<'_, Value>, object: &ResourceRef) -> StepResult<Value> {
    api.get_opt(&object.name)?.ok_or_else(|| {
        StepError::permanent(
            "TargetNotFound",
            format!(
                "{} {} does not exist in the target namespace; check [target] and the step's `resource`",
                object.kind, object.name
            ),
        )
    })
}

/// Who else has paused the object through the preset's own mechanism.
fn foreign_pause(preset: &Preset, object: &Value) -> Option<String> {
    match preset {
        Preset::Statefulset { .. } => None,
        Preset::Kubedb => record::foreign_kubedb_pause(object).map(|m| format!("KubeDB ({m})")),
        Preset::Patch(patch) => merge::holds(patch, object)
            .then(|| format!("someone else (the object already holds {patch})")),
    }
}

fn paused_by_other(object: &ResourceRef, by: &str) -> StepError {
    StepError::permanent(
        "PausedByAnother",
        format!(
            "{} {} is already paused by {by}; dbops does not take over or undo another pause. Wait for that operation to finish, or resume it first",
            object.kind, object.name
        ),
    )
}

/// The merge patch that pauses, and the record that undoes it.
fn plan(
    preset: &Preset,
    object_ref: &ResourceRef,
    object: &Value,
    run_id: &str,
) -> StepResult<(Value, PauseRecord)> {
    let mut patch = match preset {
        Preset::Patch(p) => p.clone(),
        Preset::Statefulset { on_delete: true } => json!({
            "spec": { "updateStrategy": { "type": "OnDelete", "rollingUpdate": null } }
        }),
        Preset::Statefulset { on_delete: false } | Preset::Kubedb => json!({}),
    };
    let ours = json!({ "metadata": { "annotations": {
        PAUSED_BY_ANNOTATION: run_id,
        RECORD_ANNOTATION: "",
    } } });
    merge::apply(&mut patch, &ours);
    let conditions = (*preset == Preset::Kubedb).then(|| {
        let list = record::conditions(object);
        ConditionsBefore {
            status_absent: object.get("status").is_none(),
            conditions_absent: object.pointer("/status/conditions").is_none(),
            previous: list
                .iter()
                .position(|c| c.get("type").and_then(Value::as_str) == Some(KUBEDB_CONDITION))
                .and_then(|i| list.get(i).map(|c| (i, c.clone()))),
        }
    });
    let pause_record = PauseRecord {
        run_id: run_id.to_owned(),
        preset: preset.name().to_owned(),
        object: object_ref.clone(),
        restore: merge::inverse(&patch, object),
        conditions,
    };
    let text = serde_json::to_string(&pause_record).map_err(|e| {
        StepError::permanent(
            "RecordUnserializable",
            format!("cannot encode the pause record: {e}"),
        )
    })?;
    merge::apply(
        &mut patch,
        &json!({ "metadata": { "annotations": { RECORD_ANNOTATION: text } } }),
    );
    Ok((patch, pause_record))
}

fn outputs(paused: bool, preset: &Preset, object: &ResourceRef) -> Outputs {
    let mut out = Outputs::new();
    out.insert("paused".into(), Value::Bool(paused));
    out.insert("preset".into(), Value::String(preset.name().into()));
    out.insert(
        "object".into(),
        Value::String(format!("{}/{}", object.kind, object.name)),
    );
    out
}
