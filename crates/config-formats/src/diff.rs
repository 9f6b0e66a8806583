//! Unified diffs of a configuration change, with secret values masked.

use similar::TextDiff;

use crate::document::{Document, Edited};

/// A rendered diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Unified diff text (empty when nothing changed).
    pub text: String,
    /// Number of added plus removed lines.
    pub changed_lines: usize,
}

/// The unified diff (3 lines of context) from `before` to `after`, for the
/// file `name`. Secret values are shown as `****`, and as `**** (changed)`
/// on both sides when the edit changed them, so a rotation is visible
/// without its value.
pub fn masked_diff(name: &str, before: &Document, after: &Edited) -> Diff {
    let old = before.render_masked(&after.changed_keys);
    let new = after.document.render_masked(&after.changed_keys);
    unified(name, &old, &new)
}

/// A plain unified diff of two texts (callers mask secrets first).
pub fn unified(name: &str, old: &str, new: &str) -> Diff {
    if old == new {
        return Diff {
            text: String::new(),
            changed_lines: 0,
        };
    }
    let diff = TextDiff::from_lines(old, new);
    let changed_lines = diff
        .iter_all_changes()
        .filter(|c| c.tag() != similar::ChangeTag::Equal)
        .count();
    let text = diff
        .unified_diff()
        .context_radius(3)
        .missing_newline_hint(true)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string();
    Diff {
        text,
        changed_lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Changes, edit};
    use crate::format::Format;
    use serde_json::json;

    #[test]
    fn diff_shows_changed_lines_with_masked_secrets() {
        let before = Document::parse(
            Format::Properties,
            "a=1\nssl.truststore.password=hunter2\nb=2\n",
        )
        .expect("parses");
        let edited = edit(
            &before,
            &Changes {
                set: json!({"a": "9", "ssl.truststore.password": "s3cret"}),
                delete: vec![],
            },
        )
        .expect("edit");
        let diff = masked_diff("server.properties", &before, &edited);
        assert_eq!(
            diff.text,
            "--- a/server.properties\n+++ b/server.properties\n@@ -1,3 +1,3 @@\n-a=1\n+a=9\n ssl.truststore.password=**** (changed)\n b=2\n"
        );
        assert_eq!(diff.changed_lines, 2);
        assert!(!diff.text.contains("hunter2") && !diff.text.contains("s3cret"));
    }
}
