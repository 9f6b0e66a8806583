//! `SelfSubjectAccessReview` (what `kubectl auth can-i` asks): evaluates
//! the caller's RBAC permissions for the attributes in the request.

use axum::body::Body;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::json_response;
use crate::auth::Identity;
use crate::rbac::{self, Attributes};
use crate::registry::ResourceDef;
use crate::status::{ApiError, ApiResult};
use crate::store::Store;

/// Answers a SelfSubjectAccessReview body for `identity`.
pub(crate) fn self_subject_access_review(
    store: &Store,
    identity: &Identity,
    body: &[u8],
) -> ApiResult<Response<Body>> {
    let mut review: Value = match super::proto::self_subject_access_review(body) {
        Some(review) => review,
        None => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "invalid SelfSubjectAccessReview (JSON or protobuf expected): {e}"
            ))
        })?,
    };
    let (allowed, reason) = match review.pointer("/spec/resourceAttributes") {
        Some(attrs) => {
            let s = |field: &str| {
                attrs
                    .get(field)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
            };
            let group = s("group").unwrap_or_default();
            let resource = s("resource").unwrap_or("*");
            let def = store
                .registry()
                .all()
                .iter()
                .find(|d| d.group == group && d.plural == resource)
                .map(|d| (**d).clone())
                .unwrap_or_else(|| ResourceDef {
                    namespaced: s("namespace").is_some(),
                    ..ResourceDef::custom(group, "v1", "", resource)
                });
            let attributes = Attributes {
                verb: s("verb").unwrap_or("get"),
                def: &def,
                subresource: s("subresource"),
                namespace: s("namespace"),
                name: s("name"),
            };
            match rbac::authorize(store, identity, &attributes) {
                Ok(()) => (true, "allowed by RBAC".to_string()),
                // The real authorizer gives no reason for a denial.
                Err(_) => (false, String::new()),
            }
        }
        None => (
            identity.is_superuser(),
            "non-resource URLs are allowed for system:masters only".to_string(),
        ),
    };
    review["status"] = json!({"allowed": allowed, "reason": reason});
    Ok(json_response(StatusCode::CREATED, &review))
}
