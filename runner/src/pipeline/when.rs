//! The `when` expression language: a step runs only if its condition holds.
//!
//! ```text
//! expr    := or
//! or      := and ("||" and)*
//! and     := not ("&&" not)*
//! not     := "!" not | compare
//! compare := operand (("==" | "!=" | "<" | "<=" | ">" | ">=") operand)?
//! operand := "(" expr ")" | true | false | null | NUMBER | 'text' | "text"
//!          | steps.ID.outputs.KEY | run.failed | run.rolled_back | run.interrupted
//! ```
//!
//! `run.*` describe the run itself and are only ever true for `always` steps
//! that run after a failure: `run.failed` (a step failed), `run.rolled_back`
//! (and every compensation succeeded), `run.interrupted` (a signal stopped
//! the run). A pipeline re-rolls its members onto the restored configuration
//! after a rollback with an `always` step whose `when = "run.rolled_back"`.
//!
//! Semantics: an output of a step that did not run (skipped by its own
//! `when`) or did not produce that key is `null`. As a condition, `true` and
//! `false` are themselves, `null` is false, and any other value is an error
//! (compare it explicitly). `==`/`!=` compare JSON values without coercion,
//! except that numbers compare by value (`1 == 1.0`); `<`, `<=`, `>`, `>=`
//! need two numbers. `&&` and `||` short-circuit.

use std::collections::BTreeMap;
use std::ops::Range;

use serde_json::Value as Json;

use super::Outputs;

/// Nesting limit for parentheses and `!`, so hostile input cannot overflow
/// the stack.
const MAX_DEPTH: usize = 64;

/// Length limit, which also bounds the depth of `&&`/`||` chains.
const MAX_LEN: usize = 4096;

/// Where the executor keeps the `run.*` facts in the outputs map; not a
/// valid step id, so it never collides with a step.
pub const RUN_FACTS: &str = "@run";

/// The `run.*` names.
pub const RUN_KEYS: &[&str] = &["failed", "rolled_back", "interrupted"];

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A parsed `when` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Literal(Json),
    /// `steps.STEP.outputs.KEY`, with its byte range in the expression.
    Output {
        /// Step id.
        step: String,
        /// Output key.
        key: String,
        /// Byte range in the expression text.
        range: Range<usize>,
    },
    /// `run.KEY`: a fact about the run (see the module docs).
    Run {
        /// One of [`RUN_KEYS`].
        key: String,
    },
    /// `!e`
    Not(Box<Expr>),
    /// `a && b`
    And(Box<Expr>, Box<Expr>),
    /// `a || b`
    Or(Box<Expr>, Box<Expr>),
    /// `a OP b`
    Compare(CmpOp, Box<Expr>, Box<Expr>),
}

/// A parse or evaluation error, with the byte range it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhenError {
    /// Byte range in the expression.
    pub range: Range<usize>,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Not,
    And,
    Or,
    Cmp(CmpOp),
    Lit(Json),
    Ident(String),
}

