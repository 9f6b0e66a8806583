//! The [`Step`] trait a plugin implements, and the glue behind
//! [`crate::export_plugin!`] that turns it into the C ABI.
//!
//! **Invariant**: no panic leaves a plugin. `run`, `compensate` and
//! `validate` are wrapped in `catch_unwind`; a panic becomes a permanent
//! step error carrying the panic message.
#![allow(unsafe_code)] // Reason: the extern "C" entry points dereference ABI pointers.

use std::panic::{AssertUnwindSafe, catch_unwind};

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::abi::{
    ABI_VERSION, HostApi, OwnedBuf, PluginDescriptor, StrRef, VtableHost, free_owned_buf,
};
use crate::context::Context;
use crate::error::{ErrorClass, StepError, StepResult};
use crate::protocol::{
    Outputs, Problem, RunRequest, RunResponse, Target, ValidateRequest, ValidateResponse,
};
use crate::services::HostServices;

/// A pipeline step. Implement it on a unit struct and export it with
/// [`crate::export_plugin!`].
pub trait Step: 'static {
    /// The `with` table. Use `#[serde(deny_unknown_fields)]` so typos are
    /// reported, and doc comments: they become the schema's descriptions.
    type Config: DeserializeOwned + JsonSchema;

    /// The name used in `uses = "..."`.
    const NAME: &'static str;
    /// One line for `dbops plugins list`.
    const DESCRIPTION: &'static str;
    /// Outputs the step may produce: (name, description).
    const OUTPUTS: &'static [(&'static str, &'static str)] = &[];
    /// Whether [`Step::compensate`] undoes the step.
    const COMPENSATES: bool = false;

    /// Checks beyond types, without touching the cluster. Return every
    /// problem at once.
    fn validate(_config: &Self::Config, _target: &Target) -> Vec<Problem> {
        Vec::new()
    }

    /// Do the work. Must be safe to call again after a crash (use durable
    /// state and check the cluster before writing).
    fn run(ctx: &Context<'_>, config: Self::Config) -> StepResult<Outputs>;

    /// Undo the work after a later step failed (`on_failure = "rollback"`).
    fn compensate(_ctx: &Context<'_>, _config: Self::Config) -> StepResult<()> {
        Ok(())
    }
}

/// The JSON Schema of a step's `with` table.
pub fn schema_json<S: Step>() -> String {
    let schema = schemars::schema_for!(S::Config);
    serde_json::to_string(&schema).unwrap_or_else(|_| "{}".to_owned())
}

/// The declared outputs as JSON.
pub fn outputs_json<S: Step>() -> String {
    let outputs: Vec<Value> = S::OUTPUTS
        .iter()
        .map(|(name, description)| serde_json::json!({ "name": name, "description": description }))
        .collect();
    Value::Array(outputs).to_string()
}

/// Validate a JSON [`ValidateRequest`]; returns a JSON [`ValidateResponse`].
pub fn validate_json<S: Step>(request: &str) -> String {
    let outcome = catch_unwind(AssertUnwindSafe(|| validate_request::<S>(request)));
    let response = outcome.unwrap_or_else(|panic| ValidateResponse {
        problems: vec![Problem {
            path: String::new(),
            message: format!(
                "plugin {} panicked while validating: {}",
                S::NAME,
                panic_message(&panic)
            ),
        }],
    });
    serde_json::to_string(&response).unwrap_or_else(|_| r#"{"problems":[]}"#.to_owned())
}

fn validate_request<S: Step>(request: &str) -> ValidateResponse {
    let request: ValidateRequest = match serde_json::from_str(request) {
        Ok(r) => r,
        Err(e) => {
            return ValidateResponse {
                problems: vec![Problem {
                    path: String::new(),
                    message: format!("malformed validate request from the host: {e}"),
                }],
            };
        }
    };
    let mut with = request.with.clone();
    for pointer in &request.deferred {
        remove_pointer(&mut with, pointer);
    }
    match decode_config::<S::Config>(with) {
        Ok(config) => ValidateResponse {
            problems: S::validate(&config, &request.target),
        },
        Err(problem) if is_missing_deferred(&problem, &request.deferred) => {
            ValidateResponse::default()
        }
        Err(problem) => ValidateResponse {
            problems: vec![problem],
        },
    }
}

/// Decode a `with` table, reporting the failing field as a JSON pointer.
pub fn decode_config<C: DeserializeOwned>(with: Value) -> Result<C, Problem> {
    let with = if with.is_null() {
        Value::Object(Default::default())
    } else {
        with
    };
    serde_path_to_error::deserialize(with).map_err(|e| {
        let pointer = path_to_pointer(e.path());
        Problem {
            path: pointer,
            message: e.inner().to_string(),
        }
    })
}

fn path_to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                pointer.push_str(&format!("/{}", key.replace('~', "~0").replace('/', "~1")))
            }
            Segment::Enum { variant } => pointer.push_str(&format!("/{variant}")),
            Segment::Unknown => {}
        }
    }
    pointer
}

