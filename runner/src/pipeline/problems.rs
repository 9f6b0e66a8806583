//! Validation problems with source positions, rendered as titled blocks
//! (after rustc and Vector):
//!
//! ```text
//! error: unknown key `actoin` in step `cert`
//!   --> pipelines/rotate-tls.toml:12:1
//!    |
//! 12 | actoin = "rotate"
//!    | ^^^^^^ unknown key
//!    |
//!    = key: step[1].actoin
//!    = help: did you mean `action`?
//! ```

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::model::Location;

/// The source line shown under a problem, with the underlined part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// The whole source line (without its line break).
    pub line_text: String,
    /// Width of the underline in characters (at least 1).
    pub width: usize,
    /// Text printed after the underline.
    pub label: String,
}

/// One thing wrong with a pipeline: what, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The pipeline file.
    pub file: PathBuf,
    /// Position in the file; line 0 when the problem has no position
    /// (e.g. a bad `--set` on the command line).
    pub location: Location,
    /// Key path of the offending value, e.g. `step[2].with.action`
    /// (steps are counted from 0); empty for the whole file.
    pub key: String,
    /// A full sentence saying what is wrong.
    pub message: String,
    /// How to fix it, when we can tell.
    pub help: Option<String>,
    /// The source line with the offending part underlined.
    pub snippet: Option<Box<Snippet>>,
}

