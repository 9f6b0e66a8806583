//! `pods/NAME/log` (`kubectl logs`): the output of the pod's process, which
//! the kubelet stand-in writes to `STATE_DIR/pods/NAMESPACE_NAME_UID/log`
//! (the layout documented in the controllers module). `tailLines` is
//! honoured; `follow` returns what is there now.

use std::collections::HashMap;
use std::path::Path;

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::Value;

use crate::status::{ApiError, ApiResult};

/// The log of `pod` as text/plain.
pub(crate) async fn pod_log(
    state_dir: &Path,
    pod: &Value,
    query: &HashMap<String, String>,
) -> ApiResult<Response<Body>> {
    let s = |ptr: &str| pod.pointer(ptr).and_then(Value::as_str).unwrap_or_default();
    let (ns, name, uid) = (
        s("/metadata/namespace"),
        s("/metadata/name"),
        s("/metadata/uid"),
    );
    let path = state_dir
        .join("pods")
        .join(format!("{ns}_{name}_{uid}"))
        .join("log");
    let text = match tokio::fs::read(&path).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::bad_request(format!(
                "pod \"{name}\" has no log: the sandbox keeps logs only of pods that run a process (annotation sandbox.dbops.io/process)"
            )));
        }
        Err(e) => {
            return Err(ApiError::internal(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let text = match query.get("tailLines").and_then(|t| t.parse::<usize>().ok()) {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            let mut tail = lines[lines.len().saturating_sub(n)..].join("\n");
            tail.push('\n');
            tail
        }
        None => text,
    };
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}
