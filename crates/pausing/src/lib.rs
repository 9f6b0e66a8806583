//! Pause and resume of database reconciliation: the logic behind the
//! `pause` and `resume` step plugins (which only export [`Pause`] and
//! [`Resume`]).
//!
//! Start at [`config::Config`] (the `with` table both steps share) and
//! [`config::resolve`] (which object, which preset). [`Pause`] marks the
//! object, refusing one already paused by someone else, and writes a
//! [`record::PauseRecord`] onto the object itself (annotation
//! `dbops.io/pause-record`) and into its durable state. [`Resume`] reads
//! that record and restores exactly what changed; it is idempotent and
//! leaves a pause made by another run alone.
//!
//! KubeDB is paused the way KubeDB's own CLI (`kubectl dba pause`) does it:
//! a `DatabasePaused` condition with status `True` in the database object's
//! status; resume removes only that condition.

pub mod config;
pub mod merge;
pub mod pause;
pub mod record;
pub mod resume;

pub use pause::Pause;
pub use resume::Resume;
