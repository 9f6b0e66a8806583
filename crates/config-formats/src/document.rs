//! [`Document`]: one parsed file of any format, and [`edit`]: apply a set of
//! changes and check that what will be written reads back as intended.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::format::Format;
use crate::ini::Ini;
use crate::key::Key;
use crate::properties::Properties;
use crate::secrets::{MASK, MASK_CHANGED, is_secret_key};
use crate::structured::Structured;

/// A parsed configuration file.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// Java properties.
    Properties(Properties),
    /// my.cnf INI.
    Ini(Ini),
    /// YAML or JSON.
    Structured(Structured, Format),
}

impl Document {
    /// Parse `text` as `format`.
    pub fn parse(format: Format, text: &str) -> Result<Document> {
        Ok(match format {
            Format::Properties => Document::Properties(Properties::parse(text)?),
            Format::Ini => Document::Ini(Ini::parse(text)?),
            Format::Yaml | Format::Json => {
                Document::Structured(Structured::parse(format, text)?, format)
            }
        })
    }

    /// The format.
    pub fn format(&self) -> Format {
        match self {
            Document::Properties(_) => Format::Properties,
            Document::Ini(_) => Format::Ini,
            Document::Structured(_, f) => *f,
        }
    }

    /// The file as text.
    pub fn render(&self) -> String {
        match self {
            Document::Properties(p) => p.render(),
            Document::Ini(i) => i.render(),
            Document::Structured(s, _) => s.render(),
        }
    }

    /// The file as text with secret values shown as `****`, or as
    /// `**** (changed)` for keys in `changed`.
    pub fn render_masked(&self, changed: &BTreeSet<Key>) -> String {
        let format = self.format();
        let mask = |key: &Key| {
            is_secret_key(format, key).then(|| {
                if changed.contains(&normalize(format, key)) {
                    MASK_CHANGED.to_owned()
                } else {
                    MASK.to_owned()
                }
            })
        };
        match self {
            Document::Properties(p) => p.render_with(|k| mask(&Key::flat(k))),
            Document::Ini(i) => i.render_with(mask),
            Document::Structured(s, _) => s.render_with(mask),
        }
    }

    /// Every setting in file order (keys may repeat in properties and INI).
    pub fn entries(&self) -> Vec<(Key, Option<String>)> {
        match self {
            Document::Properties(p) => p.entries(),
            Document::Ini(i) => i.entries(),
            Document::Structured(s, _) => s.entries(),
        }
    }

    /// The effective value of `key` (properties: the last occurrence; INI:
    /// `None` unless it appears exactly once; YAML/JSON: a leaf).
    pub fn get(&self, key: &Key) -> Option<Option<String>> {
        let format = self.format();
        let wanted = normalize(format, key);
        let matching: Vec<Option<String>> = self
            .entries()
            .into_iter()
            .filter(|(k, _)| normalize(format, k) == wanted)
            .map(|(_, v)| v)
            .collect();
        match (format, matching.as_slice()) {
            (Format::Ini, [only]) => Some(only.clone()),
            (Format::Ini, _) => None,
            (_, values) => values.last().cloned(),
        }
    }
}

impl Document {
    /// The document's settings as a `set` table for [`Changes`]: flat keys
    /// for properties, `group -> key -> value` for INI (`true` for a key
    /// without value), the whole tree for YAML/JSON. Merging it into
    /// another file of the same format sets every setting this one has.
    pub fn to_set_table(&self) -> Value {
        match self {
            Document::Properties(p) => Value::Object(
                p.entries()
                    .into_iter()
                    .map(|(k, v)| (k.leaf().to_owned(), Value::String(v.unwrap_or_default())))
                    .collect(),
            ),
            Document::Ini(i) => {
                let mut groups = serde_json::Map::new();
                for (key, value) in i.entries() {
                    let entry = groups
                        .entry(key.0[0].clone())
                        .or_insert_with(|| Value::Object(serde_json::Map::new()));
                    if let Value::Object(map) = entry {
                        map.insert(
                            key.leaf().to_owned(),
                            value.map(Value::String).unwrap_or(Value::Bool(true)),
                        );
                    }
                }
                Value::Object(groups)
            }
            Document::Structured(s, _) => s.to_json(),
        }
    }
}

/// A key as compared: INI option names with `-` read as `_`.
pub fn normalize(format: Format, key: &Key) -> Key {
    match format {
        Format::Ini => Key(key
            .0
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i == 1 {
                    s.replace('-', "_")
                } else {
                    s.clone()
                }
            })
            .collect()),
        _ => key.clone(),
    }
}

/// The changes of a `merge`: `set` is a table (nested tables flatten to
/// dotted keys for properties; `group -> key -> value` for INI; a JSON
/// merge patch for YAML/JSON), `null` deletes; `delete` lists keys as
/// [`Key::parse`] reads them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// Keys to set or (with `null`) delete.
    pub set: Value,
    /// Keys to delete.
    pub delete: Vec<String>,
}

