//! [`Key`]: where a setting lives in a file, as a path.

use crate::format::Format;

/// A setting's address: one segment for properties (`ssl.keyStore.location`),
/// `[section, key]` for INI (`["mysqld", "ssl_ca"]`, section `""` before the
/// first header), any depth for YAML/JSON (array items by index).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub Vec<String>);

impl Key {
    /// A one-segment key (properties).
    pub fn flat(name: impl Into<String>) -> Key {
        Key(vec![name.into()])
    }

    /// An INI key in `section`.
    pub fn ini(section: impl Into<String>, name: impl Into<String>) -> Key {
        Key(vec![section.into(), name.into()])
    }

    /// The last segment (the setting's own name).
    pub fn leaf(&self) -> &str {
        self.0.last().map(String::as_str).unwrap_or("")
    }

    /// How a user writes this key in `format`: `ssl.keyStore.location`,
    /// `[mysqld] ssl_ca`, `a.b.0.c`.
    pub fn describe(&self, format: Format) -> String {
        match (format, self.0.as_slice()) {
            (Format::Ini, [section, name]) if section.is_empty() => name.clone(),
            (Format::Ini, [section, name]) => format!("[{section}] {name}"),
            (_, segments) => segments.join("."),
        }
    }

    /// Parse a key as written in a `delete` list: the key itself for
    /// properties, `section.key` (split at the last dot) or `key` for INI,
    /// a JSON pointer (`/a/b`) or a dotted path for YAML/JSON.
    pub fn parse(format: Format, text: &str) -> Key {
        match format {
            Format::Properties => Key::flat(text),
            Format::Ini => match text.rsplit_once('.') {
                Some((section, name)) => Key::ini(section.trim_matches(['[', ']']), name),
                None => Key::ini("", text),
            },
            Format::Yaml | Format::Json => match text.strip_prefix('/') {
                Some(pointer) => Key(pointer
                    .split('/')
                    .map(|s| s.replace("~1", "/").replace("~0", "~"))
                    .collect()),
                None => Key(text.split('.').map(str::to_owned).collect()),
            },
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}
