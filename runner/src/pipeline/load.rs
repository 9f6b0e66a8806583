//! Loading a pipeline: the entry points, `--set`, and `[pipeline]`; the
//! other sections in `variables`, `target`, `timing` and `steps`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde_json::Value as Json;

use super::model::{OnFailure, Pipeline};
use super::problems::{Problem, Problems, SourceMap, did_you_mean, list};
use super::steps;
use super::target::{TARGET_SETTABLE, target};
use super::timing::defaults;
use super::tree::{self, Ctx, Fields, Value};
use super::variables::variables;

/// Looks up an environment variable for `${env.NAME}`.
pub type EnvFn = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How to load a pipeline.
pub struct LoadOptions {
    /// `--set KEY=VALUE` pairs: `target.FIELD=...` overrides a target field,
    /// any other key sets the variable of that name (declared in
    /// `[variables]`). Values are taken literally.
    pub overrides: Vec<(String, String)>,
    /// The environment for `${env.NAME}` (default: the process's).
    pub env: EnvFn,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            overrides: Vec::new(),
            env: Box::new(|name| std::env::var(name).ok()),
        }
    }
}

impl fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadOptions")
            .field("overrides", &self.overrides)
            .finish_non_exhaustive()
    }
}

impl LoadOptions {
    /// Options with `--set` overrides and the process environment.
    pub fn with_overrides(overrides: Vec<(String, String)>) -> Self {
        LoadOptions {
            overrides,
            ..LoadOptions::default()
        }
    }

    /// Replaces the environment (tests, or a fixed environment).
    pub fn with_env(
        mut self,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Box::new(env);
        self
    }
}

/// Pipelines larger than this are refused (1 MiB).
pub const MAX_SIZE: usize = 1 << 20;

const TOP_KEYS: &[&str] = &["pipeline", "target", "defaults", "variables", "step"];

/// Reads and loads a pipeline file. The only I/O in this module.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Pipeline, Problems> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        Problems::from(
            Problem::new(path, "", format!("cannot read the pipeline file: {e}"))
                .with_help("check the path and that the file is readable UTF-8 text"),
        )
    })?;
    load_str(&source, path, options)
}

/// Loads a pipeline from its text (`path` is used in messages): parses,
/// expands variables, validates everything that needs no plugin, and
/// returns every problem at once.
pub fn load_str(source: &str, path: &Path, options: &LoadOptions) -> Result<Pipeline, Problems> {
    if source.len() > MAX_SIZE {
        let message = format!(
            "the pipeline is {} bytes long; the limit is {MAX_SIZE} bytes",
            source.len()
        );
        return Err(Problem::new(path, "", message)
            .with_help("is this the right file? pipelines are small TOML files")
            .into());
    }
    let map = SourceMap::new(path, source);
    let root = tree::parse(&map, source).map_err(|mut p| {
        p.truncate(tree::MAX_PROBLEMS);
        Problems(p)
    })?;
    let entries: &[tree::Entry] = match &root.value {
        Value::Table(entries) => entries,
        _ => &[],
    };
    let mut ctx = Ctx::new(map);
    let top = Fields::new(
        entries,
        "",
        "the top level of the pipeline",
        root.span.clone(),
    );
    top.reject_unknown(&mut ctx, TOP_KEYS);
    let mut sets = Sets::new(&mut ctx, &options.overrides);
    let header = header(&mut ctx, &top);
    let variables = variables(&mut ctx, &top, &mut sets, &*options.env);
    let (target, target_fields) = target(&mut ctx, &top, &mut sets, &variables, &*options.env);
    sets.report_unused(&mut ctx, &variables);
    let defaults = defaults(&mut ctx, &top);
    let steps = steps::steps(
        &mut ctx,
        &top,
        &steps::StepEnv {
            target: &target_fields,
            vars: &variables,
            env: &*options.env,
            defaults: &defaults,
        },
    );
    Problems(ctx.finish()).into_result()?;
    Ok(Pipeline {
        path: path.to_path_buf(),
        name: header.name,
        description: header.description,
        operation: header.operation,
        on_failure: header.on_failure,
        target,
        steps,
        defaults,
        variables,
        source: source.to_string(),
    })
}

/// `--set` values not yet used.
pub(crate) struct Sets {
    /// `target.FIELD` -> value.
    pub target: BTreeMap<String, String>,
    /// Variable name -> value.
    pub vars: BTreeMap<String, String>,
}

