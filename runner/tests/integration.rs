//! Every integration test of this crate, as modules of one test binary:
//! one link instead of one per file (disk and build time on CI).
//! A new test file must be declared here to be built.

#[path = "data/pipelines/catalog.rs"]
mod catalog;
mod common;

mod certs_cli;
mod fleet_runs;
mod pipeline_corpus;
mod pipeline_fuzz;
mod pipeline_plugins;
mod run_cli;
mod run_lock;
mod run_plugins;
mod run_resume;
mod run_steps;
mod run_traces;
