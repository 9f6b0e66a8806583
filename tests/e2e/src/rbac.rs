//! The RBAC of `deploy/base`, applied to a test namespace for the
//! ServiceAccount `dbops`, optionally without one rule.

use std::path::PathBuf;

use dbops_sandbox::Sandbox;
use serde_json::{Value, json};

/// The ServiceAccount the pipelines run as.
pub const SERVICE_ACCOUNT: &str = "dbops";

fn base_file(name: &str) -> PathBuf {
    crate::repo_root().join("deploy/base").join(name)
}

/// The Role of deploy/base/role.yaml.
pub fn role() -> Value {
    let text =
        std::fs::read_to_string(base_file("role.yaml")).expect("deploy/base/role.yaml is readable");
    serde_norway::from_str(&text).expect("deploy/base/role.yaml is YAML")
}

/// The rules of the Role.
pub fn rules() -> Vec<Value> {
    role()["rules"]
        .as_array()
        .cloned()
        .expect("the Role has rules")
}

/// A rule as one line (for messages).
pub fn describe(rule: &Value) -> String {
    format!(
        "apiGroups={} resources={} verbs={}",
        rule["apiGroups"], rule["resources"], rule["verbs"]
    )
}

/// Apply the ServiceAccount, the Role (with `rules`) and the RoleBinding to
/// `namespace`.
pub fn apply_with_rules(sandbox: &Sandbox, namespace: &str, rules: Vec<Value>) {
    let mut role = role();
    role["metadata"]["namespace"] = json!(namespace);
    role["rules"] = Value::Array(rules);
    let text = std::fs::read_to_string(base_file("rolebinding.yaml")).expect("rolebinding.yaml");
    let mut binding: Value = serde_norway::from_str(&text).expect("rolebinding.yaml is YAML");
    binding["metadata"]["namespace"] = json!(namespace);
    binding["subjects"][0]["namespace"] = json!(namespace);
    let account = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace}});
    for object in [account, role, binding] {
        sandbox.apply(object).expect("RBAC object applied");
    }
}

/// Apply the deploy/base RBAC unchanged.
pub fn apply(sandbox: &Sandbox, namespace: &str) {
    apply_with_rules(sandbox, namespace, rules());
}