fn lex(text: &str) -> Result<Vec<(Tok, Range<usize>)>, WhenError> {
    let bytes = text.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let err = |range: Range<usize>, message: String| Err(WhenError { range, message });
    while i < bytes.len() {
        let c = bytes[i];
        let two = text.get(i..i + 2).unwrap_or("");
        let (tok, len) = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            _ if two == "&&" => (Tok::And, 2),
            _ if two == "||" => (Tok::Or, 2),
            _ if two == "==" => (Tok::Cmp(CmpOp::Eq), 2),
            _ if two == "!=" => (Tok::Cmp(CmpOp::Ne), 2),
            _ if two == "<=" => (Tok::Cmp(CmpOp::Le), 2),
            _ if two == ">=" => (Tok::Cmp(CmpOp::Ge), 2),
            b'<' => (Tok::Cmp(CmpOp::Lt), 1),
            b'>' => (Tok::Cmp(CmpOp::Gt), 1),
            b'!' => (Tok::Not, 1),
            b'=' => {
                return err(
                    i..i + 1,
                    "`=` is not an operator; write `==` to compare".into(),
                );
            }
            b'&' | b'|' => {
                let op = if c == b'&' { "&&" } else { "||" };
                return err(
                    i..i + 1,
                    format!("unexpected `{}`; write `{op}`", c as char),
                );
            }
            b'\'' | b'"' => {
                let Some(end) = text[i + 1..].find(c as char) else {
                    return err(i..text.len(), "unterminated string literal".into());
                };
                (
                    Tok::Lit(Json::String(text[i + 1..i + 1 + end].to_string())),
                    end + 2,
                )
            }
            b'-' | b'0'..=b'9' => {
                let len = text[i + 1..]
                    .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
                    .map_or(text.len() - i, |n| n + 1);
                let word = &text[i..i + len];
                let number = word.parse::<i64>().map(Json::from).ok().or_else(|| {
                    word.parse::<f64>()
                        .ok()
                        .and_then(|f| serde_json::Number::from_f64(f).map(Json::Number))
                });
                match number {
                    Some(n) => (Tok::Lit(n), len),
                    None => return err(i..i + len, format!("invalid number `{word}`")),
                }
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let len = text[i..]
                    .find(|ch: char| {
                        !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '.')
                    })
                    .unwrap_or(text.len() - i);
                let word = &text[i..i + len];
                let tok = match word {
                    "true" => Tok::Lit(Json::Bool(true)),
                    "false" => Tok::Lit(Json::Bool(false)),
                    "null" => Tok::Lit(Json::Null),
                    "and" | "or" | "not" => {
                        return err(
                            i..i + len,
                            format!("unknown operator `{word}`; write `&&`, `||` or `!`"),
                        );
                    }
                    _ => Tok::Ident(word.to_string()),
                };
                (tok, len)
            }
            b'$' => {
                return err(
                    i..i + 1,
                    "unexpected `$`; write outputs as `steps.ID.outputs.KEY`, without `${}`".into(),
                );
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return err(i..i + ch.len_utf8(), format!("unexpected character `{ch}`"));
            }
        };
        toks.push((tok, i..i + len));
        i += len;
    }
    Ok(toks)
}

struct Parser<'t> {
    toks: &'t [(Tok, Range<usize>)],
    pos: usize,
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn range(&self) -> Range<usize> {
        self.toks
            .get(self.pos)
            .map_or(self.end..self.end, |(_, r)| r.clone())
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, WhenError> {
        Err(WhenError {
            range: self.range(),
            message: message.into(),
        })
    }

    fn or(&mut self, depth: usize) -> Result<Expr, WhenError> {
        let mut left = self.and(depth)?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and(depth)?));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, WhenError> {
        let mut left = self.not(depth)?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.not(depth)?));
        }
        Ok(left)
    }

    fn not(&mut self, depth: usize) -> Result<Expr, WhenError> {
        if depth > MAX_DEPTH {
            return self.fail(format!("expression nested deeper than {MAX_DEPTH} levels"));
        }
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not(depth + 1)?)));
        }
        let left = self.operand(depth)?;
        if let Some(Tok::Cmp(op)) = self.peek() {
            let op = *op;
            self.pos += 1;
            let right = self.operand(depth)?;
            if let Some(Tok::Cmp(_)) = self.peek() {
                return self.fail("comparisons cannot be chained; use `&&`");
            }
            return Ok(Expr::Compare(op, Box::new(left), Box::new(right)));
        }
        Ok(left)
    }

    fn operand(&mut self, depth: usize) -> Result<Expr, WhenError> {
        let Some((tok, range)) = self.toks.get(self.pos).cloned() else {
            return self.fail("unexpected end of expression; expected a value");
        };
        self.pos += 1;
        match tok {
            Tok::LParen => {
                if depth > MAX_DEPTH {
                    self.pos -= 1;
                    return self.fail(format!("expression nested deeper than {MAX_DEPTH} levels"));
                }
                let inner = self.or(depth + 1)?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.fail("expected `)`");
                }
                self.pos += 1;
                Ok(inner)
            }
            Tok::Lit(value) => Ok(Expr::Literal(value)),
            Tok::Ident(word) => parse_output(&word, range),
            _ => {
                self.pos -= 1;
                self.fail("expected a value (an output, a literal or `(`)")
            }
        }
    }
}

