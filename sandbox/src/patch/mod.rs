//! The four patch types: JSON patch, JSON merge patch, strategic merge
//! patch and server-side apply.

pub mod apply;
pub mod conflicts;
pub mod strategic;

use serde_json::Value;

use crate::registry::ResourceDef;
use crate::status::{ApiError, ApiResult};

/// Patch type, from the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json` (built-in types only).
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply; JSON bodies).
    Apply,
}

impl PatchType {
    /// The patch type for a content type (parameters ignored).
    pub fn from_content_type(content_type: &str) -> ApiResult<Self> {
        let mime = content_type.split(';').next().unwrap_or_default().trim();
        match mime {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Parses a patch body as JSON (apply bodies in YAML are refused with a
/// message: the kube client and kubectl both send JSON).
pub fn parse_body(body: &[u8], kind: PatchType) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|e| {
        let hint = if kind == PatchType::Apply {
            " (the sandbox accepts apply patches in JSON only, which is also valid YAML)"
        } else {
            ""
        };
        ApiError::bad_request(format!("error decoding patch body: {e}{hint}"))
    })
}

/// Applies a JSON, merge or strategic patch to `current`.
pub fn apply_patch(
    def: &ResourceDef,
    current: &Value,
    kind: PatchType,
    patch: &Value,
) -> ApiResult<Value> {
    let mut next = current.clone();
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut next, &ops).map_err(|e| {
                ApiError::invalid(
                    crate::store::res(def),
                    crate::meta::name(current).unwrap_or_default(),
                    &format!("the JSON patch could not be applied: {e}"),
                )
            })?;
        }
        PatchType::Merge => json_patch::merge(&mut next, patch),
        PatchType::Strategic if !def.builtin => {
            return Err(ApiError::unsupported_media_type(
                "application/strategic-merge-patch+json is not supported for custom resources; use a merge or JSON patch",
            ));
        }
        PatchType::Strategic => strategic::apply(&mut next, patch),
        PatchType::Apply => {
            return Err(ApiError::internal(
                "server-side apply is handled by patch::apply",
            ));
        }
    }
    // A patch that changes metadata.resourceVersion makes it a
    // precondition (409 when stale); otherwise the write is unconditional.
    if current.pointer("/metadata/resourceVersion") == next.pointer("/metadata/resourceVersion")
        && let Some(meta) = next.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.remove("resourceVersion");
    }
    Ok(next)
}
