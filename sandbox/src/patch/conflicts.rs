//! Server-side apply conflicts: a field another Apply manager owns (in its
//! `fieldsV1`) whose live value differs from the newly applied one. With
//! `force`, ownership moves to the applier; without, the apply fails with
//! 409 like the real server.

use serde_json::{Value, json};

/// One conflicting field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The field, e.g. `.data.a` or `.spec.containers[name="x"].image`.
    pub path: String,
}

/// Finds the conflicts of `applied` (field set `mine`) with the other Apply
/// managers recorded in `next`'s managedFields (the live object's entries);
/// with `force`, removes the conflicting fields from their sets.
pub fn resolve(
    next: &mut Value,
    live: &Value,
    applied: &Value,
    mine: &Value,
    manager: &str,
    force: bool,
) -> Vec<Conflict> {
    let mut out = Vec::new();
    let Some(entries) = next
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    else {
        return out;
    };
    for entry in entries.iter_mut() {
        let other = entry
            .get("manager")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if other == manager || entry.get("operation").and_then(Value::as_str) != Some("Apply") {
            continue;
        }
        let Some(set) = entry.get_mut("fieldsV1") else {
            continue;
        };
        let mut found = Vec::new();
        walk(
            set,
            mine,
            Some(live),
            Some(applied),
            String::new(),
            force,
            &mut found,
        );
        out.extend(found.into_iter().map(|path| Conflict {
            manager: other.clone(),
            path,
        }));
    }
    out
}

/// Whether a field-set node is a leaf (owns the whole value).
fn is_leaf(set: &Value) -> bool {
    set.as_object().is_none_or(|m| m.keys().all(|k| k == "."))
}

fn walk(
    theirs: &mut Value,
    mine: &Value,
    live: Option<&Value>,
    applied: Option<&Value>,
    path: String,
    force: bool,
    out: &mut Vec<String>,
) {
    let Some(their_map) = theirs.as_object_mut() else {
        return;
    };
    let keys: Vec<String> = their_map.keys().filter(|k| *k != ".").cloned().collect();
    for key in keys {
        let Some(my_child) = mine.get(&key) else {
            continue;
        };
        let (live_v, applied_v, segment) = step(&key, live, applied);
        let child_path = format!("{path}{segment}");
        let Some(their_child) = their_map.get_mut(&key) else {
            continue;
        };
        if is_leaf(their_child) || is_leaf(my_child) {
            if live_v.is_some() && live_v != applied_v {
                out.push(child_path);
                if force {
                    their_map.remove(&key);
                }
            }
        } else {
            walk(
                their_child,
                my_child,
                live_v,
                applied_v,
                child_path,
                force,
                out,
            );
        }
    }
}

/// Follows one field-set key (`f:name` or `k:{...}`) into both values.
fn step<'a>(
    key: &str,
    live: Option<&'a Value>,
    applied: Option<&'a Value>,
) -> (Option<&'a Value>, Option<&'a Value>, String) {
    if let Some(name) = key.strip_prefix("f:") {
        return (
            live.and_then(|v| v.get(name)),
            applied.and_then(|v| v.get(name)),
            format!(".{name}"),
        );
    }
    if let Some(id) = key
        .strip_prefix("k:")
        .and_then(|k| serde_json::from_str::<Value>(k).ok())
    {
        let matches = |item: &&Value| {
            id.as_object()
                .is_some_and(|m| m.iter().all(|(k, v)| item.get(k) == Some(v)))
        };
        let find = |v: Option<&'a Value>| {
            v.and_then(Value::as_array)
                .and_then(|a| a.iter().find(matches))
        };
        let label = id
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        return (find(live), find(applied), format!("[{label}]"));
    }
    (None, None, format!(".{key}"))
}

/// The 409 message of the real server.
pub fn message(conflicts: &[Conflict]) -> String {
    let n = conflicts.len();
    let list: Vec<String> = conflicts
        .iter()
        .map(|c| format!("conflict with \"{}\": {}", c.manager, c.path))
        .collect();
    let plural = if n == 1 { "conflict" } else { "conflicts" };
    format!("Apply failed with {n} {plural}: {}", list.join("\n"))
}

/// `details.causes` for the 409.
pub fn causes(conflicts: &[Conflict]) -> Value {
    json!(
        conflicts
            .iter()
            .map(|c| json!({"type": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.path}))
            .collect::<Vec<_>>()
    )
}
