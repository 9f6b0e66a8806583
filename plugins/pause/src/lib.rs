//! The `pause` step plugin: marks the target so other controllers leave it
//! alone (KubeDB's `DatabasePaused` condition, Strimzi's and
//! CloudNativePG's annotations, any JSON merge patch, or a
//! `dbops.io/paused-by` annotation on a StatefulSet, optionally with
//! `updateStrategy: OnDelete`), and records exactly what it changed on the
//! object (`dbops.io/pause-record`) for `resume`. A target paused by
//! someone else is refused untouched. The logic lives in `dbops-pausing`
//! (shared with `resume`); see its `config::Config` for the `with` table.

pub use dbops_pausing::Pause;

dbops_plugin_sdk::export_plugin!(dbops_pausing::Pause);
