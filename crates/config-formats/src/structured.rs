//! YAML and JSON: a parsed value tree for reading, and lossless edits of
//! the text for writing.
//!
//! A [`Structured`] document holds its text and the value tree parsed from
//! it (an ordered YAML tree for both formats). A change is computed on the
//! tree (a JSON merge patch, RFC 7386, or a delete by path), made on the
//! text by [`crate::yaml_text`] or [`crate::json_text`], and the new text
//! is parsed back and compared with the intended tree before it is kept.
//!
//! What is preserved: every byte a change does not touch (comments,
//! blank lines, key order, quoting, anchors/aliases, document markers,
//! line endings, indentation). Setting a key replaces its value's span;
//! a new key is a new line at the end of its parent mapping; a deleted key
//! loses its lines and nothing else. See those modules for the details.
//!
//! Where a lossless change is not possible the edit is refused with
//! [`Error::NotLossless`] (what, where, how to fix), never guessed:
//! - a YAML path that runs through an alias (`*name`, a merge key `<<`);
//! - a YAML change that would also change an alias of a changed anchor
//!   (caught by the read-back, naming the key that would change);
//! - editing inside a tagged collection (`!custom {a: 1}`);
//! - text the lossless editors cannot reproduce byte for byte.
//!
//! Documented fallbacks (the tree replaces the whole file): a YAML file
//! whose top level is a scalar or sequence that a patch replaces with
//! another value is re-emitted. Masked rendering ([`Structured::render_with`])
//! replaces only the secret values' spans; should that ever not read back
//! masked, the whole masked tree is re-emitted instead, so a secret is
//! never shown. Multi-document YAML is refused.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_norway::{Mapping, Value};

use crate::error::{Error, Result};
use crate::format::Format;
use crate::key::Key;
use crate::yaml_text::YAML11_BOOLEANS;
use crate::{json_text, yaml_text};

/// A parsed YAML or JSON document.
#[derive(Debug, Clone, PartialEq)]
pub struct Structured {
    format: Format,
    text: String,
    value: Value,
}

impl Structured {
    /// Parse `text` as `format` (YAML or JSON).
    pub fn parse(format: Format, text: &str) -> Result<Structured> {
        let value = if text.trim().is_empty() {
            Value::Mapping(Mapping::new())
        } else if format == Format::Json {
            serde_json::from_str::<Value>(text)
                .map_err(|e| Error::parse("json", e.line(), e.to_string()))?
        } else {
            serde_norway::from_str::<Value>(text).map_err(|e| {
                let line = e.location().map(|l| l.line()).unwrap_or(0);
                Error::parse("yaml", line, e.to_string())
            })?
        };
        Ok(Structured {
            format,
            text: text.to_owned(),
            value,
        })
    }

    /// The document as text: the original with only the changed spans edited.
    pub fn render(&self) -> String {
        self.text.clone()
    }

    /// The document with the values of secret keys (those `mask` returns a
    /// text for) replaced by that text; only those values' spans change.
    pub fn render_with(&self, mask: impl Fn(&Key) -> Option<String>) -> String {
        let masks: Vec<(Key, String)> = self
            .entries()
            .into_iter()
            .filter_map(|(key, _)| mask(&key).map(|shown| (key, shown)))
            .collect();
        if masks.is_empty() {
            return self.render();
        }
        let lossless = match self.format {
            Format::Json => json_text::mask(&self.text, &masks).map(|t| (t, masks.clone())),
            _ => yaml_text::mask(&self.text, &masks).map(|(t, done)| {
                let done = masks.iter().filter(|(k, _)| done.contains(k)).cloned();
                (t, done.collect())
            }),
        };
        match lossless {
            Ok((text, done)) if self.masked_reads_back(&text, &done) => text,
            _ => {
                let mut masked = self.value.clone();
                mask_tree(&mut masked, &mut Vec::new(), &mask);
                self.emit(&masked)
            }
        }
    }

    /// Whether `text` parses and every key in `done` reads back as its mask.
    fn masked_reads_back(&self, text: &str, done: &[(Key, String)]) -> bool {
        let Ok(back) = Structured::parse(self.format, text) else {
            return false;
        };
        let entries: BTreeMap<Key, Option<String>> = back.entries().into_iter().collect();
        done.iter()
            .all(|(key, shown)| entries.get(key) == Some(&Some(shown.clone())))
    }

