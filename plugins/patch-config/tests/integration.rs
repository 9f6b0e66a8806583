//! Every integration test of this crate, as modules of one test binary:
//! one link instead of one per file (disk and build time on CI).
//! A new test file must be declared here to be built.

mod real_mariadb;
mod real_zookeeper;
mod sandbox;
