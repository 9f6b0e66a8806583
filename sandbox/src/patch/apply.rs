//! Server-side apply, approximated: the applied configuration is merged into
//! the live object (strategic merge rules, also for custom resources), and
//! fields the same field manager applied last time but no longer applies are
//! removed. What a manager applied is recorded in `metadata.managedFields`
//! (`operation: Apply`, `fieldsV1`) as on a real server. A field another
//! Apply manager owns with a different value is a conflict (409) unless
//! `force`, which moves the ownership (see `conflicts.rs`); Update
//! operations record no field ownership, so they never conflict.

use serde_json::{Map, Value, json};

use super::conflicts::Conflict;
use super::strategic::{self, merge_key};

/// The object after `manager` applies `applied` to `live` (None = create),
/// or the conflicts with other managers when not `force`d.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    api_version: &str,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let mut next = live.cloned().unwrap_or_else(|| json!({}));
    let fields = fields_of(&strategic::strip(applied));
    if let Some(live) = live {
        let conflicts =
            super::conflicts::resolve(&mut next, live, applied, &fields, manager, force);
        if !force && !conflicts.is_empty() {
            return Err(conflicts);
        }
    }
    let previous = live.and_then(|l| owned_fields(l, manager));
    let mut patch = applied.clone();
    if let Some(prev) = &previous {
        add_removals(&mut patch, applied, prev);
    }
    strategic::apply(&mut next, &patch);
    set_managed_fields(&mut next, manager, api_version, fields);
    if let Some(meta) = next.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    Ok(next)
}

/// The `fieldsV1` of the manager's last apply.
fn owned_fields(live: &Value, manager: &str) -> Option<Value> {
    live.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|e| {
            e.get("manager").and_then(Value::as_str) == Some(manager)
                && e.get("operation").and_then(Value::as_str) == Some("Apply")
        })
        .and_then(|e| e.get("fieldsV1").cloned())
}

/// The field set of a configuration in `fieldsV1` form:
/// `{"f:spec": {"f:replicas": {}}}`, keyed list items as `k:{"name":"x"}`.
pub fn fields_of(v: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(map) = v {
        for (k, child) in map {
            out.insert(format!("f:{k}"), field_child(k, child));
        }
    }
    Value::Object(out)
}

fn field_child(key: &str, child: &Value) -> Value {
    match child {
        Value::Object(_) => fields_of(child),
        Value::Array(items) => {
            let sample: Vec<&Value> = items.iter().collect();
            let Some(mk) = merge_key(key, &sample) else {
                return json!({});
            };
            let mut out = Map::new();
            for item in items {
                if let Some(id) = item.get(mk) {
                    let mut fields = fields_of(item);
                    if let Some(m) = fields.as_object_mut() {
                        m.insert(".".into(), json!({}));
                    }
                    out.insert(format!("k:{}", json!({ mk: id })), fields);
                }
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}

/// Adds to `patch` the deletions of fields in `prev` (a field set) that
/// `applied` no longer has: `null` for map keys, `$patch: delete` items for
/// keyed list items.
fn add_removals(patch: &mut Value, applied: &Value, prev: &Value) {
    let (Some(pmap), Some(prev_map)) = (patch.as_object_mut(), prev.as_object()) else {
        return;
    };
    for (fk, prev_child) in prev_map {
        let Some(key) = fk.strip_prefix("f:") else {
            continue;
        };
        match applied.get(key) {
            None => {
                pmap.insert(key.to_string(), Value::Null);
            }
            Some(Value::Object(_)) => {
                if let Some(p) = pmap.get_mut(key) {
                    add_removals(p, &applied[key], prev_child);
                }
            }
            Some(Value::Array(items)) => {
                let sample: Vec<&Value> = items.iter().collect();
                let Some(mk) = merge_key(key, &sample) else {
                    continue;
                };
                let Some(Value::Array(plist)) = pmap.get_mut(key) else {
                    continue;
                };
                for (ik, item_fields) in prev_child.as_object().into_iter().flatten() {
                    let Some(id) = ik
                        .strip_prefix("k:")
                        .and_then(|s| serde_json::from_str::<Value>(s).ok())
                    else {
                        continue;
                    };
                    let Some(id_value) = id.get(mk) else { continue };
                    match plist.iter_mut().find(|i| i.get(mk) == Some(id_value)) {
                        Some(item) => {
                            let applied_item = item.clone();
                            add_removals(item, &applied_item, item_fields);
                        }
                        None => plist.push(json!({ mk: id_value, "$patch": "delete" })),
                    }
                }
            }
            Some(_) => {}
        }
    }
}

fn set_managed_fields(obj: &mut Value, manager: &str, api_version: &str, fields: Value) {
    let meta = crate::meta::metadata_mut(obj);
    let entry = json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": crate::meta::now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    let list = meta.entry("managedFields").or_insert_with(|| json!([]));
    if let Value::Array(entries) = list {
        entries.retain(|e| {
            !(e.get("manager").and_then(Value::as_str) == Some(manager)
                && e.get("operation").and_then(Value::as_str) == Some("Apply"))
        });
        entries.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reapply_removes_fields_the_manager_dropped() {
        let first = json!({"metadata": {"name": "c", "labels": {"a": "1", "b": "2"}},
            "spec": {"containers": [{"name": "x", "image": "x"}, {"name": "y", "image": "y"}]}});
        let live = apply(None, &first, "me", "v1", false).expect("create");
        let mut live2 = live.clone();
        live2["metadata"]["labels"]["other"] = json!("kept");
        let second = json!({"metadata": {"name": "c", "labels": {"a": "1"}},
            "spec": {"containers": [{"name": "x", "image": "x2"}]}});
        let out = apply(Some(&live2), &second, "me", "v1", false).expect("no conflict with itself");
        assert_eq!(
            out["metadata"]["labels"],
            json!({"a": "1", "other": "kept"})
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "x", "image": "x2"}])
        );
        assert_eq!(
            out["metadata"]["managedFields"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn other_managers_conflict_unless_forced() {
        let live = apply(
            None,
            &json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}),
            "first",
            "v1",
            false,
        )
        .expect("create");
        let same = apply(
            Some(&live),
            &json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
            "second",
            "v1",
            false,
        );
        assert!(
            same.is_ok(),
            "the same value is shared ownership, not a conflict"
        );
        let err = apply(
            Some(&live),
            &json!({"metadata": {"name": "c"}, "data": {"a": "9"}}),
            "second",
            "v1",
            false,
        )
        .expect_err("conflict");
        assert_eq!(
            err,
            vec![super::super::conflicts::Conflict {
                manager: "first".into(),
                path: ".data.a".into()
            }]
        );
        let forced = apply(
            Some(&live),
            &json!({"metadata": {"name": "c"}, "data": {"a": "9"}}),
            "second",
            "v1",
            true,
        )
        .expect("forced");
        assert_eq!(forced["data"], json!({"a": "9", "b": "2"}));
        // "first" no longer owns data.a: re-applying without it keeps the value.
        let again = apply(
            Some(&forced),
            &json!({"metadata": {"name": "c"}, "data": {"b": "2"}}),
            "first",
            "v1",
            false,
        )
        .expect("reapply");
        assert_eq!(again["data"], json!({"a": "9", "b": "2"}));
    }
}
