//! An example dbops step plugin, small enough to read in one go.
//!
//! `uses = "example-annotate"` sets one annotation on the target's workload
//! (StatefulSet) and, on rollback, restores the previous value. It shows
//! every part of the SDK a real plugin needs:
//! - a `with` table as a serde struct (unknown keys rejected, doc comments
//!   become the JSON Schema descriptions),
//! - validation without the cluster,
//! - typed Kubernetes access and a merge patch,
//! - durable state, so a restarted run does not lose what to undo,
//! - a child span, a log line and an Event,
//! - outputs for later steps, and compensation.
//!
//! Build it as a `cdylib` (see Cargo.toml) and put the `.so` in the plugin
//! directory; the `export_plugin!` line is the whole ABI.

use dbops_plugin_sdk::k8s_openapi::api::apps::v1::StatefulSet;
use dbops_plugin_sdk::kube::Patch;
use dbops_plugin_sdk::serde_json::{Value, json};
use dbops_plugin_sdk::{
    Context, EventType, Outputs, Problem, Step, StepResult, Target, export_plugin,
};
use serde::{Deserialize, Serialize};

/// The step.
pub struct Annotate;

/// `with` table of `example-annotate`.
#[derive(Debug, Deserialize, dbops_plugin_sdk::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct Config {
    /// Annotation key, e.g. `example.com/maintenance`.
    pub key: String,
    /// Value to set.
    pub value: String,
}

/// What we must remember to undo the step, even after a crash.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    previous: Option<String>,
}

impl Step for Annotate {
    type Config = Config;
    const NAME: &'static str = "example-annotate";
    const DESCRIPTION: &'static str =
        "Set an annotation on the target's StatefulSet (example plugin)";
    const OUTPUTS: &'static [(&'static str, &'static str)] = &[
        (
            "changed",
            "true when the annotation had another value before",
        ),
        ("previous", "the previous value, empty when there was none"),
    ];
    const COMPENSATES: bool = true;

    fn validate(config: &Config, _target: &Target) -> Vec<Problem> {
        let mut problems = Vec::new();
        if config.key.is_empty() || config.key.contains(char::is_whitespace) {
            problems.push(Problem {
                path: "/key".into(),
                message: format!(
                    "annotation key {:?} is not valid; use a key like \"example.com/maintenance\"",
                    config.key
                ),
            });
        }
        problems
    }

    fn run(ctx: &Context<'_>, config: Config) -> StepResult<Outputs> {
        let target = ctx.target();
        let api = ctx.kube().api::<StatefulSet>(Some(&target.namespace));
        let mut span = ctx.span(
            "annotate",
            &[("k8s.statefulset.name", json!(target.workload.name))],
        );

        // Record the previous value once: a retry or a resumed run must not
        // overwrite it with our own value.
        let saved = match ctx.state::<Saved>()? {
            Some(saved) => saved,
            None => {
                let sts = api.get(&target.workload.name)?;
                let previous = sts
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(&config.key))
                    .cloned();
                let saved = Saved { previous };
                ctx.save_state(&saved)?;
                saved
            }
        };

        let patch = Patch::Merge(
            json!({ "metadata": { "annotations": { config.key.clone(): config.value } } }),
        );
        api.patch(&target.workload.name, &patch)?;
        span.set(
            "changed",
            saved.previous.as_deref() != Some(config.value.as_str()),
        );
        span.end();
        ctx.info(&format!(
            "annotated statefulset/{} with {}",
            target.workload.name, config.key
        ));
        ctx.event(
            EventType::Normal,
            "Annotated",
            &format!("set annotation {}", config.key),
        );

        let mut outputs = Outputs::new();
        outputs.insert(
            "changed".into(),
            Value::Bool(saved.previous.as_deref() != Some(config.value.as_str())),
        );
        outputs.insert(
            "previous".into(),
            Value::String(saved.previous.unwrap_or_default()),
        );
        Ok(outputs)
    }

    fn compensate(ctx: &Context<'_>, config: Config) -> StepResult<()> {
        let Some(saved) = ctx.state::<Saved>()? else {
            // The step never recorded anything, so it never changed anything.
            return Ok(());
        };
        let target = ctx.target();
        let restored = match saved.previous {
            Some(v) => Value::String(v),
            None => Value::Null, // null in a merge patch removes the key
        };
        let patch = Patch::Merge(
            json!({ "metadata": { "annotations": { config.key.clone(): restored } } }),
        );
        ctx.kube()
            .api::<StatefulSet>(Some(&target.namespace))
            .patch(&target.workload.name, &patch)?;
        ctx.event(
            EventType::Normal,
            "AnnotationRestored",
            &format!("restored annotation {}", config.key),
        );
        Ok(())
    }
}

export_plugin!(Annotate);

#[cfg(test)]
mod tests {
    use super::*;
    use dbops_plugin_sdk::testing::TestHost;

    #[test]
    fn rejects_keys_with_spaces_with_a_pointer_to_the_field() {
        let response = TestHost::validate::<Annotate>(
            Target::default(),
            json!({"key": "a b", "value": "x"}),
            &[],
        );
        assert_eq!(response.problems.len(), 1);
        assert_eq!(response.problems[0].path, "/key");
    }

    #[test]
    fn rejects_unknown_keys() {
        let response = TestHost::validate::<Annotate>(
            Target::default(),
            json!({"key": "a", "valeu": "x"}),
            &[],
        );
        assert_eq!(response.problems.len(), 1);
        assert!(
            response.problems[0]
                .message
                .contains("unknown field `valeu`"),
            "{:?}",
            response.problems
        );
    }

    #[test]
    fn a_deferred_required_value_is_not_judged() {
        let response = TestHost::validate::<Annotate>(
            Target::default(),
            json!({"key": "a", "value": "${steps.x.outputs.y}"}),
            &["/value"],
        );
        assert!(response.problems.is_empty(), "{:?}", response.problems);
    }

    #[test]
    fn schema_lists_the_fields_with_their_docs() {
        let schema = dbops_plugin_sdk::export::schema_json::<Annotate>();
        assert!(schema.contains("Annotation key"), "{schema}");
        assert!(
            schema.contains("\"additionalProperties\":false"),
            "{schema}"
        );
    }
}
