//! The new content of one file (pure: no cluster access): merge, replace or
//! remove-custom, plus the engine's TLS settings, with the changed keys and
//! a masked diff.

use std::collections::BTreeSet;

use dbops_config_formats::document::changed_keys;
use dbops_config_formats::{Changes, Diff, Document, Format, Key, edit, unified};
use dbops_engines::Engine;
use dbops_engines::config::{TlsAction, TlsOptions, TlsSettings, tls_settings};
use serde_json::{Map, Value};

use crate::config::{FilePlan, Mode, TlsMode};

/// Everything [`compute`] needs, already read from the cluster.
pub struct Input<'a> {
    /// The file and its change.
    pub plan: &'a FilePlan,
    /// The mode.
    pub mode: Mode,
    /// The file's current content (`None`: the key does not exist).
    pub current: Option<&'a str>,
    /// The `source` file's content, when the change names one.
    pub source: Option<&'a str>,
    /// remove-custom: `None` when there is no defaults object, else the
    /// file's first-seen content (`None` inside: the file did not exist).
    pub defaults: Option<Option<&'a str>>,
    /// The engine, for `tls`.
    pub engine: Option<Engine>,
    /// TLS paths and switches.
    pub tls_options: &'a TlsOptions,
}

/// The new content of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The new content (`None`: delete the file's key).
    pub after: Option<String>,
}

/// Compute the new content; errors are full sentences for the user.
pub fn compute(input: &Input<'_>) -> Result<Output, String> {
    let plan = input.plan;
    let format = plan.format;
    let file = &plan.file;
    let parse = |what: &str, text: &str| {
        Document::parse(format, text).map_err(|e| format!("{what} {file}: {e}"))
    };
    let after = match input.mode {
        Mode::RemoveCustom => match input.defaults {
            None => input.current.map(str::to_owned),
            Some(first_seen) => first_seen.map(str::to_owned),
        },
        Mode::Replace => {
            let text = plan
                .change
                .content
                .as_deref()
                .or(input.source)
                .unwrap_or_default();
            let doc = parse("the replacement for", text)?;
            Some(apply_tls(doc, input)?.render())
        }
        Mode::Merge => {
            let mut doc = parse("the current", input.current.unwrap_or_default())?;
            doc = apply_tls(doc, input)?;
            if let Some(source) = input.source {
                let table = parse("the source of", source)?.to_set_table();
                doc = apply(&doc, table, Vec::new(), file)?;
            }
            if plan.change.set.is_some() || !plan.change.delete.is_empty() {
                let set = plan.change.set.clone().unwrap_or(Value::Null);
                doc = apply(&doc, set, plan.change.delete.clone(), file)?;
            }
            Some(doc.render())
        }
    };
    Ok(Output { after })
}

fn apply(doc: &Document, set: Value, delete: Vec<String>, file: &str) -> Result<Document, String> {
    edit(doc, &Changes { set, delete })
        .map(|edited| edited.document)
        .map_err(|e| format!("{file}: {e}"))
}

fn apply_tls(doc: Document, input: &Input<'_>) -> Result<Document, String> {
    let (Some(mode), Some(engine)) = (input.plan.tls, input.engine) else {
        return Ok(doc);
    };
    let action = match mode {
        TlsMode::Add => TlsAction::Add,
        TlsMode::Remove => TlsAction::Remove,
    };
    let current = |key: &[&str]| {
        let key = Key(key.iter().map(|s| (*s).to_owned()).collect());
        doc.get(&key).flatten()
    };
    let Some(settings) = tls_settings(engine, action, input.tls_options, &current) else {
        return Err(format!(
            "the engine {engine} has no TLS settings; set the keys with `set`"
        ));
    };
    let (set, delete) = tls_changes(doc.format(), &settings);
    apply(&doc, set, delete, &input.plan.file)
}

