//! The supported formats and how a file's format is determined: from an
//! explicit name, or from a well-known file name or extension. Content is
//! never sniffed: an unknown file is refused.

use crate::error::{Error, Result};

/// A configuration file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Java properties (zoo.cfg, Kafka server.properties, Druid runtime.properties).
    Properties,
    /// INI as MySQL/MariaDB option files use it (my.cnf).
    Ini,
    /// YAML (lossless edit: comments, order, quoting and anchors kept).
    Yaml,
    /// JSON (lossless edit: only the changed members' lines are touched).
    Json,
}

impl Format {
    /// The name used in pipelines.
    pub fn name(self) -> &'static str {
        match self {
            Format::Properties => "properties",
            Format::Ini => "ini",
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }

    /// Parse an explicit format name (`properties`, `ini`/`mycnf`, `yaml`, `json`).
    pub fn from_name(name: &str) -> Result<Format> {
        match name.to_ascii_lowercase().as_str() {
            "properties" | "java-properties" | "zoo.cfg" => Ok(Format::Properties),
            "ini" | "mycnf" | "my.cnf" | "cnf" => Ok(Format::Ini),
            "yaml" | "yml" => Ok(Format::Yaml),
            "json" => Ok(Format::Json),
            _ => Err(Error::UnknownFormatName {
                name: name.to_owned(),
            }),
        }
    }

    /// The format of `file_name` (a ConfigMap key or a path): `explicit`
    /// when given, else from the well-known name or extension.
    pub fn detect(file_name: &str, explicit: Option<&str>) -> Result<Format> {
        if let Some(name) = explicit {
            return Format::from_name(name);
        }
        let base = file_name.rsplit('/').next().unwrap_or(file_name);
        let lower = base.to_ascii_lowercase();
        if lower == "zoo.cfg" || lower == "my.cnf" {
            return Ok(if lower == "zoo.cfg" {
                Format::Properties
            } else {
                Format::Ini
            });
        }
        let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        match ext {
            "properties" => Ok(Format::Properties),
            "cnf" | "ini" => Ok(Format::Ini),
            "yaml" | "yml" => Ok(Format::Yaml),
            "json" => Ok(Format::Json),
            _ => Err(Error::UnknownFormat {
                file: file_name.to_owned(),
            }),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_well_known_names_and_refuses_unknown_ones() {
        assert_eq!(Format::detect("zoo.cfg", None), Ok(Format::Properties));
        assert_eq!(
            Format::detect("conf/server.properties", None),
            Ok(Format::Properties)
        );
        assert_eq!(Format::detect("my.cnf", None), Ok(Format::Ini));
        assert_eq!(Format::detect("50-server.cnf", None), Ok(Format::Ini));
        assert_eq!(Format::detect("values.yml", None), Ok(Format::Yaml));
        assert_eq!(Format::detect("x.json", None), Ok(Format::Json));
        let err = Format::detect("settings.conf", None).unwrap_err();
        assert!(err.to_string().contains("set `format`"), "{err}");
        assert_eq!(
            Format::detect("settings.conf", Some("properties")),
            Ok(Format::Properties)
        );
        assert!(Format::detect("x", Some("toml")).is_err());
    }
}
