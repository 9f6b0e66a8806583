//! Strategic merge patch: like a JSON merge patch, except that lists with a
//! merge key (containers by name, volumeMounts by mountPath, ...) are merged
//! item by item, `finalizers` is merged as a set, and the `$patch`,
//! `$deleteFromPrimitiveList/…`, `$setElementOrder/…` and `$retainKeys`
//! directives are understood (the last two are accepted and dropped).

use serde_json::{Map, Value};

/// The merge key of a list field, by field name (and, for `ports`, by
/// whether the items are container ports or service ports).
pub fn merge_key(field: &str, sample: &[&Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "containerStatuses"
        | "initContainerStatuses" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ports" if sample.iter().any(|v| v.get("containerPort").is_some()) => "containerPort",
        "ports" => "port",
        _ => return None,
    })
}

/// Lists merged as sets of primitives.
fn is_set_list(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Applies a strategic merge patch to `target` in place.
pub fn apply(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => merge_map(t, p),
        _ => *target = strip(patch),
    }
}

fn merge_map(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        if let Value::Object(map) = strip(&Value::Object(patch.clone())) {
            *target = map;
        }
        return;
    }
    for (key, pv) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(remove)) =
                (target.get_mut(field), pv.as_array())
            {
                items.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        match pv {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(pmap) if pmap.get("$patch").and_then(Value::as_str) == Some("delete") => {
                target.remove(key);
            }
            Value::Object(pmap) => match target.get_mut(key) {
                Some(Value::Object(tmap)) => merge_map(tmap, pmap),
                _ => {
                    target.insert(key.clone(), strip(pv));
                }
            },
            Value::Array(plist) => {
                let existing = target.get(key).and_then(Value::as_array);
                let sample: Vec<&Value> =
                    plist.iter().chain(existing.into_iter().flatten()).collect();
                let merged = if let Some(mk) = merge_key(key, &sample) {
                    merge_keyed(existing.cloned().unwrap_or_default(), plist, mk)
                } else if is_set_list(key) {
                    let mut out = existing.cloned().unwrap_or_default();
                    for v in plist {
                        if !out.contains(v) {
                            out.push(v.clone());
                        }
                    }
                    out
                } else {
                    plist
                        .iter()
                        .filter(|v| !is_directive(v))
                        .map(strip)
                        .collect()
                };
                target.insert(key.clone(), Value::Array(merged));
            }
            _ => {
                target.insert(key.clone(), pv.clone());
            }
        }
    }
}

/// Merges lists of objects by `key`: patch items update the item with the
/// same key or are appended; `{"$patch": "delete", key: …}` removes; an item
/// `{"$patch": "replace"}` makes the patch list replace the whole list.
fn merge_keyed(mut target: Vec<Value>, patch: &[Value], key: &str) -> Vec<Value> {
    if patch
        .iter()
        .any(|v| v.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return patch
            .iter()
            .filter(|v| !is_directive(v))
            .map(strip)
            .collect();
    }
    for item in patch {
        let Some(id) = item.get(key) else {
            target.push(strip(item));
            continue;
        };
        let pos = target.iter().position(|t| t.get(key) == Some(id));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                target.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => apply(&mut target[i], item),
            (None, false) => target.push(strip(item)),
        }
    }
    target
}

/// An item that only carries a `$patch` directive.
fn is_directive(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.len() == 1 && m.contains_key("$patch"))
}

/// A copy without directive keys (anything starting with `$`).
pub fn strip(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|v| !is_directive(v))
                .map(strip)
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name_and_env_by_name() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "b", "image": "b:1"}
        ]}});
        apply(
            &mut pod,
            &json!({"spec": {"containers": [
                {"name": "b", "image": "b:2"},
                {"name": "a", "env": [{"name": "Y", "value": "3"}, {"name": "X", "$patch": "delete"}]},
                {"name": "c", "image": "c:1"}
            ]}}),
        );
        assert_eq!(
            pod,
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:1", "env": [{"name": "Y", "value": "3"}]},
                {"name": "b", "image": "b:2"},
                {"name": "c", "image": "c:1"}
            ]}})
        );
    }

    #[test]
    fn directives_nulls_and_plain_lists() {
        let mut obj = json!({"metadata": {"finalizers": ["a"], "labels": {"x": "1", "y": "2"}},
            "spec": {"args": ["1", "2"], "volumeMounts": [{"mountPath": "/a", "name": "v"}]}});
        apply(
            &mut obj,
            &json!({
                "$setElementOrder/spec": [],
                "metadata": {"finalizers": ["b", "a"], "labels": {"x": null}},
                "spec": {"args": ["3"], "volumeMounts": [{"$patch": "replace"}, {"mountPath": "/b", "name": "w"}]}
            }),
        );
        assert_eq!(
            obj,
            json!({"metadata": {"finalizers": ["a", "b"], "labels": {"y": "2"}},
            "spec": {"args": ["3"], "volumeMounts": [{"mountPath": "/b", "name": "w"}]}})
        );
        apply(
            &mut obj,
            &json!({"$deleteFromPrimitiveList/spec": [], "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(obj["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn service_ports_merge_by_port() {
        let mut svc = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
        apply(
            &mut svc,
            &json!({"spec": {"ports": [{"port": 443, "name": "tls"}]}}),
        );
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"port": 80, "name": "http"}, {"port": 443, "name": "tls"}])
        );
    }
}
