//! Lossless YAML edits: changes made on the text itself through the
//! concrete syntax tree of the `yaml-edit` crate, so every byte a change
//! does not touch stays as it was (comments, blank lines, key order,
//! quoting, anchors, document markers, line endings).
//!
//! - Setting an existing key replaces only its value (a trailing comment on
//!   the line stays); a value equal to the current one is left untouched.
//! - A new key goes at the end of its parent mapping, at the mapping's
//!   indentation; new intermediate mappings are written in block style.
//! - Deleting a key removes its lines, a nested block value included.
//! - New strings are quoted where a plain scalar would read back as another
//!   type or break the syntax (`'yes'`, `'1.0'`, `'*x'`, `'a: b'`, ...),
//!   and also YAML 1.1 boolean words (`'on'`, `'y'`) that YAML 1.1 readers
//!   (Go's yaml.v2, SnakeYAML) would take as booleans.
//! - A one-line string replacing a quoted string keeps its quote style
//!   (`"old"` becomes `"new"`).
//! - A path that runs through an alias (`*name`, also under a merge key
//!   `<<`) is refused with [`Error::NotLossless`]: the aliased text is
//!   written elsewhere, and editing it there would change every alias.
//!
//! The caller ([`crate::structured`]) parses the result back and compares
//! it with the intended tree, so an edit that would also change an alias of
//! a changed anchor is caught before anything is written.

use std::str::FromStr;

use serde_json::{Map, Value as Json};
use serde_norway::{Mapping as Tree, Value};
use yaml_edit::{AsYaml, Mapping, ScalarValue, Sequence, YamlFile, YamlNode};

use crate::error::{Error, Result};
use crate::key::Key;

/// Words YAML 1.1 readers (Go's yaml.v2, PyYAML, SnakeYAML) take as
/// booleans; new string values equal to one are single-quoted.
pub(crate) const YAML11_BOOLEANS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF",
];

/// A mapping or sequence reached by a path.
enum Container {
    Map(Mapping),
    Seq(Sequence),
}

/// Apply the JSON merge patch `patch` (an object) to `text`, whose tree is
/// `before` (a mapping, or null for a file without content yet).
pub(crate) fn merge(text: &str, before: &Value, patch: &Map<String, Json>) -> Result<String> {
    let file = open(text)?;
    let doc = file.ensure_document();
    let map = match doc.as_mapping() {
        Some(map) => map,
        None => {
            // A document with nothing in it yet (`---` alone): its first key
            // makes it a mapping.
            let Some((key, value)) = patch.iter().find(|(_, v)| !v.is_null()) else {
                return Ok(text.to_owned());
            };
            if !before.is_null() {
                return Err(not_lossless(
                    &Key(Vec::new()),
                    "the top level is not a plain mapping (tagged?); use mode `replace` for this file",
                ));
            }
            doc.set(key.as_str(), &*new_node(value));
            doc.as_mapping().ok_or_else(|| {
                not_lossless(
                    &Key(Vec::new()),
                    "the top level did not become a mapping; use mode `replace` for this file",
                )
            })?
        }
    };
    let empty = Tree::new();
    let current = match before {
        Value::Mapping(m) => m,
        _ => &empty,
    };
    merge_mapping(&map, current, patch, &mut Vec::new(), text)?;
    Ok(tidy(text, &file.to_string()))
}

fn merge_mapping(
    map: &Mapping,
    current: &Tree,
    patch: &Map<String, Json>,
    path: &mut Vec<String>,
    text: &str,
) -> Result<()> {
    for (name, value) in patch {
        path.push(name.clone());
        let existing = current.get(name.as_str());
        match (value, existing) {
            (Json::Null, None) => {}
            (Json::Null, Some(_)) => {
                map.remove(name.as_str());
            }
            (Json::Object(inner), Some(Value::Mapping(existing))) => {
                let node = map
                    .get(name.as_str())
                    .ok_or_else(|| not_found(&Key(path.clone())))?;
                match container(node, path, text)? {
                    Container::Map(child) => merge_mapping(&child, existing, inner, path, text)?,
                    Container::Seq(_) => return Err(not_found(&Key(path.clone()))),
                }
            }
            (value, existing) => {
                if existing != Some(&intended(value)) {
                    let old = map.get(name.as_str());
                    if let Some(node) = &old {
                        refuse_alias(node, path, text)?;
                    }
                    let node = old
                        .as_ref()
                        .and_then(|old| in_quote_style_of(old, value))
                        .unwrap_or_else(|| new_node(value));
                    map.set(name.as_str(), &*node);
                }
            }
        }
        path.pop();
    }
    Ok(())
}

/// Remove the value at `key` (which exists in the parsed tree).
pub(crate) fn delete(text: &str, key: &Key) -> Result<String> {
    let file = open(text)?;
    let Some((last, parents)) = key.0.split_last() else {
        return Ok(text.to_owned());
    };
    let parent = walk(&file, parents, text)?;
    let removed = match parent {
        Container::Map(map) => map.remove(last.as_str()).is_some(),
        Container::Seq(seq) => index(last).and_then(|i| seq.remove(i)).is_some(),
    };
    if !removed {
        return Err(not_found(key));
    }
    Ok(tidy(text, &file.to_string()))
}

