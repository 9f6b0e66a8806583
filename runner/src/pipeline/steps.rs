//! `[[step]]` tables: ids, plugin names, `with` tables (with the position
//! of every value, for problems found later by the plugins), timeouts,
//! retries, conditions and pins.

use std::collections::BTreeMap;
use std::ops::Range;

use serde_json::Value as Json;

use super::model::{Defaults, DeferredValue, Span, StepSource, StepSpec, ValueSpan};
use super::problems::Problem;
use super::timing::{duration, retry};
use super::tree::{self, Ctx, Entry, Fields, Node, Value};
use super::variables::report_var_errors;
use super::vars::{self, Expanded, Scope};
use super::when;

/// What steps may refer to.
pub(crate) struct StepEnv<'a> {
    /// Target fields by dotted path.
    pub target: &'a BTreeMap<String, String>,
    /// Variables.
    pub vars: &'a BTreeMap<String, Json>,
    /// The environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// `[defaults]`.
    pub defaults: &'a Defaults,
}

const STEP_KEYS: &[&str] = &[
    "id",
    "uses",
    "with",
    "timeout",
    "retry",
    "always",
    "when",
    "sha256",
    "description",
];

/// Reads every `[[step]]`.
pub(crate) fn steps(ctx: &mut Ctx<'_>, top: &Fields<'_>, env: &StepEnv<'_>) -> Vec<StepSpec> {
    let no_steps = |ctx: &mut Ctx<'_>| {
        ctx.push(
            Problem::new(ctx.map.file(), "step", "the pipeline has no steps")
                .with_help("add at least one `[[step]]` table with `id` and `uses`"),
        );
    };
    let Some(entry) = top.get("step") else {
        if top.get("steps").is_none() {
            no_steps(ctx);
        }
        return Vec::new();
    };
    let items = match &entry.node.value {
        Value::Array(items) if !items.is_empty() => items,
        Value::Array(_) => {
            no_steps(ctx);
            return Vec::new();
        }
        Value::Table(_) => {
            ctx.error(
                entry.key_span.clone(),
                "step",
                "`step` must be an array of tables, found a single table",
                "written as [step]",
                Some("write each step as `[[step]]` (two brackets)".into()),
            );
            return Vec::new();
        }
        other => {
            ctx.error(
                entry.node.span.clone(),
                "step",
                format!("`step` must be an array of tables, found {}", other.kind()),
                "expected [[step]] tables",
                Some("write each step as a `[[step]]` table".into()),
            );
            return Vec::new();
        }
    };
    let ids = step_ids(ctx, items);
    let all: Vec<String> = ids.iter().flatten().cloned().collect();
    let mut specs = Vec::new();
    // Valid ids of the steps before the current one: a prefix of `all`.
    let mut before = 0;
    for (index, item) in items.iter().enumerate() {
        let earlier = &all[..before];
        before += usize::from(ids[index].is_some());
        let Value::Table(entries) = &item.value else {
            ctx.error(
                item.span.clone(),
                format!("step[{index}]"),
                format!("step[{index}] must be a table, found {}", item.value.kind()),
                "expected a table",
                Some("write each step as a `[[step]]` table".into()),
            );
            continue;
        };
        let id = ids[index].clone();
        if let Some(spec) = step(ctx, index, item, entries, id, earlier, &all, env) {
            specs.push(spec);
        }
    }
    specs
}

/// Reads and checks every id first, so steps can refer to later ones in
/// messages ("runs later") and duplicates are found.
fn step_ids(ctx: &mut Ctx<'_>, items: &[Node]) -> Vec<Option<String>> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Value::Table(entries) = &item.value else {
            ids.push(None);
            continue;
        };
        let fields = Fields::new(
            entries,
            format!("step[{index}]"),
            format!("step[{index}]"),
            item.span.clone(),
        );
        fields.require(
            ctx,
            "id",
            "give the step a unique id, e.g. `id = \"pause\"`",
        );
        let Some((id, node)) = fields.string(ctx, "id") else {
            ids.push(None);
            continue;
        };
        let valid = !id.is_empty()
            && id.len() <= 63
            && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid {
            ctx.error(
                node.span.clone(),
                format!("step[{index}].id"),
                format!("invalid step id {id:?}"),
                "invalid id",
                Some("use 1 to 63 lowercase letters, digits, `-` or `_`, starting with a letter or digit".into()),
            );
        }
        let line = ctx.map.location(node.span.start).line;
        if let Some(first_line) = seen.get(id) {
            ctx.error(
                node.span.clone(),
                format!("step[{index}].id"),
                format!("duplicate step id {id:?}"),
                "used again here",
                Some(format!(
                    "step ids must be unique; {id:?} is first used on line {first_line}"
                )),
            );
            ids.push(None);
            continue;
        }
        seen.insert(id.to_string(), line);
        ids.push(Some(id.to_string()));
    }
    ids
}

