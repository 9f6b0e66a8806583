//! The pipeline file as a tree of values that remember their byte spans,
//! plus typed accessors that record a [`Problem`] instead of failing, so one
//! pass finds every problem.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::problems::{Problem, Problems, SourceMap, did_you_mean, list};

/// A TOML value with the byte span it was written at.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub span: Range<usize>,
    pub value: Value,
}

/// A TOML value.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// `key = value` in a table, in source order.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub node: Node,
}

impl Value {
    /// "a string", "an integer", ... for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::Datetime(_) => "a datetime",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

/// Parses TOML; syntax errors become problems at their position.
pub(crate) fn parse(map: &SourceMap<'_>, source: &str) -> Result<Node, Vec<Problem>> {
    match DeTable::parse(source) {
        Ok(table) => {
            let span = table.span();
            let mut problems = Vec::new();
            let entries = convert_table(map, table.into_inner(), &mut problems);
            if problems.is_empty() {
                Ok(Node {
                    span,
                    value: Value::Table(entries),
                })
            } else {
                Err(problems)
            }
        }
        Err(first) => {
            // The recovering parser finds later syntax errors too (but not
            // every kind the strict one does): report both, once each.
            let (_, mut errors) = DeTable::parse_recoverable(source);
            errors.insert(0, first);
            let mut seen = Vec::new();
            let mut problems = Vec::new();
            for error in errors {
                let span = error.span().unwrap_or(0..0);
                let message = error.message().trim().replace('\n', "; ");
                if seen.contains(&(span.start, message.clone())) {
                    continue;
                }
                seen.push((span.start, message.clone()));
                problems.push(syntax_problem(map, source, span, &message));
            }
            problems.sort_by_key(|p| (p.location.line, p.location.column));
            Err(problems)
        }
    }
}

fn syntax_problem(map: &SourceMap<'_>, source: &str, span: Range<usize>, message: &str) -> Problem {
    if message == "duplicate key" {
        let key = source.get(span.clone()).unwrap_or("").trim();
        map.problem(
            span,
            "",
            format!("invalid TOML: duplicate key `{key}`"),
            "defined again here",
        )
        .with_help("a key or table may be defined only once; remove or rename one of them")
    } else {
        map.problem(span, "", format!("invalid TOML: {message}"), "here")
            .with_help("see https://toml.io/en/v1.0.0 for the syntax")
    }
}

fn convert_table(
    map: &SourceMap<'_>,
    table: DeTable<'_>,
    problems: &mut Vec<Problem>,
) -> Vec<Entry> {
    let mut entries: Vec<Entry> = table
        .into_iter()
        .map(|(key, value)| {
            let key_span = key.span();
            Entry {
                key: key.into_inner().into_owned(),
                key_span,
                node: convert(map, value.span(), value.into_inner(), problems),
            }
        })
        .collect();
    entries.sort_by_key(|e| e.key_span.start);
    entries
}

fn convert(
    map: &SourceMap<'_>,
    span: Range<usize>,
    value: DeValue<'_>,
    problems: &mut Vec<Problem>,
) -> Node {
    let value = match value {
        DeValue::String(s) => Value::String(s.into_owned()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Value::Integer(n),
            Err(_) => {
                problems.push(map.problem(
                    span.clone(),
                    "",
                    format!("the integer `{i}` does not fit in 64 bits"),
                    "too large",
                ));
                Value::Integer(0)
            }
        },
        DeValue::Float(f) => Value::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Value::Bool(b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| convert(map, item.span(), item.get_ref().clone(), problems))
                .collect(),
        ),
        DeValue::Table(table) => Value::Table(convert_table(map, table, problems)),
    };
    Node { span, value }
}

/// A table being read: remembers which keys were consumed so the rest can
/// be reported as unknown.
pub(crate) struct Fields<'a> {
    entries: &'a [Entry],
    /// Key path prefix, e.g. `step[1]`.
    pub path: String,
    /// How messages name this table, e.g. "step `cert`" or "[target]".
    pub name: String,
    /// Span of the table (for "missing key" problems).
    pub span: Range<usize>,
}

impl<'a> Fields<'a> {
    pub fn new(
        entries: &'a [Entry],
        path: impl Into<String>,
        name: impl Into<String>,
        span: Range<usize>,
    ) -> Self {
        Fields {
            entries,
            path: path.into(),
            name: name.into(),
            span,
        }
    }

    /// Key path of `key` in this table.
    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The entry for `key`.
    pub fn get(&self, key: &str) -> Option<&'a Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// Reports every key not in `allowed`.
    pub fn reject_unknown(&self, ctx: &mut Ctx<'_>, allowed: &[&str]) {
        for entry in self.entries {
            if allowed.contains(&entry.key.as_str()) {
                continue;
            }
            let help = did_you_mean(&entry.key, allowed.iter().copied())
                .unwrap_or_else(|| format!("allowed keys are {}", list(allowed)));
            ctx.error(
                entry.key_span.clone(),
                self.key_path(&entry.key),
                format!("unknown key `{}` in {}", entry.key, self.name),
                "unknown key",
                Some(help),
            );
        }
    }

