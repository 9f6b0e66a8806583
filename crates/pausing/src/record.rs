//! The pause record: exactly what a pause changed, kept on the paused
//! object itself (annotation [`RECORD_ANNOTATION`]) and in the pause step's
//! durable state, so `resume` can undo it without access to the journal.
//! It holds previous annotation and spec values and status conditions;
//! never secrets.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::ResourceRef;

/// Annotation naming the run that paused the object.
pub const PAUSED_BY_ANNOTATION: &str = "dbops.io/paused-by";
/// Annotation holding the JSON [`PauseRecord`].
pub const RECORD_ANNOTATION: &str = "dbops.io/pause-record";
/// The KubeDB condition type that pauses its operators.
pub const KUBEDB_CONDITION: &str = "DatabasePaused";

/// What a pause changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseRecord {
    /// The run that paused.
    pub run_id: String,
    /// The preset used.
    pub preset: String,
    /// The paused object.
    pub object: ResourceRef,
    /// The merge patch (metadata and spec) that restores the object.
    pub restore: Value,
    /// For KubeDB: the status conditions as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<ConditionsBefore>,
}

/// The status conditions before a KubeDB pause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionsBefore {
    /// Whether `status` was absent.
    pub status_absent: bool,
    /// Whether `status.conditions` was absent.
    pub conditions_absent: bool,
    /// A `DatabasePaused` condition that was there (not `True`), and its index.
    pub previous: Option<(usize, Value)>,
}

/// The marker message of our KubeDB condition for `run_id`.
pub fn condition_message(run_id: &str) -> String {
    format!("Paused by dbops run {run_id}")
}

/// The run id in an object's paused-by annotation.
pub fn paused_by(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(PAUSED_BY_ANNOTATION))
        .and_then(Value::as_str)
}

/// The record on an object, if it has one that parses.
pub fn record_of(object: &Value) -> Option<Result<PauseRecord, serde_json::Error>> {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(RECORD_ANNOTATION))
        .and_then(Value::as_str)
        .map(serde_json::from_str)
}

/// The object's status conditions (empty when absent).
pub fn conditions(object: &Value) -> Vec<Value> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A `DatabasePaused=True` condition not made by dbops `run_id`: paused by
/// someone else (KubeDB's ops manager or CLI, or another run).
pub fn foreign_kubedb_pause(object: &Value) -> Option<String> {
    conditions(object).into_iter().find_map(|c| {
        let is_pause = c.get("type").and_then(Value::as_str) == Some(KUBEDB_CONDITION)
            && c.get("status").and_then(Value::as_str) == Some("True");
        is_pause.then(|| {
            c.get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_owned()
        })
    })
}

/// The `DatabasePaused` condition dbops sets (as KubeDB's CLI does).
pub fn kubedb_condition(run_id: &str, generation: i64, now: &str) -> Value {
    json!({
        "type": KUBEDB_CONDITION,
        "status": "True",
        "reason": "PausedByDbops",
        "message": condition_message(run_id),
        "observedGeneration": generation,
        "lastTransitionTime": now,
    })
}

/// The current time as RFC 3339 (`2026-11-25T08:00:00Z`), for conditions.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_current_time_as_rfc3339() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }

    #[test]
    fn recognises_a_pause_by_someone_else() {
        let object = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "DatabasePaused", "status": "True", "message": "Paused by KubeDB CLI tool"}
        ]}});
        assert_eq!(
            foreign_kubedb_pause(&object).as_deref(),
            Some("Paused by KubeDB CLI tool")
        );
        let resumed =
            json!({"status": {"conditions": [{"type": "DatabasePaused", "status": "False"}]}});
        assert_eq!(foreign_kubedb_pause(&resumed), None);
    }
}