/// The outcome of [`edit`].
#[derive(Debug, Clone, PartialEq)]
pub struct Edited {
    /// The document after the changes.
    pub document: Document,
    /// The new text (equal to the input when nothing changed).
    pub text: String,
    /// Keys whose effective value changed, were added or removed (normalized).
    pub changed_keys: BTreeSet<Key>,
}

impl Edited {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        !self.changed_keys.is_empty()
    }
}

/// One flat change.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Set(Key, Option<String>),
    Delete(Key),
    DeleteSection(String),
}

/// Apply `changes` to `before` and check the result: it must parse back,
/// set keys must appear once with their new value, deleted keys must be
/// gone, and every other setting must be unchanged. Nothing is returned
/// (so nothing can be written) when a check fails.
pub fn edit(before: &Document, changes: &Changes) -> Result<Edited> {
    let format = before.format();
    let mut after = before.clone();
    let ops = match &mut after {
        Document::Structured(doc, _) => {
            if !changes.set.is_null() {
                doc.merge(&changes.set)?;
            }
            for key in &changes.delete {
                doc.delete(&Key::parse(format, key))?;
            }
            Vec::new()
        }
        flat => {
            let ops = flat_ops(format, changes)?;
            apply_flat(flat, &ops)?;
            ops
        }
    };
    let text = after.render();
    verify(before, &after, &text, &ops)?;
    let changed_keys = changed_keys(format, &before.entries(), &after.entries());
    Ok(Edited {
        document: after,
        text,
        changed_keys,
    })
}

/// Keys whose values differ between two entry lists (normalized).
pub fn changed_keys(
    format: Format,
    before: &[(Key, Option<String>)],
    after: &[(Key, Option<String>)],
) -> BTreeSet<Key> {
    let a = grouped(format, before);
    let b = grouped(format, after);
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

type Grouped = BTreeMap<Key, Vec<Option<String>>>;

fn grouped(format: Format, entries: &[(Key, Option<String>)]) -> Grouped {
    let mut map: Grouped = BTreeMap::new();
    for (k, v) in entries {
        map.entry(normalize(format, k)).or_default().push(v.clone());
    }
    map
}

fn flat_ops(format: Format, changes: &Changes) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    match (&changes.set, format) {
        (Value::Null, _) => {}
        (Value::Object(map), Format::Properties) => {
            for (name, value) in map {
                flatten_properties(name, value, &mut ops)?;
            }
        }
        (Value::Object(map), _) => {
            for (name, value) in map {
                match value {
                    Value::Object(keys) => {
                        for (key, v) in keys {
                            ops.push(ini_op(Key::ini(name, key), v)?);
                        }
                    }
                    Value::Null => ops.push(Op::DeleteSection(name.clone())),
                    scalar => ops.push(ini_op(Key::ini("", name), scalar)?),
                }
            }
        }
        (other, _) => {
            return Err(Error::change(
                "(set)",
                format!("expected a table of keys, found {other}"),
            ));
        }
    }
    for key in &changes.delete {
        ops.push(Op::Delete(Key::parse(format, key)));
    }
    let mut seen = BTreeSet::new();
    for op in &ops {
        if let Op::Set(k, _) | Op::Delete(k) = op
            && !seen.insert(normalize(format, k))
        {
            return Err(Error::change(
                k.describe(format),
                "the key is named twice in the changes (set and delete, or `-` and `_` spellings); name it once",
            ));
        }
    }
    Ok(ops)
}

fn flatten_properties(name: &str, value: &Value, ops: &mut Vec<Op>) -> Result<()> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten_properties(&format!("{name}.{k}"), v, ops)?;
            }
            Ok(())
        }
        Value::Null => {
            ops.push(Op::Delete(Key::flat(name)));
            Ok(())
        }
        other => {
            ops.push(Op::Set(Key::flat(name), Some(scalar(name, other)?)));
            Ok(())
        }
    }
}

fn ini_op(key: Key, value: &Value) -> Result<Op> {
    Ok(match value {
        Value::Null => Op::Delete(key),
        Value::Bool(true) => Op::Set(key, None),
        other => {
            let text = scalar(&key.describe(Format::Ini), other)?;
            Op::Set(key, Some(text))
        }
    })
}

fn scalar(key: &str, value: &Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(Error::change(
            key,
            format!("expected a string, number or boolean, found {other}"),
        )),
    }
}

fn apply_flat(doc: &mut Document, ops: &[Op]) -> Result<()> {
    for op in ops {
        match (&mut *doc, op) {
            (Document::Properties(p), Op::Set(k, v)) => {
                p.set(k.leaf(), v.as_deref().unwrap_or(""))?;
            }
            (Document::Properties(p), Op::Delete(k)) => {
                p.delete(&k.0.join("."));
            }
            (Document::Ini(i), Op::Set(k, v)) => {
                i.set(&k.0[0], k.leaf(), v.as_deref())?;
            }
            (Document::Ini(i), Op::Delete(k)) => {
                i.delete(&k.0[0], k.leaf());
            }
            (Document::Ini(i), Op::DeleteSection(s)) => {
                i.delete_section(s);
            }
            _ => {}
        }
    }
    Ok(())
}

