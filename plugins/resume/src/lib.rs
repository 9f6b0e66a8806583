//! The `resume` step plugin: restores exactly what this run's `pause`
//! changed, from the record on the paused object, so it needs no access to
//! the pause step's journal state. Idempotent; a pause by another run is
//! left in place. Use it with `always = true`. The logic lives in
//! `dbops-pausing`; the `with` table is the same as `pause`'s, plus
//! `run_id` to release a pause left by another run.

pub use dbops_pausing::Resume;

dbops_plugin_sdk::export_plugin!(dbops_pausing::Resume);
