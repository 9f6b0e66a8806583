//! Lossless editing of database configuration files for dbops.
//!
//! Start at [`Format::detect`] (an explicit format, or a well-known file
//! name or extension; never a guess from content), [`Document::parse`],
//! then [`edit`] with [`Changes`] (set, change, delete keys): it applies them
//! and checks that the new text parses back to exactly the intended
//! settings before returning it. [`masked_diff`] shows the change as a
//! unified diff with secret values masked ([`is_secret_name`]).
//!
//! Formats:
//! - [`properties`]: Java properties (zoo.cfg, server.properties,
//!   runtime.properties), comments, order, separators and untouched lines
//!   kept byte for byte;
//! - [`ini`]: MySQL/MariaDB option files (my.cnf), likewise lossless;
//! - [`structured`]: YAML and JSON, a merge patch or delete computed on the
//!   parsed tree and made on the text (through the `yaml-edit` and
//!   `jsonc-parser` syntax trees), so comments, order, quoting, anchors and
//!   untouched lines are kept byte for byte; a change that cannot be made
//!   that way is refused with [`Error::NotLossless`].

pub mod diff;
pub mod document;
pub mod error;
pub mod format;
pub mod ini;
mod json_text;
pub mod key;
mod lines;
pub mod properties;
pub mod secrets;
pub mod structured;
mod yaml_text;

pub use diff::{Diff, masked_diff, unified};
pub use document::{Changes, Document, Edited, edit};
pub use error::{Error, Result};
pub use format::Format;
pub use key::Key;
pub use secrets::{is_secret_key, is_secret_name};
