//! Raw JSON access to the Kubernetes API over the host's [`kube::Client`]:
//! the single place where the runner (lock, journal, Events, plugin
//! requests) talks HTTP to the API server.

use std::path::Path;

use futures::{AsyncBufReadExt, StreamExt};
use http::Request;
use kube::client::Body;
use serde_json::Value;

/// Errors talking to the API server.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The request could not be built (bad method or path).
    #[error("invalid request {method} {path}: {message}")]
    BadRequest {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Transport failure (connection refused, TLS, timeout).
    #[error("{method} {path} failed: {source}")]
    Transport {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The server answered with an unexpected status.
    #[error("{method} {path}: HTTP {status}: {message}")]
    Status {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The body is not the JSON we expected.
    #[error("{method} {path}: malformed response: {message}")]
    Malformed {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// Decoder message.
        message: String,
    },
}

impl ClusterError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClusterError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again may help (throttling, server errors, transport).
    pub fn is_transient(&self) -> bool {
        match self {
            ClusterError::Status { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            ClusterError::Transport { .. } => true,
            ClusterError::BadRequest { .. } | ClusterError::Malformed { .. } => false,
        }
    }
}

/// Attempts of [`Cluster::json`] for transient failures.
const RETRIES: u32 = 4;

/// Build a client: in-cluster config when no kubeconfig is given and we run
/// in a pod, else the kubeconfig (`--kubeconfig`, `$KUBECONFIG`,
/// `~/.kube/config`) with an optional context.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Client, String> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let parsed = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(parsed, &options)
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
        }
        None if context.is_none() && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
            kube::Config::incluster().map_err(|e| format!("in-cluster config: {e}"))?
        }
        None => kube::Config::from_kubeconfig(&options).await.map_err(|e| {
            format!("no Kubernetes configuration: {e}; pass --kubeconfig or run in a pod")
        })?,
    };
    dbops_kube_http2::client(config).map_err(|e| format!("cannot build the Kubernetes client: {e}"))
}

/// The host's API access.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
}

impl Cluster {
    /// Wrap a client.
    pub fn new(client: kube::Client) -> Cluster {
        Cluster { client }
    }

    fn build(
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Request<Vec<u8>>, ClusterError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::ACCEPT, "application/json");
        if !content_type.is_empty() {
            builder = builder.header(http::header::CONTENT_TYPE, content_type);
        }
        builder.body(body).map_err(|e| ClusterError::BadRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// One request; returns status and body whatever the status.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), ClusterError> {
        let request = Self::build(method, path, content_type, body)?.map(Body::from);
        let transport = |source| ClusterError::Transport {
            method: method.to_owned(),
            path: path.to_owned(),
            source,
        };
        let response = self.client.send(request).await.map_err(transport)?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect_bytes()
            .await
            .map_err(transport)?;
        Ok((status, bytes.to_vec()))
    }

    /// A JSON request that must succeed (2xx); `None` on 404. Throttling
    /// (429), server errors (500, 502, 503, 504) and transport failures are
    /// retried a few times with a short backoff: the host's own writes
    /// (lock, journal, Events) must survive a flaky API server. Callers
    /// handle the 409 a retried create or update may then meet.
    pub async fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, ClusterError> {
        let mut delay = std::time::Duration::from_millis(100);
        for _ in 1..RETRIES {
            match self.json_once(method, path, body).await {
                Err(e) if e.is_transient() => {
                    tracing::debug!("{e}; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay *= 3;
                }
                other => return other,
            }
        }
        self.json_once(method, path, body).await
    }

    async fn json_once(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, ClusterError> {
        let (content_type, bytes) = match body {
            Some(v) => (
                if method == "PATCH" {
                    "application/merge-patch+json"
                } else {
                    "application/json"
                },
                serde_json::to_vec(v).unwrap_or_default(),
            ),
            None => ("", Vec::new()),
        };
        let (status, bytes) = self.raw(method, path, content_type, bytes).await?;
        if status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ClusterError::Status {
                method: method.to_owned(),
                path: path.to_owned(),
                status,
                message,
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ClusterError::Malformed {
                method: method.to_owned(),
                path: path.to_owned(),
                message: e.to_string(),
            })
    }

    /// Open the connection to the API server ahead of the first real
    /// request: one read-only `GET /version`, its result ignored (the
    /// requests that matter report their own errors).
    pub async fn warm_up(self) {
        if let Err(e) = self.raw("GET", "/version", "", Vec::new()).await {
            tracing::debug!("warming up the API connection: {e}");
        }
    }

    /// GET an object; `None` when it does not exist.
    pub async fn get(&self, path: &str) -> Result<Option<Value>, ClusterError> {
        self.json("GET", path, None).await
    }

    /// Open a watch (a GET whose query has `watch=true`) as a stream of
    /// JSON lines.
    pub async fn watch_lines(
        &self,
        path: &str,
    ) -> Result<impl futures::Stream<Item = std::io::Result<String>> + Send + use<>, ClusterError>
    {
        let request = Self::build("GET", path, "", Vec::new())?;
        let reader = self
            .client
            .request_stream(request)
            .await
            .map_err(|source| ClusterError::Transport {
                method: "GET".into(),
                path: path.to_owned(),
                source,
            })?;
        Ok(reader
            .lines()
            .filter(|l| futures::future::ready(!matches!(l, Ok(l) if l.trim().is_empty()))))
    }
}

/// Percent-encode a query parameter value (label selectors, field selectors).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
