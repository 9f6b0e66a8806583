//! RBAC authorization, evaluated like the real authorizer: a request is
//! allowed when a ClusterRoleBinding, or a RoleBinding in the request's
//! namespace, binds the identity to a role with a rule matching the verb,
//! API group, resource (`pods`, `pods/status`, `*`, `*/status`) and, when
//! the rule has `resourceNames`, the object name.

use serde_json::Value;

use crate::auth::Identity;
use crate::registry::ResourceDef;
use crate::status::{ApiError, Res};
use crate::store::{Filter, Store};

/// What a request does, for authorization.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: &'a str,
    /// The resource.
    pub def: &'a ResourceDef,
    /// Subresource, e.g. `status`.
    pub subresource: Option<&'a str>,
    /// Namespace of the request, if namespaced.
    pub namespace: Option<&'a str>,
    /// Object name, if the request names one.
    pub name: Option<&'a str>,
}

impl Attributes<'_> {
    fn resource(&self) -> String {
        match self.subresource {
            Some(sub) => format!("{}/{sub}", self.def.plural),
            None => self.def.plural.clone(),
        }
    }
}

/// Allows or denies with the real server's 403 message.
pub fn authorize(store: &Store, id: &Identity, attrs: &Attributes<'_>) -> Result<(), ApiError> {
    if id.is_superuser() || allowed(store, id, attrs) {
        return Ok(());
    }
    let res = Res {
        plural: &attrs.def.plural,
        group: &attrs.def.group,
    };
    let qualified = if attrs.def.group.is_empty() {
        attrs.def.plural.clone()
    } else {
        format!("{}.{}", attrs.def.plural, attrs.def.group)
    };
    let subject = match attrs.name {
        Some(name) => format!("{qualified} \"{name}\""),
        None => qualified,
    };
    let scope = match attrs.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let message = format!(
        "{subject} is forbidden: User \"{}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
        id.user,
        attrs.verb,
        attrs.resource(),
        attrs.def.group
    );
    Err(ApiError::forbidden(
        message,
        res,
        attrs.name.unwrap_or_default(),
    ))
}

fn allowed(store: &Store, id: &Identity, attrs: &Attributes<'_>) -> bool {
    let reg = store.registry();
    let (Some(crb), Some(rb), Some(cr), Some(role)) = (
        reg.by_kind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        reg.by_kind("rbac.authorization.k8s.io/v1", "RoleBinding"),
        reg.by_kind("rbac.authorization.k8s.io/v1", "ClusterRole"),
        reg.by_kind("rbac.authorization.k8s.io/v1", "Role"),
    ) else {
        return false;
    };
    let rules_of = |binding: &Value, ns: Option<&str>| -> Vec<Value> {
        let kind = binding
            .pointer("/roleRef/kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = binding
            .pointer("/roleRef/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let found = match (kind, ns) {
            ("ClusterRole", _) => store.get(cr, "", name),
            ("Role", Some(ns)) => store.get(role, ns, name),
            _ => return Vec::new(),
        };
        found
            .ok()
            .and_then(|o| o.value.get("rules").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    };
    let all = Filter::default();
    if let Ok(page) = store.list(crb, &all, None, None) {
        for b in page.items.iter().filter(|b| binds(&b.value, id)) {
            if rules_of(&b.value, None)
                .iter()
                .any(|r| rule_allows(r, attrs))
            {
                return true;
            }
        }
    }
    let Some(ns) = attrs.namespace else {
        return false;
    };
    let in_ns = Filter {
        namespace: Some(ns.to_string()),
        ..Filter::default()
    };
    if let Ok(page) = store.list(rb, &in_ns, None, None) {
        for b in page.items.iter().filter(|b| binds(&b.value, id)) {
            if rules_of(&b.value, Some(ns))
                .iter()
                .any(|r| rule_allows(r, attrs))
            {
                return true;
            }
        }
    }
    false
}

/// Whether a binding's subjects include the identity.
fn binds(binding: &Value, id: &Identity) -> bool {
    let Some(subjects) = binding.get("subjects").and_then(Value::as_array) else {
        return false;
    };
    subjects.iter().any(|s| {
        let kind = s.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "User" => id.user == name,
            "Group" => id.groups.iter().any(|g| g == name),
            "ServiceAccount" => {
                let ns = s
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                id.user == format!("system:serviceaccount:{ns}:{name}")
            }
            _ => false,
        }
    })
}

/// Whether one PolicyRule allows the request.
fn rule_allows(rule: &Value, attrs: &Attributes<'_>) -> bool {
    let list = |field: &str| -> Vec<&str> {
        rule.get(field)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let verbs = list("verbs");
    let groups = list("apiGroups");
    let resources = list("resources");
    let names = list("resourceNames");
    let resource = attrs.resource();
    let resource_ok = resources.iter().any(|r| {
        *r == "*"
            || *r == resource
            || (attrs
                .subresource
                .is_some_and(|sub| r.strip_prefix("*/") == Some(sub)))
    });
    let name_ok = names.is_empty() || attrs.name.is_some_and(|n| names.contains(&n));
    verbs.iter().any(|v| *v == "*" || *v == attrs.verb)
        && groups.iter().any(|g| *g == "*" || *g == attrs.def.group)
        && resource_ok
        && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_match_verbs_groups_resources_and_names() {
        let reg = crate::registry::Registry::new(&[]);
        let pods = reg.by_path("", "v1", "pods").expect("pods");
        let attrs = |verb, sub, name| Attributes {
            verb,
            def: pods,
            subresource: sub,
            namespace: Some("ns"),
            name,
        };
        let rule = json!({"verbs": ["get", "patch"], "apiGroups": [""], "resources": ["pods", "pods/status"], "resourceNames": ["a"]});
        assert!(rule_allows(&rule, &attrs("get", None, Some("a"))));
        assert!(rule_allows(
            &rule,
            &attrs("patch", Some("status"), Some("a"))
        ));
        assert!(!rule_allows(&rule, &attrs("get", None, Some("b"))));
        assert!(!rule_allows(&rule, &attrs("list", None, None)));
        assert!(!rule_allows(&rule, &attrs("delete", None, Some("a"))));
        let star = json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]});
        assert!(rule_allows(&star, &attrs("delete", Some("status"), None)));
    }
}
