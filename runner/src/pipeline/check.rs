//! Validation against the plugins, still without touching the cluster:
//! every `uses` names a known plugin, every `with` table passes the
//! plugin's JSON Schema and its own `validate`, and every output a step
//! or condition refers to is one the plugin declares.

use std::collections::BTreeMap;
use std::sync::Arc;

use dbops_plugin_sdk::protocol::{PluginInfo, ValidateRequest, ValidateResponse};
use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value as Json;

use super::model::{Pipeline, Span, StepSpec};
use super::problems::{Problem, Problems, SourceMap, did_you_mean, list};
use super::runtime::pointer_to_key;
use super::vars::Part;
use super::when;

/// The plugins available to a run, as the loader sees them. The runner
/// implements it over the loaded plugin libraries; tests use fakes.
pub trait PluginCatalog {
    /// Names usable in `uses`, sorted.
    fn names(&self) -> Vec<String>;
    /// The plugin's description (schema, outputs), if it exists.
    fn info(&self, name: &str) -> Option<&PluginInfo>;
    /// Runs the plugin's own validation of a `with` table.
    fn validate(&self, name: &str, request: &ValidateRequest) -> ValidateResponse;
    /// The compiled validator of the plugin's config schema (`None` if the
    /// plugin does not exist). Compiled on each call unless the catalog
    /// keeps them (a fleet checks the same pipeline once per target).
    fn config_validator(&self, name: &str) -> Option<Result<Arc<jsonschema::Validator>, String>> {
        self.info(name).map(compile_config_schema)
    }
}

/// The validator of a plugin's config schema, or why the schema is invalid.
pub fn compile_config_schema(info: &PluginInfo) -> Result<Arc<jsonschema::Validator>, String> {
    jsonschema::validator_for(&info.config_schema)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Checks every step against its plugin and returns every problem at once.
/// A plugin's own `validate` runs only when its schema accepted the table
/// (so one mistake is not reported twice); values that depend on earlier
/// steps' outputs are passed as `deferred` pointers and skipped by the
/// schema check.
pub fn check_against_plugins(
    pipeline: &Pipeline,
    catalog: &dyn PluginCatalog,
) -> Result<(), Problems> {
    let checker = Checker {
        pipeline,
        map: SourceMap::new(&pipeline.path, &pipeline.source),
        by_id: pipeline.steps.iter().map(|s| (s.id.as_str(), s)).collect(),
    };
    let mut problems = Vec::new();
    let mut validators: BTreeMap<String, Option<Arc<jsonschema::Validator>>> = BTreeMap::new();
    for step in &pipeline.steps {
        let Some(info) = catalog.info(&step.uses) else {
            problems.push(checker.unknown_plugin(step, catalog));
            continue;
        };
        checker.output_references(step, catalog, &mut problems);
        let validator = validators.entry(step.uses.clone()).or_insert_with(|| {
            catalog
                .config_validator(&step.uses)?
                .map_err(|e| {
                    problems.push(
                        checker
                            .at(
                                &step.source.uses,
                                step,
                                "uses",
                                format!("plugin `{}` has an invalid config schema: {e}", step.uses),
                                "",
                            )
                            .with_help("this is a bug in the plugin; report it to its authors"),
                    );
                })
                .ok()
        });
        let Some(validator) = validator.as_ref() else {
            continue;
        };
        let before = problems.len();
        checker.schema(step, info, validator, &mut problems);
        if problems.len() == before {
            checker.plugin_validate(step, catalog, &mut problems);
        }
    }
    let mut problems = Problems(problems);
    problems.sort();
    problems.into_result()
}

struct Checker<'a> {
    pipeline: &'a Pipeline,
    map: SourceMap<'a>,
    by_id: BTreeMap<&'a str, &'a StepSpec>,
}

