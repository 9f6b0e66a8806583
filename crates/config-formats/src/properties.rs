//! Java properties files (zoo.cfg, Kafka server.properties, Druid
//! runtime.properties), edited losslessly.
//!
//! The parser follows `java.util.Properties.load`: logical lines joined by
//! an odd number of trailing backslashes (the next line's leading
//! whitespace dropped), comments starting with `#` or `!`, the key ending at
//! the first unescaped `=`, `:` or whitespace, escapes `\t \n \r \f \uXXXX`
//! and `\x` -> `x`. Every line is kept as written; an edited entry keeps its
//! original key text and separator and gets a newly escaped value. Values
//! are written ASCII-only (`\uXXXX`), since ZooKeeper and Kafka read these
//! files as ISO-8859-1.
//!
//! Limitation: a `\uXXXX` escape of an unpaired UTF-16 surrogate is refused
//! (Rust strings cannot hold it).

use crate::error::{Error, Result};
use crate::key::Key;
use crate::lines;

const FORMAT: &str = "properties";

/// A parsed properties file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    items: Vec<Item>,
    /// Separator for new entries, from the file's first entry (`=` by default).
    separator: String,
    ending: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// Blank line or comment, verbatim with its terminator.
    Other(String),
    Entry(Entry),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Every physical line of the entry, verbatim, with terminators.
    raw: String,
    key: String,
    value: String,
    /// The raw text before the value (indent, key, separator) when the value
    /// starts on the first physical line; reused when the value changes.
    head: Option<String>,
    /// The terminator of the last physical line.
    ending: String,
    /// Ends the file with a line continuation (an appended line would join it).
    dangling: bool,
}

impl Properties {
    /// Parse `text`; fails only on a malformed `\uXXXX` escape.
    pub fn parse(text: &str) -> Result<Properties> {
        let physical = lines::split(text);
        let mut items = Vec::new();
        let mut i = 0;
        while i < physical.len() {
            let first = physical[i];
            let trimmed = first.content.trim_start_matches(is_ws);
            if trimmed.is_empty() || trimmed.starts_with(['#', '!']) {
                items.push(Item::Other(format!("{}{}", first.content, first.ending)));
                i += 1;
                continue;
            }
            let line_no = i + 1;
            let indent = &first.content[..first.content.len() - trimmed.len()];
            let mut raw = String::new();
            let mut logical = String::new();
            let mut part = trimmed;
            let mut first_len = None;
            let ending;
            let dangling;
            loop {
                let line = physical[i];
                raw.push_str(line.content);
                raw.push_str(line.ending);
                i += 1;
                let continues = trailing_backslashes(part) % 2 == 1;
                let kept = if continues {
                    &part[..part.len() - 1]
                } else {
                    part
                };
                logical.push_str(kept);
                first_len.get_or_insert(logical.chars().count());
                if !continues || i >= physical.len() {
                    dangling = continues;
                    ending = line.ending.to_owned();
                    break;
                }
                part = physical[i].content.trim_start_matches(is_ws);
            }
            let (key_raw, value_start) = split_key_value(&logical);
            let key = unescape(key_raw, line_no)?;
            let value_raw: String = logical.chars().skip(value_start).collect();
            let value = unescape(&value_raw, line_no)?;
            // No reusable head when the value starts on a continuation line
            // or the key is empty without a separator (a lone `\`).
            let head = (value_start <= first_len.unwrap_or(0))
                .then(|| {
                    let head: String = logical.chars().take(value_start).collect();
                    format!("{indent}{head}")
                })
                .filter(|h| !h.trim_matches(is_ws).is_empty());
            items.push(Item::Entry(Entry {
                raw,
                key,
                value,
                head,
                ending,
                dangling,
            }));
        }
        let separator = items
            .iter()
            .find_map(|item| match item {
                Item::Entry(e) => e
                    .head
                    .as_ref()
                    .map(|h| separator_of(h))
                    .filter(|s| !s.is_empty()),
                Item::Other(_) => None,
            })
            .unwrap_or_else(|| "=".to_owned());
        Ok(Properties {
            items,
            separator,
            ending: lines::dominant_ending(text),
        })
    }

