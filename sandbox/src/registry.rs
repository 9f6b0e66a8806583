//! The table of resources the sandbox serves.
//!
//! One row per resource: group, version, plural, kind, scope, short names and
//! subresources. Discovery, routing, RBAC and the store are all driven by this
//! table; a custom resource registered through
//! [`SandboxConfig::custom_resources`](crate::SandboxConfig) is one more row.

use std::collections::HashMap;
use std::sync::Arc;

/// One served resource (a row of the registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group, `""` for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Plural resource name used in URLs, e.g. `statefulsets`.
    pub plural: String,
    /// Singular name, e.g. `statefulset`.
    pub singular: String,
    /// Kind, e.g. `StatefulSet`.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// kubectl short names, e.g. `sts`.
    pub short_names: Vec<String>,
    /// Whether the resource has a `/status` subresource.
    pub status: bool,
    /// Whether the resource has a `/scale` subresource (`spec.replicas`).
    pub scale: bool,
    /// Whether the type is built into Kubernetes (strategic merge patch is
    /// only accepted for built-in types, as on a real server).
    pub builtin: bool,
    /// Discovery categories, e.g. `all`.
    pub categories: Vec<String>,
}

/// The group of review resources: they only accept `create`.
pub const REVIEW_GROUP: &str = "authorization.k8s.io";

impl ResourceDef {
    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// A custom (non-built-in) namespaced resource with a status subresource.
    pub fn custom(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.into(),
            namespaced: true,
            short_names: Vec::new(),
            status: true,
            scale: false,
            builtin: false,
            categories: Vec::new(),
        }
    }
}

/// Flags of a row in [`BUILTIN`]: namespaced, status, scale, builtin.
const NS: u8 = 1;
const STATUS: u8 = 2;
const SCALE: u8 = 4;
const BUILTIN_TYPE: u8 = 8;
const ALL: u8 = 16;

/// (group, version, plural, kind, short names, flags)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    u8,
);

/// Every resource served by default.
#[rustfmt::skip]
const BUILTIN: &[Row] = &[
    ("", "v1", "pods", "Pod", &["po"], NS | STATUS | BUILTIN_TYPE | ALL),
    ("", "v1", "configmaps", "ConfigMap", &["cm"], NS | BUILTIN_TYPE),
    ("", "v1", "secrets", "Secret", &[], NS | BUILTIN_TYPE),
    ("", "v1", "services", "Service", &["svc"], NS | STATUS | BUILTIN_TYPE | ALL),
    ("", "v1", "events", "Event", &["ev"], NS | BUILTIN_TYPE),
    ("", "v1", "namespaces", "Namespace", &["ns"], STATUS | BUILTIN_TYPE),
    ("", "v1", "serviceaccounts", "ServiceAccount", &["sa"], NS | BUILTIN_TYPE),
    ("", "v1", "nodes", "Node", &["no"], STATUS | BUILTIN_TYPE),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", &["pvc"], NS | STATUS | BUILTIN_TYPE),
    ("apps", "v1", "statefulsets", "StatefulSet", &["sts"], NS | STATUS | SCALE | BUILTIN_TYPE | ALL),
    ("apps", "v1", "deployments", "Deployment", &["deploy"], NS | STATUS | SCALE | BUILTIN_TYPE | ALL),
    ("apps", "v1", "controllerrevisions", "ControllerRevision", &[], NS | BUILTIN_TYPE),
    ("batch", "v1", "jobs", "Job", &[], NS | STATUS | BUILTIN_TYPE | ALL),
    ("batch", "v1", "cronjobs", "CronJob", &["cj"], NS | STATUS | BUILTIN_TYPE | ALL),
    ("coordination.k8s.io", "v1", "leases", "Lease", &[], NS | BUILTIN_TYPE),
    ("events.k8s.io", "v1", "events", "Event", &["ev"], NS | BUILTIN_TYPE),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", &[], NS | BUILTIN_TYPE),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", &[], NS | BUILTIN_TYPE),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", &[], BUILTIN_TYPE),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", &[], BUILTIN_TYPE),
    ("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", &[], BUILTIN_TYPE),
    ("cert-manager.io", "v1", "certificates", "Certificate", &["cert", "certs"], NS | STATUS),
    ("cert-manager.io", "v1", "issuers", "Issuer", &[], NS | STATUS),
    ("cert-manager.io", "v1", "clusterissuers", "ClusterIssuer", &[], STATUS),
    ("kubedb.com", "v1", "zookeepers", "ZooKeeper", &["zk"], NS | STATUS),
    ("kubedb.com", "v1", "kafkas", "Kafka", &["kf"], NS | STATUS),
    ("kubedb.com", "v1", "druids", "Druid", &["dr"], NS | STATUS),
    ("kubedb.com", "v1", "perconaxtradbs", "PerconaXtraDB", &["px"], NS | STATUS),
    ("apps.k8s.appscode.com", "v1", "petsets", "PetSet", &[], NS | STATUS | SCALE),
];

