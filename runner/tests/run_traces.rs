//! End-to-end: one trace per run, received by real OTLP receivers: the
//! fake-opentelemetry-collector crate over gRPC, and a small OTLP/HTTP
//! receiver below (that crate speaks gRPC only) decoding
//! `ExportTraceServiceRequest` protobufs with opentelemetry-proto. Checks
//! the span tree, attributes, error status and that TRACEPARENT becomes the
//! parent.

use crate::common;

use std::time::Duration;

use common::{World, header, text};
use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use tokio::sync::mpsc;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

const STEPS: &str = r#"
[[step]]
id = "a"
uses = "test-step"
with = { span = "hello" }

[[step]]
id = "b"
uses = "test-step"
with = { fail = "b fails on purpose" }
"#;

/// The value of an attribute as the collector crate renders it
/// (`Some(AnyValue { value: Some(StringValue("x")) })`), unwrapped.
fn attr(span: &ExportedSpan, key: &str) -> String {
    let raw = span.attributes.get(key).cloned().unwrap_or_default();
    if let Some(rest) = raw.split_once("Value(").map(|(_, r)| r) {
        let inner = rest.split(')').next().unwrap_or_default();
        return inner.trim_matches('"').to_owned();
    }
    raw
}

fn one<'a>(spans: &'a [ExportedSpan], name: &str, step: Option<&str>) -> &'a ExportedSpan {
    let found: Vec<&ExportedSpan> = spans
        .iter()
        .filter(|s| s.name == name && step.is_none_or(|id| attr(s, "step.id") == id))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one {name} {step:?} span in {spans:#?}"
    );
    found[0]
}

fn is_error(span: &ExportedSpan) -> bool {
    span.status
        .as_ref()
        .is_some_and(|s| s.code.contains("ERROR"))
}

/// Run the failing pipeline with OTLP configured; returns the journal's trace id.
fn run_with_otlp(w: &World, ns: &str, env: &[(&str, String)]) -> String {
    let p = w.pipeline(ns, &(header(ns, "db1", "halt") + STEPS));
    let run_id = format!("{ns}-1");
    let mut cmd = w.run_cmd(&p, &run_id, &[]);
    cmd.env("TRACEPARENT", format!("00-{TRACE_ID}-{PARENT_SPAN}-01"));
    cmd.env("OTEL_SERVICE_NAME", "dbops-test");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run dbops");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let journal = w.journal(ns, &run_id).expect("journal");
    journal["trace_id"].as_str().expect("trace id").to_owned()
}

fn check_tree(spans: &[ExportedSpan], ns: &str) {
    for s in spans {
        assert_eq!(
            s.trace_id, TRACE_ID,
            "every span is in the TRACEPARENT trace: {s:#?}"
        );
    }
    let root = one(spans, "dbops.run", None);
    assert_eq!(
        root.parent_span_id, PARENT_SPAN,
        "TRACEPARENT is the parent"
    );
    assert_eq!(attr(root, "pipeline"), "test");
    assert_eq!(attr(root, "operation"), "test");
    assert_eq!(attr(root, "db.system"), "generic");
    assert_eq!(attr(root, "k8s.namespace.name"), ns);
    assert_eq!(attr(root, "dbops.target"), "db1");
    assert_eq!(attr(root, "dbops.run_id"), format!("{ns}-1"));
    assert_eq!(attr(root, "dbops.outcome"), "failed");
    assert!(is_error(root), "failed run has error status: {root:#?}");

    let a = one(spans, "dbops.step", Some("a"));
    let b = one(spans, "dbops.step", Some("b"));
    for step in [a, b] {
        assert_eq!(
            step.parent_span_id, root.span_id,
            "steps are children of the run"
        );
        assert_eq!(attr(step, "step.plugin"), "test-step");
    }
    assert!(!is_error(a));
    assert!(is_error(b), "failed step has error status: {b:#?}");
    assert!(
        b.status
            .as_ref()
            .is_some_and(|s| s.message.contains("b fails on purpose"))
    );

    let work = one(spans, "test.work", None);
    assert_eq!(
        work.parent_span_id, a.span_id,
        "plugin spans are children of their step"
    );
    assert_eq!(attr(work, "test.value"), "hello");
}

#[test]
fn spans_reach_an_otlp_grpc_collector_with_traceparent_as_parent() {
    let w = World::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut collector = rt
        .block_on(FakeCollectorServer::start())
        .expect("collector");
    let trace_id = run_with_otlp(
        &w,
        "gr",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
        ],
    );
    assert_eq!(trace_id, TRACE_ID, "the journal records the trace id");
    // The process flushed before exiting; the spans are already here.
    let spans = rt.block_on(collector.exported_spans(4, Duration::from_secs(10)));
    check_tree(&spans, "gr");
}

/// A minimal OTLP/HTTP receiver: POST /v1/traces with a protobuf body.
async fn http_receiver() -> (String, mpsc::UnboundedReceiver<ExportedSpan>) {
    use axum::body::Bytes;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let tx = tx.clone();
            async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return (axum::http::StatusCode::BAD_REQUEST, Vec::new());
                };
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            let _ = tx.send(ExportedSpan::from(span));
                        }
                    }
                }
                let empty = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::default();
                (axum::http::StatusCode::OK, empty.encode_to_vec())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), rx)
}

#[test]
fn spans_reach_an_otlp_http_protobuf_receiver() {
    let w = World::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (endpoint, mut rx) = rt.block_on(http_receiver());
    let trace_id = run_with_otlp(
        &w,
        "ht",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
        ],
    );
    assert_eq!(trace_id, TRACE_ID);
    let mut spans = Vec::new();
    while let Ok(span) = rx.try_recv() {
        spans.push(span);
    }
    check_tree(&spans, "ht");
}

#[test]
fn without_an_endpoint_nothing_is_exported_but_runs_get_a_trace_id() {
    let w = World::start();
    let p = w.pipeline(
        "none",
        &(header("no", "db1", "halt") + "\n[[step]]\nid = \"a\"\nuses = \"test-step\"\n"),
    );
    let out = w.run(&p, "no-1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let journal = w.journal("no", "no-1").expect("journal");
    let trace_id = journal["trace_id"].as_str().unwrap_or_default();
    assert_eq!(trace_id.len(), 32);
    assert_ne!(trace_id, "0".repeat(32));
}
