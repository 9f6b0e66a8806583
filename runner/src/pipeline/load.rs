//! Loading a pipeline: `[pipeline]`, `[variables]`, `[target]`,
//! `[defaults]` here; `[[step]]` in [`super::steps`].

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use dbops_plugin_sdk::protocol::{DatabaseRef, Target, Workload};
use serde_json::Value as Json;

use super::model::{Defaults, OnFailure, Pipeline, RetryPolicy};
use super::problems::{Problem, Problems, SourceMap, did_you_mean, list};
use super::steps;
use super::tree::{self, Ctx, Fields, Node, Value};
use super::vars::{self, Expanded, Scope};

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
const TARGET_SETTABLE: &[&str] = &[
    "target.engine",
    "target.namespace",
    "target.name",
    "target.workload.kind",
    "target.workload.name",
    "target.workload.api_version",
    "target.database.api_version",
    "target.database.kind",
    "target.database.plural",
    "target.database.name",
];

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
struct Sets {
    target: BTreeMap<String, String>,
    vars: BTreeMap<String, String>,
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
            let help = did_you_mean(key, variables.keys().map(String::as_str)).unwrap_or_else(|| {
                "declare the variable in [variables] (with a default), or set a target field with `--set target.FIELD=VALUE`".into()
            });
            let problem = Problem::new(
                ctx.map.file(),
                key.clone(),
                format!("`--set {key}=...`: the pipeline declares no variable `{key}`"),
            );
            ctx.push(problem.with_help(help));
        }
        for key in self.target.keys() {
            let problem = Problem::new(
                ctx.map.file(),
                key.clone(),
                format!(
                    "`--set {key}=...`: the pipeline has no [target.database] table to override"
                ),
            );
            ctx.problems
                .push(problem.with_help("add a [target.database] table to the pipeline"));
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

fn variables(
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

/// A target string field: from the file (expanded) or from `--set`
/// (literal).
struct Field {
    text: String,
    span: Option<Range<usize>>,
    set: bool,
}

fn target_field(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    key: &str,
    sets: &mut Sets,
    scope: &Scope<'_>,
) -> Option<Field> {
    let set_key = format!(
        "target.{}",
        fields.key_path(key).trim_start_matches("target.")
    );
    let span = fields.get(key).map(|e| e.node.span.clone());
    if let Some(text) = sets.target.remove(&set_key) {
        return Some(Field {
            text,
            span,
            set: true,
        });
    }
    let (text, node) = fields.string(ctx, key)?;
    let text = expand_text(ctx, node, text, &fields.key_path(key), scope)?;
    Some(Field {
        text,
        span,
        set: false,
    })
}

fn bad_field(ctx: &mut Ctx<'_>, field: &Field, key: &str, message: String, help: String) {
    match (&field.span, field.set) {
        (Some(span), false) => ctx.error(
            span.clone(),
            key.to_string(),
            message,
            "invalid value",
            Some(help),
        ),
        _ => {
            let problem = Problem::new(
                ctx.map.file(),
                key.to_string(),
                format!("`--set {key}={}`: {message}", field.text),
            );
            ctx.push(problem.with_help(help));
        }
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn target(
    ctx: &mut Ctx<'_>,
    top: &Fields<'_>,
    sets: &mut Sets,
    variables: &BTreeMap<String, Json>,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Target, BTreeMap<String, String>) {
    let mut target = Target::default();
    let mut fields_map = BTreeMap::new();
    let Some(entry) = top.get("target") else {
        ctx.push(
            Problem::new(ctx.map.file(), "target", "missing required table [target]")
                .with_help("add `[target]` with `engine`, `namespace` and `name` of the database"),
        );
        return (target, fields_map);
    };
    let Some((entries, node)) = top.table(ctx, "target") else {
        return (target, fields_map);
    };
    let scope = Scope {
        target: None,
        env,
        vars: Some(variables),
        earlier_steps: None,
        all_steps: &[],
        place: "[target]",
    };
    let fields = Fields::new(
        entries,
        "target",
        "[target]",
        tree::union(&entry.key_span, &node.span),
    );
    fields.reject_unknown(
        ctx,
        &["engine", "namespace", "name", "workload", "database"],
    );
    let required = [
        (
            "engine",
            "add `engine = \"zookeeper\"` (or kafka, druid, perconaxtradb, generic)",
        ),
        (
            "namespace",
            "add `namespace = \"...\"`, e.g. `namespace = \"${env.POD_NAMESPACE:-default}\"`",
        ),
        (
            "name",
            "add `name = \"...\"`: the database (and by default its StatefulSet) name",
        ),
    ];
    for (key, help) in required {
        if !sets.target.contains_key(&format!("target.{key}")) {
            fields.require(ctx, key, help);
        }
    }
    if let Some(field) = target_field(ctx, &fields, "engine", sets, &scope) {
        match dbops_engines::Engine::parse(&field.text) {
            Some(engine) => target.engine = engine.name().to_string(),
            None => {
                let names: Vec<&str> = dbops_engines::Engine::ALL
                    .iter()
                    .map(|e| e.name())
                    .collect();
                let help = did_you_mean(&field.text, names.iter().copied())
                    .unwrap_or_else(|| format!("engines are {}", list(&names)));
                bad_field(
                    ctx,
                    &field,
                    "target.engine",
                    format!("unknown engine {:?}", field.text),
                    help,
                );
            }
        }
    }
    if let Some(field) = target_field(ctx, &fields, "namespace", sets, &scope) {
        if !is_dns_label(&field.text) {
            let help = "a namespace has 1 to 63 lowercase letters, digits or `-`, starting and ending with a letter or digit".to_string();
            bad_field(
                ctx,
                &field,
                "target.namespace",
                format!("{:?} is not a valid namespace name", field.text),
                help,
            );
        }
        target.namespace = field.text;
    }
    if let Some(field) = target_field(ctx, &fields, "name", sets, &scope) {
        if !is_dns_subdomain(&field.text) {
            let help =
                "use lowercase letters, digits, `-` and `.` (a Kubernetes object name)".to_string();
            bad_field(
                ctx,
                &field,
                "target.name",
                format!("{:?} is not a valid Kubernetes object name", field.text),
                help,
            );
        }
        target.name = field.text;
    }
    target.workload = workload(ctx, &fields, sets, &scope, &target.name);
    target.database = database(ctx, &fields, sets, &scope, &target.name);
    fields_map.insert("engine".into(), target.engine.clone());
    fields_map.insert("namespace".into(), target.namespace.clone());
    fields_map.insert("name".into(), target.name.clone());
    fields_map.insert("workload.kind".into(), target.workload.kind.clone());
    fields_map.insert("workload.name".into(), target.workload.name.clone());
    fields_map.insert(
        "workload.api_version".into(),
        target.workload.api_version.clone(),
    );
    if let Some(db) = &target.database {
        fields_map.insert("database.api_version".into(), db.api_version.clone());
        fields_map.insert("database.kind".into(), db.kind.clone());
        fields_map.insert("database.plural".into(), db.plural.clone());
        fields_map.insert("database.name".into(), db.name.clone());
    }
    (target, fields_map)
}

fn workload(
    ctx: &mut Ctx<'_>,
    target: &Fields<'_>,
    sets: &mut Sets,
    scope: &Scope<'_>,
    name: &str,
) -> Workload {
    let mut workload = Workload {
        kind: "StatefulSet".into(),
        name: name.to_string(),
        api_version: "apps/v1".into(),
    };
    let (entries, span) = match (target.get("workload"), target.table(ctx, "workload")) {
        (Some(entry), Some((entries, node))) => (entries, tree::union(&entry.key_span, &node.span)),
        _ => (&[][..], target.span.clone()),
    };
    let fields = Fields::new(entries, "target.workload", "[target.workload]", span);
    fields.reject_unknown(ctx, &["kind", "name", "api_version"]);
    if let Some(field) = target_field(ctx, &fields, "kind", sets, scope) {
        match field.text.as_str() {
            "StatefulSet" => {}
            "PetSet" => workload.api_version = "apps.k8s.appscode.com/v1".into(),
            other => {
                let help = did_you_mean(other, ["StatefulSet", "PetSet"]).unwrap_or_else(|| {
                    "use \"StatefulSet\", or \"PetSet\" for KubeDB-managed databases".into()
                });
                bad_field(
                    ctx,
                    &field,
                    "target.workload.kind",
                    format!("unknown workload kind {other:?}"),
                    help,
                );
            }
        }
        workload.kind = field.text;
    }
    if let Some(field) = target_field(ctx, &fields, "name", sets, scope) {
        if !is_dns_subdomain(&field.text) {
            let help =
                "use lowercase letters, digits, `-` and `.` (a Kubernetes object name)".to_string();
            bad_field(
                ctx,
                &field,
                "target.workload.name",
                format!("{:?} is not a valid Kubernetes object name", field.text),
                help,
            );
        }
        workload.name = field.text;
    }
    if let Some(field) = target_field(ctx, &fields, "api_version", sets, scope) {
        workload.api_version = field.text;
    }
    workload
}

fn database(
    ctx: &mut Ctx<'_>,
    target: &Fields<'_>,
    sets: &mut Sets,
    scope: &Scope<'_>,
    name: &str,
) -> Option<DatabaseRef> {
    let entry = target.get("database")?;
    let (entries, node) = target.table(ctx, "database")?;
    let fields = Fields::new(
        entries,
        "target.database",
        "[target.database]",
        tree::union(&entry.key_span, &node.span),
    );
    fields.reject_unknown(ctx, &["api_version", "kind", "plural", "name"]);
    fields.require(
        ctx,
        "api_version",
        "add e.g. `api_version = \"kubedb.com/v1\"`",
    );
    fields.require(ctx, "kind", "add e.g. `kind = \"ZooKeeper\"`");
    let mut database = DatabaseRef {
        api_version: String::new(),
        kind: String::new(),
        plural: String::new(),
        name: name.to_string(),
    };
    if let Some(field) = target_field(ctx, &fields, "api_version", sets, scope) {
        database.api_version = field.text;
    }
    if let Some(field) = target_field(ctx, &fields, "kind", sets, scope) {
        database.kind = field.text;
    }
    database.plural = format!("{}s", database.kind.to_lowercase());
    if let Some(field) = target_field(ctx, &fields, "plural", sets, scope) {
        database.plural = field.text;
    }
    if let Some(field) = target_field(ctx, &fields, "name", sets, scope) {
        database.name = field.text;
    }
    Some(database)
}

fn defaults(ctx: &mut Ctx<'_>, top: &Fields<'_>) -> Defaults {
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
