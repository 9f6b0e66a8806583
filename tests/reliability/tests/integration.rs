//! Every integration test of this crate, as modules of one test binary:
//! one link instead of one per file (disk and build time on CI).
//! A new test file must be declared here to be built.

mod deploy_hardening;
mod faults;
mod hostile_data;
mod kill_points;
mod locks_and_signals;
mod plugin_refusals;
mod secret_scan;
