//! The HTTP front: every request goes route -> authenticate -> authorize
//! (RBAC) -> faults -> verb handler, and every failure is answered with a
//! `Status` object.

mod crud;
mod discovery;
mod logs;
mod proto;
mod review;
mod route;
mod table;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::auth::{Identity, Tokens};
use crate::faults::{FaultRequest, Faults};
use crate::rbac::{self, Attributes};
use crate::status::{ApiError, ApiResult};
use crate::store::Store;
use route::{Endpoint, ResourceRequest};

/// Everything a request handler needs.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Objects.
    pub store: Arc<Store>,
    /// Bearer tokens.
    pub tokens: Arc<Tokens>,
    /// Fault rules.
    pub faults: Faults,
    /// Ends watches on shutdown.
    pub shutdown: CancellationToken,
    /// How often watches with `allowWatchBookmarks` get a bookmark.
    pub bookmark_interval: Duration,
    /// `host:port` the server listens on (for `/api`).
    pub address: String,
    /// The controllers' state directory (pod logs for `pods/log`).
    pub state_dir: std::path::PathBuf,
}

/// The axum app: a single fallback handler, since Kubernetes URLs are
/// routed by the registry, not by fixed patterns.
pub fn router(state: AppState) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// The parsed request, handed to the verb handlers.
pub(crate) struct Call {
    pub req: ResourceRequest,
    pub verb: &'static str,
    pub query: HashMap<String, String>,
    pub content_type: String,
    pub accept: String,
    pub body: Bytes,
    pub close_watch: Option<(Option<usize>, Option<Duration>)>,
}

async fn handle(State(state): State<AppState>, request: Request<Body>) -> Response<Body> {
    match serve(&state, request).await {
        Ok(response) => response,
        Err(e) => error_response(&e),
    }
}

async fn serve(state: &AppState, request: Request<Body>) -> ApiResult<Response<Body>> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query().unwrap_or_default());
    let endpoint = route::route(state.store.registry(), &path)?;
    let reg = state.store.registry();
    match &endpoint {
        Endpoint::Version => return Ok(json_response(StatusCode::OK, &discovery::version())),
        Endpoint::Health => return Ok(text_response(StatusCode::OK, "ok")),
        _ => {}
    }
    let identity = authenticate(&state.tokens, &parts.headers)?;
    let req = match endpoint {
        Endpoint::CoreVersions => {
            return Ok(json_response(
                StatusCode::OK,
                &discovery::core_versions(&state.address),
            ));
        }
        Endpoint::Groups => return Ok(json_response(StatusCode::OK, &discovery::groups(reg))),
        Endpoint::Group(g) => {
            return Ok(json_response(StatusCode::OK, &discovery::group(reg, &g)?));
        }
        Endpoint::Resources(g, v) => {
            return Ok(json_response(
                StatusCode::OK,
                &discovery::resources(reg, &g, &v)?,
            ));
        }
        Endpoint::Version | Endpoint::Health => unreachable_endpoint()?,
        Endpoint::Resource(req) => req,
    };
    let verb = req.verb(&parts.method, &query)?;
    tracing::debug!(
        target: "dbops_sandbox::requests",
        user = %identity.user,
        version = ?parts.version,
        "{} {}{}",
        parts.method,
        path,
        parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default()
    );
    if req.def.group == crate::registry::REVIEW_GROUP {
        if verb != "create" {
            return Err(ApiError::method_not_allowed(&format!(
                "{verb} {}",
                req.def.plural
            )));
        }
        let body = axum::body::to_bytes(body, 1 << 20)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        return review::self_subject_access_review(&state.store, &identity, &body);
    }
    let attrs = Attributes {
        verb,
        def: &req.def,
        subresource: req.subresource.as_deref(),
        namespace: req.namespace.as_deref(),
        name: req.name.as_deref(),
    };
    rbac::authorize(&state.store, &identity, &attrs)?;
    let mut close_watch = None;
    if !identity.system {
        let decision = state.faults.decide(&FaultRequest {
            verb,
            resource: &req.def.plural,
            group: &req.def.group,
            namespace: req.namespace.as_deref(),
            name: req.name.as_deref(),
        });
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        if let Some(e) = decision.error {
            return Err(e);
        }
        close_watch = decision.close_watch;
    }
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = if parts.method == Method::GET {
        Bytes::new()
    } else {
        axum::body::to_bytes(body, 64 << 20)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?
    };
    let (content_type, body) = if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        let obj = proto::object(&body).ok_or_else(|| {
            ApiError::unsupported_body(format!(
                "the sandbox reads {content_type} bodies only for Namespaces, ConfigMaps, Secrets and ServiceAccounts; send JSON (e.g. kubectl apply -f)"
            ))
        })?;
        (
            "application/json".to_string(),
            Bytes::from(serde_json::to_vec(&obj).unwrap_or_default()),
        )
    } else {
        (content_type, body)
    };
    let call = Call {
        req,
        verb,
        query,
        content_type,
        accept,
        body,
        close_watch,
    };
    crud::dispatch(state, call).await
}

fn unreachable_endpoint() -> ApiResult<ResourceRequest> {
    Err(ApiError::internal("endpoint handled above"))
}

fn authenticate(tokens: &Tokens, headers: &http::HeaderMap) -> ApiResult<Identity> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    let identity = tokens
        .authenticate(token)
        .ok_or_else(ApiError::unauthorized)?;
    impersonate(identity, headers)
}

/// `Impersonate-User` / `Impersonate-Group` (kubectl `--as`, `--as-group`):
/// allowed for the admin (as `system:masters` may on a real server); the
/// request is then authorized as the impersonated user.
fn impersonate(identity: Identity, headers: &http::HeaderMap) -> ApiResult<Identity> {
    let Some(user) = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(identity);
    };
    if !identity.is_superuser() || identity.system {
        return Err(ApiError::forbidden_message(format!(
            "users \"{user}\" is forbidden: User \"{}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
            identity.user
        )));
    }
    let mut groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    if let Some(rest) = user.strip_prefix("system:serviceaccount:")
        && let Some((ns, _)) = rest.split_once(':')
    {
        groups.push("system:serviceaccounts".into());
        groups.push(format!("system:serviceaccounts:{ns}"));
    }
    groups.push("system:authenticated".into());
    Ok(Identity {
        user: user.to_string(),
        groups,
        system: false,
    })
}

/// Decodes `a=b&c=d` (percent-decoding values).
fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2]))
            {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// A JSON response from a value.
pub(crate) fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    bytes_response(
        code,
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    )
}

/// A JSON response from serialized bytes.
pub(crate) fn bytes_response(code: StatusCode, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn text_response(code: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// The `Status` response of an error (with `Retry-After` for 429).
pub(crate) fn error_response(e: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json_response(code, &e.to_status());
    if let Some(secs) = e.retry_after()
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query("labelSelector=app%3Dzk%2Ctier+in+(a)&watch=true&x");
        assert_eq!(q["labelSelector"], "app=zk,tier in (a)");
        assert_eq!(q["watch"], "true");
        assert_eq!(q["x"], "");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
