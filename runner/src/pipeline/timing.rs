//! `[defaults]`, durations and retry policies.

use std::time::Duration;

use super::model::{Defaults, RetryPolicy};
use super::tree::{self, Ctx, Fields, Value};

pub(crate) fn defaults(ctx: &mut Ctx<'_>, top: &Fields<'_>) -> Defaults {
    let mut defaults = Defaults::default();
    let (Some(entry), Some((entries, node))) = (top.get("defaults"), top.table(ctx, "defaults"))
    else {
        return defaults;
    };
    let fields = Fields::new(
        entries,
        "defaults",
        "[defaults]",
        tree::union(&entry.key_span, &node.span),
    );
    fields.reject_unknown(ctx, &["timeout", "retry"]);
    if let Some(timeout) = duration(ctx, &fields, "timeout") {
        defaults.timeout = timeout;
    }
    defaults.retry = retry(ctx, &fields, &defaults.retry);
    defaults
}

/// A duration like `"30s"`, `"10m"`, `"1h30m"`; must be positive.
pub(crate) fn duration(ctx: &mut Ctx<'_>, fields: &Fields<'_>, key: &str) -> Option<Duration> {
    let entry = fields.get(key)?;
    let path = fields.key_path(key);
    let Value::String(text) = &entry.node.value else {
        let example = match &entry.node.value {
            Value::Integer(n) => format!("write `{key} = \"{n}s\"`"),
            _ => format!("write e.g. `{key} = \"30s\"`"),
        };
        ctx.error(
            entry.node.span.clone(),
            path,
            format!(
                "`{key}` in {} must be a duration string like \"30s\" or \"10m\", found {}",
                fields.name,
                entry.node.value.kind()
            ),
            "expected a duration string",
            Some(example),
        );
        return None;
    };
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d.is_zero() => {
            ctx.error(
                entry.node.span.clone(),
                path,
                format!("`{key}` in {} must be greater than zero", fields.name),
                "zero duration",
                Some("write e.g. \"30s\" or \"10m\"".into()),
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            ctx.error(
                entry.node.span.clone(),
                path,
                format!(
                    "invalid duration {text:?} for `{key}` in {}: {e}",
                    fields.name
                ),
                "invalid duration",
                Some("use a number with a unit: \"500ms\", \"30s\", \"10m\", \"1h30m\"".into()),
            );
            None
        }
    }
}

/// A `retry` table; missing keys come from `base`.
pub(crate) fn retry(ctx: &mut Ctx<'_>, parent: &Fields<'_>, base: &RetryPolicy) -> RetryPolicy {
    let mut policy = base.clone();
    let (Some(entry), Some((entries, node))) = (parent.get("retry"), parent.table(ctx, "retry"))
    else {
        return policy;
    };
    let name = format!("the `retry` table of {}", parent.name);
    let fields = Fields::new(
        entries,
        parent.key_path("retry"),
        name,
        tree::union(&entry.key_span, &node.span),
    );
    fields.reject_unknown(ctx, &["attempts", "initial_backoff", "max_backoff"]);
    if let Some(attempts) = fields.get("attempts") {
        match attempts.node.value {
            Value::Integer(n) if (1..=100).contains(&n) => {
                policy.attempts = u32::try_from(n).unwrap_or(1)
            }
            _ => ctx.error(
                attempts.node.span.clone(),
                fields.key_path("attempts"),
                format!(
                    "`attempts` in {} must be an integer from 1 to 100",
                    fields.name
                ),
                "expected 1 to 100",
                Some("`attempts` counts the first try: 1 means no retry".into()),
            ),
        }
    }
    if let Some(d) = duration(ctx, &fields, "initial_backoff") {
        policy.initial_backoff = d;
    }
    if let Some(d) = duration(ctx, &fields, "max_backoff") {
        policy.max_backoff = d;
    }
    if policy.max_backoff < policy.initial_backoff {
        let span = fields
            .get("max_backoff")
            .or(fields.get("initial_backoff"))
            .map_or(fields.span.clone(), |e| e.node.span.clone());
        ctx.error(
            span,
            fields.key_path("max_backoff"),
            format!(
                "`max_backoff` ({}) is shorter than `initial_backoff` ({}) in {}",
                humantime::format_duration(policy.max_backoff),
                humantime::format_duration(policy.initial_backoff),
                fields.name
            ),
            "shorter than initial_backoff",
            Some("make `max_backoff` at least `initial_backoff`".into()),
        );
    }
    policy
}
