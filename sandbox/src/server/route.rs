//! URL routing: which resource, namespace, name and subresource a path
//! names, and which verb a method plus query means.

use std::collections::HashMap;
use std::sync::Arc;

use http::Method;

use crate::registry::{Registry, ResourceDef};
use crate::status::{ApiError, ApiResult};

/// A request for a non-resource URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/GROUP`.
    Group(String),
    /// `/api/v1` or `/apis/GROUP/VERSION`.
    Resources(String, String),
    /// A resource URL.
    Resource(ResourceRequest),
}

/// A resource URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    /// The resource.
    pub def: Arc<ResourceDef>,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Object name from the path.
    pub name: Option<String>,
    /// Subresource from the path (`status`, `scale`).
    pub subresource: Option<String>,
    /// Legacy `/watch/` prefix.
    pub watch_prefix: bool,
}

impl ResourceRequest {
    /// The verb of this request for RBAC, faults and dispatch.
    pub fn verb(
        &self,
        method: &Method,
        query: &HashMap<String, String>,
    ) -> ApiResult<&'static str> {
        let watch =
            self.watch_prefix || query.get("watch").is_some_and(|w| w == "true" || w == "1");
        Ok(match (method.as_str(), self.name.is_some()) {
            ("GET", true) if watch => "watch",
            ("GET", true) => "get",
            ("GET", false) if watch => "watch",
            ("GET", false) => "list",
            ("POST", false) => "create",
            ("PUT", true) => "update",
            ("PATCH", true) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            (m, _) => {
                return Err(ApiError::method_not_allowed(&format!(
                    "{m} {}",
                    self.def.plural
                )));
            }
        })
    }
}

/// Parses a request path.
pub fn route(registry: &Registry, path: &str) -> ApiResult<Endpoint> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let not_found = || ApiError::no_route(path);
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Ok(Endpoint::Version),
        ["healthz" | "livez" | "readyz", ..] => return Ok(Endpoint::Health),
        ["api"] => return Ok(Endpoint::CoreVersions),
        ["apis"] => return Ok(Endpoint::Groups),
        ["apis", group] => return Ok(Endpoint::Group((*group).into())),
        ["api", version] => return Ok(Endpoint::Resources(String::new(), (*version).into())),
        ["apis", group, version] => {
            return Ok(Endpoint::Resources((*group).into(), (*version).into()));
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(not_found()),
    };
    let (watch_prefix, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && registry
            .by_path(group, version, rest[2])
            .is_some_and(|d| d.namespaced);
    let (namespace, plural, name, sub) = if namespaced_path {
        (Some(rest[1]), rest[2], rest.get(3), rest.get(4))
    } else {
        (
            None,
            *rest.first().ok_or_else(not_found)?,
            rest.get(1),
            rest.get(2),
        )
    };
    let extra = if namespaced_path {
        rest.len() > 5
    } else {
        rest.len() > 3
    };
    let def = registry
        .by_path(group, version, plural)
        .ok_or_else(not_found)?;
    if extra || (namespace.is_some() && !def.namespaced) {
        return Err(not_found());
    }
    if let Some(sub) = sub {
        let known = (*sub == "status" && def.status)
            || (*sub == "scale" && def.scale)
            || (*sub == "finalize" && def.plural == "namespaces")
            || (*sub == "log" && def.group.is_empty() && def.plural == "pods");
        if !known {
            return Err(not_found());
        }
    }
    if def.namespaced && namespace.is_none() && name.is_some() {
        return Err(not_found());
    }
    Ok(Endpoint::Resource(ResourceRequest {
        def: def.clone(),
        namespace: namespace.map(|s| (*s).to_string()),
        name: name.map(|s| (*s).to_string()),
        subresource: sub.map(|s| (*s).to_string()),
        watch_prefix,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(path: &str) -> ResourceRequest {
        match route(&Registry::new(&[]), path).expect(path) {
            Endpoint::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths() {
        let p = r("/api/v1/namespaces/ns/pods/p/status");
        assert_eq!(
            (
                p.def.plural.as_str(),
                p.namespace.as_deref(),
                p.name.as_deref(),
                p.subresource.as_deref()
            ),
            ("pods", Some("ns"), Some("p"), Some("status"))
        );
        let n = r("/api/v1/namespaces/ns");
        assert_eq!(
            (n.def.plural.as_str(), n.name.as_deref(), n.namespace),
            ("namespaces", Some("ns"), None)
        );
        let all = r("/apis/apps/v1/statefulsets");
        assert!(all.name.is_none() && all.namespace.is_none());
        assert!(r("/api/v1/watch/namespaces/ns/pods").watch_prefix);
        let reg = Registry::new(&[]);
        assert!(route(&reg, "/api/v1/namespaces/ns/pods/p/exec").is_err());
        assert!(route(&reg, "/api/v1/pods/p").is_err());
        assert_eq!(
            route(&reg, "/apis/apps/v1").expect("rl"),
            Endpoint::Resources("apps".into(), "v1".into())
        );
    }
}
