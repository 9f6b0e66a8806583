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
    let members = journal["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.pointer("/plugin_state/done")?.as_array())
        .flatten()
        .filter_map(|done| done["seconds"].as_f64())
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(Duration::from_secs_f64)
        .collect();
    Some(RunTimings {
        whole: between(&journal["started_at"], &journal["finished_at"]),
        steps,
        members,
    })
}

/// Timings of one run.
#[derive(Debug, Clone)]
pub struct RunTimings {
    /// From the journal's creation to the run's end.
    pub whole: Option<Duration>,
    /// Each step.
    pub steps: Steps,
    /// Time from each member's restart to its return Ready, as the rolling
    /// restart measured it (its saved state's `done[].seconds`: full
    /// precision, where the `member_seconds` output is rounded to 0.1 s).
    pub members: Vec<Duration>,
}

fn between(start: &Value, end: &Value) -> Option<Duration> {
    let time = |v: &Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    (time(end)? - time(start)?).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_steps_and_member_restarts_from_a_journal_configmap() {
        let journal = json!({
            "started_at": "2026-12-04T10:00:00Z",
            "finished_at": "2026-12-04T10:00:01.5Z",
            "steps": [
                {"id": "pause", "started_at": "2026-12-04T10:00:00Z", "finished_at": "2026-12-04T10:00:00.002Z"},
                {"id": "restart", "started_at": "2026-12-04T10:00:00.002Z", "finished_at": "2026-12-04T10:00:01.4Z",
                 "plugin_state": {"done": [{"name": "db-2", "seconds": 0.2125}, {"name": "db-1", "seconds": 0.25}]}}
            ]
        });
        let configmap = json!({"data": {"journal.json": journal.to_string()}});
        let timings = timings(&configmap).expect("a journal");
        assert_eq!(timings.whole, Some(Duration::from_millis(1500)));
        assert_eq!(
            timings.steps[0],
            ("pause".to_owned(), Duration::from_millis(2))
        );
        assert_eq!(
            timings.members,
            vec![Duration::from_secs_f64(0.2125), Duration::from_millis(250)]
        );
    }
}
