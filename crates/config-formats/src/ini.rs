//! INI as MySQL/MariaDB option files use it (my.cnf), edited losslessly.
//!
//! The parser follows MariaDB's `my_load_defaults`: `[group]` headers,
//! `key`, `key = value`, `#`/`;` comment lines, `#` trailing comments
//! outside quotes, values in matching `'` or `"` quotes, escapes
//! `\b \t \n \r \\ \s` (any other `\x` kept as written), `!include` and
//! `!includedir` kept verbatim. Key names compare with `-` and `_` as the
//! same character, as MySQL does (`ssl-ca` is `ssl_ca`). A group may appear
//! several times; keys may repeat (e.g. `plugin-load-add`).
//!
//! Setting a key that appears more than once in its group is refused (the
//! repetition may be meaningful); delete it first or replace the file.

use crate::error::{Error, Result};
use crate::key::Key;
use crate::lines;

const FORMAT: &str = "ini";

/// A parsed option file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ini {
    lines: Vec<Line>,
    /// Separator for new entries (` = ` unless the file uses `=`).
    separator: &'static str,
    ending: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    /// Content without terminator.
    raw: String,
    ending: String,
    /// The group this line belongs to (`""` before the first header).
    section: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Blank, comment or `!include` directive.
    Other,
    Header,
    Entry {
        key: String,
        value: Option<String>,
        /// Raw text through the separator and its trailing spaces.
        head: String,
        /// Raw trailing spaces and comment after the value.
        tail: String,
    },
}

