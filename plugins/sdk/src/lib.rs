//! The dbops plugin SDK: the ABI between the `dbops` runner and its step
//! plugins, and a safe API for writing plugins. A third-party plugin depends
//! on this crate alone.
//!
//! Where to start:
//! - Implement [`Step`] on a type (its `Config` is the step's `with` table,
//!   decoded with serde; its JSON Schema is derived with schemars), then
//!   export it with [`export_plugin!`] from a `cdylib` crate.
//! - In [`Step::run`], use the [`Context`]: [`Context::kube`] for typed
//!   Kubernetes access ([`kube::Api`], with [`kube::Api::wait_until`] and the
//!   conditions in [`wait`]), logs, child spans, durable state (survives a
//!   runner restart), Events on the target, the deadline and cancellation.
//! - Return a [`StepError`]: `transient` ones are retried by the runner,
//!   `permanent` ones fail the step.
//! - See the `example-annotate` plugin in this repository for a complete,
//!   small plugin, and [`testing`] (feature `testing`) to test a step against
//!   a Kubernetes API server without the runner.
//!
//! The ABI itself is in [`abi`] (C structs, allocator rule, host table) and
//! [`protocol`] (the JSON messages).

pub mod abi;
pub mod context;
pub mod duration;
pub mod error;
pub mod export;
pub mod kube;
pub mod protocol;
pub mod services;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wait;

pub use context::{Context, EventType, Span};
pub use duration::DurationStr;
pub use error::{ErrorClass, ResultExt, StepError, StepResult};
pub use export::Step;
pub use protocol::{Outputs, Problem, Target};
pub use services::{HostServices, Level};

/// Re-exported so plugins use the same versions as the SDK.
pub use k8s_openapi;
pub use schemars;
pub use serde_json;
