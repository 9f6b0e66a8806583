//! Errors of parsing, editing and validating configuration files.

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The format could not be determined and was not given.
    #[error(
        "cannot tell the format of {file:?}: set `format` to one of properties, ini, yaml, json (dbops never guesses from content)"
    )]
    UnknownFormat {
        /// The file name that was looked at.
        file: String,
    },
    /// An explicit format name that does not exist.
    #[error("unknown format {name:?}: use one of properties, ini, yaml, json")]
    UnknownFormatName {
        /// The name given.
        name: String,
    },
    /// The text is not valid in its format.
    #[error("{format} parse error at line {line}: {message}")]
    Parse {
        /// The format name.
        format: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A requested change cannot be expressed in the format.
    #[error("cannot set {key}: {message}")]
    InvalidChange {
        /// The key, as written in the format.
        key: String,
        /// Why not, and what to do instead.
        message: String,
    },
    /// A change that cannot be made without rewriting text it does not
    /// touch (e.g. through a YAML alias); nothing was changed.
    #[error("cannot change {key} without rewriting other parts of the file: {message}")]
    NotLossless {
        /// The key (dotted path), or "the top level".
        key: String,
        /// Why not, and what to do instead.
        message: String,
    },
    /// The rendered file does not parse back to the intended content.
    #[error("refusing to write: the edited file does not read back as intended: {message}")]
    Validation {
        /// The difference found.
        message: String,
    },
}

impl Error {
    pub(crate) fn parse(format: &'static str, line: usize, message: impl Into<String>) -> Error {
        Error::Parse {
            format,
            line,
            message: message.into(),
        }
    }

    pub(crate) fn change(key: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidChange {
            key: key.into(),
            message: message.into(),
        }
    }
}