impl Ini {
    /// Parse `text`; fails on an unterminated `[group` header.
    pub fn parse(text: &str) -> Result<Ini> {
        let mut section = String::new();
        let mut lines = Vec::new();
        for (index, line) in lines::split(text).into_iter().enumerate() {
            let trimmed = line.content.trim_start();
            let kind = if trimmed.is_empty() || trimmed.starts_with(['#', ';', '!']) {
                Kind::Other
            } else if let Some(rest) = trimmed.strip_prefix('[') {
                section = parse_header(rest, index + 1)?;
                Kind::Header
            } else {
                parse_entry(line.content)
            };
            lines.push(Line {
                raw: line.content.to_owned(),
                ending: line.ending.to_owned(),
                section: section.clone(),
                kind,
            });
        }
        let separator = lines
            .iter()
            .find_map(|l| match &l.kind {
                Kind::Entry { head, .. } if head.contains('=') => {
                    Some(if head.contains(" =") { " = " } else { "=" })
                }
                _ => None,
            })
            .unwrap_or(" = ");
        Ok(Ini {
            lines,
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
    pub fn render_with(&self, mask: impl Fn(&Key) -> Option<String>) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match &line.kind {
                Kind::Entry {
                    key,
                    value: Some(_),
                    head,
                    tail,
                } => match mask(&Key::ini(&line.section, key)) {
                    Some(shown) => out.push_str(&format!("{head}{shown}{tail}")),
                    None => out.push_str(&line.raw),
                },
                _ => out.push_str(&line.raw),
            }
            out.push_str(&line.ending);
        }
        out
    }

    /// Every entry in file order as `[section, key]` and value (`None` for
    /// a key without value, like `skip-name-resolve`).
    pub fn entries(&self) -> Vec<(Key, Option<String>)> {
        self.lines
            .iter()
            .filter_map(|l| match &l.kind {
                Kind::Entry { key, value, .. } => Some((Key::ini(&l.section, key), value.clone())),
                _ => None,
            })
            .collect()
    }

    /// The value of `key` in `section` when it appears exactly once
    /// (`Some(None)` for a key without value).
    pub fn get(&self, section: &str, key: &str) -> Option<Option<&str>> {
        match self.positions(section, key).as_slice() {
            [only] => match &self.lines[*only].kind {
                Kind::Entry { value, .. } => Some(value.as_deref()),
                _ => None,
            },
            _ => None,
        }
    }

    /// Set `key` in `section` (`None`: a key without value). Rewrites the
    /// entry in place, or adds it after the group's last entry, or appends
    /// the group. Returns whether the file changed.
    pub fn set(&mut self, section: &str, key: &str, value: Option<&str>) -> Result<bool> {
        let shown = Key::ini(section, key).describe(crate::Format::Ini);
        if key.trim().is_empty() || key.contains(['=', '#', '[', '\n', '\r']) || key.trim() != key {
            return Err(Error::change(shown, "not a valid option name"));
        }
        let encoded = value
            .map(encode_value)
            .transpose()
            .map_err(|m| Error::change(&shown, m))?;
        let positions = self.positions(section, key);
        match positions.as_slice() {
            [] => {
                self.insert_new(section, key, value, encoded.as_deref());
                Ok(true)
            }
            [only] => {
                let line = &mut self.lines[*only];
                let Kind::Entry {
                    value: current,
                    head,
                    tail,
                    key: written_key,
                } = &mut line.kind
                else {
                    return Ok(false);
                };
                if current.as_deref() == value {
                    return Ok(false);
                }
                match &encoded {
                    Some(text) => {
                        if !head.contains('=') {
                            let indent = &line.raw[..line.raw.len() - line.raw.trim_start().len()];
                            *head = format!("{indent}{written_key}{}", self.separator);
                        }
                        line.raw = format!("{head}{text}{tail}");
                    }
                    None => {
                        let indent_len = line.raw.len() - line.raw.trim_start().len();
                        let indent = line.raw[..indent_len].to_owned();
                        *head = format!("{indent}{written_key}");
                        line.raw = format!("{head}{tail}");
                    }
                }
                *current = value.map(str::to_owned);
                Ok(true)
            }
            many => Err(Error::change(
                shown,
                format!(
                    "it appears {} times in the group (lines {}); delete it first or use mode \"replace\"",
                    many.len(),
                    many.iter()
                        .map(|p| (p + 1).to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// Remove every occurrence of `key` in `section`; returns whether one existed.
    pub fn delete(&mut self, section: &str, key: &str) -> bool {
        let positions = self.positions(section, key);
        for p in positions.iter().rev() {
            self.lines.remove(*p);
        }
        !positions.is_empty()
    }

    /// Remove every occurrence of the group `section` with all its lines
    /// (up to the next header); returns whether it existed.
    pub fn delete_section(&mut self, section: &str) -> bool {
        let before = self.lines.len();
        if section.is_empty() {
            self.lines.retain(|l| !l.section.is_empty());
        } else {
            self.lines.retain(|l| l.section != section);
        }
        before != self.lines.len()
    }

    fn positions(&self, section: &str, key: &str) -> Vec<usize> {
        let wanted = normalize(key);
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                l.section == section
                    && matches!(&l.kind, Kind::Entry { key, .. } if normalize(key) == wanted)
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn insert_new(&mut self, section: &str, key: &str, value: Option<&str>, encoded: Option<&str>) {
        let raw = match encoded {
            Some(text) => format!("{key}{}{text}", self.separator),
            None => key.to_owned(),
        };
        let head_len = if encoded.is_some() {
            key.len() + self.separator.len()
        } else {
            key.len()
        };
        let entry = Line {
            raw: raw.clone(),
            ending: self.ending.to_owned(),
            section: section.to_owned(),
            kind: Kind::Entry {
                key: key.to_owned(),
                value: value.map(str::to_owned),
                head: raw[..head_len].to_owned(),
                tail: String::new(),
            },
        };
        // Position: after the last entry (or header) of the group's last occurrence.
        let anchor = self.lines.iter().rposition(|l| {
            l.section == section && matches!(l.kind, Kind::Entry { .. } | Kind::Header)
        });
        match anchor {
            Some(at) => {
                if self.lines[at].ending.is_empty() {
                    self.lines[at].ending = self.ending.to_owned();
                }
                self.lines.insert(at + 1, entry);
            }
            None if section.is_empty() => self.lines.insert(0, entry),
            None => {
                if let Some(last) = self.lines.last_mut()
                    && last.ending.is_empty()
                {
                    last.ending = self.ending.to_owned();
                }
                if self.lines.last().is_some_and(|l| !l.raw.trim().is_empty()) {
                    self.lines.push(other_line("", self.ending, section));
                }
                let mut header = other_line(&format!("[{section}]"), self.ending, section);
                header.kind = Kind::Header;
                self.lines.push(header);
                self.lines.push(entry);
            }
        }
    }
}

fn other_line(raw: &str, ending: &str, section: &str) -> Line {
    Line {
        raw: raw.to_owned(),
        ending: ending.to_owned(),
        section: section.to_owned(),
        kind: Kind::Other,
    }
}

/// `-` and `_` are the same in MySQL option names.
fn normalize(key: &str) -> String {
    key.replace('-', "_")
}

fn parse_header(rest: &str, line: usize) -> Result<String> {
    let Some((name, after)) = rest.split_once(']') else {
        return Err(Error::parse(
            FORMAT,
            line,
            "group header without closing `]`",
        ));
    };
    let after = after.trim();
    if !after.is_empty() && !after.starts_with(['#', ';']) {
        return Err(Error::parse(
            FORMAT,
            line,
            format!("unexpected text {after:?} after the group header"),
        ));
    }
    Ok(name.trim().to_owned())
}

/// Parse an option line (already known not to be blank, comment or header).
fn parse_entry(content: &str) -> Kind {
    let comment_at = end_comment(content);
    let body = &content[..comment_at];
    let body_end = body.trim_end().len();
    let tail = content[body_end..].to_owned();
    let body = &content[..body_end];
    match body.split_once('=') {
        None => Kind::Entry {
            key: body.trim().to_owned(),
            value: None,
            head: body.to_owned(),
            tail,
        },
        Some((key, value_raw)) => {
            let value_trimmed = value_raw.trim_start();
            let head_len = body.len() - value_trimmed.len();
            Kind::Entry {
                key: key.trim().to_owned(),
                value: Some(decode_value(value_trimmed)),
                head: content[..head_len].to_owned(),
                tail,
            }
        }
    }
}

/// Byte index where a `#` comment starts outside quotes (or the length).
fn end_comment(content: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut escape = false;
    for (i, c) in content.char_indices() {
        if (c == '\'' || c == '"') && !escape {
            match quote {
                None => quote = Some(c),
                Some(q) if q == c => quote = None,
                Some(_) => {}
            }
        }
        if quote.is_none() && c == '#' {
            return i;
        }
        escape = quote.is_some() && c == '\\' && !escape;
    }
    content.len()
}

fn decode_value(raw: &str) -> String {
    let mut inner = raw;
    let first = raw.chars().next();
    if let Some(q @ ('"' | '\'')) = first
        && raw.len() >= 2
        && raw.ends_with(q)
    {
        inner = &raw[1..raw.len() - 1];
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('s') => out.push(' '),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Encode a value so [`decode_value`] reads it back; refuses what cannot be written.
fn encode_value(value: &str) -> Result<String, String> {
    if value.contains(['\n', '\r']) {
        return Err("option file values cannot contain line breaks".to_owned());
    }
    let needs_quotes = value.is_empty()
        || value.contains(['#', '\'', '"', '\\', '\t', '\u{8}'])
        || value.trim() != value;
    if !needs_quotes {
        return Ok(value.to_owned());
    }
    let quote = if value.contains('"') { '\'' } else { '"' };
    if value.contains(quote) {
        return Err("values containing both ' and \" cannot be written to an option file".into());
    }
    let mut out = String::new();
    out.push(quote);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            c => out.push(c),
        }
    }
    out.push(quote);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Ini {
        Ini::parse(text).expect("parses")
    }

    #[test]
    fn reads_groups_flags_quotes_comments_and_includes() {
        let ini = parse(
            "!includedir /etc/mysql/conf.d/\n[mysqld]\nskip-name-resolve # fast\nbind-address = 127.0.0.1\nname = \"a # b\" # c\n; semi\n[client]\nport=3306\n",
        );
        assert_eq!(ini.get("mysqld", "skip_name_resolve"), Some(None));
        assert_eq!(ini.get("mysqld", "bind_address"), Some(Some("127.0.0.1")));
        assert_eq!(ini.get("mysqld", "name"), Some(Some("a # b")));
        assert_eq!(ini.get("client", "port"), Some(Some("3306")));
        assert_eq!(ini.entries().len(), 4);
    }

    #[test]
    fn edits_in_place_keeping_alignment_and_trailing_comments() {
        let mut ini = parse("[mysqld]\nbind-address            = 127.0.0.1 # local\n");
        assert!(
            ini.set("mysqld", "bind_address", Some("0.0.0.0"))
                .expect("set")
        );
        assert_eq!(
            ini.render(),
            "[mysqld]\nbind-address            = 0.0.0.0 # local\n"
        );
    }

    #[test]
    fn adds_keys_to_the_last_occurrence_of_the_group_or_a_new_group() {
        let mut ini = parse("[mysqld]\na = 1\n\n# next\n[client]\nb = 2");
        ini.set("mysqld", "ssl_ca", Some("/tls/ca.crt"))
            .expect("set");
        ini.set("mariadb", "x", None).expect("set");
        assert_eq!(
            ini.render(),
            "[mysqld]\na = 1\nssl_ca = /tls/ca.crt\n\n# next\n[client]\nb = 2\n\n[mariadb]\nx\n"
        );
    }

    #[test]
    fn quotes_values_that_need_it_and_refuses_line_breaks() {
        let mut ini = parse("[mysqld]\n");
        ini.set("mysqld", "init", Some("a # b\\c")).expect("set");
        assert_eq!(ini.render(), "[mysqld]\ninit = \"a # b\\\\c\"\n");
        let back = Ini::parse(&ini.render()).expect("parses");
        assert_eq!(back.get("mysqld", "init"), Some(Some("a # b\\c")));
        assert!(ini.set("mysqld", "bad", Some("a\nb")).is_err());
    }

    #[test]
    fn refuses_to_set_a_repeated_key_but_deletes_all_of_them() {
        let mut ini = parse("[mysqld]\nplugin-load-add = a\nplugin_load_add = b\n");
        let err = ini.set("mysqld", "plugin-load-add", Some("c")).unwrap_err();
        assert!(err.to_string().contains("2 times"), "{err}");
        assert!(ini.delete("mysqld", "plugin-load-add"));
        assert_eq!(ini.render(), "[mysqld]\n");
    }

    #[test]
    fn refuses_broken_headers() {
        assert!(Ini::parse("[mysqld\n").is_err());
        assert!(Ini::parse("[mysqld] junk\n").is_err());
        assert!(Ini::parse("[mysqld] # ok\n").is_ok());
    }
}
