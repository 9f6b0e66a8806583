//! Every integration test of this crate, as modules of one test binary:
//! one link instead of one per file (disk and build time on CI).
//! A new test file must be declared here to be built.

mod support;

mod generic_sandbox;
mod kafka_fake_e2e;
mod mariadb_e2e;
mod zookeeper_e2e;
