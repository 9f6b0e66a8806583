//! Step timings from a run's journal (the ConfigMap `dbops-run-<run id>`
//! the runner writes): what each step took, and the time outside steps.

use std::time::Duration;

use serde_json::Value;

/// (step id, finished - started) of one run, in pipeline order.
pub type Steps = Vec<(String, Duration)>;

/// The timings of one run from its journal ConfigMap (an object as the
/// API returns it); None when it holds no readable journal.
pub fn timings(configmap: &Value) -> Option<RunTimings> {
    let journal: Value = configmap
        .pointer("/data/journal.json")
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str(t).ok())?;
    let steps = journal["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some((
                s["id"].as_str()?.to_owned(),
                between(&s["started_at"], &s["finished_at"])?,
            ))
        })
        .collect();
    Some(RunTimings {
        whole: between(&journal["started_at"], &journal["finished_at"]),
        steps,
    })
}

/// Timings of one run.
#[derive(Debug, Clone)]
pub struct RunTimings {
    /// From the journal's creation to the run's end.
    pub whole: Option<Duration>,
    /// Each step.
    pub steps: Steps,
}

fn between(start: &Value, end: &Value) -> Option<Duration> {
    let time = |v: &Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    (time(end)? - time(start)?).to_std().ok()
}
