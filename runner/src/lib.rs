//! The `dbops` runner: loads a TOML pipeline, validates it against the
//! plugins' schemas without touching the cluster, then runs its steps as
//! plugins under a per-target lock with a durable journal, one
//! OpenTelemetry trace per run.
//!
//! Where to start: [`pipeline`] (load -> validate, no I/O), [`plugins`]
//! (find, check and load plugin libraries), [`run`] (execute: host services,
//! lock, journal, retries, compensation), [`telemetry`], [`commands`] (one
//! module per CLI command), [`exit`] (exit codes).

pub mod commands;
pub mod exit;
pub mod fleet;
pub mod pipeline;
pub mod plugins;
pub mod run;
pub mod telemetry;
