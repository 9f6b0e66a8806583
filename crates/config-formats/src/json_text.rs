//! Lossless JSON edits: changes made on the text itself through the
//! concrete syntax tree of the `jsonc-parser` crate, so every line a change
//! does not touch stays byte for byte.
//!
//! - Setting an existing member replaces only its value; a value equal to
//!   the current one is left untouched.
//! - A new member goes at the end of its object, with the file's detected
//!   indentation and line endings; the comma before it is added.
//! - Deleting a member removes it with its comma (the one after it, or the
//!   one before it when it was last).
//! - An object written on one line that gains or loses a member is laid out
//!   over several lines (the only lines rewritten beyond the member itself).
//! - A patch that replaces the whole top-level value (the file is not an
//!   object) replaces it in place.

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstArray, CstInputValue, CstNode, CstObject, CstRootNode};
use serde_json::{Map, Value as Json};
use serde_norway::{Mapping as Tree, Value};

use crate::error::{Error, Result};
use crate::key::Key;

/// An object or array reached by a path.
enum Container {
    Object(CstObject),
    Array(CstArray),
}

/// Apply the JSON merge patch `patch` to `text`, whose tree is `before`.
pub(crate) fn merge(text: &str, before: &Value, patch: &Json) -> Result<String> {
    let root = open(text)?;
    match (before, patch) {
        (Value::Mapping(current), Json::Object(members)) => {
            let object = match root.object_value() {
                Some(object) => object,
                // An empty file.
                None if root.value().is_none() => root.object_value_or_set(),
                None => return Err(not_found(&Key(Vec::new()))),
            };
            merge_object(&object, current, members, &mut Vec::new())?;
        }
        (_, patch) => root.set_value(input(&intended_json(patch))),
    }
    Ok(root.to_string())
}

fn merge_object(
    object: &CstObject,
    current: &Tree,
    patch: &Map<String, Json>,
    path: &mut Vec<String>,
) -> Result<()> {
    for (name, value) in patch {
        path.push(name.clone());
        let existing = current.get(name.as_str());
        let prop = object.get(name);
        match (value, existing, prop) {
            (Json::Null, _, Some(prop)) => prop.remove(),
            (Json::Null, _, None) => {}
            (Json::Object(inner), Some(Value::Mapping(existing)), Some(prop)) => {
                let child = prop
                    .object_value()
                    .ok_or_else(|| not_found(&Key(path.clone())))?;
                merge_object(&child, existing, inner, path)?;
            }
            (value, existing, prop) => {
                let wanted = intended_json(value);
                let same = existing
                    .and_then(|v| serde_json::to_value(v).ok())
                    .is_some_and(|v| v == wanted);
                match prop {
                    Some(_) if same => {}
                    Some(prop) => prop.set_value(input(&wanted)),
                    None => {
                        object.append(name, input(&wanted));
                    }
                }
            }
        }
        path.pop();
    }
    Ok(())
}

/// Remove the value at `key` (which exists in the parsed tree).
pub(crate) fn delete(text: &str, key: &Key) -> Result<String> {
    let root = open(text)?;
    let Some((last, parents)) = key.0.split_last() else {
        return Ok(text.to_owned());
    };
    match walk(&root, parents)? {
        Container::Object(object) => object.get(last).ok_or_else(|| not_found(key))?.remove(),
        Container::Array(array) => element(&array, last)
            .ok_or_else(|| not_found(key))?
            .remove(),
    }
    Ok(root.to_string())
}

/// Replace the values of the leaves in `masks` with the text shown for them.
pub(crate) fn mask(text: &str, masks: &[(Key, String)]) -> Result<String> {
    let root = open(text)?;
    for (key, shown) in masks {
        let shown = CstInputValue::String(shown.clone());
        let Some((last, parents)) = key.0.split_last() else {
            root.set_value(shown);
            continue;
        };
        match walk(&root, parents)? {
            Container::Object(object) => {
                object
                    .get(last)
                    .ok_or_else(|| not_found(key))?
                    .set_value(shown);
            }
            Container::Array(array) => {
                let at = last.parse::<usize>().map_err(|_| not_found(key))?;
                let old = element(&array, last).ok_or_else(|| not_found(key))?;
                // Insert the mask where the element was, then drop the element.
                array.insert(at, shown);
                old.remove();
            }
        }
    }
    Ok(root.to_string())
}

fn walk(root: &CstRootNode, path: &[String]) -> Result<Container> {
    let whole = Key(path.to_vec());
    let mut node = root.value().ok_or_else(|| not_found(&whole))?;
    for segment in path {
        let child = match as_container(&node) {
            Some(Container::Object(object)) => object.get(segment).and_then(|p| p.value()),
            Some(Container::Array(array)) => element(&array, segment),
            None => None,
        };
        node = child.ok_or_else(|| not_found(&whole))?;
    }
    as_container(&node).ok_or_else(|| not_found(&whole))
}

fn as_container(node: &CstNode) -> Option<Container> {
    node.as_object()
        .map(Container::Object)
        .or_else(|| node.as_array().map(Container::Array))
}

fn element(array: &CstArray, segment: &str) -> Option<CstNode> {
    let at = segment.parse::<usize>().ok()?;
    array.elements().into_iter().nth(at)
}

/// The JSON a merge-patch value becomes (`null` members of objects dropped).
fn intended_json(value: &Json) -> Json {
    match value {
        Json::Object(members) => Json::Object(
            members
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), intended_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn input(value: &Json) -> CstInputValue {
    match value {
        Json::Null => CstInputValue::Null,
        Json::Bool(b) => CstInputValue::Bool(*b),
        Json::Number(n) => CstInputValue::Number(n.to_string()),
        Json::String(s) => CstInputValue::String(s.clone()),
        Json::Array(items) => CstInputValue::Array(items.iter().map(input).collect()),
        Json::Object(members) => {
            CstInputValue::Object(members.iter().map(|(k, v)| (k.clone(), input(v))).collect())
        }
    }
}

fn open(text: &str) -> Result<CstRootNode> {
    let root = CstRootNode::parse(text, &ParseOptions::default()).map_err(|e| {
        Error::NotLossless {
            key: "the top level".into(),
            message: format!(
                "the lossless JSON editor cannot read the file ({e}); use mode `replace` for this file"
            ),
        }
    })?;
    if root.to_string() != text {
        return Err(Error::NotLossless {
            key: "the top level".into(),
            message: "the lossless JSON editor does not reproduce the file byte for byte; use mode `replace` for this file".into(),
        });
    }
    Ok(root)
}

fn not_found(key: &Key) -> Error {
    Error::NotLossless {
        key: if key.0.is_empty() {
            "the top level".into()
        } else {
            key.0.join(".")
        },
        message: "the JSON text and its parsed tree disagree about this path; use mode `replace` for this file".into(),
    }
}
