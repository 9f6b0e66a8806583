//! Run-time helpers for the executor: step outputs are only known once
//! earlier steps finished, so `${steps.ID.outputs.KEY}` in `with` and the
//! `when` conditions are resolved right before a step runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value as Json;

use super::model::StepSpec;
use super::problems::Problem;
use super::vars::{Missing, resolve_parts};
use super::{Outputs, when};

/// The step's `with` table with every `${steps.ID.outputs.KEY}` replaced by
/// the outputs of finished steps (`outputs` maps step ids to outputs; a
/// step that was skipped has no entry). A value that is exactly one
/// reference keeps the output's JSON type.
pub fn resolve_step(step: &StepSpec, outputs: &BTreeMap<String, Outputs>) -> Result<Json, Problem> {
    let mut with = step.with.clone();
    for deferred in &step.deferred {
        let value = resolve_parts(&deferred.parts, outputs).map_err(|missing| {
            let reference = |s: &str, k: &str| format!("${{steps.{s}.outputs.{k}}}");
            let (message, help) = match missing {
                Missing::Step(s) => {
                    let key = first_key(&deferred.parts, &s);
                    (
                        format!(
                            "step `{}` needs {}, but step `{s}` has no outputs (it was skipped by its `when`, or did not finish)",
                            step.id,
                            reference(&s, &key)
                        ),
                        format!("give step `{}` a condition such as `when = \"steps.{s}.outputs.{key} != null\"`", step.id),
                    )
                }
                Missing::Key(s, k) => (
                    format!("step `{}` needs {}, but step `{s}` produced no output `{k}`", step.id, reference(&s, &k)),
                    "check the outputs the plugin declares with `dbops plugins list`".to_string(),
                ),
            };
            step_problem(step, &deferred.pointer, message).with_help(help)
        })?;
        if let Some(slot) = with.pointer_mut(&deferred.pointer) {
            *slot = value;
        }
    }
    Ok(with)
}

fn first_key(parts: &[super::vars::Part], step: &str) -> String {
    parts
        .iter()
        .find_map(|p| match p {
            super::vars::Part::Output { step: s, key } if s == step => Some(key.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// A problem at a value of the step's `with` table.
fn step_problem(step: &StepSpec, pointer: &str, message: String) -> Problem {
    let location = step
        .source
        .values
        .get(pointer)
        .map_or(step.location, |s| s.value.location);
    Problem {
        location,
        ..Problem::new(
            &step.source.file,
            pointer_to_key(step.source.index, pointer),
            message,
        )
    }
}

/// `/tls/0/name` of step 2 -> `step[2].with.tls[0].name`.
pub(crate) fn pointer_to_key(index: usize, pointer: &str) -> String {
    let mut key = format!("step[{index}].with");
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            key.push_str(&format!("[{segment}]"));
        } else {
            key.push('.');
            key.push_str(&segment);
        }
    }
    key
}

/// Evaluates a `when` expression over the outputs of finished steps (see
/// [`when`] for the language). Outputs of skipped steps are `null`, which
/// is false as a condition. The problem has no file or position; use
/// [`should_run`] for a step's own condition.
pub fn evaluate_when(expr: &str, outputs: &BTreeMap<String, Outputs>) -> Result<bool, Problem> {
    let parsed = when::parse(expr).map_err(|e| {
        Problem::new(
            &PathBuf::new(),
            "when",
            format!("invalid `when` expression: {}", e.message),
        )
    })?;
    parsed.truth(outputs).map_err(|message| {
        Problem::new(
            &PathBuf::new(),
            "when",
            format!("cannot evaluate `when`: {message}"),
        )
    })
}

/// Whether a step runs: true without `when`, else its condition. Problems
/// point at the step's `when` in the file.
pub fn should_run(step: &StepSpec, outputs: &BTreeMap<String, Outputs>) -> Result<bool, Problem> {
    let Some(expr) = &step.when else {
        return Ok(true);
    };
    evaluate_when(expr, outputs).map_err(|problem| Problem {
        file: step.source.file.clone(),
        location: step.source.when.map_or(step.location, |s| s.location),
        key: format!("step[{}].when", step.source.index),
        message: format!("step `{}`: {}", step.id, problem.message),
        ..problem
    })
}
