//! The end of a fleet run: one row per target (outcome, duration, trace
//! id, run id), printed as a table on stdout, and the exit code.

use std::time::Duration;

use super::targets::FleetTarget;
use crate::exit;
use crate::run::Outcome;

/// How one target's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetOutcome {
    /// The run finished (or had finished in an earlier process).
    Run(Outcome),
    /// Another run holds the target's lock.
    LockHeld,
    /// The pipeline is not valid for this target (nothing was written).
    Invalid,
    /// The run could not start or failed unexpectedly.
    Error,
    /// Not started: the fleet run was interrupted first.
    NotStarted,
}

impl TargetOutcome {
    /// The word in the table.
    pub fn as_str(&self) -> &'static str {
        match self {
            TargetOutcome::Run(o) => o.as_str(),
            TargetOutcome::LockHeld => "lock-held",
            TargetOutcome::Invalid => "invalid",
            TargetOutcome::Error => "error",
            TargetOutcome::NotStarted => "not-started",
        }
    }

    /// Whether the target counts as done.
    pub fn succeeded(&self) -> bool {
        *self == TargetOutcome::Run(Outcome::Succeeded)
    }
}

/// One target's line of the summary.
#[derive(Debug, Clone)]
pub struct Row {
    /// The target.
    pub target: FleetTarget,
    /// Its run id.
    pub run_id: String,
    /// How it ended.
    pub outcome: TargetOutcome,
    /// Wall time of its run.
    pub duration: Duration,
    /// Trace id of its run (empty if it never started).
    pub trace_id: String,
    /// Why it failed, when it did not run to an outcome.
    pub message: Option<String>,
}

/// The exit code of a fleet run: 0 when every target succeeded (or none
/// matched), [`exit::INTERRUPTED`] after a signal, else
/// [`exit::FLEET_FAILED`].
pub fn exit_code(rows: &[Row], interrupted: bool) -> i32 {
    if interrupted {
        exit::INTERRUPTED
    } else if rows.iter().all(|r| r.outcome.succeeded()) {
        exit::SUCCESS
    } else {
        exit::FLEET_FAILED
    }
}

/// The table, with a headline.
pub fn render(rows: &[Row], wall: Duration) -> String {
    let failed = rows.iter().filter(|r| !r.outcome.succeeded()).count();
    let width = rows
        .iter()
        .map(|r| r.target.to_string().len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = format!(
        "fleet: {} target(s), {} succeeded, {} failed, in {:.1}s\n",
        rows.len(),
        rows.len() - failed,
        failed,
        wall.as_secs_f64()
    );
    out.push_str(&format!(
        "{:<width$}  {:<18}  {:>9}  {:<32}  RUN ID\n",
        "TARGET", "OUTCOME", "DURATION", "TRACE ID"
    ));
    for r in rows {
        out.push_str(&format!(
            "{:<width$}  {:<18}  {:>8.2}s  {:<32}  {}\n",
            r.target.to_string(),
            r.outcome.as_str(),
            r.duration.as_secs_f64(),
            if r.trace_id.is_empty() {
                "-"
            } else {
                &r.trace_id
            },
            r.run_id
        ));
    }
    for r in rows.iter().filter(|r| r.message.is_some()) {
        if let Some(message) = &r.message {
            out.push_str(&format!("  {}: {message}\n", r.target));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, outcome: TargetOutcome) -> Row {
        Row {
            target: FleetTarget {
                namespace: "db".into(),
                name: name.into(),
            },
            run_id: format!("r-db-{name}"),
            outcome,
            duration: Duration::from_millis(1500),
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            message: None,
        }
    }

    #[test]
    fn exit_codes() {
        let ok = row("a", TargetOutcome::Run(Outcome::Succeeded));
        let bad = row("b", TargetOutcome::Run(Outcome::FailedRolledBack));
        assert_eq!(exit_code(&[], false), exit::SUCCESS);
        assert_eq!(exit_code(std::slice::from_ref(&ok), false), exit::SUCCESS);
        assert_eq!(exit_code(&[ok.clone(), bad], false), exit::FLEET_FAILED);
        assert_eq!(exit_code(&[ok], true), exit::INTERRUPTED);
    }

    #[test]
    fn table_has_a_line_per_target() {
        let text = render(
            &[
                row("a", TargetOutcome::Run(Outcome::Succeeded)),
                row("b", TargetOutcome::LockHeld),
            ],
            Duration::from_secs(3),
        );
        assert!(
            text.starts_with("fleet: 2 target(s), 1 succeeded, 1 failed"),
            "{text}"
        );
        assert!(text.contains("db/b    lock-held"), "{text}");
        assert!(text.contains("r-db-a"), "{text}");
    }
}
