//! Running and compensating `patch-config`: read, compute, back up, write.
//!
//! Order of writes (each safe to repeat after a crash):
//! 1. the defaults object `<object>-dbops-config-defaults`, created once
//!    with the object's full content the first time dbops changes it (what
//!    `remove-custom` goes back to);
//! 2. the backup object `<object>-dbops-backup-<run>-<step>`, created once
//!    with the previous content of the files this step changes, and the
//!    step's durable state naming it (no configuration values in state);
//! 3. the target, patched conditionally on the resourceVersion read.

use std::collections::{BTreeMap, BTreeSet};

use dbops_config_formats::Key;
use dbops_plugin_sdk::{Context, EventType, Level, Outputs, StepError, StepResult};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{Config, Mode, ObjectKind, Plan, Restart};
use crate::edit::{self, Input};
use crate::store::{ABSENT_ANNOTATION, COPY_OF_LABEL, Files, ROLE_LABEL, Store, object_name};

/// Durable state: where the previous content is (never the content).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// The backup object's name (same kind as the target).
    pub backup: String,
    /// The files this step changes.
    pub files: Vec<String>,
}

/// Run the step.
pub fn run(ctx: &Context<'_>, config: &Config) -> StepResult<Outputs> {
    let plan = plan(ctx, config)?;
    let store = Store::new(ctx, plan.kind.clone());
    let current = store.read_existing(&plan.name)?;
    let saved: Option<Saved> = ctx.state()?;
    // After a crash between write and finish, "before" is the backup, so
    // the outputs (changed, restart_required) stay those of the first attempt.
    let original = match &saved {
        Some(s) => store.read(&s.backup)?.map(|b| b.files),
        None => None,
    };
    let defaults_name = object_name(&[&plan.name, "dbops-config-defaults"]);
    let defaults = match config.mode {
        Mode::RemoveCustom => store.read(&defaults_name)?,
        _ => None,
    };
    let tls_options = config.tls_options.resolve();

    let mut new_files: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut changed_keys: Vec<(String, BTreeSet<Key>)> = Vec::new();
    let mut diff_lines = 0;
    let mut diffs = Vec::new();
    for file in &plan.files {
        let source = read_source(ctx, file)?;
        let input = Input {
            plan: file,
            mode: config.mode,
            current: current.files.get(&file.file).map(String::as_str),
            source: source.as_deref(),
            defaults: defaults
                .as_ref()
                .map(|d| d.files.get(&file.file).map(String::as_str)),
            engine: plan.engine,
            tls_options: &tls_options,
        };
        let output = edit::compute(&input).map_err(|m| {
            StepError::permanent(
                "InvalidConfigChange",
                format!(
                    "{} {}/{}, key {}: {m}; nothing was written: fix that file (or the change) and run again",
                    store.kind_name(),
                    ctx.target().namespace,
                    plan.name,
                    file.file
                ),
            )
        })?;
        let before = match &original {
            Some(o) if saved.as_ref().is_some_and(|s| s.files.contains(&file.file)) => {
                o.get(&file.file).map(String::as_str)
            }
            _ => input.current,
        };
        let (keys, diff) = edit::describe(&file.file, file.format, before, output.after.as_deref());
        diff_lines += diff.changed_lines;
        if !diff.text.is_empty() {
            diffs.push(diff.text);
        }
        if !keys.is_empty() || before != output.after.as_deref() {
            changed_keys.push((file.file.clone(), keys));
        }
        if input.current != output.after.as_deref() {
            new_files.insert(file.file.clone(), output.after);
        }
    }
    let changed = !changed_keys.is_empty();
    let restart_required = restart_required(config.restart, plan.engine, &changed_keys);
    let mut final_files = current.files.clone();
    for (file, content) in &new_files {
        match content {
            Some(text) => final_files.insert(file.clone(), text.clone()),
            None => final_files.remove(file),
        };
    }
    let hash = config_hash(&final_files);
    for diff in &diffs {
        ctx.log(
            Level::Info,
            &format!("configuration diff (secrets masked):\n{diff}"),
            &[("object", json!(plan.name))],
        );
    }

    let mut backup = saved.as_ref().map(|s| s.backup.clone()).unwrap_or_default();
    if !ctx.dry_run() && !new_files.is_empty() {
        backup = write(
            ctx,
            &store,
            &plan,
            &current,
            &new_files,
            &defaults_name,
            saved,
        )?;
        let names: Vec<&str> = new_files.keys().map(String::as_str).collect();
        let message = format!(
            "{} {}: changed {} ({diff_lines} diff lines), restart {}",
            kind_name(&plan.kind),
            plan.name,
            names.join(", "),
            if restart_required {
                "required"
            } else {
                "not required"
            }
        );
        ctx.info(&message);
        ctx.event(EventType::Normal, "ConfigPatched", &message);
    } else if ctx.dry_run() {
        ctx.info(&format!(
            "dry run: {} {} not written",
            kind_name(&plan.kind),
            plan.name
        ));
    }
    let mut out = Outputs::new();
    out.insert("changed".into(), Value::Bool(changed));
    out.insert("config_hash".into(), Value::String(hash));
    out.insert("restart_required".into(), Value::Bool(restart_required));
    out.insert("diff_lines".into(), json!(diff_lines));
    out.insert("backup".into(), Value::String(backup));
    if ctx.dry_run() {
        // For `dbops plan --diff`. Not in real runs: the journal is a
        // ConfigMap, and the file may live in a Secret.
        out.insert("diff".into(), Value::String(diffs.join("\n")));
    }
    Ok(out)
}

