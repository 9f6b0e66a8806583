//! Errors of the API as `meta/v1` `Status` objects, worded like the real server.

use serde_json::{Value, json};

/// A failed API request: becomes a `Status` body with the same HTTP code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason, e.g. `NotFound`, `Conflict`.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `details` of the Status (name, group, kind, retryAfterSeconds).
    pub details: Option<Value>,
}

/// `Result` of API operations.
pub type ApiResult<T> = Result<T, ApiError>;

/// Resource identity for error messages: plural and group.
#[derive(Debug, Clone, Copy)]
pub struct Res<'a> {
    /// Plural resource name, e.g. `pods`.
    pub plural: &'a str,
    /// API group, `""` for core.
    pub group: &'a str,
}

impl Res<'_> {
    /// `pods` or `statefulsets.apps`, as the real server qualifies names.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn details(&self, name: &str) -> Value {
        json!({"name": name, "group": self.group, "kind": self.plural})
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String, details: Option<Value>) -> Self {
        Self {
            code,
            reason,
            message,
            details,
        }
    }

    /// 404: `pods "x" not found`.
    pub fn not_found(res: Res<'_>, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", res.qualified()),
            Some(res.details(name)),
        )
    }

    /// 404 for a URL that names no resource.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
            None,
        )
    }

    /// 409: `pods "x" already exists`.
    pub fn already_exists(res: Res<'_>, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", res.qualified()),
            Some(res.details(name)),
        )
    }

    /// 409: stale resourceVersion on update.
    pub fn conflict(res: Res<'_>, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                res.qualified()
            ),
            Some(res.details(name)),
        )
    }

    /// The standard "object has been modified" conflict.
    pub fn stale(res: Res<'_>, name: &str) -> Self {
        Self::conflict(
            res,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409: server-side apply conflicts with other field managers.
    pub fn apply_conflict(
        res: Res<'_>,
        name: &str,
        conflicts: &[crate::patch::conflicts::Conflict],
    ) -> Self {
        let mut details = res.details(name);
        details["causes"] = crate::patch::conflicts::causes(conflicts);
        Self::new(
            409,
            "Conflict",
            crate::patch::conflicts::message(conflicts),
            Some(details),
        )
    }

    /// 410: too old resource version (a watch from before the kept history).
    pub fn gone(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
            None,
        )
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), None)
    }

    /// 422: the object is invalid.
    pub fn invalid(res: Res<'_>, name: &str, why: &str) -> Self {
        Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {why}", res.qualified()),
            Some(res.details(name)),
        )
    }

    /// 405 for a verb a path does not support.
    pub fn method_not_allowed(what: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({what})"),
            None,
        )
    }

    /// 415 for an unsupported patch content type.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
            None,
        )
    }

    /// 415 for a request body in a format the sandbox cannot read.
    pub fn unsupported_body(message: String) -> Self {
        Self::new(415, "UnsupportedMediaType", message, None)
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized".into(), None)
    }

    /// 403 with the real authorizer's message.
    pub fn forbidden(message: String, res: Res<'_>, name: &str) -> Self {
        Self::new(403, "Forbidden", message, Some(res.details(name)))
    }

    /// 403 with a message and no details.
    pub fn forbidden_message(message: String) -> Self {
        Self::new(403, "Forbidden", message, None)
    }

    /// 429 with `retryAfterSeconds`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later".into(),
            Some(json!({"retryAfterSeconds": retry_after_secs})),
        )
    }

    /// 500.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
            None,
        )
    }

    /// 409 for a precondition (uid / resourceVersion) that does not hold.
    pub fn precondition(res: Res<'_>, name: &str, why: String) -> Self {
        Self::conflict(res, name, &why)
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }

    /// Seconds for a `Retry-After` header, when this is a 429.
    pub fn retry_after(&self) -> Option<u64> {
        self.details.as_ref()?.get("retryAfterSeconds")?.as_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_the_real_server() {
        let pods = Res {
            plural: "pods",
            group: "",
        };
        assert_eq!(
            ApiError::not_found(pods, "x").message,
            "pods \"x\" not found"
        );
        let sts = Res {
            plural: "statefulsets",
            group: "apps",
        };
        let e = ApiError::stale(sts, "db");
        assert_eq!(e.code, 409);
        assert!(
            e.message
                .starts_with("Operation cannot be fulfilled on statefulsets.apps \"db\"")
        );
        let s = e.to_status();
        assert_eq!(s["reason"], "Conflict");
        assert_eq!(s["details"]["kind"], "statefulsets");
        assert_eq!(ApiError::too_many_requests(3).retry_after(), Some(3));
    }
}
