//! Target discovery: the objects of the pipeline's target kind that match
//! `--targets-selector`, in one namespace or all of them.
//!
//! The kind is the pipeline's database custom resource when `[target]` has
//! a `[target.database]` table (e.g. KubeDB `ZooKeeper` objects), else its
//! workload (StatefulSet, or KubeDB PetSet).

use serde_json::Value;

use crate::pipeline::Pipeline;
use crate::run::cluster::{Cluster, ClusterError, encode};

/// One database of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FleetTarget {
    /// Its namespace.
    pub namespace: String,
    /// Its name (the pipeline's `target.name`).
    pub name: String,
}

impl std::fmt::Display for FleetTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One namespace.
    Namespace(String),
    /// Every namespace (needs a ClusterRole that may list the kind).
    All,
}

/// What kind of object is a target, and which `--set` keys name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetKind {
    /// `group/version` or `v1`.
    pub api_version: String,
    /// Kind, for messages.
    pub kind: String,
    /// Plural resource name in the URL.
    pub plural: String,
    /// The `target.*.name` key to set besides `target.name`.
    pub name_key: &'static str,
}

/// Listing the targets failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot list {kind} matching {selector:?} in {scope}: {source}; check the selector and that dbops may list {kind} there"
)]
pub struct DiscoveryError {
    kind: String,
    selector: String,
    scope: String,
    #[source]
    source: ClusterError,
}

impl TargetKind {
    /// The target kind of `pipeline`.
    pub fn of(pipeline: &Pipeline) -> TargetKind {
        match &pipeline.target.database {
            Some(db) => TargetKind {
                api_version: db.api_version.clone(),
                kind: db.kind.clone(),
                plural: db.plural.clone(),
                name_key: "target.database.name",
            },
            None => {
                let w = &pipeline.target.workload;
                TargetKind {
                    api_version: w.api_version.clone(),
                    kind: w.kind.clone(),
                    plural: format!("{}s", w.kind.to_lowercase()),
                    name_key: "target.workload.name",
                }
            }
        }
    }

    fn path(&self, scope: &Scope) -> String {
        let base = if self.api_version.contains('/') {
            format!("/apis/{}", self.api_version)
        } else {
            format!("/api/{}", self.api_version)
        };
        match scope {
            Scope::Namespace(ns) => format!("{base}/namespaces/{ns}/{}", self.plural),
            Scope::All => format!("{base}/{}", self.plural),
        }
    }
}

/// Every object of `kind` matching `selector` in `scope` (all pages).
pub async fn discover(
    cluster: &Cluster,
    kind: &TargetKind,
    selector: &str,
    scope: &Scope,
) -> Result<Vec<FleetTarget>, DiscoveryError> {
    let fail = |source| DiscoveryError {
        kind: kind.kind.clone(),
        selector: selector.to_owned(),
        scope: match scope {
            Scope::Namespace(ns) => format!("namespace {ns}"),
            Scope::All => "all namespaces".into(),
        },
        source,
    };
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut path = format!(
            "{}?limit=500&labelSelector={}",
            kind.path(scope),
            encode(selector)
        );
        if let Some(token) = &next {
            path.push_str(&format!("&continue={}", encode(token)));
        }
        let page = cluster.get(&path).await.map_err(fail)?.unwrap_or_default();
        found.extend(items(&page));
        next = page
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        if next.is_none() {
            return Ok(found);
        }
    }
}

fn items(page: &Value) -> impl Iterator<Item = FleetTarget> + '_ {
    page.get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let meta = item.get("metadata")?;
            Some(FleetTarget {
                namespace: meta.get("namespace")?.as_str()?.to_owned(),
                name: meta.get("name")?.as_str()?.to_owned(),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_encoding() {
        let sts = TargetKind {
            api_version: "apps/v1".into(),
            kind: "StatefulSet".into(),
            plural: "statefulsets".into(),
            name_key: "target.workload.name",
        };
        assert_eq!(
            sts.path(&Scope::Namespace("db".into())),
            "/apis/apps/v1/namespaces/db/statefulsets"
        );
        assert_eq!(sts.path(&Scope::All), "/apis/apps/v1/statefulsets");
        assert_eq!(
            encode("app=zk,tier in (a b)"),
            "app%3Dzk%2Ctier%20in%20%28a%20b%29"
        );
    }
}
