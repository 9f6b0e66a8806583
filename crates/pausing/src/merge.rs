//! JSON merge patch (RFC 7386) helpers: the inverse of a patch against an
//! object, and whether an object already holds a patch's values.

use serde_json::{Map, Value};

/// The merge patch that undoes `patch` on `current`: every key the patch
/// touches gets its current value back, or `null` (removed) when it was
/// absent. A parent the patch creates is removed whole, so an object that
/// had no `annotations` gets none back (not an empty map).
pub fn inverse(patch: &Value, current: &Value) -> Value {
    let (Value::Object(patch), Value::Object(current)) = (patch, current) else {
        return current.clone();
    };
    let mut out = Map::new();
    for (key, change) in patch {
        match current.get(key) {
            None if change.is_null() => {}
            None => {
                out.insert(key.clone(), Value::Null);
            }
            Some(before @ Value::Object(_)) if change.is_object() => {
                let inner = inverse(change, before);
                if inner.as_object().is_some_and(|m| !m.is_empty()) {
                    out.insert(key.clone(), inner);
                }
            }
            Some(before) => {
                out.insert(key.clone(), before.clone());
            }
        }
    }
    Value::Object(out)
}

/// Apply `patch` to `target` (RFC 7386).
pub fn apply(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, change) in patch {
            if change.is_null() {
                map.remove(key);
            } else {
                apply(map.entry(key.clone()).or_insert(Value::Null), change);
            }
        }
    }
}

/// Whether `object` already has every value `patch` sets (and lacks every
/// key it removes): the patch would change nothing.
pub fn holds(patch: &Value, object: &Value) -> bool {
    let mut patched = object.clone();
    apply(&mut patched, patch);
    &patched == object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inverse_restores_values_and_removes_created_parents() {
        let current = json!({"metadata": {"name": "x"}, "spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}});
        let patch = json!({
            "metadata": {"annotations": {"a": "1"}},
            "spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}
        });
        let undo = inverse(&patch, &current);
        assert_eq!(
            undo,
            json!({"metadata": {"annotations": null}, "spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}})
        );
        let mut object = current.clone();
        apply(&mut object, &patch);
        assert!(holds(&patch, &object));
        apply(&mut object, &undo);
        assert_eq!(object, current);
    }

    #[test]
    fn inverse_of_a_key_in_existing_annotations_removes_only_that_key() {
        let current = json!({"metadata": {"annotations": {"keep": "me"}}});
        let patch = json!({"metadata": {"annotations": {"a": "1"}}});
        assert_eq!(
            inverse(&patch, &current),
            json!({"metadata": {"annotations": {"a": null}}})
        );
        assert!(!holds(&patch, &current));
    }
}