    /// The file as text (byte-identical to the input when nothing changed).
    pub fn render(&self) -> String {
        self.render_with(|_| None)
    }

    /// The file with the values of keys for which `mask` returns a
    /// replacement shown as that replacement.
    pub fn render_with(&self, mask: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for item in &self.items {
            match item {
                Item::Other(raw) => out.push_str(raw),
                Item::Entry(e) => match mask(&e.key) {
                    Some(shown) => {
                        let head = e
                            .head
                            .clone()
                            .unwrap_or_else(|| new_head(&e.key, &self.separator));
                        out.push_str(&format!("{head}{shown}{}", e.ending));
                    }
                    None => out.push_str(&e.raw),
                },
            }
        }
        out
    }

    /// Every entry in file order (a key may repeat; Java keeps the last).
    pub fn entries(&self) -> Vec<(Key, Option<String>)> {
        self.iter()
            .map(|e| (Key::flat(&e.key), Some(e.value.clone())))
            .collect()
    }

    /// The effective value of `key` (the last occurrence).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter()
            .filter(|e| e.key == key)
            .last()
            .map(|e| e.value.as_str())
    }

    /// Set `key` to `value`: the last occurrence is rewritten in place
    /// (earlier duplicates removed), or a new entry is appended.
    /// Returns whether the file changed.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool> {
        if key.is_empty() {
            return Err(Error::change(key, "an empty key cannot be written"));
        }
        let positions: Vec<usize> = self.positions(key);
        if let [only] = positions.as_slice()
            && let Item::Entry(e) = &self.items[*only]
            && e.value == value
        {
            return Ok(false);
        }
        let escaped = escape(value, false);
        match positions.split_last() {
            Some((&last, earlier)) => {
                if let Item::Entry(e) = &mut self.items[last] {
                    let head = e
                        .head
                        .clone()
                        .unwrap_or_else(|| new_head(key, &self.separator));
                    e.raw = format!("{head}{escaped}{}", e.ending);
                    e.head = Some(head);
                    e.dangling = false;
                    e.value = value.to_owned();
                }
                for &p in earlier.iter().rev() {
                    self.items.remove(p);
                }
            }
            None => {
                self.terminate_last_line();
                let head = new_head(key, &self.separator);
                self.items.push(Item::Entry(Entry {
                    raw: format!("{head}{escaped}{}", self.ending),
                    key: key.to_owned(),
                    value: value.to_owned(),
                    head: Some(head),
                    ending: self.ending.to_owned(),
                    dangling: false,
                }));
            }
        }
        Ok(true)
    }

    /// Remove every occurrence of `key`; returns whether one existed.
    pub fn delete(&mut self, key: &str) -> bool {
        let before = self.items.len();
        self.items
            .retain(|item| !matches!(item, Item::Entry(e) if e.key == key));
        self.items.len() != before
    }

    fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.items.iter().filter_map(|item| match item {
            Item::Entry(e) => Some(e),
            Item::Other(_) => None,
        })
    }

    fn positions(&self, key: &str) -> Vec<usize> {
        self.items
            .iter()
            .enumerate()
            .filter(|(_, item)| matches!(item, Item::Entry(e) if e.key == key))
            .map(|(i, _)| i)
            .collect()
    }

    /// Make sure the last line ends with a terminator before appending.
    fn terminate_last_line(&mut self) {
        let ending = self.ending;
        match self.items.last_mut() {
            Some(Item::Other(raw)) if !raw.ends_with(['\n', '\r']) => raw.push_str(ending),
            Some(Item::Entry(e)) if e.dangling || e.ending.is_empty() => {
                if e.dangling {
                    // A continuation at the end of the file would join the
                    // appended line: write the entry anew.
                    let head = e
                        .head
                        .clone()
                        .unwrap_or_else(|| new_head(&e.key, &self.separator));
                    e.raw = format!("{head}{}", escape(&e.value, false));
                    e.head = Some(head);
                    e.dangling = false;
                    e.ending = String::new();
                }
                e.raw.push_str(ending);
                e.ending = ending.to_owned();
            }
            _ => {}
        }
    }
}

