//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/GROUP`,
//! `/api/v1` and `/apis/GROUP/VERSION` (the legacy, unaggregated form that
//! kube and kubectl fall back to).

use serde_json::{Value, json};

use crate::registry::Registry;
use crate::status::{ApiError, ApiResult};

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-dbops-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or_else(|| json!({}));
    json!({"name": name, "versions": versions, "preferredVersion": preferred})
}

/// `/apis`.
pub fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .map(|(g, vs)| group_doc(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`.
pub fn group(registry: &Registry, name: &str) -> ApiResult<Value> {
    let (g, versions) = registry
        .groups()
        .into_iter()
        .find(|(g, _)| g == name)
        .ok_or_else(|| ApiError::no_route(&format!("/apis/{name}")))?;
    let mut doc = group_doc(&g, &versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Ok(doc)
}

/// `/api/v1` or `/apis/GROUP/VERSION`: the resources with verbs, scope,
/// kind, short names and subresources.
pub fn resources(registry: &Registry, group: &str, version: &str) -> ApiResult<Value> {
    let defs = registry.group_version(group, version);
    if defs.is_empty() {
        return Err(ApiError::no_route(&format!("{group}/{version}")));
    }
    let mut resources = Vec::new();
    for d in defs {
        let mut doc = json!({
            "name": d.plural,
            "singularName": d.singular,
            "namespaced": d.namespaced,
            "kind": d.kind,
            "verbs": if d.group == crate::registry::REVIEW_GROUP { &["create"][..] } else { VERBS },
        });
        if !d.short_names.is_empty() {
            doc["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            doc["categories"] = json!(d.categories);
        }
        resources.push(doc);
        if d.status {
            resources.push(json!({
                "name": format!("{}/status", d.plural), "singularName": "", "namespaced": d.namespaced,
                "kind": d.kind, "verbs": ["get", "patch", "update"]
            }));
        }
        if d.scale {
            resources.push(json!({
                "name": format!("{}/scale", d.plural), "singularName": "", "namespaced": d.namespaced,
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}
