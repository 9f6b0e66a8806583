//! `[target]`, `[target.workload]` and `[target.database]`: the database the
//! pipeline operates on, as a [`dbops_plugin_sdk::Target`].

use std::collections::BTreeMap;
use std::ops::Range;

use dbops_plugin_sdk::protocol::{DatabaseRef, Target, Workload};
use serde_json::Value as Json;

use super::load::Sets;
use super::problems::{Problem, did_you_mean, list};
use super::tree::{self, Ctx, Fields};
use super::variables::expand_text;
use super::vars::Scope;

/// Target fields `--set target.FIELD=VALUE` may replace.
pub(crate) const TARGET_SETTABLE: &[&str] = &[
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

/// Report `field` (at `key`) unless it is a valid Kubernetes object name.
fn check_object_name(ctx: &mut Ctx<'_>, field: &Field, key: &str) {
    if !is_dns_subdomain(&field.text) {
        bad_field(
            ctx,
            field,
            key,
            format!("{:?} is not a valid Kubernetes object name", field.text),
            "use lowercase letters, digits, `-` and `.` (a Kubernetes object name)".to_string(),
        );
    }
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

pub(crate) fn target(
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
        check_object_name(ctx, &field, "target.name");
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
        check_object_name(ctx, &field, "target.workload.name");
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