#[allow(clippy::too_many_arguments)]
fn step(
    ctx: &mut Ctx<'_>,
    index: usize,
    item: &Node,
    entries: &[Entry],
    id: Option<String>,
    earlier: &[String],
    all: &[String],
    env: &StepEnv<'_>,
) -> Option<StepSpec> {
    let name = match &id {
        Some(id) => format!("step `{id}`"),
        None => format!("step[{index}]"),
    };
    let path = format!("step[{index}]");
    let fields = Fields::new(entries, path.clone(), name.clone(), item.span.clone());
    fields.reject_unknown(ctx, STEP_KEYS);
    let file = ctx.map.file().to_path_buf();
    let span_of = |ctx: &Ctx<'_>, range: &Range<usize>| span(ctx, range);
    let header = span_of(ctx, &item.span);

    fields.require(ctx, "uses", "name the plugin, e.g. `uses = \"pause\"`");
    let mut uses = None;
    if let Some((text, node)) = fields.string(ctx, "uses") {
        if text.trim().is_empty() {
            ctx.error(
                node.span.clone(),
                format!("{path}.uses"),
                format!("`uses` in {name} is empty"),
                "empty",
                Some("name the plugin, e.g. `uses = \"pause\"`".into()),
            );
        } else {
            uses = Some((text.to_string(), span_of(ctx, &node.span)));
        }
    }

    let scope = Scope {
        target: Some(env.target),
        env: env.env,
        vars: Some(env.vars),
        earlier_steps: Some(earlier),
        all_steps: all,
        place: &name,
    };
    let mut source = StepSource {
        file,
        index,
        uses: uses.as_ref().map(|u| u.1).unwrap_or(header),
        with: header,
        when: None,
        values: BTreeMap::new(),
    };
    let mut deferred = Vec::new();
    let with = match (fields.get("with"), fields.table(ctx, "with")) {
        (Some(entry), Some(_)) => {
            let mut builder = WithBuilder {
                scope: &scope,
                path: format!("{path}.with"),
                spans: &mut source.values,
                deferred: &mut deferred,
            };
            let value = builder.value(
                ctx,
                &entry.node,
                String::new(),
                format!("{path}.with"),
                Some(&entry.key_span),
            );
            source.with = span_of(ctx, &(tree::union(&entry.key_span, &entry.node.span)));
            value
        }
        _ => Json::Object(serde_json::Map::new()),
    };

    let timeout = duration(ctx, &fields, "timeout").unwrap_or(env.defaults.timeout);
    let retry = retry(ctx, &fields, &env.defaults.retry);
    let always = fields.bool(ctx, "always").unwrap_or(false);
    let description = fields
        .string(ctx, "description")
        .map(|(t, _)| t.to_string())
        .unwrap_or_default();
    let sha256 = fields.string(ctx, "sha256").and_then(|(text, node)| {
        let valid = text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit());
        if !valid {
            ctx.error(
                node.span.clone(),
                format!("{path}.sha256"),
                format!(
                    "`sha256` in {name} must be 64 hexadecimal characters, found {} characters",
                    text.chars().count()
                ),
                "not a sha256 digest",
                Some("compute it with `sha256sum PLUGIN.so` and paste the first field".into()),
            );
        }
        valid.then(|| text.to_ascii_lowercase())
    });
    let when = fields.string(ctx, "when").and_then(|(text, node)| {
        source.when = Some(span_of(ctx, &node.span));
        condition(
            ctx,
            text,
            node,
            &format!("{path}.when"),
            &name,
            &scope,
            earlier,
            all,
        )
    });

    let (uses, _) = uses?;
    let id = id?;
    Some(StepSpec {
        id,
        uses,
        with,
        timeout,
        retry,
        always,
        when,
        sha256,
        location: header.location,
        description,
        deferred,
        source,
    })
}

/// A model span for a byte range.
fn span(ctx: &Ctx<'_>, range: &Range<usize>) -> Span {
    Span {
        start: range.start,
        end: range.end,
        location: ctx.map.location(range.start),
    }
}

