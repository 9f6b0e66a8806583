//! Per-kind defaulting done by the real API server on writes: Secret
//! `stringData`, Pod phase and grace period, Service cluster IPs, StatefulSet
//! strategy defaults, Namespace phase.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::registry::ResourceDef;

/// Applies defaults before an object is stored (create and update).
pub fn apply(def: &ResourceDef, obj: &mut Value, creating: bool, seq: u64) {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "secrets") => secret(obj),
        ("", "pods") => pod(obj, creating),
        ("", "services") => service(obj, seq),
        ("", "namespaces") => set_default(obj, &["status", "phase"], json!("Active")),
        ("apps", "statefulsets") => statefulset(obj),
        _ => {}
    }
}

/// Sets `path` to `value` unless already present.
fn set_default(obj: &mut Value, path: &[&str], value: Value) {
    let mut cur = obj;
    for (i, seg) in path.iter().enumerate() {
        if !cur.is_object() {
            return;
        }
        let map = cur.as_object_mut().expect("checked object");
        if i + 1 == path.len() {
            map.entry(*seg).or_insert(value);
            return;
        }
        cur = map.entry(*seg).or_insert_with(|| json!({}));
    }
}

/// Moves `stringData` into base64 `data`; defaults `type` to Opaque.
fn secret(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(string_data)) = map.remove("stringData") {
        let data = map.entry("data").or_insert_with(|| json!({}));
        if let Some(data) = data.as_object_mut() {
            for (k, v) in string_data {
                let text = v.as_str().unwrap_or_default();
                data.insert(
                    k,
                    Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
    }
    map.entry("type").or_insert(json!("Opaque"));
}

fn pod(obj: &mut Value, creating: bool) {
    set_default(obj, &["spec", "terminationGracePeriodSeconds"], json!(30));
    set_default(obj, &["spec", "restartPolicy"], json!("Always"));
    if creating {
        set_default(obj, &["status", "phase"], json!("Pending"));
    }
}

fn service(obj: &mut Value, seq: u64) {
    set_default(obj, &["spec", "type"], json!("ClusterIP"));
    let ip = format!("10.96.{}.{}", (seq / 250) % 250, seq % 250 + 1);
    set_default(obj, &["spec", "clusterIP"], json!(ip));
}

fn statefulset(obj: &mut Value) {
    set_default(obj, &["spec", "replicas"], json!(1));
    set_default(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
    set_default(obj, &["spec", "revisionHistoryLimit"], json!(10));
    set_default(
        obj,
        &["spec", "updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
    );
    // Like the real server: a RollingUpdate strategy that has a
    // `rollingUpdate` block gets `partition: 0` when it has none (e.g.
    // after a merge patch set the partition to null). `kubectl rollout
    // status` relies on it: with `rollingUpdate: {}` it reports a
    // "partitioned roll out complete" after the first updated pod.
    let rolling = obj
        .pointer("/spec/updateStrategy/type")
        .is_none_or(|t| t == "RollingUpdate");
    if rolling
        && obj
            .pointer("/spec/updateStrategy/rollingUpdate")
            .is_some_and(Value::is_object)
    {
        set_default(
            obj,
            &["spec", "updateStrategy", "rollingUpdate", "partition"],
            json!(0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn secret_string_data_becomes_base64_data() {
        let reg = Registry::new(&[]);
        let def = reg.by_kind("v1", "Secret").expect("secrets");
        let mut s = json!({"stringData": {"a": "hi"}, "data": {"b": "eA=="}});
        apply(def, &mut s, true, 1);
        assert_eq!(
            s,
            json!({"data": {"a": "aGk=", "b": "eA=="}, "type": "Opaque"})
        );
    }

    #[test]
    fn statefulset_rolling_update_block_gets_partition_zero() {
        let reg = Registry::new(&[]);
        let def = reg.by_kind("apps/v1", "StatefulSet").expect("statefulsets");
        let strategy = |s: &Value| s.pointer("/spec/updateStrategy").cloned();
        let mut s =
            json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {}}}});
        apply(def, &mut s, false, 1);
        assert_eq!(
            strategy(&s),
            Some(json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}))
        );
        // No rollingUpdate block: left alone, as the real server does.
        let mut s = json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}}});
        apply(def, &mut s, false, 1);
        assert_eq!(strategy(&s), Some(json!({"type": "RollingUpdate"})));
        let mut s = json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": {}}}});
        apply(def, &mut s, false, 1);
        assert_eq!(
            strategy(&s),
            Some(json!({"type": "OnDelete", "rollingUpdate": {}}))
        );
    }
}
