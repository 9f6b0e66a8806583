//! Step errors: what a plugin returns when it cannot finish.

use serde::{Deserialize, Serialize};

/// Whether retrying may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Retry with backoff (API throttling, conflicts, a member not ready yet).
    Transient,
    /// Do not retry (bad input, forbidden, a broken invariant).
    Permanent,
}

/// A step failure with its class and a PascalCase reason for Events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    /// Transient or permanent.
    pub class: ErrorClass,
    /// PascalCase reason (Kubernetes Event reason).
    pub reason: String,
    /// What happened, where, and how to fix it.
    pub message: String,
}

/// Result of step code.
pub type StepResult<T> = Result<T, StepError>;

impl StepError {
    /// A failure that a retry will not fix.
    pub fn permanent(reason: impl Into<String>, message: impl Into<String>) -> StepError {
        StepError {
            class: ErrorClass::Permanent,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A failure that may go away when retried.
    pub fn transient(reason: impl Into<String>, message: impl Into<String>) -> StepError {
        StepError {
            class: ErrorClass::Transient,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// Whether the runner should retry.
    pub fn is_transient(&self) -> bool {
        self.class == ErrorClass::Transient
    }

    /// Prefix the message with context ("while restarting zk-1: ...").
    pub fn context(mut self, context: impl std::fmt::Display) -> StepError {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

/// Add context to any `Result<_, StepError>`.
pub trait ResultExt<T> {
    /// Prefix the error message with context.
    fn context(self, context: impl std::fmt::Display) -> StepResult<T>;
}

impl<T, E: Into<StepError>> ResultExt<T> for Result<T, E> {
    fn context(self, context: impl std::fmt::Display) -> StepResult<T> {
        self.map_err(|e| e.into().context(context))
    }
}