/// Replace the values of the leaves in `masks` with the text shown for
/// them. Leaves reached through an alias are skipped (the alias text shows
/// no value); returns the text and the keys actually masked.
pub(crate) fn mask(text: &str, masks: &[(Key, String)]) -> Result<(String, Vec<Key>)> {
    let file = open(text)?;
    let mut masked = Vec::new();
    for (key, shown) in masks {
        let Some((last, parents)) = key.0.split_last() else {
            continue;
        };
        let parent = match walk(&file, parents, text) {
            Ok(parent) => parent,
            Err(Error::NotLossless { .. }) => continue,
            Err(other) => return Err(other),
        };
        let value = ScalarValue::from(shown.as_str());
        match parent {
            Container::Map(map) => {
                if map.get(last.as_str()).is_some_and(|n| n.is_alias()) {
                    continue;
                }
                map.set(last.as_str(), value);
            }
            Container::Seq(seq) => {
                let Some(i) = index(last) else { continue };
                if seq.get(i).is_none_or(|n| n.is_alias()) {
                    continue;
                }
                seq.set(i, value);
            }
        }
        masked.push(key.clone());
    }
    Ok((file.to_string(), masked))
}

/// Blank lines stay where they separate things: `yaml-edit` counts the
/// blank lines after a block scalar (`|`, `>`) as part of it, so a key
/// added after one would land below the blank lines, and deleting one would
/// take the blank lines along. Move such an insertion above the blank lines
/// and keep such blank lines, when the result reads back the same (it does
/// not for a `|+` scalar, whose trailing blank lines are content).
fn tidy(old: &str, new: &str) -> String {
    let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = new.split_inclusive('\n').collect();
    let blank = |line: &&str| line.trim().is_empty();
    let mut out: Vec<&str> = Vec::with_capacity(new_lines.len());
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &old_lines, &new_lines) {
        match op {
            similar::DiffOp::Insert {
                new_index, new_len, ..
            } => {
                let inserted = &new_lines[new_index..new_index + new_len];
                let trailing = out.iter().rev().take_while(|l| blank(l)).count();
                let moved = out.split_off(out.len() - trailing);
                let ends_in_newline = inserted.last().is_some_and(|l| l.ends_with('\n'));
                if trailing > 0 && !inserted.iter().any(blank) && ends_in_newline {
                    out.extend_from_slice(inserted);
                    out.extend(moved);
                } else {
                    out.extend(moved);
                    out.extend_from_slice(inserted);
                }
            }
            similar::DiffOp::Delete {
                old_index, old_len, ..
            } => {
                let deleted = &old_lines[old_index..old_index + old_len];
                let trailing = deleted.iter().rev().take_while(|l| blank(l)).count();
                if trailing < deleted.len() && out.last().is_some_and(|l| !blank(l)) {
                    out.extend_from_slice(&deleted[deleted.len() - trailing..]);
                }
            }
            similar::DiffOp::Equal { new_index, len, .. } => {
                out.extend_from_slice(&new_lines[new_index..new_index + len])
            }
            similar::DiffOp::Replace {
                new_index, new_len, ..
            } => out.extend_from_slice(&new_lines[new_index..new_index + new_len]),
        }
    }
    let tidied = out.concat();
    let reads = |text: &str| serde_norway::from_str::<Value>(text).ok();
    if tidied != new && reads(&tidied).is_some() && reads(&tidied) == reads(new) {
        tidied
    } else {
        new.to_owned()
    }
}

/// The container at `path` from the top of the document.
fn walk(file: &YamlFile, path: &[String], text: &str) -> Result<Container> {
    let whole = Key(path.to_vec());
    let doc = file.document().ok_or_else(|| not_found(&whole))?;
    let mut node = if let Some(map) = doc.as_mapping() {
        Container::Map(map)
    } else if let Some(seq) = doc.as_sequence() {
        Container::Seq(seq)
    } else {
        return Err(not_found(&whole));
    };
    for (depth, segment) in path.iter().enumerate() {
        let child = match &node {
            Container::Map(map) => map.get(segment.as_str()),
            Container::Seq(seq) => index(segment).and_then(|i| seq.get(i)),
        }
        .ok_or_else(|| not_found(&whole))?;
        node = container(child, &path[..=depth], text)?;
    }
    Ok(node)
}

