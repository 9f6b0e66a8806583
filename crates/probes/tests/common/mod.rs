//! Shared helpers of the integration tests: small servers on loopback
//! (now in `dbops_probes::testing::servers`, shared with the plugins' tests).
#![allow(dead_code)] // each test module uses a subset

pub use dbops_probes::testing::servers::{serve, server_config};
