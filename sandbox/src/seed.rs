//! Objects every sandbox starts with: the `default`, `kube-system` and
//! `kube-public` namespaces, the node `sandbox-node` (where the kubelet
//! stand-in runs pods) and the default ClusterRoles `cluster-admin`,
//! `admin`, `edit` and `view` (simplified: no aggregation).

use serde_json::{Value, json};

/// The objects to create at start.
pub fn objects() -> Vec<Value> {
    let mut out: Vec<Value> = ["default", "kube-system", "kube-public"]
        .iter()
        .map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .collect();
    out.push(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/hostname": NODE_NAME}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}
    }));
    let read = json!(["get", "list", "watch"]);
    let all = json!(["*"]);
    out.push(cluster_role(
        "cluster-admin",
        json!([
            {"apiGroups": ["*"], "resources": ["*"], "verbs": all},
            {"nonResourceURLs": ["*"], "verbs": all}
        ]),
    ));
    out.push(cluster_role(
        "admin",
        json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": all}]),
    ));
    out.push(cluster_role("edit", json!([
        {"apiGroups": ["", "apps", "batch", "coordination.k8s.io", "events.k8s.io", "cert-manager.io", "kubedb.com", "apps.k8s.appscode.com"],
         "resources": ["*"], "verbs": all}
    ])));
    out.push(cluster_role(
        "view",
        json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": read}]),
    ));
    out
}

/// Name of the sandbox's only node.
pub const NODE_NAME: &str = "sandbox-node";

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": rules
    })
}
