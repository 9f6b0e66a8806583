//! Status conditions that keep `lastTransitionTime` unless their status
//! changes, in the JSON shape every API group uses.

use serde_json::{Value, json};

/// The current time as Kubernetes writes it (RFC 3339, seconds, UTC).
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A desired condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `type`, e.g. `Ready`.
    pub kind: String,
    /// `"True"`, `"False"` or `"Unknown"`.
    pub status: &'static str,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl Condition {
    /// A condition of `kind` with `status` true or false.
    pub fn new(kind: &str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            status: if status { "True" } else { "False" },
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// The `status` of the condition `kind` in a conditions array, if present.
#[cfg(test)]
pub fn status_of<'a>(conditions: Option<&'a Value>, kind: &str) -> Option<&'a str> {
    conditions?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))?
        .get("status")?
        .as_str()
}

/// Builds the new conditions array: each desired condition keeps the old
/// `lastTransitionTime` when its status did not change; conditions not in
/// `desired` and not in `remove` are kept as they were.
pub fn merge(
    old: Option<&Value>,
    desired: &[Condition],
    remove: &[&str],
    observed_generation: Option<i64>,
) -> Vec<Value> {
    let old: Vec<Value> = old.and_then(Value::as_array).cloned().unwrap_or_default();
    let now = now_rfc3339();
    let mut out: Vec<Value> = old
        .iter()
        .filter(|c| {
            let kind = c.get("type").and_then(Value::as_str).unwrap_or("");
            !remove.contains(&kind) && !desired.iter().any(|d| d.kind == kind)
        })
        .cloned()
        .collect();
    for want in desired {
        let previous = old
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(want.kind.as_str()));
        let since = previous
            .filter(|c| c.get("status").and_then(Value::as_str) == Some(want.status))
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| Value::String(now.clone()));
        let mut condition = json!({
            "type": want.kind,
            "status": want.status,
            "reason": want.reason,
            "message": want.message,
            "lastTransitionTime": since,
        });
        if let (Some(generation), Some(map)) = (observed_generation, condition.as_object_mut()) {
            map.insert("observedGeneration".to_owned(), json!(generation));
        }
        out.push(condition);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_transition_time_when_status_unchanged() {
        let old = json!([
            {"type": "Ready", "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": "2020-01-01T00:00:00Z"},
            {"type": "Issuing", "status": "True", "reason": "ManuallyTriggered", "message": "", "lastTransitionTime": "2020-01-01T00:00:00Z"},
            {"type": "Other", "status": "True"}
        ]);
        let out = merge(
            Some(&old),
            &[Condition::new("Ready", true, "Ready", "ok")],
            &["Issuing"],
            Some(3),
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["type"], "Other");
        assert_eq!(out[1]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(out[1]["message"], "ok");
        assert_eq!(out[1]["observedGeneration"], 3);
    }

    #[test]
    fn new_time_when_status_flips() {
        let old = json!([{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]);
        let out = merge(
            Some(&old),
            &[Condition::new("Ready", false, "Pending", "")],
            &[],
            None,
        );
        assert_ne!(out[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(status_of(Some(&json!(out)), "Ready"), Some("False"));
    }
}
