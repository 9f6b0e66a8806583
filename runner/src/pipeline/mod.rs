//! Pipelines: parse TOML with source positions, expand variables, validate
//! against plugin schemas. **Invariant**: nothing here does cluster I/O;
//! the only I/O is reading the pipeline file in [`load`].

mod check;
mod load;
pub mod model;
pub mod problems;
mod runtime;
mod steps;
mod tree;
pub mod vars;
pub mod when;

pub use check::{PluginCatalog, check_against_plugins};
pub use dbops_plugin_sdk::protocol::Outputs;
pub use load::{EnvFn, LoadOptions, load, load_str};
pub use model::*;
pub use problems::{Problem, Problems};
pub use runtime::{evaluate_when, resolve_step, should_run};
#[cfg(test)]
mod tests;