fn plan(ctx: &Context<'_>, config: &Config) -> StepResult<Plan> {
    config.plan(ctx.target()).map_err(|problems| {
        let text: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        StepError::permanent("InvalidConfig", text.join("; "))
    })
}

fn kind_name(kind: &ObjectKind) -> &'static str {
    match kind {
        ObjectKind::ConfigMap => "ConfigMap",
        ObjectKind::Secret => "Secret",
    }
}

fn read_source(ctx: &Context<'_>, file: &crate::config::FilePlan) -> StepResult<Option<String>> {
    let Some(source) = &file.change.source else {
        return Ok(None);
    };
    let (kind, name) = match (&source.config_map, &source.secret) {
        (Some(n), _) => (ObjectKind::ConfigMap, n),
        (None, Some(n)) => (ObjectKind::Secret, n),
        (None, None) => return Ok(None),
    };
    let key = source.key.clone().unwrap_or_else(|| file.file.clone());
    let files = Store::new(ctx, kind.clone()).read_existing(name)?;
    files.files.get(&key).cloned().map(Some).ok_or_else(|| {
        StepError::permanent(
            "ConfigSourceMissing",
            format!(
                "{} {name} has no key {key}; set `source.key`",
                kind_name(&kind)
            ),
        )
    })
}

fn write(
    ctx: &Context<'_>,
    store: &Store<'_>,
    plan: &Plan,
    current: &Files,
    new_files: &BTreeMap<String, Option<String>>,
    defaults_name: &str,
    saved: Option<Saved>,
) -> StepResult<String> {
    let absent =
        |files: &mut dyn Iterator<Item = &String>, have: &BTreeMap<String, String>| -> String {
            let missing: Vec<&String> = files.filter(|f| !have.contains_key(*f)).collect();
            serde_json::to_string(&missing).unwrap_or_else(|_| "[]".into())
        };
    let defaults_absent = absent(&mut plan.files.iter().map(|f| &f.file), &current.files);
    store.create_copy(
        defaults_name,
        &[(COPY_OF_LABEL, &plan.name), (ROLE_LABEL, "defaults")],
        &[(ABSENT_ANNOTATION, defaults_absent)],
        &current.files,
    )?;
    let saved = match saved {
        Some(s) => s,
        None => {
            let backup = object_name(&[&plan.name, "dbops-backup", ctx.run_id(), ctx.step_id()]);
            let previous: BTreeMap<String, String> = new_files
                .keys()
                .filter_map(|f| current.files.get(f).map(|c| (f.clone(), c.clone())))
                .collect();
            store.create_copy(
                &backup,
                &[(COPY_OF_LABEL, &plan.name), (ROLE_LABEL, "backup")],
                &[(
                    ABSENT_ANNOTATION,
                    absent(&mut new_files.keys(), &current.files),
                )],
                &previous,
            )?;
            let saved = Saved {
                backup,
                files: new_files.keys().cloned().collect(),
            };
            ctx.save_state(&saved)?;
            saved
        }
    };
    store.write(&plan.name, new_files, &current.resource_version)?;
    Ok(saved.backup)
}

