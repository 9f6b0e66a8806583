//! YAML and JSON, edited structurally.
//!
//! Both are held as an ordered YAML value tree, so key order survives a
//! change. Limits, by design and documented for users:
//! - an unchanged file is rendered byte for byte as it was read;
//! - a changed YAML file is re-emitted: comments, anchors/aliases (expanded),
//!   tags, quoting style and blank lines are not kept;
//! - a changed JSON file is re-indented with the indentation of its first
//!   indented line (2 spaces when it has none); key order is kept;
//! - multi-document YAML is refused.

use serde::Serialize;
use serde_norway::{Mapping, Value};

use crate::error::{Error, Result};
use crate::format::Format;
use crate::key::Key;

/// A parsed YAML or JSON document.
#[derive(Debug, Clone, PartialEq)]
pub struct Structured {
    format: Format,
    original: String,
    value: Value,
    modified: bool,
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
            original: text.to_owned(),
            value,
            modified: false,
        })
    }

    /// The document as text: the original when unchanged, else re-emitted.
    pub fn render(&self) -> String {
        if !self.modified {
            return self.original.clone();
        }
        self.emit(&self.value)
    }

    /// The document with the values of secret keys replaced (re-emitted
    /// when anything was masked).
    pub fn render_with(&self, mask: impl Fn(&Key) -> Option<String>) -> String {
        let mut masked = self.value.clone();
        let mut any = false;
        mask_tree(&mut masked, &mut Vec::new(), &mask, &mut any);
        if any {
            self.emit(&masked)
        } else {
            self.render()
        }
    }

    fn emit(&self, value: &Value) -> String {
        match self.format {
            Format::Json => {
                let indent = json_indent(&self.original);
                let mut out = Vec::new();
                let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
                let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
                // A YAML tree read from JSON always serializes back to JSON.
                if value.serialize(&mut serializer).is_err() {
                    return self.original.clone();
                }
                let mut text = String::from_utf8_lossy(&out).into_owned();
                if self.original.ends_with('\n') || self.original.is_empty() {
                    text.push('\n');
                }
                text
            }
            _ => serde_norway::to_string(value)
                .map(|text| quote_yaml11_booleans(&text))
                .unwrap_or_else(|_| self.original.clone()),
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
    /// anything else replaces. Returns whether the document changed.
    pub fn merge(&mut self, patch: &serde_json::Value) -> Result<bool> {
        let patch: Value = serde_norway::to_value(patch)
            .map_err(|e| Error::change("(patch)", format!("not representable: {e}")))?;
        let before = self.value.clone();
        merge_value(&mut self.value, &patch);
        let changed = before != self.value;
        self.modified |= changed;
        Ok(changed)
    }

    /// Remove the value at `key`; returns whether it existed.
    pub fn delete(&mut self, key: &Key) -> bool {
        let Some((last, parents)) = key.0.split_last() else {
            return false;
        };
        let mut node = &mut self.value;
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
        let removed = match node {
            Value::Mapping(m) => m.shift_remove(Value::String(last.clone())).is_some(),
            Value::Sequence(s) => match last.parse::<usize>() {
                Ok(i) if i < s.len() => {
                    s.remove(i);
                    true
                }
                _ => false,
            },
            _ => false,
        };
        self.modified |= removed;
        removed
    }
}

fn merge_value(target: &mut Value, patch: &Value) {
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

fn mask_tree(
    value: &mut Value,
    path: &mut Vec<String>,
    mask: &impl Fn(&Key) -> Option<String>,
    any: &mut bool,
) {
    match value {
        Value::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                path.push(segment_of(k));
                mask_tree(v, path, mask, any);
                path.pop();
            }
        }
        Value::Sequence(s) => {
            for (i, v) in s.iter_mut().enumerate() {
                path.push(i.to_string());
                mask_tree(v, path, mask, any);
                path.pop();
            }
        }
        Value::Tagged(t) => mask_tree(&mut t.value, path, mask, any),
        leaf => {
            if let Some(shown) = mask(&Key(path.clone())) {
                *leaf = Value::String(shown);
                *any = true;
            }
        }
    }
}

/// Words YAML 1.1 readers (Go's yaml.v2, PyYAML, SnakeYAML) take as
/// booleans, which a YAML 1.2 emitter writes as plain strings.
const YAML11_BOOLEANS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF",
];

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

    #[test]
    fn json_merge_keeps_key_order_and_indentation() {
        let mut doc = Structured::parse(
            Format::Json,
            "{\n    \"z\": 1,\n    \"a\": {\"b\": 2, \"c\": 3}\n}\n",
        )
        .expect("parses");
        assert_eq!(
            doc.render(),
            "{\n    \"z\": 1,\n    \"a\": {\"b\": 2, \"c\": 3}\n}\n"
        );
        assert!(
            doc.merge(&json!({"a": {"b": null, "d": "x"}, "m": true}))
                .expect("merge")
        );
        assert_eq!(
            doc.render(),
            "{\n    \"z\": 1,\n    \"a\": {\n        \"c\": 3,\n        \"d\": \"x\"\n    },\n    \"m\": true\n}\n"
        );
        assert!(!doc.merge(&json!({"z": 1})).expect("merge"));
    }

    #[test]
    fn yaml_merge_and_delete_by_path() {
        let mut doc =
            Structured::parse(Format::Yaml, "# c\nb: 1\na:\n  x: [1, 2]\n").expect("parses");
        doc.merge(&json!({"a": {"y": "1"}})).expect("merge");
        assert!(doc.delete(&Key::parse(Format::Yaml, "a.x.0")));
        assert_eq!(doc.render(), "b: 1\na:\n  x:\n  - 2\n  y: '1'\n");
        let keys: Vec<String> = doc.entries().iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, ["b", "a.x.0", "a.y"]);
    }

    #[test]
    fn refuses_invalid_and_multi_document_input() {
        assert!(Structured::parse(Format::Json, "{\"a\": }").is_err());
        assert!(Structured::parse(Format::Yaml, "a: 1\n---\nb: 2\n").is_err());
    }

    #[test]
    fn strings_yaml_1_1_reads_as_booleans_are_quoted() {
        let mut doc = Structured::parse(Format::Yaml, "a: 1\n").expect("parses");
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
        let back = Structured::parse(Format::Yaml, &text).expect("parses back");
        assert_eq!(back.entries(), doc.entries());
    }
}
