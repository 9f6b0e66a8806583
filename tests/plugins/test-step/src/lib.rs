//! `uses = "test-step"`: a step whose behaviour is set by its `with` table,
//! so the runner's end-to-end tests can provoke every path of the executor
//! with a real cdylib: outputs, transient failures that heal after N
//! attempts, permanent failures, panics, cooperative sleeps, sleeps that
//! ignore cancellation, durable state across a killed process, child spans,
//! and a record of every call (run and compensate, in order) in a ConfigMap
//! of the target's namespace so tests can assert order and counts.

use std::collections::BTreeMap;
use std::time::Duration;

use dbops_plugin_sdk::k8s_openapi::api::core::v1::ConfigMap;
use dbops_plugin_sdk::serde_json::{Value, json};
use dbops_plugin_sdk::{
    Context, DurationStr, EventType, Outputs, Problem, Step, StepError, StepResult, Target,
    export_plugin,
};
use serde::{Deserialize, Serialize};

/// The step.
pub struct TestStep;

/// `with` table of `test-step`. Everything is optional; the empty table
/// succeeds with the output `attempt`.
#[derive(Debug, Default, Deserialize, dbops_plugin_sdk::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct Config {
    /// Outputs to return on success (besides `attempt`); declare-able keys
    /// are `value` and `count`.
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
    /// Fail with a transient error on the first N attempts.
    #[serde(default)]
    pub transient_failures: u32,
    /// Fail permanently with this message.
    #[serde(default)]
    pub fail: Option<String>,
    /// Panic with this message.
    #[serde(default)]
    pub panic: Option<String>,
    /// Sleep cooperatively (stops at the deadline or on cancellation).
    #[serde(default)]
    pub sleep: Option<DurationStr>,
    /// Sleep ignoring the deadline and cancellation (a misbehaving plugin).
    #[serde(default)]
    pub block: Option<DurationStr>,
    /// Name of a ConfigMap in the target namespace recording every call.
    #[serde(default)]
    pub record: Option<String>,
    /// Save durable state before sleeping; when state exists on entry,
    /// skip the sleep and output `resumed_from_attempt`.
    #[serde(default)]
    pub checkpoint: bool,
    /// Make `compensate` fail.
    #[serde(default)]
    pub fail_compensate: bool,
    /// Open a child span `test.work` with this attribute value.
    #[serde(default)]
    pub span: Option<String>,
    /// Wait (by watch, up to the step deadline) until a ConfigMap of this
    /// name has the data key `go`; its value becomes the output `value`.
    #[serde(default)]
    pub wait_for: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    attempt: u32,
}

/// Append `entry` to the `calls` key of ConfigMap `name` (one per line).
fn record(ctx: &Context<'_>, name: &str, entry: &str) -> StepResult<()> {
    let api = ctx.kube().api::<ConfigMap>(Some(&ctx.target().namespace));
    for _ in 0..10 {
        match api.get_opt(name)? {
            None => {
                let mut cm = ConfigMap::default();
                cm.metadata.name = Some(name.to_owned());
                cm.metadata.namespace = Some(ctx.target().namespace.clone());
                cm.data = Some([("calls".to_owned(), entry.to_owned())].into());
                match api.create(&cm) {
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_conflict() || e.code() == Some(409) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Some(mut cm) => {
                let data = cm.data.get_or_insert_with(Default::default);
                let calls = data.entry("calls".to_owned()).or_default();
                if !calls.is_empty() {
                    calls.push('\n');
                }
                calls.push_str(entry);
                match api.replace(name, &cm) {
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_conflict() => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Err(StepError::transient(
        "RecordConflict",
        format!("could not update configmap {name}"),
    ))
}

impl Step for TestStep {
    type Config = Config;
    const NAME: &'static str = "test-step";
    const DESCRIPTION: &'static str = "Configurable step for dbops tests";
    const OUTPUTS: &'static [(&'static str, &'static str)] = &[
        ("value", "a value given in `outputs`"),
        ("count", "a number given in `outputs`"),
        ("attempt", "the attempt number that succeeded"),
        (
            "resumed_from_attempt",
            "with checkpoint: the attempt that saved the state",
        ),
    ];
    const COMPENSATES: bool = true;

    fn validate(config: &Config, _target: &Target) -> Vec<Problem> {
        let mut problems = Vec::new();
        if config.fail.as_deref() == Some("") {
            problems.push(Problem {
                path: "/fail".into(),
                message: "`fail` needs a message, e.g. fail = \"boom\"".into(),
            });
        }
        problems
    }

    fn run(ctx: &Context<'_>, config: Config) -> StepResult<Outputs> {
        let attempt = ctx.attempt();
        if let Some(name) = &config.record {
            record(ctx, name, &format!("run {} {attempt}", ctx.step_id()))?;
        }
        ctx.log(
            dbops_plugin_sdk::Level::Info,
            "test step running",
            &[("attempt", json!(attempt))],
        );
        let mut outputs: Outputs = config.outputs.clone();
        outputs.insert("attempt".into(), json!(attempt));
        if let Some(value) = &config.span {
            let mut span = ctx.span("test.work", &[("test.value", json!(value))]);
            span.set("test.attempt", attempt);
            span.end();
        }
        if attempt <= config.transient_failures {
            return Err(StepError::transient(
                "TestTransient",
                format!(
                    "transient failure {attempt} of {}",
                    config.transient_failures
                ),
            ));
        }
        if let Some(message) = &config.panic {
            panic!("{message}");
        }
        if let Some(message) = &config.fail {
            return Err(StepError::permanent("TestFailed", message.clone()));
        }
        let mut resumed = false;
        if config.checkpoint {
            match ctx.state::<Checkpoint>()? {
                Some(saved) => {
                    outputs.insert("resumed_from_attempt".into(), json!(saved.attempt));
                    resumed = true;
                }
                None => ctx.save_state(&Checkpoint { attempt })?,
            }
        }
        if let Some(name) = &config.wait_for {
            let api = ctx.kube().api::<ConfigMap>(Some(&ctx.target().namespace));
            let has_go = |cm: Option<&ConfigMap>| {
                cm.and_then(|c| c.data.as_ref())
                    .is_some_and(|d| d.contains_key("go"))
            };
            let cm = api.wait_until(name, has_go, Duration::from_secs(3600))?;
            let go = cm
                .and_then(|c| c.data)
                .and_then(|d| d.get("go").cloned())
                .unwrap_or_default();
            outputs.insert("value".into(), json!(go));
        }
        if !resumed {
            if let Some(DurationStr(d)) = config.sleep {
                ctx.sleep(d)?;
            }
            if let Some(DurationStr(d)) = config.block {
                std::thread::sleep(d);
            }
        }
        ctx.event(
            EventType::Normal,
            "TestStepDone",
            &format!("attempt {attempt} done"),
        );
        Ok(outputs)
    }

    fn compensate(ctx: &Context<'_>, config: Config) -> StepResult<()> {
        if let Some(name) = &config.record {
            record(ctx, name, &format!("compensate {}", ctx.step_id()))?;
        }
        if config.fail_compensate {
            return Err(StepError::permanent(
                "TestCompensateFailed",
                "compensation failed on purpose",
            ));
        }
        Ok(())
    }
}

export_plugin!(TestStep);