/// Compensate: put back exactly the previous content of the changed files.
pub fn compensate(ctx: &Context<'_>, config: &Config) -> StepResult<()> {
    let Some(saved) = ctx.state::<Saved>()? else {
        return Ok(()); // Nothing was written.
    };
    let plan = plan(ctx, config)?;
    let store = Store::new(ctx, plan.kind.clone());
    let backup = store.read(&saved.backup)?.ok_or_else(|| {
        StepError::permanent(
            "BackupMissing",
            format!(
                "the backup {} of {} is gone; restore the configuration by hand",
                saved.backup, plan.name
            ),
        )
    })?;
    let absent: Vec<String> = backup
        .annotations
        .get(ABSENT_ANNOTATION)
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let current = store.read_existing(&plan.name)?;
    let mut restore = BTreeMap::new();
    for file in &saved.files {
        let previous = backup.files.get(file).cloned();
        if previous.is_none() && !absent.contains(file) {
            return Err(StepError::permanent(
                "BackupIncomplete",
                format!("the backup {} lacks {file}", saved.backup),
            ));
        }
        if current.files.get(file) != previous.as_ref() {
            restore.insert(file.clone(), previous);
        }
    }
    if !restore.is_empty() {
        store.write(&plan.name, &restore, &current.resource_version)?;
    }
    let message = format!(
        "restored {} {} from {}",
        kind_name(&plan.kind),
        plan.name,
        saved.backup
    );
    ctx.info(&message);
    ctx.event(EventType::Normal, "ConfigRestored", &message);
    Ok(())
}

fn restart_required(
    restart: Restart,
    engine: Option<dbops_engines::Engine>,
    changed: &[(String, BTreeSet<Key>)],
) -> bool {
    let any = !changed.is_empty();
    match restart {
        Restart::Always => any,
        Restart::Never => false,
        // Only changed settings count: a change of comments or layout alone
        // needs no restart.
        Restart::Auto => changed.iter().any(|(_, keys)| {
            keys.iter()
                .any(|k| !engine.is_some_and(|e| dbops_engines::config::is_dynamic(e, &k.0)))
        }),
    }
}

/// sha256 over the object's files (name and content, in name order).
pub fn config_hash(files: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (name, content) in files {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(content.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&[&str]]) -> BTreeSet<Key> {
        names
            .iter()
            .map(|k| Key(k.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn auto_restart_only_for_settings_the_engine_cannot_apply_at_run_time() {
        use dbops_engines::Engine;
        let dynamic = vec![("my.cnf".to_owned(), keys(&[&["mysqld", "max_connections"]]))];
        let static_key = vec![("my.cnf".to_owned(), keys(&[&["mysqld", "ssl_ca"]]))];
        let comments_only = vec![("my.cnf".to_owned(), BTreeSet::new())];
        let mysql = Some(Engine::Perconaxtradb);
        assert!(!restart_required(Restart::Auto, mysql, &dynamic));
        assert!(restart_required(Restart::Auto, mysql, &static_key));
        assert!(!restart_required(Restart::Auto, mysql, &comments_only));
        assert!(restart_required(Restart::Always, mysql, &comments_only));
        assert!(!restart_required(Restart::Never, mysql, &static_key));
        assert!(
            restart_required(Restart::Auto, None, &dynamic),
            "generic: every key is static"
        );
        assert!(!restart_required(Restart::Always, mysql, &[]));
    }

    #[test]
    fn the_hash_covers_names_and_contents() {
        let a = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        let b = BTreeMap::from([("a1".to_owned(), String::new())]);
        assert_ne!(config_hash(&a), config_hash(&b));
        assert_eq!(config_hash(&a), config_hash(&a.clone()));
    }
}