fn is_missing_deferred(problem: &Problem, deferred: &[String]) -> bool {
    let Some(rest) = problem.message.strip_prefix("missing field `") else {
        return false;
    };
    let Some(field) = rest.split('`').next() else {
        return false;
    };
    let pointer = format!("{}/{}", problem.path, field);
    deferred.contains(&pointer)
}

fn remove_pointer(value: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Some(item) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

/// Run (or compensate) a JSON [`RunRequest`] against `host`; returns a JSON
/// [`RunResponse`]. Panics become permanent errors.
pub fn run_json<S: Step>(host: &dyn HostServices, request: &str, compensate: bool) -> String {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        run_request::<S>(host, request, compensate)
    }));
    let response = match outcome {
        Ok(Ok(outputs)) => RunResponse::Ok {
            summary: String::new(),
            outputs,
        },
        Ok(Err(e)) => RunResponse::Error {
            class: e.class,
            reason: e.reason,
            message: e.message,
        },
        Err(panic) => RunResponse::Error {
            class: ErrorClass::Permanent,
            reason: "PluginPanicked".into(),
            message: format!("plugin {} panicked: {}", S::NAME, panic_message(&panic)),
        },
    };
    serde_json::to_string(&response).unwrap_or_else(|e| {
        format!(r#"{{"error":{{"class":"permanent","reason":"PluginBug","message":"cannot encode response: {e}"}}}}"#)
    })
}

fn run_request<S: Step>(
    host: &dyn HostServices,
    request: &str,
    compensate: bool,
) -> StepResult<Outputs> {
    let request: RunRequest = serde_json::from_str(request).map_err(|e| {
        StepError::permanent(
            "MalformedRequest",
            format!("malformed run request from the host: {e}"),
        )
    })?;
    let config = decode_config::<S::Config>(request.with.clone()).map_err(|p| {
        StepError::permanent(
            "InvalidConfig",
            format!(
                "step {}: invalid `with` at {}: {}",
                request.step_id,
                display_pointer(&p.path),
                p.message
            ),
        )
    })?;
    let ctx = Context::new(host, request);
    if compensate {
        S::compensate(&ctx, config).map(|()| Outputs::new())
    } else {
        S::run(&ctx, config)
    }
}

fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() {
        "the top level"
    } else {
        pointer
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

// ---------------------------------------------------------------------------
// extern "C" entry points, instantiated per step type by export_plugin!.
// ---------------------------------------------------------------------------

/// `validate` entry point for `S`.
pub extern "C" fn validate_entry<S: Step>(request: StrRef) -> OwnedBuf {
    let response = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host passes a StrRef valid for the duration of this call.
        match unsafe { request.as_str() } {
            Ok(text) => validate_json::<S>(text),
            Err(e) => {
                format!(r#"{{"problems":[{{"path":"","message":"request is not UTF-8: {e}"}}]}}"#)
            }
        }
    }))
    .unwrap_or_else(|_| {
        r#"{"problems":[{"path":"","message":"plugin panicked while validating"}]}"#.to_owned()
    });
    OwnedBuf::from_vec(response.into_bytes())
}