fn verify(before: &Document, after: &Document, text: &str, ops: &[Op]) -> Result<()> {
    let format = before.format();
    let reread = Document::parse(format, text).map_err(|e| Error::Validation {
        message: format!("the new text does not parse: {e}"),
    })?;
    let reread_entries = reread.entries();
    if reread_entries != after.entries() {
        return Err(Error::Validation {
            message: "the new text reads back with different settings than intended".into(),
        });
    }
    if matches!(format, Format::Yaml | Format::Json) {
        // The merge itself defines the intended tree; reading back equal is the check.
        return Ok(());
    }
    let got = grouped(format, &reread_entries);
    let mut expected = grouped(format, &before.entries());
    for op in ops {
        match op {
            Op::Set(k, v) => {
                expected.insert(normalize(format, k), vec![v.clone()]);
            }
            Op::Delete(k) => {
                expected.remove(&normalize(format, k));
            }
            Op::DeleteSection(s) => expected.retain(|k, _| k.0.first() != Some(s)),
        }
    }
    if let Some(key) = expected
        .keys()
        .chain(got.keys())
        .find(|k| expected.get(*k) != got.get(*k))
    {
        let problem = match got.get(key).map(Vec::len) {
            Some(n) if n > 1 => "is set more than once",
            Some(_) => "does not have the intended value",
            None => "is missing",
        };
        return Err(Error::Validation {
            message: format!("{} {problem} after the edit", key.describe(format)),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn changes(set: Value, delete: &[&str]) -> Changes {
        Changes {
            set,
            delete: delete.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn properties_merge_flattens_nested_tables_and_reports_changed_keys() {
        let before = Document::parse(Format::Properties, "a=1\nb=2\n").expect("parses");
        let edited = edit(
            &before,
            &changes(
                json!({"ssl": {"keyStore": {"location": "/x"}}, "a": null}),
                &["b"],
            ),
        )
        .expect("edit");
        assert_eq!(edited.text, "ssl.keyStore.location=/x\n");
        let keys: Vec<String> = edited.changed_keys.iter().map(Key::to_string).collect();
        assert_eq!(keys, ["a", "b", "ssl.keyStore.location"]);
    }

    #[test]
    fn ini_merge_sets_groups_flags_and_deletes_sections() {
        let before = Document::parse(
            Format::Ini,
            "[mysqld]\nssl-ca = /old\n[mysqld_safe]\nnice = 0\n",
        )
        .expect("parses");
        let edited = edit(
            &before,
            &changes(
                json!({"mysqld": {"ssl_ca": "/new", "skip-name-resolve": true}, "mysqld_safe": null}),
                &[],
            ),
        )
        .expect("edit");
        assert_eq!(edited.text, "[mysqld]\nssl-ca = /new\nskip-name-resolve\n");
    }

    #[test]
    fn a_key_named_twice_is_refused_before_anything_is_applied() {
        let before = Document::parse(Format::Ini, "[mysqld]\n").expect("parses");
        let err = edit(
            &before,
            &changes(json!({"mysqld": {"ssl_ca": "/a"}}), &["mysqld.ssl-ca"]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("named twice"), "{err}");
    }

    #[test]
    fn unchanged_edit_is_byte_identical_and_reports_no_change() {
        let text = "# c\r\na = 1\r\n";
        let before = Document::parse(Format::Properties, text).expect("parses");
        let edited = edit(&before, &changes(json!({"a": 1}), &[])).expect("edit");
        assert!(!edited.changed());
        assert_eq!(edited.text, text);
    }

    #[test]
    fn masks_secret_values_and_marks_changed_ones() {
        let before =
            Document::parse(Format::Properties, "ssl.keystore.password=old\nport=1\n").expect("p");
        let edited = edit(
            &before,
            &changes(json!({"ssl.keystore.password": "new"}), &[]),
        )
        .expect("edit");
        let masked = edited.document.render_masked(&edited.changed_keys);
        assert_eq!(masked, "ssl.keystore.password=**** (changed)\nport=1\n");
        assert!(!before.render_masked(&BTreeSet::new()).contains("old"));
    }

    #[test]
    fn a_document_merged_as_a_set_table_sets_all_its_settings() {
        let source = Document::parse(
            Format::Ini,
            "[mysqld]\nmax_connections = 200\nskip-name-resolve\n",
        )
        .expect("parses");
        assert_eq!(
            source.to_set_table(),
            json!({"mysqld": {"max_connections": "200", "skip-name-resolve": true}})
        );
        let target =
            Document::parse(Format::Ini, "[mysqld]\nmax_connections = 100\n").expect("parses");
        let edited = edit(
            &target,
            &Changes {
                set: source.to_set_table(),
                delete: vec![],
            },
        )
        .expect("edit");
        assert_eq!(
            edited.text,
            "[mysqld]\nmax_connections = 200\nskip-name-resolve\n"
        );
    }
}
