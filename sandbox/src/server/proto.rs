//! Just enough protobuf to read what kubectl's typed clients send as
//! protobuf: `SelfSubjectAccessReview` (`kubectl auth can-i`) and the
//! objects of `kubectl create namespace|configmap|secret|serviceaccount`.
//! Answers are JSON, which client-go accepts.

use serde_json::{Map, Value, json};

/// Iterates the length-delimited fields (wire type 2) of a message,
/// skipping the others.
fn fields(mut buf: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    while let Some((key, rest)) = varint(buf) {
        let (field, wire) = (key >> 3, key & 7);
        buf = rest;
        match wire {
            0 => match varint(buf) {
                Some((_, rest)) => buf = rest,
                None => break,
            },
            1 if buf.len() >= 8 => buf = &buf[8..],
            5 if buf.len() >= 4 => buf = &buf[4..],
            2 => {
                let Some((len, rest)) = varint(buf) else {
                    break;
                };
                let Ok(len) = usize::try_from(len) else { break };
                if rest.len() < len {
                    break;
                }
                out.push((field, &rest[..len]));
                buf = &rest[len..];
            }
            _ => break,
        }
    }
    out
}

fn varint(buf: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, b) in buf.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &buf[i + 1..]));
        }
    }
    None
}

fn field(msg: &[u8], number: u64) -> Option<&[u8]> {
    fields(msg)
        .into_iter()
        .find(|(f, _)| *f == number)
        .map(|(_, v)| v)
}

/// Decodes a `k8s\0`-framed protobuf SelfSubjectAccessReview into its JSON
/// form (`spec.resourceAttributes` / `spec.nonResourceAttributes`).
pub fn self_subject_access_review(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(b"k8s\0")?;
    let raw = field(unknown, 2)?;
    let spec = field(raw, 2)?;
    let mut out = Map::new();
    if let Some(attrs) = field(spec, 1) {
        let names = [
            "namespace",
            "verb",
            "group",
            "version",
            "resource",
            "subresource",
            "name",
        ];
        let mut map = Map::new();
        for (number, value) in fields(attrs) {
            let name = usize::try_from(number)
                .ok()
                .and_then(|n| names.get(n.checked_sub(1)?));
            if let Some(name) = name {
                map.insert((*name).to_string(), json!(String::from_utf8_lossy(value)));
            }
        }
        out.insert("resourceAttributes".into(), Value::Object(map));
    } else if let Some(attrs) = field(spec, 2) {
        let path = field(attrs, 1)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        let verb = field(attrs, 2)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        out.insert(
            "nonResourceAttributes".into(),
            json!({"path": path, "verb": verb}),
        );
    }
    Some(
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {}, "spec": out}),
    )
}

fn text(bytes: &[u8]) -> Value {
    json!(String::from_utf8_lossy(bytes))
}

/// A `map<string, string|bytes>` field (repeated entries of key=1, value=2).
fn map_field(msg: &[u8], number: u64, value: impl Fn(&[u8]) -> Value) -> Option<Value> {
    let entries: Map<String, Value> = fields(msg)
        .into_iter()
        .filter(|(f, _)| *f == number)
        .map(|(_, entry)| {
            let key = field(entry, 1)
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default();
            (key, value(field(entry, 2).unwrap_or_default()))
        })
        .collect();
    (!entries.is_empty()).then_some(Value::Object(entries))
}

/// The user-settable part of ObjectMeta.
fn object_meta(msg: &[u8]) -> Value {
    let mut meta = Map::new();
    for (number, name) in [(1, "name"), (2, "generateName"), (3, "namespace")] {
        if let Some(v) = field(msg, number) {
            meta.insert(name.into(), text(v));
        }
    }
    for (number, name) in [(11, "labels"), (12, "annotations")] {
        if let Some(map) = map_field(msg, number, text) {
            meta.insert(name.into(), map);
        }
    }
    let finalizers: Vec<Value> = fields(msg)
        .into_iter()
        .filter(|(f, _)| *f == 14)
        .map(|(_, v)| text(v))
        .collect();
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
    Value::Object(meta)
}

/// Decodes a `k8s\0`-framed protobuf object of a kind kubectl creates
/// imperatively; None for other kinds.
pub fn object(body: &[u8]) -> Option<Value> {
    use base64::Engine as _;
    let unknown = body.strip_prefix(b"k8s\0")?;
    let type_meta = field(unknown, 1)?;
    let api_version = String::from_utf8_lossy(field(type_meta, 1).unwrap_or_default()).into_owned();
    let kind = String::from_utf8_lossy(field(type_meta, 2).unwrap_or_default()).into_owned();
    let raw = field(unknown, 2)?;
    let mut obj = json!({"apiVersion": api_version, "kind": kind, "metadata": object_meta(field(raw, 1).unwrap_or_default())});
    let b64 = |v: &[u8]| json!(base64::engine::general_purpose::STANDARD.encode(v));
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace" | "ServiceAccount") => {}
        ("v1", "ConfigMap") => {
            if let Some(data) = map_field(raw, 2, text) {
                obj["data"] = data;
            }
            if let Some(data) = map_field(raw, 3, b64) {
                obj["binaryData"] = data;
            }
        }
        ("v1", "Secret") => {
            if let Some(data) = map_field(raw, 2, b64) {
                obj["data"] = data;
            }
            if let Some(t) = field(raw, 3) {
                obj["type"] = text(t);
            }
            if let Some(data) = map_field(raw, 4, text) {
                obj["stringData"] = data;
            }
        }
        _ => return None,
    }
    Some(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(field: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![
            (field << 3) | 2,
            u8::try_from(payload.len()).expect("short"),
        ];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_resource_attributes() {
        let attrs = [ld(1, b"ns"), ld(2, b"list"), ld(5, b"pods")].concat();
        let raw = [ld(1, b""), ld(2, &ld(1, &attrs))].concat();
        let body = [b"k8s\0".to_vec(), ld(2, &raw)].concat();
        let review = self_subject_access_review(&body).expect("decodes");
        assert_eq!(
            review["spec"]["resourceAttributes"],
            json!({"namespace": "ns", "verb": "list", "resource": "pods"})
        );
    }

    #[test]
    fn decodes_a_configmap() {
        let type_meta = [ld(1, b"v1"), ld(2, b"ConfigMap")].concat();
        let meta = [
            ld(1, b"cfg"),
            ld(11, &[ld(1, b"app"), ld(2, b"x")].concat()),
        ]
        .concat();
        let raw = [ld(1, &meta), ld(2, &[ld(1, b"k"), ld(2, b"v")].concat())].concat();
        let body = [b"k8s\0".to_vec(), ld(1, &type_meta), ld(2, &raw)].concat();
        assert_eq!(
            object(&body).expect("decodes"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "labels": {"app": "x"}}, "data": {"k": "v"}})
        );
    }
}