impl Problem {
    /// A problem without position (file-level or command line).
    pub fn new(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            file: file.to_path_buf(),
            location: Location::default(),
            key: key.into(),
            message: message.into(),
            help: None,
            snippet: None,
        }
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }

    /// Adds a help line when `help` is `Some`.
    pub fn with_help_opt(mut self, help: Option<String>) -> Problem {
        if help.is_some() {
            self.help = help;
        }
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        let line = self.location.line;
        let gutter = if line == 0 { 1 } else { line.to_string().len() };
        let pad = " ".repeat(gutter);
        if line == 0 {
            writeln!(f, "{pad}--> {}", self.file.display())?;
        } else {
            writeln!(
                f,
                "{pad}--> {}:{}:{}",
                self.file.display(),
                line,
                self.location.column
            )?;
        }
        if let (Some(snippet), true) = (&self.snippet, line > 0) {
            writeln!(f, "{pad} |")?;
            // Tabs are shown as four spaces so the carets line up.
            writeln!(f, "{line} | {}", snippet.line_text.replace('\t', "    "))?;
            let before: usize = snippet
                .line_text
                .chars()
                .take(self.location.column.saturating_sub(1))
                .map(|c| if c == '\t' { 4 } else { 1 })
                .sum();
            let indent = " ".repeat(before);
            let carets = "^".repeat(snippet.width.max(1));
            if snippet.label.is_empty() {
                writeln!(f, "{pad} | {indent}{carets}")?;
            } else {
                writeln!(f, "{pad} | {indent}{carets} {}", snippet.label)?;
            }
            writeln!(f, "{pad} |")?;
        }
        if !self.key.is_empty() {
            writeln!(f, "{pad} = key: {}", self.key)?;
        }
        if let Some(help) = &self.help {
            writeln!(f, "{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in a pipeline, reported at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    /// Orders problems by file and position (position-less ones first),
    /// keeping the discovery order among equal positions.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            (&a.file, a.location.line, a.location.column).cmp(&(
                &b.file,
                b.location.line,
                b.location.column,
            ))
        });
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), Problems> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl From<Problem> for Problems {
    fn from(problem: Problem) -> Self {
        Problems(vec![problem])
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Maps byte offsets of one source text to lines and columns and builds
/// problems pointing into it.
#[derive(Debug, Clone)]
pub struct SourceMap<'a> {
    file: &'a Path,
    source: &'a str,
    /// Byte offset where each line starts, and whether the line is ASCII
    /// (then columns are byte distances).
    lines: Vec<(usize, bool)>,
}

impl<'a> SourceMap<'a> {
    /// A map over `source`, read from `file`.
    pub fn new(file: &'a Path, source: &'a str) -> Self {
        let mut lines = Vec::new();
        let mut start = 0;
        for line in source.split_inclusive('\n') {
            lines.push((start, line.is_ascii()));
            start += line.len();
        }
        if lines.is_empty() || source.ends_with('\n') {
            lines.push((start, true));
        }
        SourceMap {
            file,
            source,
            lines,
        }
    }

    /// The file name.
    pub fn file(&self) -> &'a Path {
        self.file
    }

    /// The source text.
    pub fn source(&self) -> &'a str {
        self.source
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn location(&self, offset: usize) -> Location {
        let offset = floor_char_boundary(self.source, offset.min(self.source.len()));
        let index = self
            .lines
            .partition_point(|(start, _)| *start <= offset)
            .max(1)
            - 1;
        let (line_start, ascii) = self.lines.get(index).copied().unwrap_or((0, true));
        let column = if ascii {
            offset - line_start + 1
        } else {
            self.source[line_start..offset].chars().count() + 1
        };
        Location {
            line: index + 1,
            column,
        }
    }

    /// A problem underlining `span`.
    pub fn problem(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Problem {
        let start = floor_char_boundary(self.source, span.start.min(self.source.len()));
        let line_start = self.source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.source[start..]
            .find('\n')
            .map_or(self.source.len(), |i| start + i);
        let end = floor_char_boundary(self.source, span.end.clamp(start, line_end));
        let line_text = self.source[line_start..line_end].trim_end_matches('\r');
        let width = self.source[start..end].chars().count().max(1);
        Problem {
            file: self.file.to_path_buf(),
            location: self.location(start),
            key: key.into(),
            message: message.into(),
            help: None,
            snippet: Some(Box::new(Snippet {
                line_text: line_text.to_string(),
                width,
                label: label.into(),
            })),
        }
    }
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while index > 0 && !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// Names longer than this get no suggestion (edit distance is quadratic).
const MAX_SUGGEST_LEN: usize = 64;

/// The candidate closest to `word` by edit distance, if it is close enough
/// to be a likely typo (case differences count as nothing).
pub fn suggest<'c, I>(word: &str, candidates: I) -> Option<&'c str>
where
    I: IntoIterator<Item = &'c str>,
{
    let length = word.chars().count();
    if length > MAX_SUGGEST_LEN {
        return None;
    }
    let limit = (length / 3).max(1);
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| c.chars().count().abs_diff(length) <= limit)
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "did you mean `x`?" when a close candidate exists.
pub fn did_you_mean<'c, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'c str>,
{
    suggest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// Edit distance (optimal string alignment: insertions, deletions,
/// substitutions and swaps of neighbours each cost 1) over characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

/// `a`, `b`, `c` as a list of code spans.
pub fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("step", "steps"), 1);
        assert_eq!(edit_distance("nmae", "name"), 1);
    }

    #[test]
    fn suggests_close_names_only() {
        let keys = ["uses", "with", "timeout", "retry"];
        assert_eq!(suggest("timout", keys), Some("timeout"));
        assert_eq!(suggest("Uses", keys), Some("uses"));
        assert_eq!(suggest("banana", keys), None);
        let long = "x".repeat(100_000);
        assert_eq!(suggest(&long, [long.as_str()]), None);
    }

    #[test]
    fn renders_a_titled_block_with_caret_under_the_span() {
        let source = "[pipeline]\nname = \"x\"\nnmae = \"y\"\n";
        let map = SourceMap::new(Path::new("p.toml"), source);
        let start = source.find("nmae").unwrap_or_default();
        let problem = map
            .problem(
                start..start + 4,
                "pipeline.nmae",
                "unknown key `nmae` in [pipeline]",
                "unknown key",
            )
            .with_help("did you mean `name`?");
        assert_eq!(problem.location, Location { line: 3, column: 1 });
        assert_eq!(
            problem.to_string(),
            "error: unknown key `nmae` in [pipeline]\n --> p.toml:3:1\n  |\n3 | nmae = \"y\"\n  | ^^^^ unknown key\n  |\n  = key: pipeline.nmae\n  = help: did you mean `name`?\n"
        );
    }

    #[test]
    fn carets_line_up_under_tabs() {
        let source = "[pipeline]\n\tnmae = 1\n";
        let map = SourceMap::new(Path::new("p.toml"), source);
        let problem = map.problem(12..16, "", "unknown key", "here");
        assert_eq!(problem.location, Location { line: 2, column: 2 });
        let text = problem.to_string();
        assert!(
            text.contains("2 |     nmae = 1\n  |     ^^^^ here"),
            "{text}"
        );
    }

    #[test]
    fn locations_at_line_starts_ends_and_past_the_end() {
        let source = "ab\ncd\n";
        let map = SourceMap::new(Path::new("p.toml"), source);
        assert_eq!(map.location(0), Location { line: 1, column: 1 });
        assert_eq!(map.location(2), Location { line: 1, column: 3 });
        assert_eq!(map.location(3), Location { line: 2, column: 1 });
        assert_eq!(map.location(6), Location { line: 3, column: 1 });
        assert_eq!(map.location(99), Location { line: 3, column: 1 });
        let empty = SourceMap::new(Path::new("p.toml"), "");
        assert_eq!(empty.location(0), Location { line: 1, column: 1 });
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let source = "a = \"é\" x";
        let map = SourceMap::new(Path::new("p.toml"), source);
        let at = source.find('x').unwrap_or_default();
        assert_eq!(map.location(at), Location { line: 1, column: 9 });
    }
}
