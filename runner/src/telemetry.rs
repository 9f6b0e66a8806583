//! Logs and traces: the one place where tracing and OpenTelemetry are set up.
//!
//! - Logs go to stderr, readable text (`--log-format text`, the default) or
//!   JSON lines (`--log-format json`, for Jobs). `DBOPS_LOG` (or `RUST_LOG`)
//!   sets the filter, e.g. `debug` or `info,dbops=debug`.
//! - Every run is one trace: spans always get OpenTelemetry ids (so the
//!   trace id can go into the journal and on Events), but spans are
//!   EXPORTED only when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set. Without them no network
//!   connection is attempted.
//! - The protocol comes from `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` /
//!   `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf` (the default,
//!   as in the OpenTelemetry specification). `OTEL_SERVICE_NAME` and
//!   `OTEL_RESOURCE_ATTRIBUTES` are honoured; the service name defaults to
//!   `dbops`.
//! - `TRACEPARENT` (and `TRACESTATE`) in the environment become the parent
//!   of the run's root span ([`parent_from_env`]).
//! - [`Telemetry::shutdown`] flushes; call it on every exit path.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable progress: time, level and message, one line per event.
    #[default]
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Errors setting up telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (bad endpoint, protocol).
    #[error(
        "cannot set up the OTLP trace exporter ({protocol}): {message}; check OTEL_EXPORTER_OTLP_* variables"
    )]
    Exporter {
        /// The protocol in use.
        protocol: &'static str,
        /// What failed.
        message: String,
    },
    /// A global subscriber was already installed.
    #[error("cannot install the log subscriber: {0}")]
    Subscriber(String),
}

/// The installed telemetry; flush it with [`Telemetry::shutdown`].
pub struct Telemetry {
    provider: SdkTracerProvider,
    /// Whether spans are exported (an OTLP endpoint is configured).
    pub exporting: bool,
}

const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

/// Whether the environment configures an OTLP trace endpoint.
pub fn export_configured() -> bool {
    ENDPOINT_VARS.iter().any(|v| env_set(v))
}

fn wants_grpc() -> bool {
    [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok().filter(|p| !p.trim().is_empty()))
    .is_some_and(|p| p.trim().eq_ignore_ascii_case("grpc"))
}

fn resource() -> Resource {
    let mut builder = Resource::builder();
    let named_in_env = env_set("OTEL_SERVICE_NAME")
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    if !named_in_env {
        builder = builder.with_service_name("dbops");
    }
    builder
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build()
}

fn build_provider(
    rt: &tokio::runtime::Handle,
) -> Result<(SdkTracerProvider, bool), TelemetryError> {
    let builder = SdkTracerProvider::builder().with_resource(resource());
    if !export_configured() {
        return Ok((builder.build(), false));
    }
    let exporter = if wants_grpc() {
        // tonic spawns its connection task on the runtime it is built in.
        let _entered = rt.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| TelemetryError::Exporter {
                protocol: "grpc",
                message: e.to_string(),
            })?
    } else {
        // The blocking HTTP client must be built outside the runtime.
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| TelemetryError::Exporter {
                protocol: "http/protobuf",
                message: e.to_string(),
            })?
    };
    Ok((builder.with_batch_exporter(exporter).build(), true))
}

impl Telemetry {
    /// Install logging and tracing for the process. Call from outside the
    /// runtime (not inside `block_on`).
    pub fn init(
        format: LogFormat,
        rt: &tokio::runtime::Handle,
    ) -> Result<Telemetry, TelemetryError> {
        let (provider, exporting) = build_provider(rt)?;
        let tracer = provider.tracer("dbops");
        let filter = std::env::var("DBOPS_LOG")
            .or_else(|_| std::env::var("RUST_LOG"))
            .ok()
            .and_then(|f| EnvFilter::try_new(f).ok())
            .unwrap_or_else(|| {
                EnvFilter::new("info,kube=warn,hyper=warn,tower=warn,h2=warn,tonic=warn,opentelemetry=warn,opentelemetry_sdk=warn,reqwest=warn")
            });
        let fmt_layer = match format {
            LogFormat::Text => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .event_format(Progress)
                .boxed(),
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .boxed(),
        };
        // The log filter applies to the log output only: the run's spans
        // (and so its trace id, in the journal and on Events) must exist
        // even when the user asks for `DBOPS_LOG=warn`.
        let span_filter = EnvFilter::new(
            "info,kube=warn,hyper=warn,tower=warn,h2=warn,tonic=warn,opentelemetry=warn,opentelemetry_sdk=warn,reqwest=warn",
        );
        tracing_subscriber::registry()
            .with(fmt_layer.with_filter(filter))
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(span_filter),
            )
            .try_init()
            .map_err(|e| TelemetryError::Subscriber(e.to_string()))?;
        Ok(Telemetry {
            provider,
            exporting,
        })
    }

    /// Export every finished span and stop the exporter. Safe to call more
    /// than once; errors are reported on stderr (logging may be gone).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.force_flush() {
            eprintln!("dbops: flushing traces failed: {e}");
        }
        if let Err(e) = self.provider.shutdown() {
            // Already shut down is fine.
            if !e.to_string().contains("already") {
                eprintln!("dbops: stopping the trace exporter failed: {e}");
            }
        }
    }
}

/// The text format: `HH:MM:SS.mmm LEVEL message key=value`, one line per
/// event, without the span context (messages name their step).
struct Progress;

impl<S, N> FormatEvent<S, N> for Progress
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = *event.metadata().level();
        let (start, end) = match (writer.has_ansi_escapes(), level) {
            (true, tracing::Level::ERROR) => ("\x1b[31m", "\x1b[0m"),
            (true, tracing::Level::WARN) => ("\x1b[33m", "\x1b[0m"),
            (true, _) => ("\x1b[2m", "\x1b[0m"),
            (false, _) => ("", ""),
        };
        write!(
            writer,
            "{start}{} {level:>5}{end} ",
            chrono::Utc::now().format("%H:%M:%S%.3f")
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The parent context from `TRACEPARENT`/`TRACESTATE`, if they hold a valid one.
pub fn parent_from_env() -> Option<opentelemetry::Context> {
    let traceparent = std::env::var("TRACEPARENT").ok()?;
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_owned(), traceparent.trim().to_owned());
    if let Ok(state) = std::env::var("TRACESTATE") {
        carrier.insert("tracestate".to_owned(), state);
    }
    let cx = TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// The trace id (32 hex digits) of a span; all zeros when tracing is off.
pub fn trace_id(span: &tracing::Span) -> String {
    span.context().span().span_context().trace_id().to_string()
}

/// Mark a span failed with a message (OpenTelemetry status `Error`).
pub fn set_error(span: &tracing::Span, message: &str) {
    span.set_status(opentelemetry::trace::Status::error(message.to_owned()));
}

/// Set an OpenTelemetry attribute from a JSON value.
pub fn set_json_attribute(span: &tracing::Span, key: &str, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Bool(b) => span.set_attribute(key.to_owned(), *b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => span.set_attribute(key.to_owned(), i),
            None => span.set_attribute(key.to_owned(), n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => span.set_attribute(key.to_owned(), s.clone()),
        Value::Null => {}
        other => span.set_attribute(key.to_owned(), other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parsing() {
        let mut carrier = HashMap::new();
        carrier.insert(
            "traceparent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        );
        let cx = TraceContextPropagator::new().extract(&carrier);
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }
}
