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
