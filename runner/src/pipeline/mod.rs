//! Pipelines: parse TOML with source positions, expand variables, validate
//! against plugin schemas. **Invariant**: nothing here does cluster I/O.

pub mod model;

pub use model::*;