fn parse_output(word: &str, range: Range<usize>) -> Result<Expr, WhenError> {
    let parts: Vec<&str> = word.split('.').collect();
    match parts.as_slice() {
        ["steps", step, "outputs", key] if !step.is_empty() && !key.is_empty() => {
            Ok(Expr::Output {
                step: step.to_string(),
                key: key.to_string(),
                range,
            })
        }
        ["run", key] if RUN_KEYS.contains(key) => Ok(Expr::Run {
            key: key.to_string(),
        }),
        ["run", key] => Err(WhenError {
            range,
            message: format!(
                "unknown name `run.{key}`; the run facts are {}",
                RUN_KEYS
                    .iter()
                    .map(|k| format!("`run.{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
        _ => Err(WhenError {
            range,
            message: format!(
                "unknown name `{word}`; write `steps.ID.outputs.KEY`, `run.failed`, `run.rolled_back`, a literal (true, false, null, a number, 'text') or use `${{vars.NAME}}`"
            ),
        }),
    }
}

/// Parses an expression.
pub fn parse(text: &str) -> Result<Expr, WhenError> {
    if text.len() > MAX_LEN {
        return Err(WhenError {
            range: 0..0,
            message: format!("expression longer than {MAX_LEN} bytes"),
        });
    }
    let toks = lex(text)?;
    let mut parser = Parser {
        toks: &toks,
        pos: 0,
        end: text.len(),
    };
    if toks.is_empty() {
        return Err(WhenError {
            range: 0..text.len(),
            message: "empty expression".into(),
        });
    }
    let expr = parser.or(0)?;
    if parser.pos < toks.len() {
        return parser.fail("unexpected token; expected `&&`, `||` or the end");
    }
    Ok(expr)
}

impl Expr {
    /// Every `steps.ID.outputs.KEY` in the expression, in order.
    pub fn outputs(&self) -> Vec<(&str, &str, Range<usize>)> {
        let mut found = Vec::new();
        self.collect(&mut found);
        found
    }

    fn collect<'e>(&'e self, found: &mut Vec<(&'e str, &'e str, Range<usize>)>) {
        match self {
            Expr::Literal(_) | Expr::Run { .. } => {}
            Expr::Output { step, key, range } => found.push((step, key, range.clone())),
            Expr::Not(e) => e.collect(found),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Compare(_, a, b) => {
                a.collect(found);
                b.collect(found);
            }
        }
    }

    fn value(&self, outputs: &BTreeMap<String, Outputs>) -> Result<Json, String> {
        Ok(match self {
            Expr::Literal(v) => v.clone(),
            Expr::Output { step, key, .. } => outputs
                .get(step)
                .and_then(|o| o.get(key))
                .cloned()
                .unwrap_or(Json::Null),
            Expr::Run { key } => outputs
                .get(RUN_FACTS)
                .and_then(|o| o.get(key))
                .cloned()
                .unwrap_or(Json::Bool(false)),
            Expr::Compare(op, a, b) => {
                Json::Bool(compare(*op, &a.value(outputs)?, &b.value(outputs)?)?)
            }
            other => Json::Bool(other.truth(outputs)?),
        })
    }

    /// Evaluates as a condition.
    pub fn truth(&self, outputs: &BTreeMap<String, Outputs>) -> Result<bool, String> {
        match self {
            Expr::Not(e) => Ok(!e.truth(outputs)?),
            Expr::And(a, b) => Ok(a.truth(outputs)? && b.truth(outputs)?),
            Expr::Or(a, b) => Ok(a.truth(outputs)? || b.truth(outputs)?),
            other => match other.value(outputs)? {
                Json::Bool(b) => Ok(b),
                Json::Null => Ok(false),
                value => Err(format!(
                    "{} is {value}, not a boolean; compare it explicitly, e.g. `{} == {value}`",
                    other.describe(),
                    other.describe()
                )),
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            Expr::Output { step, key, .. } => format!("steps.{step}.outputs.{key}"),
            Expr::Run { key } => format!("run.{key}"),
            Expr::Literal(v) => v.to_string(),
            _ => "the value".into(),
        }
    }
}

fn compare(op: CmpOp, a: &Json, b: &Json) -> Result<bool, String> {
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return Ok(match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            CmpOp::Lt => x < y,
            CmpOp::Le => x <= y,
            CmpOp::Gt => x > y,
            CmpOp::Ge => x >= y,
        });
    }
    match op {
        CmpOp::Eq => Ok(a == b),
        CmpOp::Ne => Ok(a != b),
        _ => Err(format!(
            "cannot order {a} and {b}: `<`, `<=`, `>`, `>=` need two numbers"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outputs() -> BTreeMap<String, Outputs> {
        let cert: Outputs = [
            ("changed".to_string(), json!(true)),
            ("serial".to_string(), json!("ab")),
        ]
        .into();
        let cfg: Outputs = [
            ("restart_required".to_string(), json!(false)),
            ("n".to_string(), json!(3)),
        ]
        .into();
        [("cert".to_string(), cert), ("cfg".to_string(), cfg)].into()
    }

    fn eval(text: &str) -> Result<bool, String> {
        parse(text).map_err(|e| e.message)?.truth(&outputs())
    }

    #[test]
    fn run_facts_are_false_until_the_executor_sets_them() {
        assert_eq!(eval("run.rolled_back"), Ok(false));
        assert_eq!(eval("!run.failed"), Ok(true));
        let mut facts = outputs();
        facts.insert(
            RUN_FACTS.to_string(),
            [
                ("failed".to_string(), json!(true)),
                ("rolled_back".to_string(), json!(true)),
            ]
            .into(),
        );
        let parsed = parse("run.rolled_back && run.failed").unwrap();
        assert_eq!(parsed.truth(&facts), Ok(true));
        assert!(
            parsed.outputs().is_empty(),
            "run facts are not step outputs"
        );
        let err = parse("run.succeeded").unwrap_err();
        assert!(err.message.contains("`run.rolled_back`"), "{}", err.message);
    }

    #[test]
    fn evaluates_operators_and_precedence() {
        assert_eq!(eval("steps.cert.outputs.changed == true"), Ok(true));
        assert_eq!(eval("steps.cfg.outputs.restart_required"), Ok(false));
        assert_eq!(
            eval("!steps.cfg.outputs.restart_required && steps.cert.outputs.changed"),
            Ok(true)
        );
        assert_eq!(eval("false && true || true"), Ok(true));
        assert_eq!(eval("false && (true || true)"), Ok(false));
        assert_eq!(eval("steps.cert.outputs.serial != 'ab'"), Ok(false));
        assert_eq!(
            eval("steps.cfg.outputs.n >= 3.0 && steps.cfg.outputs.n < 4"),
            Ok(true)
        );
    }

    #[test]
    fn outputs_of_skipped_steps_are_null_and_false() {
        assert_eq!(eval("steps.gone.outputs.changed"), Ok(false));
        assert_eq!(eval("steps.gone.outputs.changed == null"), Ok(true));
        assert_eq!(eval("!steps.cert.outputs.missing"), Ok(true));
    }

    #[test]
    fn non_boolean_conditions_are_errors() {
        let err = eval("steps.cert.outputs.serial").unwrap_err();
        assert!(err.contains("not a boolean"), "{err}");
        assert!(eval("steps.cert.outputs.serial < 3").is_err());
    }

    #[test]
    fn parse_errors_have_positions() {
        let err = parse("steps.a.outputs.b ==").unwrap_err();
        assert_eq!(
            (err.range, err.message.as_str()),
            (20..20, "unexpected end of expression; expected a value")
        );
        let err = parse("a == 1").unwrap_err();
        assert_eq!(err.range, 0..1);
        let err = parse("true and false").unwrap_err();
        assert_eq!(err.range, 5..8);
        let err = parse("(true").unwrap_err();
        assert_eq!(err.message, "expected `)`");
        assert!(parse(&"(".repeat(10_000)).is_err());
        assert!(parse(&"!".repeat(10_000)).is_err());
    }
}
