//! Variables in strings: `${target.name}`, `${env.NAME}`,
//! `${env.NAME:-default}`, `${vars.NAME}`, `${steps.ID.outputs.KEY}`;
//! `$${` is a literal `${`.
//!
//! Expansion happens in two stages: at load, everything but step outputs
//! (`expand`); right before a step runs, the step outputs
//! (`resolve_parts`, via [`super::resolve_step`]). A string that is exactly one variable keeps the
//! JSON type of its value (a boolean output stays a boolean); inside a
//! longer string values are interpolated as text.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::problems::did_you_mean;

/// A reference inside `${...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `${target.a.b}`: the path after `target.`.
    Target(Vec<String>),
    /// `${env.NAME}` or `${env.NAME:-default}`.
    Env {
        /// Variable name.
        name: String,
        /// Used when the variable is unset or empty.
        default: Option<String>,
    },
    /// `${vars.NAME}`.
    Var(String),
    /// `${steps.ID.outputs.KEY}`: known only at run time.
    Output {
        /// Step id.
        step: String,
        /// Output key.
        key: String,
    },
}

/// One piece of a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal text (escapes already applied).
    Text(String),
    /// A variable; `range` is its byte range in the string, `${` to `}`.
    Var {
        /// What it refers to.
        reference: Reference,
        /// Byte range in the original string.
        range: Range<usize>,
    },
}

/// A malformed or unresolvable variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    /// Byte range in the string (for the underline).
    pub range: Range<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

const NAMESPACES: [&str; 4] = ["target", "env", "vars", "steps"];

/// Splits a string into text and variables.
pub fn parse_template(text: &str) -> Result<Vec<Segment>, VarError> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(pos) = rest.find('$') {
        literal.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(stripped) = after.strip_prefix("$${") {
            literal.push_str("${");
            rest = stripped;
            offset += pos + 3;
        } else if after.starts_with("${") {
            let start = offset + pos;
            let Some(close) = after.find('}') else {
                return Err(VarError {
                    range: start..text.len(),
                    message: "unterminated variable: `${` without a closing `}`".into(),
                    help: Some("close it with `}`, or write `$${` for a literal `${`".into()),
                });
            };
            let inner = &after[2..close];
            let range = start..start + close + 1;
            let reference = parse_reference(inner, range.clone())?;
            if !literal.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut literal)));
            }
            segments.push(Segment::Var { reference, range });
            rest = &after[close + 1..];
            offset += pos + close + 1;
        } else {
            literal.push('$');
            rest = &after[1..];
            offset += pos + 1;
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        segments.push(Segment::Text(literal));
    }
    Ok(segments)
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn parse_reference(inner: &str, range: Range<usize>) -> Result<Reference, VarError> {
    let err = |message: String, help: Option<String>| VarError {
        range: range.clone(),
        message,
        help,
    };
    let trimmed = inner.trim();
    let (namespace, path) = trimmed.split_once('.').unwrap_or((trimmed, ""));
    match namespace {
        "env" => {
            let (name, default) = match path.split_once(":-") {
                Some((name, default)) => (name, Some(default.to_string())),
                None => (path, None),
            };
            if !is_name(name) {
                return Err(err(
                    format!("invalid environment variable name in `${{{inner}}}`"),
                    Some("write `${env.NAME}` or `${env.NAME:-default}`".into()),
                ));
            }
            Ok(Reference::Env {
                name: name.to_string(),
                default,
            })
        }
        "vars" if is_name(path) => Ok(Reference::Var(path.to_string())),
        "vars" => Err(err(
            format!("invalid variable name in `${{{inner}}}`"),
            Some("write `${vars.NAME}` with NAME declared in [variables]".into()),
        )),
        "target" => {
            let parts: Vec<String> = path.split('.').map(str::to_string).collect();
            if parts.iter().any(|p| !is_name(p)) {
                return Err(err(
                    format!("invalid target field in `${{{inner}}}`"),
                    Some("write e.g. `${target.name}` or `${target.workload.name}`".into()),
                ));
            }
            Ok(Reference::Target(parts))
        }
        "steps" => {
            let parts: Vec<&str> = path.split('.').collect();
            match parts.as_slice() {
                [step, "outputs", key] if is_name(step) && is_name(key) => Ok(Reference::Output {
                    step: step.to_string(),
                    key: key.to_string(),
                }),
                _ => Err(err(
                    format!("invalid step output reference `${{{inner}}}`"),
                    Some("write `${steps.ID.outputs.KEY}`".into()),
                )),
            }
        }
        other => {
            let help = did_you_mean(other, NAMESPACES).unwrap_or_else(|| {
                "variables are `${target.FIELD}`, `${env.NAME}`, `${vars.NAME}` and \
                 `${steps.ID.outputs.KEY}`; write `$${` for a literal `${`"
                    .into()
            });
            Err(err(format!("unknown variable `${{{inner}}}`"), Some(help)))
        }
    }
}