    /// The whole tree re-emitted (only where a lossless edit does not apply).
    fn emit(&self, value: &Value) -> String {
        match self.format {
            Format::Json => {
                let indent = json_indent(&self.text);
                let mut out = Vec::new();
                let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
                let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
                // A YAML tree read from JSON always serializes back to JSON.
                if value.serialize(&mut serializer).is_err() {
                    return self.text.clone();
                }
                let mut text = String::from_utf8_lossy(&out).into_owned();
                if self.text.ends_with('\n') || self.text.is_empty() {
                    text.push('\n');
                }
                text
            }
            _ => serde_norway::to_string(value)
                .map(|text| quote_yaml11_booleans(&text))
                .unwrap_or_else(|_| self.text.clone()),
        }
    }

    /// The tree as JSON (`null` where YAML has something JSON cannot hold).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.value).unwrap_or(serde_json::Value::Null)
    }

    /// Every leaf (scalar, or empty mapping/sequence) with its path; values
    /// are strings as written, other scalars in JSON notation.
    pub fn entries(&self) -> Vec<(Key, Option<String>)> {
        let mut out = Vec::new();
        flatten(&self.value, &mut Vec::new(), &mut out);
        out
    }

    /// Apply a JSON merge patch (RFC 7386): objects merge, `null` deletes,
    /// anything else replaces. The text changes only where the values do.
    /// Returns whether the document changed; refuses (changing nothing) a
    /// change that cannot be made losslessly.
    pub fn merge(&mut self, patch: &serde_json::Value) -> Result<bool> {
        let tree_patch: Value = serde_norway::to_value(patch)
            .map_err(|e| Error::change("(patch)", format!("not representable: {e}")))?;
        let mut after = self.value.clone();
        merge_value(&mut after, &tree_patch);
        if after == self.value {
            return Ok(false);
        }
        let text = match (self.format, &self.value, patch) {
            (Format::Json, before, patch) => json_text::merge(&self.text, before, patch)?,
            (_, Value::Mapping(_) | Value::Null, serde_json::Value::Object(members)) => {
                yaml_text::merge(&self.text, &self.value, members)?
            }
            // The patch replaces a top level that is not a mapping.
            _ => self.emit(&after),
        };
        self.commit(text, after)?;
        Ok(true)
    }

    /// Remove the value at `key`, its lines only; returns whether it existed.
    /// Refuses (changing nothing) a delete that cannot be made losslessly.
    pub fn delete(&mut self, key: &Key) -> Result<bool> {
        let mut after = self.value.clone();
        if !delete_path(&mut after, key) {
            return Ok(false);
        }
        let text = match self.format {
            Format::Json => json_text::delete(&self.text, key)?,
            _ => yaml_text::delete(&self.text, key)?,
        };
        self.commit(text, after)?;
        Ok(true)
    }

    /// Keep `text` as the new content if it reads back as `after`.
    fn commit(&mut self, text: String, after: Value) -> Result<()> {
        let back = Structured::parse(self.format, &text).map_err(|e| Error::Validation {
            message: format!("the edited {} does not parse: {e}", self.format),
        })?;
        if back.value != after {
            let wanted = Structured {
                value: after,
                ..self.clone()
            };
            return Err(Error::Validation {
                message: difference(&wanted.entries(), &back.entries(), &text),
            });
        }
        self.text = text;
        self.value = after;
        Ok(())
    }
}

/// Which key reads back differently, and the likely reason (no values:
/// they may be secrets).
fn difference(
    wanted: &[(Key, Option<String>)],
    got: &[(Key, Option<String>)],
    text: &str,
) -> String {
    let wanted_map: BTreeMap<&Key, &Option<String>> = wanted.iter().map(|(k, v)| (k, v)).collect();
    let got_map: BTreeMap<&Key, &Option<String>> = got.iter().map(|(k, v)| (k, v)).collect();
    let key = wanted_map
        .keys()
        .chain(got_map.keys())
        .find(|k| wanted_map.get(*k) != got_map.get(*k));
    let Some(key) = key else {
        return "the edited file reads back with a different structure than intended".into();
    };
    let hint = if text.contains('*') && text.contains('&') {
        " (it is probably an alias of an anchored value the change edits: change the alias's own key, or write the anchored value out in place of its aliases)"
    } else {
        ""
    };
    format!("{key} would not read back as intended{hint}")
}

