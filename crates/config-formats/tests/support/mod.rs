//! Shared by the file-based tests: read a file of tests/data, parse it
//! (checking it round-trips byte for byte), and build a set of changes.
#![allow(dead_code)] // Each test module uses a different part.

use dbops_config_formats::{Changes, Document, Format};

/// The text of `tests/data/NAME`.
pub fn data(name: &str) -> String {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The text of `tests/data/NAME` and its document, which must render back
/// byte for byte.
pub fn load(name: &str) -> (String, Document) {
    let text = data(name);
    let format = Format::detect(name, None).expect("well-known name");
    let doc = Document::parse(format, &text).expect("parses");
    assert_eq!(doc.render(), text, "{name} must round-trip byte for byte");
    (text, doc)
}

/// Set `set` (a merge patch / table) and delete `delete`.
pub fn changes(set: serde_json::Value, delete: &[&str]) -> Changes {
    Changes {
        set,
        delete: delete.iter().map(|s| (*s).to_owned()).collect(),
    }
}