/// Engine TLS settings as a `set` table and `delete` list of `format`.
fn tls_changes(format: Format, settings: &TlsSettings) -> (Value, Vec<String>) {
    let mut set = Map::new();
    for (key, value) in &settings.set {
        match key.as_slice() {
            [section, name] if format == Format::Ini => {
                let group = set
                    .entry(section.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = group {
                    map.insert(name.clone(), Value::String(value.clone()));
                }
            }
            other => {
                set.insert(other.join("."), Value::String(value.clone()));
            }
        }
    }
    let delete = settings.delete.iter().map(|k| k.join(".")).collect();
    (Value::Object(set), delete)
}

/// What changed between two versions of a file: keys and a masked diff.
pub fn describe(
    file: &str,
    format: Format,
    before: Option<&str>,
    after: Option<&str>,
) -> (BTreeSet<Key>, Diff) {
    let parse = |text: Option<&str>| Document::parse(format, text.unwrap_or_default()).ok();
    let (old_doc, new_doc) = (parse(before), parse(after));
    let entries = |doc: &Option<Document>| doc.as_ref().map(Document::entries).unwrap_or_default();
    let keys = changed_keys(format, &entries(&old_doc), &entries(&new_doc));
    // Secret values never show; a changed one reads `****` before and
    // `**** (changed)` after, so even a password-only change has a diff line.
    let masked = |doc: &Option<Document>, changed: &BTreeSet<Key>| {
        doc.as_ref()
            .map(|d| d.render_masked(changed))
            .unwrap_or_default()
    };
    let diff = unified(
        file,
        &masked(&old_doc, &BTreeSet::new()),
        &masked(&new_doc, &keys),
    );
    (keys, diff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileChange;
    use serde_json::json;

    fn plan(file: &str, change: FileChange, tls: Option<TlsMode>) -> FilePlan {
        FilePlan {
            file: file.into(),
            format: Format::detect(file, None).expect("known"),
            change,
            tls,
        }
    }

    fn run(
        plan: &FilePlan,
        mode: Mode,
        current: Option<&str>,
        engine: Option<Engine>,
    ) -> Option<String> {
        let options = TlsOptions::default();
        compute(&Input {
            plan,
            mode,
            current,
            source: None,
            defaults: None,
            engine,
            tls_options: &options,
        })
        .expect("computes")
        .after
    }

    #[test]
    fn tls_add_then_remove_on_zoo_cfg_returns_the_original() {
        let original = "tickTime=2000\nclientPort=2181\n";
        let add = plan("zoo.cfg", FileChange::default(), Some(TlsMode::Add));
        let with_tls =
            run(&add, Mode::Merge, Some(original), Some(Engine::Zookeeper)).expect("content");
        assert!(with_tls.contains("secureClientPort=2182\n"), "{with_tls}");
        assert!(with_tls.contains("clientPort=2181\n"));
        let remove = plan("zoo.cfg", FileChange::default(), Some(TlsMode::Remove));
        let back = run(
            &remove,
            Mode::Merge,
            Some(&with_tls),
            Some(Engine::Zookeeper),
        )
        .expect("content");
        assert_eq!(back, original);
    }

    #[test]
    fn user_settings_win_over_tls_settings() {
        let change = FileChange {
            set: Some(json!({"mysqld": {"require_secure_transport": "OFF"}})),
            ..FileChange::default()
        };
        let p = plan("my.cnf", change, Some(TlsMode::Add));
        let text = run(
            &p,
            Mode::Merge,
            Some("[mysqld]\nport = 3306\n"),
            Some(Engine::Perconaxtradb),
        )
        .expect("content");
        assert!(text.contains("require_secure_transport = OFF\n"), "{text}");
        assert!(text.contains("ssl_ca = /etc/dbops/tls/ca.crt\n"), "{text}");
    }

    #[test]
    fn replace_refuses_content_that_does_not_parse() {
        let change = FileChange {
            content: Some("[mysqld\n".into()),
            ..FileChange::default()
        };
        let p = plan("my.cnf", change, None);
        let options = TlsOptions::default();
        let err = compute(&Input {
            plan: &p,
            mode: Mode::Replace,
            current: Some(""),
            source: None,
            defaults: None,
            engine: None,
            tls_options: &options,
        })
        .unwrap_err();
        assert!(err.contains("the replacement for my.cnf"), "{err}");
    }

    #[test]
    fn describe_lists_changed_keys_and_masks_secrets() {
        let (keys, diff) = describe(
            "server.properties",
            Format::Properties,
            Some("a=1\nssl.keystore.password=x\n"),
            Some("a=2\nssl.keystore.password=y\n"),
        );
        assert_eq!(keys.len(), 2);
        assert!(
            !diff.text.contains("=x") && !diff.text.contains("=y"),
            "{}",
            diff.text
        );
        // The secret line reads `****` before and `**** (changed)` after.
        assert_eq!(diff.changed_lines, 4);
        assert!(
            diff.text.contains("-ssl.keystore.password=****\n")
                && diff
                    .text
                    .contains("+ssl.keystore.password=**** (changed)\n"),
            "{}",
            diff.text
        );
    }
}