fn delete_path(value: &mut Value, key: &Key) -> bool {
    let Some((last, parents)) = key.0.split_last() else {
        return false;
    };
    let mut node = value;
    for segment in parents {
        let next = match node {
            Value::Mapping(m) => m.get_mut(Value::String(segment.clone())),
            Value::Sequence(s) => segment.parse::<usize>().ok().and_then(|i| s.get_mut(i)),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    match node {
        Value::Mapping(m) => m.shift_remove(Value::String(last.clone())).is_some(),
        Value::Sequence(s) => match last.parse::<usize>() {
            Ok(i) if i < s.len() => {
                s.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Apply the merge patch `patch` to `target` (RFC 7386).
pub(crate) fn merge_value(target: &mut Value, patch: &Value) {
    let Value::Mapping(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !matches!(target, Value::Mapping(_)) {
        *target = Value::Mapping(Mapping::new());
    }
    if let Value::Mapping(target_map) = target {
        for (k, v) in patch_map {
            if v.is_null() {
                target_map.shift_remove(k);
            } else if let Some(existing) = target_map.get_mut(k) {
                merge_value(existing, v);
            } else {
                let mut fresh = Value::Null;
                merge_value(&mut fresh, v);
                target_map.insert(k.clone(), fresh);
            }
        }
    }
}

fn segment_of(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => scalar_text(other),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        other => serde_json::to_string(other).unwrap_or_else(|_| {
            serde_norway::to_string(other)
                .map(|s| s.trim_end().to_owned())
                .unwrap_or_default()
        }),
    }
}

fn flatten(value: &Value, path: &mut Vec<String>, out: &mut Vec<(Key, Option<String>)>) {
    match value {
        Value::Mapping(m) if !m.is_empty() => {
            for (k, v) in m {
                path.push(segment_of(k));
                flatten(v, path, out);
                path.pop();
            }
        }
        Value::Sequence(s) if !s.is_empty() => {
            for (i, v) in s.iter().enumerate() {
                path.push(i.to_string());
                flatten(v, path, out);
                path.pop();
            }
        }
        Value::Tagged(t) => flatten(&t.value, path, out),
        Value::Mapping(_) => out.push((Key(path.clone()), Some("{}".to_owned()))),
        Value::Sequence(_) => out.push((Key(path.clone()), Some("[]".to_owned()))),
        scalar => out.push((Key(path.clone()), Some(scalar_text(scalar)))),
    }
}

fn mask_tree(value: &mut Value, path: &mut Vec<String>, mask: &impl Fn(&Key) -> Option<String>) {
    match value {
        Value::Mapping(m) if !m.is_empty() => {
            for (k, v) in m.iter_mut() {
                path.push(segment_of(k));
                mask_tree(v, path, mask);
                path.pop();
            }
        }
        Value::Sequence(s) if !s.is_empty() => {
            for (i, v) in s.iter_mut().enumerate() {
                path.push(i.to_string());
                mask_tree(v, path, mask);
                path.pop();
            }
        }
        Value::Tagged(t) => mask_tree(&mut t.value, path, mask),
        leaf => {
            if let Some(shown) = mask(&Key(path.clone())) {
                *leaf = Value::String(shown);
            }
        }
    }
}

/// Quote plain scalar values that YAML 1.1 readers would take as booleans
/// (the emitter writes real booleans as `true`/`false`, so a bare `on` is
/// always a string). Block scalar contents are left alone.
fn quote_yaml11_booleans(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut block_indent: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches('\n');
        let indent = content.len() - content.trim_start().len();
        if let Some(parent) = block_indent {
            if content.trim().is_empty() || indent > parent {
                out.push_str(line);
                continue;
            }
            block_indent = None;
        }
        let trimmed = content.trim_end();
        if ["|", "|-", "|+", ">", ">-", ">+"]
            .iter()
            .any(|marker| trimmed.ends_with(&format!(" {marker}")))
        {
            block_indent = Some(indent);
        }
        let split = trimmed.rfind(": ").map(|i| i + 2).or_else(|| {
            trimmed
                .trim_start()
                .starts_with("- ")
                .then(|| trimmed.rfind("- ").map(|i| i + 2))
                .flatten()
        });
        match split {
            Some(at) if YAML11_BOOLEANS.contains(&&trimmed[at..]) => {
                out.push_str(&trimmed[..at]);
                out.push_str(&format!("'{}'", &trimmed[at..]));
                out.push_str(&line[trimmed.len()..]);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// The indentation unit of a JSON text (its first indented line), default 2 spaces.
fn json_indent(text: &str) -> String {
    text.lines()
        .map(|l| &l[..l.len() - l.trim_start().len()])
        .find(|indent| !indent.is_empty())
        .unwrap_or("  ")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(text: &str) -> Structured {
        Structured::parse(Format::Yaml, text).expect("parses")
    }

    #[test]
    fn json_merge_edits_only_the_changed_members() {
        let text = "{\n    \"z\": 1,\n    \"a\": {\"b\": 2, \"c\": 3},\n    \"k\": [1, 2]\n}\n";
        let mut doc = Structured::parse(Format::Json, text).expect("parses");
        assert_eq!(doc.render(), text);
        assert!(
            doc.merge(&json!({"a": {"b": null, "d": "x"}, "m": true}))
                .expect("merge")
        );
        assert_eq!(
            doc.render(),
            "{\n    \"z\": 1,\n    \"a\": {\n        \"c\": 3,\n        \"d\": \"x\"\n    },\n    \"k\": [1, 2],\n    \"m\": true\n}\n"
        );
        assert!(!doc.merge(&json!({"z": 1})).expect("merge"));
        assert!(doc.delete(&Key::parse(Format::Json, "/k")).expect("delete"));
        assert!(
            doc.render().ends_with("    },\n    \"m\": true\n}\n"),
            "{}",
            doc.render()
        );
    }

    #[test]
    fn yaml_merge_and_delete_keep_comments_and_layout() {
        let mut doc = yaml("# c\nb: 1   # bee\na:\n  x: [1, 2]\n");
        doc.merge(&json!({"a": {"y": "1"}, "b": 2})).expect("merge");
        assert!(
            doc.delete(&Key::parse(Format::Yaml, "a.x.0"))
                .expect("delete")
        );
        assert_eq!(doc.render(), "# c\nb: 2   # bee\na:\n  x: [2]\n  y: '1'\n");
        let keys: Vec<String> = doc.entries().iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, ["b", "a.x.0", "a.y"]);
        assert!(
            !doc.delete(&Key::parse(Format::Yaml, "nope.x"))
                .expect("absent")
        );
    }

    #[test]
    fn a_replaced_quoted_string_keeps_its_quotes() {
        let mut doc = yaml("a: \"old\"   # double\nb: 'old'\nc: old\nd: \"1\"\n");
        doc.merge(&json!({"a": "new", "b": "it's", "c": "new", "d": 2}))
            .expect("merge");
        assert_eq!(
            doc.render(),
            "a: \"new\"   # double\nb: 'it''s'\nc: new\nd: 2\n"
        );
        // A value the old style cannot hold on one line takes its own.
        doc.merge(&json!({"a": "two\nlines"})).expect("merge");
        assert_eq!(yaml(&doc.render()).entries(), doc.entries());
    }

    #[test]
    fn refuses_invalid_and_multi_document_input() {
        assert!(Structured::parse(Format::Json, "{\"a\": }").is_err());
        assert!(Structured::parse(Format::Yaml, "a: 1\n---\nb: 2\n").is_err());
    }

    #[test]
    fn strings_yaml_1_1_reads_as_booleans_are_quoted() {
        let mut doc = yaml("a: 1\n");
        doc.merge(
            &json!({"mode": "on", "list": ["no", "x"], "text": "line on\nno\n", "flag": true}),
        )
        .expect("merge");
        let text = doc.render();
        assert!(text.contains("mode: 'on'\n"), "{text}");
        assert!(text.contains("- 'no'\n"), "{text}");
        assert!(text.contains("flag: true\n"), "{text}");
        assert!(
            text.contains("  no\n"),
            "block scalar content untouched: {text}"
        );
        assert_eq!(yaml(&text).entries(), doc.entries());
    }

    #[test]
    fn a_path_through_an_alias_is_refused_with_the_line_and_a_fix() {
        let text = "base: &base\n  x: 1\nprod:\n  <<: *base\n  y: 2\n";
        let mut doc = yaml(text);
        let err = doc.merge(&json!({"prod": {"<<": {"x": 5}}})).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::NotLossless { .. }), "{message}");
        assert!(
            message.contains("prod.<<") && message.contains("line 4"),
            "{message}"
        );
        assert!(message.contains("alias *base"), "{message}");
        assert_eq!(doc.render(), text, "nothing changed");
        // Keys next to the merge key are plain keys of `prod`.
        doc.merge(&json!({"prod": {"x": 5}})).expect("merge");
        assert_eq!(
            doc.render(),
            "base: &base\n  x: 1\nprod:\n  <<: *base\n  y: 2\n  x: 5\n"
        );
    }

    #[test]
    fn changing_an_anchored_value_that_aliases_share_is_refused() {
        let mut doc = yaml("base: &b\n  x: 1\ncopy: *b\n");
        let err = doc.merge(&json!({"base": {"x": 2}})).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("copy.x") && message.contains("alias"),
            "{message}"
        );
    }

    #[test]
    fn flow_collections_are_edited_in_place() {
        let mut doc = yaml("a: {b: 1, c: 2} # flow\nd: 3\n");
        doc.merge(&json!({"a": {"b": null, "e": "x"}}))
            .expect("merge");
        assert_eq!(doc.render(), "a: {c: 2, e: x} # flow\nd: 3\n");
    }

    #[test]
    fn files_without_content_gain_keys_after_their_comments() {
        let mut doc = yaml("# nothing yet\n");
        doc.merge(&json!({"a": {"b": 1}})).expect("merge");
        assert_eq!(doc.render(), "# nothing yet\na:\n  b: 1\n");
        let mut doc = Structured::parse(Format::Json, "").expect("parses");
        doc.merge(&json!({"a": 1})).expect("merge");
        assert_eq!(doc.render(), "{\n  \"a\": 1\n}\n");
    }

    #[test]
    fn masking_replaces_only_secret_value_spans() {
        let doc = yaml("# db\nuser: app # who\npassword: \"hunter2\" # rotate\nport: 1\n");
        let masked = doc.render_with(|k| (k.leaf() == "password").then(|| "****".to_owned()));
        assert_eq!(
            masked,
            "# db\nuser: app # who\npassword: '****' # rotate\nport: 1\n"
        );
        let json = Structured::parse(
            Format::Json,
            "{\n  \"token\": [\"a\", \"b\"],\n  \"x\": 1\n}\n",
        )
        .expect("parses");
        let masked = json.render_with(|k| (k.0[0] == "token").then(|| "****".to_owned()));
        assert_eq!(
            masked,
            "{\n  \"token\": [\"****\", \"****\"],\n  \"x\": 1\n}\n"
        );
    }

    #[test]
    fn crlf_files_keep_their_line_endings() {
        let mut doc = yaml("# c\r\na:\r\n  b: 1\r\n");
        doc.merge(&json!({"a": {"c": "x"}, "d": 2})).expect("merge");
        assert_eq!(doc.render(), "# c\r\na:\r\n  b: 1\r\n  c: x\r\nd: 2\r\n");
        let mut doc = Structured::parse(Format::Json, "{\r\n\t\"a\": 1\r\n}\r\n").expect("parses");
        doc.merge(&json!({"b": {"c": 2}})).expect("merge");
        assert_eq!(
            doc.render(),
            "{\r\n\t\"a\": 1,\r\n\t\"b\": {\r\n\t\t\"c\": 2\r\n\t}\r\n}\r\n"
        );
    }
}
