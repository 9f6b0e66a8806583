//! Property tests of every parser: no panic on any input, byte-identical
//! rendering of anything that parses, and values that read back as set.

use dbops_config_formats::ini::Ini;
use dbops_config_formats::properties::Properties;
use dbops_config_formats::{Changes, Document, Format, edit};
use proptest::prelude::*;

/// Text biased towards the characters that matter to the parsers.
fn config_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("\n".to_owned()),
            Just("\r\n".to_owned()),
            Just("\r".to_owned()),
            Just("\\".to_owned()),
            Just("\\u00e9".to_owned()),
            Just("\\u".to_owned()),
            Just("[mysqld]".to_owned()),
            Just("!include x".to_owned()),
            "[ =:#!;\"'\t\\[\\]a-z0-9é]{1,6}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn any_value() -> impl Strategy<Value = String> {
    "[ -~\t\n\r\u{e9}\u{1F600}\\\\]{0,20}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn properties_round_trip(text in config_text()) {
        if let Ok(p) = Properties::parse(&text) {
            prop_assert_eq!(p.render(), text);
        }
    }

    #[test]
    fn properties_values_read_back(text in config_text(), key in "[a-z.]{1,8}", value in any_value()) {
        if let Ok(mut p) = Properties::parse(&text) {
            p.set(&key, &value).expect("any value can be written");
            let back = Properties::parse(&p.render()).expect("parses back");
            prop_assert_eq!(back.get(&key), Some(value.as_str()));
        }
    }

    #[test]
    fn ini_round_trip(text in config_text()) {
        if let Ok(i) = Ini::parse(&text) {
            prop_assert_eq!(i.render(), text);
        }
    }

    #[test]
    fn ini_values_read_back_or_are_refused(text in config_text(), key in "[a-z_]{1,8}", value in any_value()) {
        if let Ok(doc) = Document::parse(Format::Ini, &text) {
            let changes = Changes { set: serde_json::json!({"mysqld": {key.clone(): value.clone()}}), delete: vec![] };
            // Either a checked edit or a clear refusal (line breaks, repeated keys, quotes); never a panic.
            if let Ok(edited) = edit(&doc, &changes) {
                let back = Ini::parse(&edited.text).expect("parses back");
                prop_assert_eq!(back.get("mysqld", &key), Some(Some(value.as_str())));
            }
        }
    }

    #[test]
    fn yaml_and_json_never_panic(text in config_text()) {
        for format in [Format::Yaml, Format::Json] {
            if let Ok(doc) = Document::parse(format, &text) {
                prop_assert_eq!(doc.render(), text.clone());
                let _ = edit(&doc, &Changes { set: serde_json::json!({"a": {"b": 1}}), delete: vec!["c".into()] });
                let _ = edit(&doc, &Changes { set: serde_json::json!({"a": null, "b": [true]}), delete: vec!["c.0".into()] });
                // Masked rendering of any file that parses never panics and parses back.
                let masked = Document::parse(format, &text).expect("parses").render_masked(&Default::default());
                prop_assert!(Document::parse(format, &masked).is_ok(), "{}", masked);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A checked edit of any file that parses either succeeds, with every
    /// set key reading back once with its value and every deleted key gone,
    /// or is refused; it never panics.
    #[test]
    fn properties_edits_read_back_exactly(
        text in config_text(),
        set in proptest::collection::btree_map("[a-z.]{1,6}", any_value(), 0..4),
        delete in proptest::collection::vec("[a-z.]{1,6}", 0..3),
    ) {
        if let Ok(doc) = Document::parse(Format::Properties, &text) {
            // A key named twice is refused by design; name each once.
            let delete: Vec<String> = delete
                .into_iter()
                .filter(|k| !set.contains_key(k))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let changes = Changes { set: serde_json::to_value(&set).expect("json"), delete: delete.clone() };
            let edited = edit(&doc, &changes).expect("properties accept any key and value");
            let back = Properties::parse(&edited.text).expect("parses back");
            for (key, value) in &set {
                prop_assert_eq!(back.get(key), Some(value.as_str()));
            }
            for key in &delete {
                prop_assert_eq!(back.get(key), None);
            }
        }
    }

    #[test]
    fn json_merges_read_back(a in "[a-z]{1,5}", b in any_value(), n in any::<i32>()) {
        let doc = Document::parse(Format::Json, "{\"keep\": [1, 2]}\n").expect("parses");
        let changes = Changes { set: serde_json::json!({ a.clone(): { "s": b, "n": n } }), delete: vec![] };
        let edited = edit(&doc, &changes).expect("merge");
        let back: serde_json::Value = serde_json::from_str(&edited.text).expect("valid JSON");
        prop_assert_eq!(&back[&a]["n"], &serde_json::json!(n));
        if a != "keep" {
            prop_assert_eq!(&back["keep"], &serde_json::json!([1, 2]));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any string merged into YAML reads back as that string (the checked
    /// edit compares the re-read tree), including YAML 1.1 boolean words.
    #[test]
    fn yaml_string_values_read_back(
        value in prop_oneof![any_value(), Just("on".to_owned()), Just("no".to_owned()), Just("Y".to_owned())],
        in_list in any::<bool>(),
    ) {
        let doc = Document::parse(Format::Yaml, "# settings\nname: db\n").expect("parses");
        let set = if in_list { serde_json::json!({"v": [value.clone()]}) } else { serde_json::json!({"v": value.clone()}) };
        let edited = edit(&doc, &Changes { set, delete: vec![] }).expect("a string can always be written");
        let back: serde_json::Value = serde_norway::from_str(&edited.text).expect("valid YAML");
        let got = if in_list { back["v"][0].clone() } else { back["v"].clone() };
        prop_assert_eq!(got, serde_json::Value::String(value));
    }
}

/// One generated top-level entry of a YAML or JSON file: a scalar, or a
/// mapping of scalars.
#[derive(Debug, Clone)]
enum Entry {
    Scalar(usize),
    Mapping(Vec<(String, usize)>),
}

/// Scalars in many YAML styles, with the JSON they read as.
const YAML_SCALARS: &[(&str, &str)] = &[
    ("1", "1"),
    ("\"quoted: yes\"", "\"quoted: yes\""),
    ("'single'", "\"single\""),
    ("plain text", "\"plain text\""),
    ("true", "true"),
    ("~", "null"),
    ("[1, two]", "[1, \"two\"]"),
    ("{k: v}", "{\"k\": \"v\"}"),
    (
        "|\n    line one\n    line two",
        "\"line one\\nline two\\n\"",
    ),
    ("&anchor 7", "7"),
];

/// Top-level entries: distinct names, each a scalar or a mapping.
fn entries() -> impl Strategy<Value = Vec<(String, Entry)>> {
    let entry = prop_oneof![
        (0..YAML_SCALARS.len()).prop_map(Entry::Scalar),
        proptest::collection::btree_map("[x-z]", 0..YAML_SCALARS.len(), 1..3)
            .prop_map(|m| Entry::Mapping(m.into_iter().collect())),
    ];
    proptest::collection::btree_map("[a-e]", entry, 1..5).prop_map(|m| m.into_iter().collect())
}

/// A change to one top-level name: set it, set a child, delete it or a child.
#[derive(Debug, Clone)]
enum Change {
    Set(serde_json::Value),
    SetChild(String, serde_json::Value),
    Delete,
    DeleteChild(String),
}

fn change_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any_value().prop_map(serde_json::Value::from),
        Just(serde_json::json!("on")),
        Just(serde_json::json!("1.0")),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        any_value().prop_map(|s| serde_json::json!({"k": s, "n": [1, "x"]})),
    ]
}

fn changes_to_apply() -> impl Strategy<Value = Vec<(String, Change)>> {
    let change = prop_oneof![
        change_value().prop_map(Change::Set),
        ("[w-z]", change_value()).prop_map(|(c, v)| Change::SetChild(c, v)),
        Just(Change::Delete),
        "[w-z]".prop_map(Change::DeleteChild),
    ];
    proptest::collection::btree_map("[a-f]", change, 0..4).prop_map(|m| m.into_iter().collect())
}

/// A YAML file of `entries` with comments, blank lines and trailing
/// comments; each line with the top-level name and child it belongs to.
fn yaml_file(entries: &[(String, Entry)]) -> (String, Vec<(String, Option<String>, String)>) {
    let mut lines = Vec::new();
    let mut push = |top: &str, child: Option<&str>, line: String| {
        lines.push((top.to_owned(), child.map(str::to_owned), line));
    };
    push("", None, "# generated settings\n".into());
    for (i, (name, entry)) in entries.iter().enumerate() {
        if i % 2 == 1 {
            push("", None, "\n".into());
            push("", None, format!("# about {name}\n"));
        }
        match entry {
            Entry::Scalar(s) => {
                let text = YAML_SCALARS[*s].0;
                let comment = if text.contains('\n') { "" } else { "  # note" };
                for (n, part) in format!("{name}: {text}{comment}\n")
                    .split_inclusive('\n')
                    .enumerate()
                {
                    push(name, Some("").filter(|_| n > 0), part.to_owned());
                }
            }
            Entry::Mapping(children) => {
                push(name, None, format!("{name}:\n"));
                for (child, s) in children {
                    push(name, Some(child.as_str()), format!("  # child {child}\n"));
                    let text = YAML_SCALARS[*s].0.replace("\n    ", "\n      ");
                    for part in format!("  {child}: {text}\n").split_inclusive('\n') {
                        push(name, Some(child.as_str()), part.to_owned());
                    }
                }
            }
        }
    }
    let text = lines.iter().map(|(_, _, l)| l.as_str()).collect();
    (text, lines)
}

/// A JSON file of `entries` indented with `indent`, each line with the
/// top-level name and child it belongs to.
fn json_file(
    entries: &[(String, Entry)],
    indent: &str,
) -> (String, Vec<(String, Option<String>, String)>) {
    let mut lines = vec![(String::new(), None, "{\n".to_owned())];
    for (i, (name, entry)) in entries.iter().enumerate() {
        let comma = if i + 1 < entries.len() { "," } else { "" };
        match entry {
            Entry::Scalar(s) => {
                let value = YAML_SCALARS[*s].1.replace('\n', " ");
                lines.push((
                    name.clone(),
                    None,
                    format!("{indent}\"{name}\": {value}{comma}\n"),
                ));
            }
            Entry::Mapping(children) => {
                lines.push((name.clone(), None, format!("{indent}\"{name}\": {{\n")));
                for (j, (child, s)) in children.iter().enumerate() {
                    let inner = if j + 1 < children.len() { "," } else { "" };
                    let value = YAML_SCALARS[*s].1;
                    lines.push((
                        name.clone(),
                        Some(child.clone()),
                        format!("{indent}{indent}\"{child}\": {value}{inner}\n"),
                    ));
                }
                lines.push((name.clone(), None, format!("{indent}}}{comma}\n")));
            }
        }
    }
    lines.push((String::new(), None, "}\n".to_owned()));
    let text = lines.iter().map(|(_, _, l)| l.as_str()).collect();
    (text, lines)
}

/// The merge patch and delete list of `changes`, on a file with `entries`.
fn as_changes(entries: &[(String, Entry)], changes: &[(String, Change)]) -> Changes {
    let mut set = serde_json::Map::new();
    let mut delete = Vec::new();
    for (name, change) in changes {
        match change {
            Change::Set(v) => {
                set.insert(name.clone(), v.clone());
            }
            Change::SetChild(child, v) => {
                set.insert(name.clone(), serde_json::json!({ child.clone(): v }));
            }
            Change::Delete => delete.push(name.clone()),
            Change::DeleteChild(child) => {
                // Only a mapping has children to delete.
                if entries
                    .iter()
                    .any(|(n, e)| n == name && matches!(e, Entry::Mapping(_)))
                {
                    delete.push(format!("{name}.{child}"));
                }
            }
        }
    }
    Changes {
        set: serde_json::Value::Object(set),
        delete,
    }
}

/// Whether a line of `top` (and `child`) is touched by `changes`.
fn touched(
    changes: &[(String, Change)],
    top: &str,
    child: Option<&str>,
    entries: &[(String, Entry)],
) -> bool {
    let is_mapping = entries
        .iter()
        .any(|(n, e)| n == top && matches!(e, Entry::Mapping(_)));
    changes.iter().any(|(name, change)| {
        name == top
            && match change {
                Change::Set(_) | Change::Delete => true,
                // Setting a child of a scalar replaces it with a mapping.
                Change::SetChild(c, _) | Change::DeleteChild(c) => {
                    !is_mapping || child == Some(c.as_str())
                }
            }
    })
}

/// Check an edit: the new text reads back as the changes intend, and every
/// untouched line is still there, in order (JSON: up to a trailing comma).
fn check_edit(
    format: Format,
    text: &str,
    lines: &[(String, Option<String>, String)],
    entries: &[(String, Entry)],
    changes: &[(String, Change)],
) -> Result<(), TestCaseError> {
    let doc = Document::parse(format, text).expect("generated files parse");
    prop_assert_eq!(doc.render(), text);
    let request = as_changes(entries, changes);
    let edited = edit(&doc, &request).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    let back: serde_json::Value = serde_norway::from_str(&edited.text).expect("reads back");
    for (name, change) in changes {
        match change {
            Change::Set(v) => prop_assert!(holds(&back[name], v), "{} lacks {}", back, v),
            Change::SetChild(c, v) => {
                prop_assert!(holds(&back[name][c], v), "{} lacks {}", back, v)
            }
            Change::Delete => prop_assert!(back.get(name).is_none()),
            Change::DeleteChild(c) => prop_assert!(back.get(name).and_then(|m| m.get(c)).is_none()),
        }
    }
    let normal = |l: &str| l.trim_end().trim_end_matches(',').to_owned();
    let mut out = edited.text.lines().map(normal);
    for (top, child, line) in lines {
        if line.trim().is_empty() || touched(changes, top, child.as_deref(), entries) {
            continue;
        }
        // An object emptied by the edit is written `{}` on one line.
        let object = if top.is_empty() {
            Some(&back)
        } else {
            back.get(top)
        };
        let brace = line.trim_end().ends_with('{') || line.trim().trim_end_matches(',') == "}";
        if brace && object.is_some_and(|o| o.as_object().is_some_and(|m| m.is_empty())) {
            continue;
        }
        let wanted = normal(line);
        prop_assert!(
            out.any(|l| l == wanted),
            "untouched line {:?} missing or out of order in\n{}\n(from\n{})",
            wanted,
            edited.text,
            text
        );
    }
    Ok(())
}

/// Whether `got` holds what merging the patch `v` sets: objects merge
/// (`null` members absent), anything else is equal.
fn holds(got: &serde_json::Value, v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(members) => members.iter().all(|(k, m)| match m {
            serde_json::Value::Null => got.get(k).is_none(),
            m => got.get(k).is_some_and(|g| holds(g, m)),
        }),
        other => got == other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Lossless YAML edits of files with comments, anchors, flow and block
    /// values: the result reads back as intended and keeps every line the
    /// change does not touch, in order.
    #[test]
    fn yaml_edits_read_back_and_keep_untouched_lines(entries in entries(), changes in changes_to_apply()) {
        let (text, lines) = yaml_file(&entries);
        check_edit(Format::Yaml, &text, &lines, &entries, &changes)?;
    }

    /// The same for JSON with 2-space, 4-space or tab indentation (commas
    /// aside).
    #[test]
    fn json_edits_read_back_and_keep_untouched_lines(
        entries in entries(),
        changes in changes_to_apply(),
        indent in prop_oneof![Just("  "), Just("    "), Just("\t")],
    ) {
        let (text, lines) = json_file(&entries, indent);
        check_edit(Format::Json, &text, &lines, &entries, &changes)?;
    }

    /// Masked rendering replaces only the masked values: they read back as
    /// the mask, and every line of the other entries is kept, in order.
    #[test]
    fn yaml_and_json_masking_touches_only_secret_values(entries in entries(), secret in "[a-e]", json in any::<bool>()) {
        let (format, (text, lines)) = if json {
            (Format::Json, json_file(&entries, "  "))
        } else {
            (Format::Yaml, yaml_file(&entries))
        };
        let doc = dbops_config_formats::structured::Structured::parse(format, &text).expect("parses");
        let masked = doc.render_with(|k| (k.0[0] == secret).then(|| "****".to_owned()));
        let back = dbops_config_formats::structured::Structured::parse(format, &masked).expect("parses back");
        for (key, value) in back.entries() {
            if key.0[0] == secret {
                prop_assert_eq!(value.as_deref(), Some("****"), "{}", masked);
            }
        }
        let mut out = masked.lines();
        for (top, _, line) in &lines {
            if *top != secret && !line.trim().is_empty() && !line.trim().starts_with('}') {
                let wanted = line.trim_end_matches('\n');
                prop_assert!(out.any(|l| l == wanted), "{:?} lost in\n{}", wanted, masked);
            }
        }
    }
}