impl Sets {
    fn new(ctx: &mut Ctx<'_>, overrides: &[(String, String)]) -> Sets {
        let mut sets = Sets {
            target: BTreeMap::new(),
            vars: BTreeMap::new(),
        };
        for (key, value) in overrides {
            if key.starts_with("target.") {
                if TARGET_SETTABLE.contains(&key.as_str()) {
                    sets.target.insert(key.clone(), value.clone());
                } else {
                    let help =
                        did_you_mean(key, TARGET_SETTABLE.iter().copied()).unwrap_or_else(|| {
                            format!(
                                "target fields that can be set are {}",
                                list(TARGET_SETTABLE)
                            )
                        });
                    let problem = Problem::new(
                        ctx.map.file(),
                        key.clone(),
                        format!("`--set {key}=...`: unknown target field `{key}`"),
                    );
                    ctx.push(problem.with_help(help));
                }
            } else {
                sets.vars.insert(key.clone(), value.clone());
            }
        }
        sets
    }

    fn report_unused(&self, ctx: &mut Ctx<'_>, variables: &BTreeMap<String, Json>) {
        for key in self.vars.keys() {
            let (message, help) = if key.contains('.') {
                (
                    format!("`--set {key}=...`: only variables and target fields can be set"),
                    "write `--set NAME=VALUE` for a variable declared in [variables], or `--set target.FIELD=VALUE`".to_string(),
                )
            } else {
                let help = did_you_mean(key, variables.keys().map(String::as_str)).unwrap_or_else(|| {
                    "declare the variable in [variables] (with a default), or set a target field with `--set target.FIELD=VALUE`".into()
                });
                (
                    format!("`--set {key}=...`: the pipeline declares no variable `{key}`"),
                    help,
                )
            };
            ctx.push(Problem::new(ctx.map.file(), key.clone(), message).with_help(help));
        }
        for key in self.target.keys() {
            let table = if key.starts_with("target.database.") {
                "[target.database]"
            } else {
                "[target]"
            };
            let message =
                format!("`--set {key}=...`: the pipeline has no {table} table to override");
            let help = format!("add a {table} table to the pipeline");
            ctx.push(Problem::new(ctx.map.file(), key.clone(), message).with_help(help));
        }
    }
}

struct Header {
    name: String,
    description: String,
    operation: String,
    on_failure: OnFailure,
}

fn header(ctx: &mut Ctx<'_>, top: &Fields<'_>) -> Header {
    let mut header = Header {
        name: String::new(),
        description: String::new(),
        operation: String::new(),
        on_failure: OnFailure::Rollback,
    };
    let Some(entry) = top.get("pipeline") else {
        ctx.push(
            Problem::new(
                ctx.map.file(),
                "pipeline",
                "missing required table [pipeline]",
            )
            .with_help("start the file with `[pipeline]` and `name = \"...\"`"),
        );
        return header;
    };
    let Some((entries, node)) = top.table(ctx, "pipeline") else {
        return header;
    };
    let fields = Fields::new(
        entries,
        "pipeline",
        "[pipeline]",
        tree::union(&entry.key_span, &node.span),
    );
    fields.reject_unknown(ctx, &["name", "description", "operation", "on_failure"]);
    fields.require(
        ctx,
        "name",
        "name the pipeline, e.g. `name = \"rotate-zookeeper-tls\"`",
    );
    if let Some((name, node)) = fields.string(ctx, "name") {
        if name.is_empty()
            || name.len() > 63
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            ctx.error(
                node.span.clone(),
                "pipeline.name",
                format!("the pipeline name {name:?} is not a valid name"),
                "invalid name",
                Some("use 1 to 63 letters, digits, `-`, `_` or `.` (it becomes a Kubernetes label value)".into()),
            );
        }
        header.name = name.to_string();
    }
    if let Some((text, _)) = fields.string(ctx, "description") {
        header.description = text.to_string();
    }
    header.operation = match fields.string(ctx, "operation") {
        Some((text, _)) => text.to_string(),
        None => header.name.clone(),
    };
    if let Some((text, node)) = fields.string(ctx, "on_failure") {
        match text {
            "rollback" => header.on_failure = OnFailure::Rollback,
            "halt" => header.on_failure = OnFailure::Halt,
            other => ctx.error(
                node.span.clone(),
                "pipeline.on_failure",
                format!("`on_failure` in [pipeline] must be \"rollback\" or \"halt\", found {other:?}"),
                "unknown value",
                Some(did_you_mean(other, ["rollback", "halt"]).unwrap_or_else(|| {
                    "\"rollback\" runs the compensations of completed steps in reverse; \"halt\" stops".into()
                })),
            ),
        }
    }
    header
}