/// The head of a newly written entry: the escaped key and the file's
/// separator (`=` for an empty key, which could not be read back otherwise).
fn new_head(key: &str, separator: &str) -> String {
    if key.is_empty() {
        "=".to_owned()
    } else {
        format!("{}{separator}", escape(key, true))
    }
}

/// Java's whitespace in properties files: space, tab, form feed.
fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

fn trailing_backslashes(s: &str) -> usize {
    s.chars().rev().take_while(|c| *c == '\\').count()
}

/// Split a logical line into the raw key and the char index where the value starts.
fn split_key_value(logical: &str) -> (&str, usize) {
    let chars: Vec<(usize, char)> = logical.char_indices().collect();
    let mut key_end = chars.len();
    let mut value_start = chars.len();
    let mut has_separator = false;
    let mut escaped = false;
    for (idx, &(_, c)) in chars.iter().enumerate() {
        if !escaped && (c == '=' || c == ':') {
            key_end = idx;
            value_start = idx + 1;
            has_separator = true;
            break;
        }
        if !escaped && is_ws(c) {
            key_end = idx;
            value_start = idx + 1;
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    while value_start < chars.len() {
        let c = chars[value_start].1;
        if is_ws(c) {
            value_start += 1;
        } else if !has_separator && (c == '=' || c == ':') {
            has_separator = true;
            value_start += 1;
        } else {
            break;
        }
    }
    let key_byte_end = chars.get(key_end).map(|(b, _)| *b).unwrap_or(logical.len());
    (&logical[..key_byte_end], value_start)
}

/// The separator text of an entry head (`=`, ` = `, `: `, ` `).
fn separator_of(head: &str) -> String {
    let trimmed = head.trim_start_matches(is_ws);
    let (key_raw, _) = split_key_value(trimmed);
    trimmed[key_raw.len()..].to_owned()
}

/// Decode Java escapes; `line` is for error messages.
pub(crate) fn unescape(raw: &str, line: usize) -> Result<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut pending_high: Option<u16> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            check_no_pending(pending_high, line)?;
            out.push(c);
            continue;
        }
        let Some(next) = chars.next() else {
            break; // Java drops a lone trailing backslash.
        };
        if next != 'u' {
            check_no_pending(pending_high, line)?;
            out.push(match next {
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                'f' => '\u{c}',
                other => other,
            });
            continue;
        }
        let hex: String = chars.by_ref().take(4).collect();
        let unit = (hex.len() == 4)
            .then(|| u16::from_str_radix(&hex, 16).ok())
            .flatten()
            .ok_or_else(|| {
                Error::parse(
                    FORMAT,
                    line,
                    format!("malformed \\uxxxx escape \\u{hex}: four hex digits are required"),
                )
            })?;
        match (pending_high.take(), unit) {
            (None, 0xD800..=0xDBFF) => pending_high = Some(unit),
            (Some(high), 0xDC00..=0xDFFF) => {
                let decoded = char::decode_utf16([high, unit])
                    .next()
                    .and_then(|r| r.ok())
                    .ok_or_else(|| Error::parse(FORMAT, line, "invalid surrogate pair"))?;
                out.push(decoded);
            }
            (None, _) => match char::from_u32(u32::from(unit)) {
                Some(ch) => out.push(ch),
                None => return Err(unpaired(line)),
            },
            (Some(_), _) => return Err(unpaired(line)),
        }
    }
    check_no_pending(pending_high, line)?;
    Ok(out)
}