impl Checker<'_> {
    /// A problem underlining `span` (or at its position when the source
    /// text is not available).
    fn at(&self, span: &Span, step: &StepSpec, key: &str, message: String, label: &str) -> Problem {
        let key = if key.is_empty() {
            format!("step[{}]", step.source.index)
        } else if key.starts_with("step[") {
            key.to_string()
        } else {
            format!("step[{}].{key}", step.source.index)
        };
        if self.pipeline.source.is_empty() {
            Problem {
                location: span.location,
                ..Problem::new(&self.pipeline.path, key, message)
            }
        } else {
            self.map.problem(span.start..span.end, key, message, label)
        }
    }

    /// The span of a `with` value (or its key), falling back to the
    /// closest enclosing value.
    fn with_span(step: &StepSpec, pointer: &str, prefer_key: bool) -> Span {
        let mut current = pointer.to_string();
        loop {
            if let Some(found) = step.source.values.get(&current) {
                return match (prefer_key, found.key) {
                    (true, Some(key)) => key,
                    _ if current.is_empty() => step.source.with,
                    _ => found.value,
                };
            }
            match current.rfind('/') {
                Some(i) => current.truncate(i),
                None => return step.source.with,
            }
        }
    }

    fn unknown_plugin(&self, step: &StepSpec, catalog: &dyn PluginCatalog) -> Problem {
        let names = catalog.names();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let help = if refs.is_empty() {
            "no plugins were found; point `--plugin-dir` or DBOPS_PLUGIN_DIR at the directory holding them".to_string()
        } else {
            let available = format!("available plugins: {}", list(&refs));
            match did_you_mean(&step.uses, refs.iter().copied()) {
                Some(suggestion) => format!("{suggestion} {available}"),
                None => available,
            }
        };
        self.at(
            &step.source.uses,
            step,
            "uses",
            format!("step `{}` uses the unknown plugin `{}`", step.id, step.uses),
            "unknown plugin",
        )
        .with_help(help)
    }

    fn output_references(
        &self,
        step: &StepSpec,
        catalog: &dyn PluginCatalog,
        problems: &mut Vec<Problem>,
    ) {
        let mut references: Vec<(String, String, Span, String)> = Vec::new();
        for deferred in &step.deferred {
            for part in &deferred.parts {
                if let Part::Output { step: s, key } = part {
                    let span = Self::with_span(step, &deferred.pointer, false);
                    let needle = format!("${{steps.{s}.outputs.{key}}}");
                    let key_path = pointer_to_key(step.source.index, &deferred.pointer);
                    references.push((s.clone(), key.clone(), self.narrow(span, &needle), key_path));
                }
            }
        }
        if let (Some(expr), Some(span)) = (&step.when, step.source.when)
            && let Ok(parsed) = when::parse(expr)
        {
            for (s, key, _) in parsed.outputs() {
                let needle = format!("steps.{s}.outputs.{key}");
                references.push((
                    s.to_string(),
                    key.to_string(),
                    self.narrow(span, &needle),
                    format!("step[{}].when", step.source.index),
                ));
            }
        }
        for (referenced, key, span, key_path) in references {
            let Some(other) = self.by_id.get(referenced.as_str()) else {
                continue;
            };
            let Some(info) = catalog.info(&other.uses) else {
                continue;
            };
            if info.outputs.iter().any(|o| o.name == key) {
                continue;
            }
            let declared: Vec<&str> = info.outputs.iter().map(|o| o.name.as_str()).collect();
            let help = match (
                did_you_mean(&key, declared.iter().copied()),
                declared.is_empty(),
            ) {
                (_, true) => format!("plugin `{}` declares no outputs", other.uses),
                (Some(suggestion), false) => format!(
                    "{suggestion} plugin `{}` declares {}",
                    other.uses,
                    list(&declared)
                ),
                (None, false) => format!("plugin `{}` declares {}", other.uses, list(&declared)),
            };
            problems.push(
                self.at(
                    &span,
                    step,
                    &key_path,
                    format!(
                        "step `{}` uses output `{key}` of step `{referenced}`, but plugin `{}` declares no such output",
                        step.id, other.uses
                    ),
                    "unknown output",
                )
                .with_help(help),
            );
        }
    }

    /// Whether the value at `pointer` uses `${env.*}` in the file.
    fn uses_env(&self, step: &StepSpec, pointer: &str) -> bool {
        step.source
            .values
            .get(pointer)
            .and_then(|s| self.pipeline.source.get(s.value.start..s.value.end))
            .is_some_and(|text| text.contains("${env."))
    }

    /// The part of `span` where `needle` is written, if it is on the
    /// span's first line.
    fn narrow(&self, span: Span, needle: &str) -> Span {
        let source = &self.pipeline.source;
        let Some(text) = source.get(span.start..span.end) else {
            return span;
        };
        match text.find(needle) {
            Some(offset) => Span {
                start: span.start + offset,
                end: span.start + offset + needle.len(),
                location: self.map.location(span.start + offset),
            },
            None => span,
        }
    }

    fn schema(
        &self,
        step: &StepSpec,
        info: &PluginInfo,
        validator: &jsonschema::Validator,
        problems: &mut Vec<Problem>,
    ) {
        let deferred = step.deferred_pointers();
        let is_deferred = |pointer: &str| {
            deferred
                .iter()
                .any(|d| pointer == d || pointer.starts_with(&format!("{d}/")))
        };
        let place = format!("step `{}` (plugin `{}`)", step.id, step.uses);
        let mut pending: Vec<ValidationError<'_>> = validator.iter_errors(&step.with).collect();
        pending.reverse();
        while let Some(error) = pending.pop() {
            let pointer = error.instance_path().as_str().to_string();
            if is_deferred(&pointer) {
                continue;
            }
            if let Some(branch) = single_relevant_branch(&error, &pointer) {
                if let ValidationErrorKind::AnyOf { mut context }
                | ValidationErrorKind::OneOfNotValid { mut context } = error.into_parts().kind
                {
                    let errors = context.swap_remove(branch);
                    pending.extend(errors.into_iter().rev());
                }
                continue;
            }
            let name = with_name(&pointer);
            let key = pointer_to_key(step.source.index, &pointer);
            // A value that came from the environment may be a secret: keep
            // it out of messages.
            let from_env = self.uses_env(step, &pointer);
            let instance = if from_env {
                "a value from the environment".to_string()
            } else {
                error.instance().to_string()
            };
            match error.kind() {
                ValidationErrorKind::AdditionalProperties { unexpected }
                | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                    let known =
                        schema_properties(&info.config_schema, error.schema_path().as_str());
                    for extra in unexpected {
                        let child =
                            format!("{pointer}/{}", extra.replace('~', "~0").replace('/', "~1"));
                        let span = Self::with_span(step, &child, true);
                        let refs: Vec<&str> = known.iter().map(String::as_str).collect();
                        let help = did_you_mean(extra, refs.iter().copied()).unwrap_or_else(|| {
                            if refs.is_empty() {
                                format!("`{name}` accepts no other keys")
                            } else {
                                format!("`{name}` accepts {}", list(&refs))
                            }
                        });
                        problems.push(
                            self.at(
                                &span,
                                step,
                                &pointer_to_key(step.source.index, &child),
                                format!("unknown key `{extra}` in `{name}` of {place}"),
                                "unknown key",
                            )
                            .with_help(help),
                        );
                    }
                }
                ValidationErrorKind::Required { property } => {
                    let property = property
                        .as_str()
                        .map_or_else(|| property.to_string(), str::to_string);
                    let span = Self::with_span(step, &pointer, false);
                    problems.push(
                        self.at(
                            &span,
                            step,
                            &key,
                            format!("missing required key `{property}` in `{name}` of {place}"),
                            "required key missing",
                        )
                        .with_help(format!("add `{property} = ...` to `{name}`")),
                    );
                }
                ValidationErrorKind::Enum { options } => {
                    let choices: Vec<String> = options
                        .as_array()
                        .map(|a| a.iter().map(Json::to_string).collect())
                        .unwrap_or_default();
                    let plain: Vec<String> = options
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    let help = error
                        .instance()
                        .as_str()
                        .and_then(|found| did_you_mean(found, plain.iter().map(String::as_str)));
                    let span = Self::with_span(step, &pointer, false);
                    problems.push(
                        self.at(
                            &span,
                            step,
                            &key,
                            format!(
                                "`{name}` of {place} must be one of {}, found {instance}",
                                choices.join(", ")
                            ),
                            "not an allowed value",
                        )
                        .with_help_opt(help),
                    );
                }
                ValidationErrorKind::Type { .. } => {
                    let expected = error.to_string();
                    let expected = expected
                        .rsplit_once(" is not of type ")
                        .map_or(expected.clone(), |(_, t)| format!("of type {t}"));
                    let span = Self::with_span(step, &pointer, false);
                    problems.push(self.at(
                        &span,
                        step,
                        &key,
                        format!(
                            "`{name}` of {place} must be {expected}, found {}",
                            json_kind(error.instance())
                        ),
                        "wrong type",
                    ));
                }
                ValidationErrorKind::Pattern { .. } => {
                    // A regular expression means little to a user; the
                    // schema's description says what is expected.
                    let span = Self::with_span(step, &pointer, false);
                    let expected =
                        schema_description(&info.config_schema, error.schema_path().as_str());
                    problems.push(
                        self.at(
                            &span,
                            step,
                            &key,
                            format!("`{name}` of {place}: {instance} is not a valid value"),
                            "invalid value",
                        )
                        .with_help_opt(expected.map(|d| format!("expected: {d}"))),
                    );
                }
                _ => {
                    let span = Self::with_span(step, &pointer, false);
                    problems.push(self.at(
                        &span,
                        step,
                        &key,
                        if from_env {
                            format!(
                                "`{name}` of {place}: {}",
                                error.masked_with("the value from the environment")
                            )
                        } else {
                            format!("`{name}` of {place}: {error}")
                        },
                        "invalid value",
                    ));
                }
            }
        }
    }

    fn plugin_validate(
        &self,
        step: &StepSpec,
        catalog: &dyn PluginCatalog,
        problems: &mut Vec<Problem>,
    ) {
        let request = ValidateRequest {
            step_id: step.id.clone(),
            target: self.pipeline.target.clone(),
            with: step.with.clone(),
            deferred: step.deferred_pointers(),
        };
        for found in catalog.validate(&step.uses, &request).problems {
            let span = Self::with_span(step, &found.path, false);
            let key = pointer_to_key(step.source.index, &found.path);
            let message = format!(
                "step `{}` (plugin `{}`): {}",
                step.id, step.uses, found.message
            );
            problems.push(self.at(&span, step, &key, message, "rejected by the plugin"));
        }
    }
}

