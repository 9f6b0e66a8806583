//! Every integration test of this crate, as modules of one test binary:
//! one link instead of one per file (disk and build time on CI).
//! A new test file must be declared here to be built.

mod common;

mod http_druid;
mod kafka_fake;
mod mysql_real;
mod tls_probe;
mod zookeeper_real;
