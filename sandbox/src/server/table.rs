//! Server-side printing: `meta.k8s.io/v1` Tables for kubectl's
//! `Accept: …;as=Table` (the columns `kubectl get` shows), for the kinds
//! users look at most; everything else gets Name and Age.

use serde_json::{Value, json};

use crate::registry::ResourceDef;

/// Whether the client asked for a Table.
pub fn wanted(accept: &str) -> bool {
    accept.contains("as=Table")
}

/// A Table of `objects`, with the list metadata `meta`.
pub fn table(
    def: &ResourceDef,
    objects: &[&Value],
    meta: Value,
    include_object: Option<&str>,
) -> Value {
    let columns: Vec<Value> = columns(def)
        .iter()
        .map(|(name, kind)| {
            let format = if *name == "Name" { "name" } else { "" };
            json!({"name": name, "type": kind, "format": format, "description": "", "priority": 0})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| row(def, o, include_object))
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns, "rows": rows})
}

/// How a kind is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Printer {
    Pod,
    Replicas,
    Phase,
    Service,
    Certificate,
    Database,
    Plain,
}

fn printer(def: &ResourceDef) -> Printer {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "pods") => Printer::Pod,
        ("apps" | "apps.k8s.appscode.com", _) if def.scale => Printer::Replicas,
        ("", "namespaces") => Printer::Phase,
        ("", "services") => Printer::Service,
        ("cert-manager.io", "certificates") => Printer::Certificate,
        ("kubedb.com", _) => Printer::Database,
        _ => Printer::Plain,
    }
}

fn columns(def: &ResourceDef) -> Vec<(&'static str, &'static str)> {
    let s = "string";
    match printer(def) {
        Printer::Pod => vec![
            ("Name", s),
            ("Ready", s),
            ("Status", s),
            ("Restarts", "integer"),
            ("Age", s),
        ],
        Printer::Replicas => vec![("Name", s), ("Ready", s), ("Age", s)],
        Printer::Phase => vec![("Name", s), ("Status", s), ("Age", s)],
        Printer::Service => vec![
            ("Name", s),
            ("Type", s),
            ("Cluster-IP", s),
            ("Ports", s),
            ("Age", s),
        ],
        Printer::Certificate => vec![("Name", s), ("Ready", s), ("Secret", s), ("Age", s)],
        Printer::Database => vec![("Name", s), ("Version", s), ("Status", s), ("Age", s)],
        Printer::Plain => vec![("Name", s), ("Age", s)],
    }
}

fn row(def: &ResourceDef, obj: &Value, include_object: Option<&str>) -> Value {
    let s = |ptr: &str| {
        obj.pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let name = s("/metadata/name");
    let age = age(&s("/metadata/creationTimestamp"));
    let cells = match printer(def) {
        Printer::Pod => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .sum();
            let waiting = statuses
                .iter()
                .find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str));
            let phase = if obj.pointer("/metadata/deletionTimestamp").is_some() {
                "Terminating".to_string()
            } else {
                waiting.map_or_else(|| s("/status/phase"), str::to_string)
            };
            json!([name, format!("{ready}/{total}"), phase, restarts, age])
        }
        Printer::Replicas => {
            let ready = obj
                .pointer("/status/readyReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let want = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            json!([name, format!("{ready}/{want}"), age])
        }
        Printer::Phase => json!([name, s("/status/phase"), age]),
        Printer::Service => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    format!("{port}/{proto}")
                })
                .collect();
            json!([
                name,
                s("/spec/type"),
                s("/spec/clusterIP"),
                ports.join(","),
                age
            ])
        }
        Printer::Certificate => json!([name, condition(obj, "Ready"), s("/spec/secretName"), age]),
        Printer::Database => json!([name, s("/spec/version"), s("/status/phase"), age]),
        Printer::Plain => json!([name, age]),
    };
    let object = match include_object {
        Some("None") => Value::Null,
        Some("Object") => obj.clone(),
        _ => {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata")})
        }
    };
    json!({"cells": cells, "object": object})
}

fn condition(obj: &Value, kind: &str) -> String {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        .and_then(|c| c.get("status").and_then(Value::as_str))
        .unwrap_or("False")
        .to_string()
}

/// kubectl's short ages: `45s`, `3m12s`, `25m`, `4h10m`, `30h`, `3d4h`, `12d`.
fn age(created: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(created) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{m}m{}s", s % 60),
        s if s < 3 * 3600 => format!("{m}m"),
        s if s < 8 * 3600 => format!("{h}h{}m", m % 60),
        s if s < 48 * 3600 => format!("{h}h"),
        s if s < 8 * 86400 => format!("{d}d{}h", h % 24),
        _ => format!("{d}d"),
    }
}
