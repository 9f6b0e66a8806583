//! `[variables]`: named values for `${vars.NAME}`, overridden by `--set`;
//! and the helpers that expand a string and report variable errors.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::load::Sets;
use super::problems::Problem;
use super::tree::{self, Ctx, Fields, Node, Value};
use super::vars::{self, Expanded, Scope};

pub(crate) fn variables(
    ctx: &mut Ctx<'_>,
    top: &Fields<'_>,
    sets: &mut Sets,
    env: &dyn Fn(&str) -> Option<String>,
) -> BTreeMap<String, Json> {
    let mut variables = BTreeMap::new();
    let Some((entries, _)) = top.table(ctx, "variables") else {
        return variables;
    };
    let scope = Scope {
        target: None,
        env,
        vars: None,
        earlier_steps: None,
        all_steps: &[],
        place: "[variables]",
    };
    for entry in entries {
        let name = &entry.key;
        let path = format!("variables.{name}");
        if !name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            ctx.error(
                entry.key_span.clone(),
                path.clone(),
                format!("invalid variable name `{name}`"),
                "invalid name",
                Some("start with a letter or `_`, then letters, digits, `_` or `-`".into()),
            );
            continue;
        }
        let mut default_node = Some(&entry.node);
        if let Value::Table(inner) = &entry.node.value {
            let fields = Fields::new(
                inner,
                path.clone(),
                format!("variable `{name}`"),
                tree::union(&entry.key_span, &entry.node.span),
            );
            fields.reject_unknown(ctx, &["default", "description"]);
            let _ = fields.string(ctx, "description");
            default_node = fields.get("default").map(|e| &e.node);
        }
        let default = default_node.and_then(|node| scalar(ctx, node, &path, name, &scope));
        let value = match (sets.vars.remove(name), default) {
            (Some(text), default) => coerce(ctx, name, &text, default.as_ref()).or(default),
            (None, Some(default)) => Some(default),
            (None, None) => {
                if default_node.is_none() {
                    ctx.error(
                        entry.key_span.clone(),
                        path,
                        format!("variable `{name}` has no default and was not set"),
                        "needs a value",
                        Some(format!(
                            "pass `--set {name}=VALUE`, or add `default = \"...\"`"
                        )),
                    );
                }
                None
            }
        };
        if let Some(value) = value {
            variables.insert(name.clone(), value);
        }
    }
    variables
}

/// A variable's default: a scalar; strings may use `${env.NAME}`.
fn scalar(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    name: &str,
    scope: &Scope<'_>,
) -> Option<Json> {
    match &node.value {
        Value::String(text) => expand_text(ctx, node, text, path, scope).map(Json::String),
        Value::Integer(n) => Some(Json::from(*n)),
        Value::Float(f) => serde_json::Number::from_f64(*f).map(Json::Number),
        Value::Bool(b) => Some(Json::Bool(*b)),
        other => {
            ctx.error(
                node.span.clone(),
                path.to_string(),
                format!("variable `{name}` must be a string, number or boolean, found {}", other.kind()),
                "not a scalar",
                Some("write `NAME = \"value\"` or `NAME = { default = \"value\", description = \"...\" }`".into()),
            );
            None
        }
    }
}

/// A `--set` value takes the type of the variable's default.
fn coerce(ctx: &mut Ctx<'_>, name: &str, text: &str, default: Option<&Json>) -> Option<Json> {
    let parsed = match default {
        Some(Json::Bool(_)) => text.parse::<bool>().ok().map(Json::Bool),
        Some(Json::Number(n)) if n.is_i64() => text.parse::<i64>().ok().map(Json::from),
        Some(Json::Number(_)) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Json::Number),
        _ => Some(Json::String(text.to_string())),
    };
    if parsed.is_none() {
        let kind = match default {
            Some(Json::Bool(_)) => "a boolean (true or false)",
            Some(Json::Number(n)) if n.is_i64() => "an integer",
            _ => "a number",
        };
        ctx.push(Problem::new(
            ctx.map.file(),
            name.to_string(),
            format!("`--set {name}={text}`: variable `{name}` must be {kind}, like its default"),
        ));
    }
    parsed
}

/// Expands a string at `node`, reporting errors at the variables; the
/// result as text.
pub(crate) fn expand_text(
    ctx: &mut Ctx<'_>,
    node: &Node,
    text: &str,
    path: &str,
    scope: &Scope<'_>,
) -> Option<String> {
    match vars::expand(text, scope) {
        Ok(Expanded::Value(value)) => Some(vars::to_text(&value)),
        Ok(Expanded::Deferred(_)) => None,
        Err(errors) => {
            report_var_errors(ctx, node, text, path, errors);
            None
        }
    }
}

/// Reports variable errors under the variable's text.
pub(crate) fn report_var_errors(
    ctx: &mut Ctx<'_>,
    node: &Node,
    text: &str,
    path: &str,
    errors: Vec<vars::VarError>,
) {
    for error in errors {
        let span = tree::sub_span(ctx_source(ctx), &node.span, text, error.range);
        ctx.error(
            span,
            path.to_string(),
            error.message,
            "cannot resolve",
            error.help,
        );
    }
}

fn ctx_source<'a>(ctx: &Ctx<'a>) -> &'a str {
    ctx.map.source()
}