/// `node` as a container, refusing aliases and tagged collections.
fn container(node: YamlNode, path: &[String], text: &str) -> Result<Container> {
    refuse_alias(&node, path, text)?;
    match node {
        YamlNode::Mapping(map) => Ok(Container::Map(map)),
        YamlNode::Sequence(seq) => Ok(Container::Seq(seq)),
        YamlNode::TaggedNode(_) => Err(not_lossless(
            &Key(path.to_vec()),
            &format!(
                "the value at line {} carries a tag (`!...`); dbops does not edit inside tagged values: set the whole value instead",
                line_of(text, &node)
            ),
        )),
        _ => Err(not_found(&Key(path.to_vec()))),
    }
}

fn refuse_alias(node: &YamlNode, path: &[String], text: &str) -> Result<()> {
    let Some(alias) = node.as_alias() else {
        return Ok(());
    };
    Err(not_lossless(
        &Key(path.to_vec()),
        &format!(
            "its value at line {} is the alias *{name}, whose text is written where the anchor &{name} is; \
             change the anchored value (this changes every alias of it) or write the value out in place of the alias",
            line_of(text, node),
            name = alias.name()
        ),
    ))
}

/// A new node for a merge-patch value (`null` members of objects dropped,
/// as the merge does).
fn new_node(value: &Json) -> Box<dyn AsYaml> {
    match value {
        Json::Object(members) => {
            let map = Mapping::new();
            for (name, member) in members.iter().filter(|(_, v)| !v.is_null()) {
                map.set(name.as_str(), &*new_node(member));
            }
            Box::new(map)
        }
        Json::Array(items) => {
            let seq = Sequence::new();
            for item in items {
                seq.push(&*new_node(item));
            }
            Box::new(seq)
        }
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Box::new(ScalarValue::from(i)),
            (None, Some(u), _) => Box::new(u),
            (_, _, f) => Box::new(ScalarValue::from(f.unwrap_or(f64::NAN))),
        },
        Json::Bool(b) => Box::new(ScalarValue::from(*b)),
        Json::Null => Box::new(ScalarValue::null()),
        Json::String(s) if YAML11_BOOLEANS.contains(&s.as_str()) => {
            Box::new(ScalarValue::single_quoted(s.as_str()))
        }
        Json::String(s) if needs_double_quotes(s) => {
            Box::new(ScalarValue::double_quoted(s.as_str()))
        }
        Json::String(s) => Box::new(ScalarValue::from(s.as_str())),
    }
}

/// A new one-line string replacing a quoted scalar keeps its quotes
/// (`password: "old"` becomes `password: "new"`, not `password: new`).
fn in_quote_style_of(old: &YamlNode, value: &Json) -> Option<Box<dyn AsYaml>> {
    let Json::String(s) = value else {
        return None;
    };
    if s.contains('\n') || needs_double_quotes(s) {
        return None;
    }
    let old = old.as_scalar()?;
    if !old.is_quoted() {
        return None;
    }
    if old.value().starts_with('"') {
        Some(Box::new(ScalarValue::double_quoted(s.as_str())))
    } else {
        Some(Box::new(ScalarValue::single_quoted(s.as_str())))
    }
}

/// Strings written double-quoted (with escapes) rather than in the style
/// `yaml-edit` picks: control characters, tabs, carriage returns, and
/// multi-line text a literal block scalar cannot hold exactly (indented or
/// empty first line, several trailing line breaks).
fn needs_double_quotes(s: &str) -> bool {
    let special = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
    };
    s.chars().any(special)
        || (s.contains('\n')
            && (s.starts_with('\n')
                || s.ends_with("\n\n")
                || s.split('\n').any(|line| line.starts_with(' '))))
}

/// The tree value a merge-patch value becomes.
fn intended(value: &Json) -> Value {
    let mut fresh = Value::Null;
    if let Ok(patch) = serde_norway::to_value(value) {
        crate::structured::merge_value(&mut fresh, &patch);
    }
    fresh
}

fn open(text: &str) -> Result<YamlFile> {
    let refused = |why: String| {
        not_lossless(
            &Key(Vec::new()),
            &format!("{why}; use mode `replace` for this file"),
        )
    };
    let file = YamlFile::from_str(text).map_err(|e| {
        refused(format!(
            "the lossless YAML editor cannot read the file ({e})"
        ))
    })?;
    if file.to_string() != text {
        return Err(refused(
            "the lossless YAML editor does not reproduce the file byte for byte".into(),
        ));
    }
    Ok(file)
}

fn index(segment: &str) -> Option<usize> {
    segment.parse().ok()
}

fn line_of(text: &str, node: &YamlNode) -> usize {
    let at = usize::try_from(node.byte_range().start).unwrap_or(usize::MAX);
    text.get(..at)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

fn describe(key: &Key) -> String {
    if key.0.is_empty() {
        "the top level".to_owned()
    } else {
        key.0.join(".")
    }
}

fn not_lossless(key: &Key, message: &str) -> Error {
    Error::NotLossless {
        key: describe(key),
        message: message.to_owned(),
    }
}

fn not_found(key: &Key) -> Error {
    not_lossless(
        key,
        "the YAML text and its parsed tree disagree about this path (complex or non-string keys?); use mode `replace` for this file",
    )
}