/// Expands and parses `when`; checks the steps it refers to.
#[allow(clippy::too_many_arguments)]
fn condition(
    ctx: &mut Ctx<'_>,
    text: &str,
    node: &Node,
    path: &str,
    name: &str,
    scope: &Scope<'_>,
    earlier: &[String],
    all: &[String],
) -> Option<String> {
    let when_scope = Scope {
        earlier_steps: None,
        place: &format!("`when` of {name}"),
        ..*scope
    };
    let expanded = match vars::expand(text, &when_scope) {
        Ok(Expanded::Value(value)) => vars::to_text(&value),
        Ok(Expanded::Deferred(_)) => return None,
        Err(errors) => {
            report_var_errors(ctx, node, text, path, errors);
            return None;
        }
    };
    let at = |ctx: &Ctx<'_>, range: Range<usize>| {
        if expanded == text {
            tree::sub_span(ctx.map.source(), &node.span, text, range)
        } else {
            node.span.clone()
        }
    };
    let expr = match when::parse(&expanded) {
        Ok(expr) => expr,
        Err(error) => {
            let span = at(ctx, error.range);
            ctx.error(
                span,
                path.to_string(),
                format!("invalid `when` in {name}: {}", error.message),
                "here",
                Some("example: `when = \"steps.cert.outputs.changed == true && !steps.cfg.outputs.unchanged\"`".into()),
            );
            return None;
        }
    };
    let mut ok = true;
    for (step, key, range) in expr.outputs() {
        if earlier.iter().any(|e| e == step) {
            continue;
        }
        ok = false;
        let (message, label, help) = if all.iter().any(|e| e == step) {
            (
                format!(
                    "`when` of {name} uses steps.{step}.outputs.{key}, but step `{step}` runs later (or is this step)"
                ),
                "not an earlier step",
                "a condition can only use outputs of steps declared before it".to_string(),
            )
        } else {
            (
                format!(
                    "`when` of {name} uses steps.{step}.outputs.{key}, but there is no step `{step}`"
                ),
                "unknown step",
                super::problems::did_you_mean(step, earlier.iter().map(String::as_str))
                    .unwrap_or_else(|| "refer to an earlier step by its `id`".into()),
            )
        };
        let span = at(ctx, range);
        ctx.error(span, path.to_string(), message, label, Some(help));
    }
    ok.then_some(expanded)
}

/// Converts a `with` table to JSON, expanding variables and recording the
/// position of every value by JSON pointer.
struct WithBuilder<'s, 'a> {
    scope: &'s Scope<'a>,
    path: String,
    spans: &'s mut BTreeMap<String, ValueSpan>,
    deferred: &'s mut Vec<DeferredValue>,
}

impl WithBuilder<'_, '_> {
    fn value(
        &mut self,
        ctx: &mut Ctx<'_>,
        node: &Node,
        pointer: String,
        path: String,
        key: Option<&Range<usize>>,
    ) -> Json {
        self.spans.insert(
            pointer.clone(),
            ValueSpan {
                key: key.map(|k| span(ctx, k)),
                value: span(ctx, &node.span),
            },
        );
        match &node.value {
            Value::String(text) => match vars::expand(text, self.scope) {
                Ok(Expanded::Value(value)) => value,
                Ok(Expanded::Deferred(parts)) => {
                    self.deferred.push(DeferredValue { pointer, parts });
                    Json::String(text.clone())
                }
                Err(errors) => {
                    report_var_errors(ctx, node, text, &path, errors);
                    Json::Null
                }
            },
            Value::Integer(n) => Json::from(*n),
            Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => Json::Number(n),
                None => {
                    ctx.error(
                        node.span.clone(),
                        path,
                        format!("{} holds {f}, which JSON cannot represent", self.path),
                        "not a finite number",
                        Some("use a finite number".into()),
                    );
                    Json::Null
                }
            },
            Value::Bool(b) => Json::Bool(*b),
            Value::Datetime(d) => Json::String(d.clone()),
            Value::Array(items) => Json::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        self.value(
                            ctx,
                            item,
                            format!("{pointer}/{i}"),
                            format!("{path}[{i}]"),
                            None,
                        )
                    })
                    .collect(),
            ),
            Value::Table(entries) => Json::Object(
                entries
                    .iter()
                    .map(|e| {
                        let child =
                            format!("{pointer}/{}", e.key.replace('~', "~0").replace('/', "~1"));
                        let value = self.value(
                            ctx,
                            &e.node,
                            child,
                            format!("{path}.{}", e.key),
                            Some(&e.key_span),
                        );
                        (e.key.clone(), value)
                    })
                    .collect(),
            ),
        }
    }
}