    /// A required key: reports it missing with `help`.
    pub fn require(&self, ctx: &mut Ctx<'_>, key: &str, help: &str) -> Option<&'a Entry> {
        let entry = self.get(key);
        if entry.is_none() {
            ctx.error(
                self.span.clone(),
                self.key_path(key),
                format!("missing required key `{key}` in {}", self.name),
                format!("`{key}` is missing here"),
                Some(help.to_string()),
            );
        }
        entry
    }

    /// A string value, or a problem if it has another type.
    pub fn string(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<(&'a str, &'a Node)> {
        let entry = self.get(key)?;
        match &entry.node.value {
            Value::String(s) => Some((s.as_str(), &entry.node)),
            other => {
                ctx.wrong_type(
                    &entry.node,
                    self.key_path(key),
                    &self.name,
                    key,
                    "a string",
                    other,
                );
                None
            }
        }
    }

    /// A boolean value, or a problem if it has another type.
    pub fn bool(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<bool> {
        let entry = self.get(key)?;
        match &entry.node.value {
            Value::Bool(b) => Some(*b),
            other => {
                ctx.wrong_type(
                    &entry.node,
                    self.key_path(key),
                    &self.name,
                    key,
                    "a boolean (true or false)",
                    other,
                );
                None
            }
        }
    }

    /// A table value, or a problem if it has another type.
    pub fn table(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<(&'a [Entry], &'a Node)> {
        let entry = self.get(key)?;
        match &entry.node.value {
            Value::Table(t) => Some((t.as_slice(), &entry.node)),
            other => {
                ctx.wrong_type(
                    &entry.node,
                    self.key_path(key),
                    &self.name,
                    key,
                    "a table",
                    other,
                );
                None
            }
        }
    }
}

/// Problem collection over one source.
pub(crate) struct Ctx<'a> {
    pub map: SourceMap<'a>,
    pub problems: Vec<Problem>,
    /// Problems not recorded because [`MAX_PROBLEMS`] were found.
    pub dropped: usize,
}

/// Hostile input could yield problems by the million; after this many,
/// the rest are only counted.
pub(crate) const MAX_PROBLEMS: usize = 100;

impl<'a> Ctx<'a> {
    /// An empty collection over `map`.
    pub fn new(map: SourceMap<'a>) -> Self {
        Ctx {
            map,
            problems: Vec::new(),
            dropped: 0,
        }
    }

    /// Records a problem built elsewhere.
    pub fn push(&mut self, problem: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem);
        } else {
            self.dropped += 1;
        }
    }

    /// Every problem, with a note about the ones not shown.
    pub fn finish(mut self) -> Vec<Problem> {
        let mut problems = Problems(std::mem::take(&mut self.problems));
        problems.sort();
        self.problems = problems.0;
        if self.dropped > 0 {
            let note = Problem::new(
                self.map.file(),
                "",
                format!("{} more problems are not shown", self.dropped),
            )
            .with_help("fix the problems above and validate again");
            self.problems.push(note);
        }
        self.problems
    }

    /// Records a problem underlining `span`.
    pub fn error(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
    ) {
        if self.problems.len() >= MAX_PROBLEMS {
            self.dropped += 1;
            return;
        }
        let problem = self
            .map
            .problem(span, key, message, label)
            .with_help_opt(help);
        self.problems.push(problem);
    }

    /// Records "`key` in NAME must be EXPECTED, found KIND".
    pub fn wrong_type(
        &mut self,
        node: &Node,
        path: String,
        name: &str,
        key: &str,
        expected: &str,
        found: &Value,
    ) {
        self.error(
            node.span.clone(),
            path,
            format!(
                "`{key}` in {name} must be {expected}, found {}",
                found.kind()
            ),
            format!("expected {expected}"),
            type_help(self.map.source(), node, key, expected),
        );
    }
}

/// How to write the value with the expected type, when it is obvious.
fn type_help(source: &str, node: &Node, key: &str, expected: &str) -> Option<String> {
    let raw = source.get(node.span.clone()).unwrap_or("").trim();
    match (expected, &node.value) {
        ("a string", Value::Integer(_) | Value::Float(_) | Value::Bool(_)) => {
            Some(format!("quote the value: `{key} = \"{raw}\"`"))
        }
        (e, Value::String(s)) if e.starts_with("a boolean") && (s == "true" || s == "false") => {
            Some(format!("remove the quotes: `{key} = {s}`"))
        }
        (e, Value::String(_)) if e.starts_with("a boolean") => {
            Some(format!("write `{key} = true` or `{key} = false`"))
        }
        ("a table", _) => Some(format!("write a table: `{key} = {{ name = \"value\" }}`")),
        _ => None,
    }
}

/// The source span of `range` (a byte range of the decoded string `text`)
/// inside the string value written at `node`: exact when the string has no
/// escapes, else found by search, else the whole value.
pub(crate) fn sub_span(
    source: &str,
    node: &Range<usize>,
    text: &str,
    range: Range<usize>,
) -> Range<usize> {
    let raw = source.get(node.clone()).unwrap_or("");
    for quote in ["\"\"\"", "'''", "\"", "'"] {
        if let Some(inner) = raw.strip_prefix(quote).and_then(|r| r.strip_suffix(quote))
            && inner == text
        {
            let start = node.start + quote.len();
            return start + range.start..start + range.end;
        }
    }
    if let Some(piece) = text.get(range).filter(|p| !p.is_empty())
        && let Some(pos) = raw.find(piece)
    {
        return node.start + pos..node.start + pos + piece.len();
    }
    node.clone()
}

/// The smallest range covering both (a table's key and its header or body).
pub(crate) fn union(a: &Range<usize>, b: &Range<usize>) -> Range<usize> {
    a.start.min(b.start)..a.end.max(b.end)
}