/// `run` entry point for `S`.
pub extern "C" fn run_entry<S: Step>(host: *const HostApi, request: StrRef) -> OwnedBuf {
    call_entry::<S>(host, request, false)
}

/// `compensate` entry point for `S`.
pub extern "C" fn compensate_entry<S: Step>(host: *const HostApi, request: StrRef) -> OwnedBuf {
    call_entry::<S>(host, request, true)
}

fn call_entry<S: Step>(host: *const HostApi, request: StrRef, compensate: bool) -> OwnedBuf {
    let response = catch_unwind(AssertUnwindSafe(|| {
        if host.is_null() {
            return error_json("MalformedRequest", "host passed a null host table");
        }
        // SAFETY: the host keeps the table alive for the duration of this call.
        let services = unsafe { VtableHost::new(host) };
        // SAFETY: the host passes a StrRef valid for the duration of this call.
        match unsafe { request.as_str() } {
            Ok(text) => run_json::<S>(&services, text, compensate),
            Err(e) => error_json("MalformedRequest", &format!("request is not UTF-8: {e}")),
        }
    }))
    .unwrap_or_else(|_| error_json("PluginPanicked", "plugin panicked outside the step"));
    OwnedBuf::from_vec(response.into_bytes())
}

fn error_json(reason: &str, message: &str) -> String {
    serde_json::to_string(&RunResponse::Error {
        class: ErrorClass::Permanent,
        reason: reason.to_owned(),
        message: message.to_owned(),
    })
    .unwrap_or_default()
}

/// A descriptor plus the strings it points into; lives in a `static`.
pub struct StaticDescriptor {
    descriptor: PluginDescriptor,
    _owned: Vec<String>,
}

impl StaticDescriptor {
    /// Build the descriptor of step `S` (called once, by the export macro).
    pub fn new<S: Step>(abi_version: u32, plugin_version: &'static str) -> StaticDescriptor {
        let schema = schema_json::<S>();
        let outputs = outputs_json::<S>();
        let features = if S::COMPENSATES {
            r#"["compensate"]"#
        } else {
            "[]"
        }
        .to_owned();
        let descriptor = PluginDescriptor {
            abi_version,
            name: StrRef::of(S::NAME),
            version: StrRef::of(plugin_version),
            sdk_version: StrRef::of(env!("CARGO_PKG_VERSION")),
            description: StrRef::of(S::DESCRIPTION),
            config_schema: StrRef::of(&schema),
            outputs: StrRef::of(&outputs),
            features: StrRef::of(&features),
            validate: validate_entry::<S>,
            run: run_entry::<S>,
            compensate: if S::COMPENSATES {
                Some(compensate_entry::<S>)
            } else {
                None
            },
            free_buf: free_owned_buf,
        };
        // The Strings' heap buffers do not move when the Vec takes them.
        StaticDescriptor {
            descriptor,
            _owned: vec![schema, outputs, features],
        }
    }

    /// Pointer returned by the entry symbol.
    pub fn as_ptr(&self) -> *const PluginDescriptor {
        &self.descriptor
    }
}

/// The ABI version [`crate::export_plugin!`] stamps by default.
pub const DEFAULT_ABI_VERSION: u32 = ABI_VERSION;

/// Export a [`Step`] as a dbops plugin: defines the `dbops_plugin_v1`
/// symbol. Use once per cdylib crate:
///
/// ```ignore
/// dbops_plugin_sdk::export_plugin!(MyStep);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($step:ty) => {
        $crate::export_plugin!($step, abi_version = $crate::export::DEFAULT_ABI_VERSION);
    };
    ($step:ty, abi_version = $abi:expr) => {
        /// The dbops plugin entry symbol.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn dbops_plugin_v1(_host_abi: u32) -> *const $crate::abi::PluginDescriptor {
            static DESCRIPTOR: ::std::sync::OnceLock<$crate::export::StaticDescriptor> =
                ::std::sync::OnceLock::new();
            DESCRIPTOR
                .get_or_init(|| {
                    $crate::export::StaticDescriptor::new::<$step>($abi, env!("CARGO_PKG_VERSION"))
                })
                .as_ptr()
        }
    };
}
