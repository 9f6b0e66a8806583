//! Every integration test of this crate, as modules of one test binary:
//! one link instead of one per file (disk and build time on CI).
//! A new test file must be declared here to be built.

mod common;
mod controllers_common;

mod api;
mod auth_faults;
mod controllers_cert_manager;
mod controllers_kubelet;
mod controllers_scale;
mod controllers_statefulset;
mod kubectl;
mod watch;
