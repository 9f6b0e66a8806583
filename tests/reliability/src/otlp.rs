//! A minimal OTLP/HTTP trace receiver (POST /v1/traces, protobuf), so a
//! test sees every span a run exported, and the whole decoded export
//! requests as text (for secret scans).

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// A running receiver.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    /// Start on a free loopback port, on its own runtime.
    pub fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>> = Arc::default();
        let store = requests.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let store = store.clone();
                async move {
                    match ExportTraceServiceRequest::decode(body) {
                        Ok(request) => {
                            store.lock().expect("store").push(request);
                            let empty = ExportTraceServiceResponse::default();
                            (axum::http::StatusCode::OK, empty.encode_to_vec())
                        }
                        Err(_) => (axum::http::StatusCode::BAD_REQUEST, Vec::new()),
                    }
                }
            }),
        );
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            endpoint: format!("http://{addr}"),
            requests,
            _runtime: runtime,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.requests
            .lock()
            .expect("store")
            .iter()
            .flat_map(|r| r.resource_spans.iter())
            .flat_map(|r| r.scope_spans.iter())
            .flat_map(|s| s.spans.iter().cloned())
            .collect()
    }

    /// Every request received so far, decoded, as text (attribute values,
    /// event names and messages, status messages, resource attributes).
    pub fn text(&self) -> String {
        format!("{:?}", self.requests.lock().expect("store"))
    }
}

/// A span attribute's string form.
pub fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(|v| format!("{:?}", v.value))
}