fn check_no_pending(pending: Option<u16>, line: usize) -> Result<()> {
    match pending {
        Some(_) => Err(unpaired(line)),
        None => Ok(()),
    }
}

fn unpaired(line: usize) -> Error {
    Error::parse(
        FORMAT,
        line,
        "\\u escape of an unpaired UTF-16 surrogate; write the character as a surrogate pair",
    )
}

/// Encode a key (`is_key`) or value as Java properties text, ASCII only.
pub(crate) fn escape(text: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '=' | ':' if is_key || i == 0 => {
                out.push('\\');
                out.push(c);
            }
            '#' | '!' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            c if (' '..='~').contains(&c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Properties {
        Properties::parse(text).expect("parses")
    }

    #[test]
    fn reads_every_separator_and_escape() {
        let p = parse(
            "a=1\nb = 2\nc:3\nd 4\n  e\t=\t5\nf\\ g=h\\:i\nj=\\u00e9\\t\\\\\nk\nl=x\\\n   y\\\n  z\n",
        );
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("2"));
        assert_eq!(p.get("c"), Some("3"));
        assert_eq!(p.get("d"), Some("4"));
        assert_eq!(p.get("e"), Some("5"));
        assert_eq!(p.get("f g"), Some("h:i"));
        assert_eq!(p.get("j"), Some("é\t\\"));
        assert_eq!(p.get("k"), Some(""));
        assert_eq!(p.get("l"), Some("xyz"));
    }

    #[test]
    fn comments_do_not_continue_and_continuations_are_not_comments() {
        let p = parse("# comment \\\na=1\\\n#not-a-comment\n!bang\n");
        assert_eq!(p.get("a"), Some("1#not-a-comment"));
        assert_eq!(p.entries().len(), 1);
    }

    #[test]
    fn rewrites_only_the_changed_value_keeping_key_text_and_separator() {
        let mut p = parse("# c\ntickTime = 2000\nclientPort:2181\n");
        assert!(p.set("clientPort", "2281").expect("set"));
        assert!(!p.set("tickTime", "2000").expect("set"));
        assert_eq!(p.render(), "# c\ntickTime = 2000\nclientPort:2281\n");
    }

    #[test]
    fn appends_new_keys_with_the_file_separator_and_terminates_the_last_line() {
        let mut p = parse("a = 1");
        p.set("b", "two words").expect("set");
        assert_eq!(p.render(), "a = 1\nb = two words\n");
    }

    #[test]
    fn escapes_values_that_would_break_the_format() {
        let mut p = parse("");
        p.set("k", " lead\nnext\\é😀").expect("set");
        let text = p.render();
        assert_eq!(text, "k=\\ lead\\nnext\\\\\\u00E9\\uD83D\\uDE00\n");
        assert_eq!(parse(&text).get("k"), Some(" lead\nnext\\é😀"));
    }

    #[test]
    fn collapses_duplicates_on_set_and_deletes_all_occurrences() {
        let mut p = parse("a=1\nb=2\na=3\n");
        assert_eq!(p.get("a"), Some("3"));
        p.set("a", "4").expect("set");
        assert_eq!(p.render(), "b=2\na=4\n");
        assert!(p.delete("a"));
        assert!(!p.delete("a"));
        assert_eq!(p.render(), "b=2\n");
    }

    #[test]
    fn editing_a_continued_value_rewrites_the_whole_entry() {
        let mut p = parse("list = a,\\\n       b\nnext=1\r\n");
        p.set("list", "c").expect("set");
        assert_eq!(p.render(), "list = c\nnext=1\r\n");
    }

    #[test]
    fn refuses_malformed_unicode_escapes() {
        let err = Properties::parse("a=1\nb=\\u12\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(Properties::parse("a=\\uD800\n").is_err());
    }
}