/// The resource table with lookups by URL and by kind.
#[derive(Debug, Clone)]
pub struct Registry {
    defs: Vec<Arc<ResourceDef>>,
    by_path: HashMap<(String, String, String), usize>,
    by_kind: HashMap<(String, String), usize>,
}

impl Registry {
    /// The built-in rows plus `extra` custom resources.
    pub fn new(extra: &[ResourceDef]) -> Self {
        let mut defs: Vec<ResourceDef> = BUILTIN
            .iter()
            .map(|(group, version, plural, kind, short, flags)| ResourceDef {
                group: (*group).into(),
                version: (*version).into(),
                plural: (*plural).into(),
                singular: kind.to_ascii_lowercase(),
                kind: (*kind).into(),
                namespaced: flags & NS != 0,
                short_names: short.iter().map(|s| (*s).to_string()).collect(),
                status: flags & STATUS != 0,
                scale: flags & SCALE != 0,
                builtin: flags & BUILTIN_TYPE != 0,
                categories: if flags & ALL != 0 {
                    vec!["all".into()]
                } else {
                    Vec::new()
                },
            })
            .collect();
        for def in extra {
            defs.retain(|d| {
                !(d.group == def.group && d.version == def.version && d.plural == def.plural)
            });
            defs.push(def.clone());
        }
        let defs: Vec<Arc<ResourceDef>> = defs.into_iter().map(Arc::new).collect();
        let mut by_path = HashMap::new();
        let mut by_kind = HashMap::new();
        for (i, d) in defs.iter().enumerate() {
            by_path.insert((d.group.clone(), d.version.clone(), d.plural.clone()), i);
            by_kind.insert((d.api_version(), d.kind.clone()), i);
        }
        Self {
            defs,
            by_path,
            by_kind,
        }
    }

    /// All rows, in table order.
    pub fn all(&self) -> &[Arc<ResourceDef>] {
        &self.defs
    }

    /// The row for a URL's group, version and plural.
    pub fn by_path(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<ResourceDef>> {
        self.by_path
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .map(|i| &self.defs[*i])
    }

    /// The row for an object's `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&Arc<ResourceDef>> {
        self.by_kind
            .get(&(api_version.to_string(), kind.to_string()))
            .map(|i| &self.defs[*i])
    }

    /// Rows of one group/version.
    pub fn group_version(&self, group: &str, version: &str) -> Vec<&Arc<ResourceDef>> {
        self.defs
            .iter()
            .filter(|d| d.group == group && d.version == version)
            .collect()
    }

    /// Distinct non-core groups with their versions, in table order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for d in self.defs.iter().filter(|d| !d.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == d.group) {
                Some((_, versions)) if !versions.contains(&d.version) => {
                    versions.push(d.version.clone())
                }
                Some(_) => {}
                None => out.push((d.group.clone(), vec![d.version.clone()])),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_by_path_and_kind_agree() {
        let r = Registry::new(&[ResourceDef::custom(
            "example.com",
            "v1",
            "Widget",
            "widgets",
        )]);
        let sts = r
            .by_path("apps", "v1", "statefulsets")
            .expect("statefulsets");
        assert_eq!(sts.kind, "StatefulSet");
        assert!(sts.scale && sts.status && sts.namespaced);
        assert_eq!(r.by_kind("apps/v1", "StatefulSet"), Some(sts));
        assert_eq!(
            r.by_kind("v1", "Namespace").map(|d| d.namespaced),
            Some(false)
        );
        assert_eq!(
            r.by_kind("example.com/v1", "Widget")
                .map(|d| d.plural.as_str()),
            Some("widgets")
        );
        assert!(r.groups().iter().any(|(g, _)| g == "kubedb.com"));
    }
}