/// For `anyOf`/`oneOf` errors (how schemas write optional tables): the
/// alternative whose errors matter, when exactly one alternative had the
/// right type.
fn single_relevant_branch(error: &ValidationError<'_>, pointer: &str) -> Option<usize> {
    let (ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context }) =
        error.kind()
    else {
        return None;
    };
    let relevant: Vec<usize> = context
        .iter()
        .enumerate()
        .filter(|(_, branch)| {
            !branch.iter().all(|e| {
                matches!(e.kind(), ValidationErrorKind::Type { .. })
                    && e.instance_path().as_str() == pointer
            })
        })
        .map(|(i, _)| i)
        .collect();
    match relevant.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// `/tls/0/name` -> `with.tls[0].name`.
fn with_name(pointer: &str) -> String {
    pointer_to_key(0, pointer)
        .trim_start_matches("step[0].")
        .to_string()
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "a table",
    }
}

/// Property names of the schema object holding the keyword at
/// `schema_path` (e.g. `/properties/tls/additionalProperties`).
/// The description of the schema node whose keyword failed at
/// `schema_path` (e.g. `/properties/member_timeout/$ref/pattern`), following
/// local `$ref`s; the deepest node that has one.
fn schema_description(schema: &Json, schema_path: &str) -> Option<String> {
    let parent = schema_path.rsplit_once('/').map_or("", |(p, _)| p);
    let mut node = schema;
    let mut found = node.get("description");
    for segment in parent.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        node = if segment == "$ref" {
            let target = node.get("$ref")?.as_str()?.strip_prefix('#')?;
            schema.pointer(target)?
        } else if let Some(items) = node.as_array() {
            items.get(segment.parse::<usize>().ok()?)?
        } else {
            node.get(segment.as_str())?
        };
        found = node.get("description").or(found);
    }
    found.and_then(Json::as_str).map(str::to_owned)
}

fn schema_properties(schema: &Json, schema_path: &str) -> Vec<String> {
    let parent = schema_path.rsplit_once('/').map_or("", |(p, _)| p);
    schema
        .pointer(parent)
        .and_then(|s| s.get("properties"))
        .and_then(Json::as_object)
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}