/// What a load-time expansion may see.
pub(crate) struct Scope<'a> {
    /// Target fields by dotted path (`name`, `workload.name`); `None` where
    /// target references are not allowed (in `[target]` and `[variables]`).
    pub target: Option<&'a BTreeMap<String, String>>,
    /// The environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Variables; `None` where they are not allowed (in `[variables]`).
    pub vars: Option<&'a BTreeMap<String, Json>>,
    /// Where step outputs may be referenced (in `with` only): the ids of
    /// the steps declared before this one.
    pub earlier_steps: Option<&'a [String]>,
    /// Every step id (to tell "later step" from "unknown step").
    pub all_steps: &'a [String],
    /// Where we are, for messages ("[target]", "step `cert`").
    pub place: &'a str,
}

/// One piece of a string whose value depends on step outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Text known at load time.
    Text(String),
    /// `${steps.STEP.outputs.KEY}`.
    Output {
        /// Step id.
        step: String,
        /// Output key.
        key: String,
    },
}

/// The result of a load-time expansion.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expanded {
    /// Fully known.
    Value(Json),
    /// Depends on step outputs: resolved later by [`resolve_parts`].
    Deferred(Vec<Part>),
}

/// Expands everything known at load time. Collects every error.
pub(crate) fn expand(text: &str, scope: &Scope<'_>) -> Result<Expanded, Vec<VarError>> {
    let segments = parse_template(text).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut values: Vec<Option<Json>> = Vec::new();
    let mut parts: Vec<Part> = Vec::new();
    let mut deferred = false;
    for segment in &segments {
        match segment {
            Segment::Text(t) => {
                values.push(Some(Json::String(t.clone())));
                parts.push(Part::Text(t.clone()));
            }
            Segment::Var { reference, range } => match lookup(reference, scope) {
                Ok(Some(value)) => {
                    parts.push(Part::Text(to_text(&value)));
                    values.push(Some(value));
                }
                Ok(None) => {
                    deferred = true;
                    if let Reference::Output { step, key } = reference {
                        parts.push(Part::Output {
                            step: step.clone(),
                            key: key.clone(),
                        });
                    }
                    values.push(None);
                }
                Err((message, help)) => errors.push(VarError {
                    range: range.clone(),
                    message,
                    help,
                }),
            },
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if deferred {
        return Ok(Expanded::Deferred(merge_text(parts)));
    }
    if let ([Segment::Var { .. }], [Some(value)]) = (segments.as_slice(), values.as_slice()) {
        return Ok(Expanded::Value(value.clone()));
    }
    let text: String = values.iter().flatten().map(to_text).collect();
    Ok(Expanded::Value(Json::String(text)))
}

fn merge_text(parts: Vec<Part>) -> Vec<Part> {
    let mut merged: Vec<Part> = Vec::new();
    for part in parts {
        match (merged.last_mut(), part) {
            (Some(Part::Text(prev)), Part::Text(t)) => prev.push_str(&t),
            (_, part) => merged.push(part),
        }
    }
    merged
}

/// A scalar as text for interpolation.
pub(crate) fn to_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

type LookupError = (String, Option<String>);

/// `Ok(None)` for a step output allowed here (deferred).
fn lookup(reference: &Reference, scope: &Scope<'_>) -> Result<Option<Json>, LookupError> {
    let place = scope.place;
    match reference {
        Reference::Env { name, default } => match ((scope.env)(name), default) {
            (Some(value), Some(default)) if value.is_empty() => {
                Ok(Some(Json::String(default.clone())))
            }
            (Some(value), _) => Ok(Some(Json::String(value))),
            (None, Some(default)) => Ok(Some(Json::String(default.clone()))),
            (None, None) => Err((
                format!("environment variable `{name}` is not set (used in {place})"),
                Some(format!(
                    "set it, or give a default: `${{env.{name}:-VALUE}}`"
                )),
            )),
        },
        Reference::Var(name) => {
            let Some(vars) = scope.vars else {
                return Err((
                    format!("`${{vars.{name}}}` cannot be used in {place}"),
                    Some("variables may use `${env.NAME}` only".into()),
                ));
            };
            match vars.get(name) {
                Some(value) => Ok(Some(value.clone())),
                None => {
                    let help = did_you_mean(name, vars.keys().map(String::as_str)).unwrap_or_else(|| {
                        format!("declare it: add `{name} = \"...\"` to [variables], or pass `--set {name}=VALUE`")
                    });
                    Err((
                        format!("unknown variable `vars.{name}` in {place}"),
                        Some(help),
                    ))
                }
            }
        }
        Reference::Target(path) => {
            let joined = path.join(".");
            let Some(target) = scope.target else {
                return Err((
                    format!("`${{target.{joined}}}` cannot be used in {place}"),
                    Some(
                        "[target] and [variables] may use `${env.NAME}` and `${vars.NAME}` only"
                            .into(),
                    ),
                ));
            };
            match target.get(&joined) {
                Some(value) => Ok(Some(Json::String(value.clone()))),
                None => {
                    let help = did_you_mean(&joined, target.keys().map(String::as_str))
                        .map(|s| s.replacen('`', "`target.", 1))
                        .unwrap_or_else(|| {
                            let fields: Vec<String> =
                                target.keys().map(|k| format!("`target.{k}`")).collect();
                            format!("target fields are {}", fields.join(", "))
                        });
                    Err((
                        format!("unknown target field `target.{joined}` in {place}"),
                        Some(help),
                    ))
                }
            }
        }
        Reference::Output { step, key } => {
            let Some(earlier) = scope.earlier_steps else {
                return Err((
                    format!("step outputs cannot be used in {place}"),
                    Some(
                        "`${steps.ID.outputs.KEY}` may only appear in `with`; in `when`, write \
                         `steps.ID.outputs.KEY` without `${}`"
                            .into(),
                    ),
                ));
            };
            if earlier.contains(step) {
                return Ok(None);
            }
            let full = format!("${{steps.{step}.outputs.{key}}}");
            if scope.all_steps.contains(step) {
                Err((
                    format!("{place} uses {full}, but step `{step}` runs later (or is this step)"),
                    Some("a step can only use outputs of steps declared before it; reorder the steps".into()),
                ))
            } else {
                let help = did_you_mean(step, earlier.iter().map(String::as_str))
                    .unwrap_or_else(|| "step ids are set with `id = \"...\"` in [[step]]".into());
                Err((
                    format!("{place} uses {full}, but there is no step `{step}`"),
                    Some(help),
                ))
            }
        }
    }
}

/// Why a deferred value could not be resolved at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Missing {
    /// The step produced no outputs (skipped by its `when`, or not run).
    Step(String),
    /// The step ran but has no such output.
    Key(String, String),
}

/// Resolves a deferred value from the outputs of finished steps.
pub(crate) fn resolve_parts(
    parts: &[Part],
    outputs: &BTreeMap<String, super::Outputs>,
) -> Result<Json, Missing> {
    let mut values = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Part::Text(t) => values.push(Json::String(t.clone())),
            Part::Output { step, key } => {
                let step_outputs = outputs
                    .get(step)
                    .ok_or_else(|| Missing::Step(step.clone()))?;
                let value = step_outputs
                    .get(key)
                    .ok_or_else(|| Missing::Key(step.clone(), key.clone()))?;
                values.push(value.clone());
            }
        }
    }
    if let ([Part::Output { .. }], [value]) = (parts, values.as_slice()) {
        return Ok(value.clone());
    }
    Ok(Json::String(values.iter().map(to_text).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/root".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn with_scope<T>(f: impl FnOnce(&Scope<'_>) -> T) -> T {
        let target: BTreeMap<String, String> = [("name".to_string(), "zk".to_string())].into();
        let vars: BTreeMap<String, Json> =
            [("n".to_string(), json!(3)), ("s".to_string(), json!("x"))].into();
        let steps = ["a".to_string(), "b".to_string()];
        let scope = Scope {
            target: Some(&target),
            env: &env,
            vars: Some(&vars),
            earlier_steps: Some(&steps[..1]),
            all_steps: &steps,
            place: "step `b`",
        };
        f(&scope)
    }

    #[test]
    fn escapes_and_plain_dollars_are_literal() {
        assert_eq!(
            parse_template("a$${b} $c $").unwrap(),
            vec![Segment::Text("a${b} $c $".into())]
        );
    }

    #[test]
    fn single_variable_keeps_its_type_and_text_interpolates() {
        with_scope(|s| {
            assert_eq!(expand("${vars.n}", s).unwrap(), Expanded::Value(json!(3)));
            assert_eq!(
                expand("n=${vars.n}", s).unwrap(),
                Expanded::Value(json!("n=3"))
            );
            assert_eq!(
                expand("${target.name}-0", s).unwrap(),
                Expanded::Value(json!("zk-0"))
            );
        });
    }

    #[test]
    fn env_defaults_apply_when_unset_or_empty() {
        with_scope(|s| {
            assert_eq!(
                expand("${env.HOME:-x}", s).unwrap(),
                Expanded::Value(json!("/root"))
            );
            assert_eq!(
                expand("${env.EMPTY:-x}", s).unwrap(),
                Expanded::Value(json!("x"))
            );
            assert_eq!(
                expand("${env.NOPE:-}", s).unwrap(),
                Expanded::Value(json!(""))
            );
            let err = expand("${env.NOPE}", s).unwrap_err();
            assert_eq!(
                err[0].message,
                "environment variable `NOPE` is not set (used in step `b`)"
            );
        });
    }

    #[test]
    fn outputs_are_deferred_and_resolved_later() {
        with_scope(|s| {
            let Expanded::Deferred(parts) = expand("${steps.a.outputs.x}", s).unwrap() else {
                panic!("not deferred");
            };
            let outputs: BTreeMap<String, super::super::Outputs> =
                [("a".to_string(), [("x".to_string(), json!(true))].into())].into();
            assert_eq!(resolve_parts(&parts, &outputs).unwrap(), json!(true));
            let Expanded::Deferred(parts) = expand("v=${steps.a.outputs.x} ${vars.s}", s).unwrap()
            else {
                panic!("not deferred");
            };
            assert_eq!(resolve_parts(&parts, &outputs).unwrap(), json!("v=true x"));
            assert_eq!(
                resolve_parts(&parts, &BTreeMap::new()),
                Err(Missing::Step("a".into()))
            );
        });
    }

    #[test]
    fn later_and_unknown_steps_are_errors() {
        with_scope(|s| {
            let err = expand("${steps.b.outputs.x}", s).unwrap_err();
            assert!(err[0].message.contains("runs later"), "{err:?}");
            let err = expand("${steps.c.outputs.x}", s).unwrap_err();
            assert!(err[0].message.contains("there is no step `c`"), "{err:?}");
        });
    }

    #[test]
    fn malformed_references_point_at_the_variable() {
        let err = parse_template("ab ${nope.x} c").unwrap_err();
        assert_eq!(err.range, 3..12);
        let err = parse_template("ab ${env.X").unwrap_err();
        assert_eq!(err.range, 3..10);
        assert!(parse_template("${steps.a.output.x}").is_err());
    }
}
