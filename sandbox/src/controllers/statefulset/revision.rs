//! Revisions of a set's pod template and the pods built from them. Pure
//! functions over JSON; no I/O.

use serde_json::{Map, Value, json};

use crate::controllers::hash::canonical_hash;

/// The label every pod and revision carries with the revision name.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The label a ControllerRevision carries with its hash.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// The label with the pod's own name.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label with the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The revision name of a template: `SET-HASH`, the hash taken over the
/// template's canonical JSON, so equal templates give equal names.
pub fn revision_name(set_name: &str, template: &Value) -> String {
    let hash = canonical_hash(template);
    format!("{set_name}-{}", &hash[..10])
}

/// The owner reference a set's children carry.
pub fn owner_reference(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// A ControllerRevision object for `template` (the data holds the template
/// as a patch, as the real controller stores it).
pub fn controller_revision(
    name: &str,
    namespace: &str,
    labels: &Map<String, Value>,
    owner: &Value,
    template: &Value,
    number: i64,
) -> Value {
    let mut labels = labels.clone();
    if let Some(hash) = name.rsplit('-').next() {
        labels.insert(HASH_LABEL.to_owned(), json!(hash));
    }
    let mut template = template.clone();
    if let Some(map) = template.as_object_mut() {
        map.insert("$patch".to_owned(), json!("replace"));
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owner],
        },
        "data": {"spec": {"template": template}},
        "revision": number,
    })
}

/// The template stored in a ControllerRevision, without the `$patch` marker.
pub fn template_of_revision(revision: &Value) -> Option<Value> {
    let mut template = revision.pointer("/data/spec/template")?.clone();
    if let Some(map) = template.as_object_mut() {
        map.remove("$patch");
    }
    Some(template)
}

/// The identity of a set, as its pods need it.
#[derive(Debug, Clone)]
pub struct SetIdentity<'a> {
    /// The set's name.
    pub name: &'a str,
    /// The set's namespace.
    pub namespace: &'a str,
    /// `spec.serviceName`, the pods' subdomain.
    pub service_name: Option<&'a str>,
    /// The owner reference to put on the pods.
    pub owner: &'a Value,
    /// Names of the `volumeClaimTemplates`.
    pub claims: &'a [String],
}

/// The PersistentVolumeClaim name of claim template `template` for the
/// pod with `ordinal`: `TEMPLATE-SET-ORDINAL`.
pub fn claim_name(template: &str, set: &str, ordinal: u32) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// The names of the set's `volumeClaimTemplates`.
pub fn claim_templates(templates: &[Value]) -> Vec<String> {
    templates
        .iter()
        .filter_map(|t| t.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// The pod with `ordinal` built from `template` at `revision`, with a
/// `persistentVolumeClaim` volume per claim template (unless the template
/// defines a volume of that name).
pub fn pod_from_template(
    set: &SetIdentity<'_>,
    template: &Value,
    revision: &str,
    ordinal: u32,
) -> Value {
    let name = format!("{}-{ordinal}", set.name);
    let metadata = template
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut labels = metadata
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(REVISION_LABEL.to_owned(), json!(revision));
    labels.insert(POD_NAME_LABEL.to_owned(), json!(name));
    labels.insert(POD_INDEX_LABEL.to_owned(), json!(ordinal.to_string()));
    let annotations = metadata
        .get("annotations")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(map) = spec.as_object_mut() {
        map.insert("hostname".to_owned(), json!(name));
        if let Some(service) = set.service_name.filter(|s| !s.is_empty()) {
            map.insert("subdomain".to_owned(), json!(service));
        }
        let volumes = map.entry("volumes").or_insert_with(|| json!([]));
        if let Some(volumes) = volumes.as_array_mut() {
            for claim in set.claims {
                let exists = volumes
                    .iter()
                    .any(|v| v.get("name").and_then(Value::as_str) == Some(claim));
                if !exists {
                    let claim_name = claim_name(claim, set.name, ordinal);
                    volumes.push(
                        json!({"name": claim, "persistentVolumeClaim": {"claimName": claim_name}}),
                    );
                }
            }
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": set.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [set.owner],
        },
        "spec": spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_name_ignores_key_order_and_changes_with_content() {
        let a = json!({"metadata": {"labels": {"app": "x", "tier": "db"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let b = json!({"spec": {"containers": [{"image": "i", "name": "c"}]}, "metadata": {"labels": {"tier": "db", "app": "x"}}});
        let c = json!({"spec": {"containers": [{"image": "j", "name": "c"}]}, "metadata": {"labels": {"tier": "db", "app": "x"}}});
        assert_eq!(revision_name("web", &a), revision_name("web", &b));
        assert_ne!(revision_name("web", &a), revision_name("web", &c));
        assert!(revision_name("web", &a).starts_with("web-"));
        assert_eq!(revision_name("web", &a).len(), "web-".len() + 10);
    }

    #[test]
    fn revision_round_trips_the_template() {
        let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}});
        let owner = owner_reference("apps/v1", "StatefulSet", "web", "u1");
        let labels = Map::from_iter([("app".to_owned(), json!("x"))]);
        let rev = controller_revision("web-abc", "ns", &labels, &owner, &template, 2);
        assert_eq!(rev["revision"], 2);
        assert_eq!(rev["metadata"]["labels"][HASH_LABEL], "abc");
        assert_eq!(template_of_revision(&rev), Some(template));
    }

    #[test]
    fn pod_gets_labels_owner_and_hostname() {
        let template = json!({
            "metadata": {"labels": {"app": "x"}, "annotations": {"sandbox.dbops.io/process": "tls-endpoint"}},
            "spec": {"containers": [{"name": "c"}]}
        });
        let owner = owner_reference("apps/v1", "StatefulSet", "web", "u1");
        let set = SetIdentity {
            name: "web",
            namespace: "ns",
            service_name: Some("web-pods"),
            owner: &owner,
            claims: &["data".to_owned()],
        };
        let pod = pod_from_template(&set, &template, "web-abc", 2);
        assert_eq!(pod["metadata"]["name"], "web-2");
        assert_eq!(pod["metadata"]["labels"]["app"], "x");
        assert_eq!(pod["metadata"]["labels"][REVISION_LABEL], "web-abc");
        assert_eq!(pod["metadata"]["labels"][POD_INDEX_LABEL], "2");
        assert_eq!(
            pod["metadata"]["annotations"]["sandbox.dbops.io/process"],
            "tls-endpoint"
        );
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(pod["spec"]["hostname"], "web-2");
        assert_eq!(pod["spec"]["subdomain"], "web-pods");
        assert_eq!(
            pod["spec"]["volumes"][0],
            json!({"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2"}})
        );
    }
}
