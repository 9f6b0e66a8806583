//! Property tests (fuzzing) of the pipeline parser, variable expansion and
//! `when` expressions: arbitrary and mutated input never panics or hangs,
//! every reported position lies inside the file, and `when` evaluates like
//! a reference interpreter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use dbops::pipeline::vars::{Segment, parse_template};
use dbops::pipeline::{
    LoadOptions, Outputs, Problems, check_against_plugins, evaluate_when, load_str, when,
};
use proptest::prelude::*;
use serde_json::json;

use crate::catalog;

const GOOD: &str = include_str!("data/pipelines/good/rotate-tls.toml");

fn options() -> LoadOptions {
    LoadOptions::default().with_env(|name| (name == "NAMESPACE").then(|| "prod".to_string()))
}

fn check_positions(source: &str, problems: &Problems) {
    let lines = source.lines().count().max(1);
    for problem in problems.iter() {
        assert!(
            problem.location.line <= lines + 1,
            "line {} beyond {lines}: {problem}",
            problem.location.line
        );
        let _ = problem.to_string();
    }
}

/// Pieces that make mutations hit the interesting paths.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("${".to_string()),
        Just("$${".to_string()),
        Just("}".to_string()),
        Just("\"".to_string()),
        Just("[[step]]\n".to_string()),
        Just("[step.with]\n".to_string()),
        Just("= ".to_string()),
        Just("\n".to_string()),
        Just("${steps.cert.outputs.serial}".to_string()),
        Just("${vars.issuer}".to_string()),
        Just("${env.X:-".to_string()),
        Just("é".to_string()),
        "[ -~]{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(source in "\\PC{0,300}") {
        if let Err(problems) = load_str(&source, Path::new("fuzz.toml"), &options()) {
            prop_assert!(!problems.is_empty());
            check_positions(&source, &problems);
        }
    }

    #[test]
    fn mutated_pipelines_never_panic(edits in proptest::collection::vec((0usize..2000, 0usize..6, fragment()), 1..6)) {
        let mut source = GOOD.to_string();
        for (at, delete, insert) in edits {
            let mut at = at % (source.len() + 1);
            while !source.is_char_boundary(at) {
                at -= 1;
            }
            let mut end = (at + delete).min(source.len());
            while !source.is_char_boundary(end) {
                end += 1;
            }
            source.replace_range(at..end, &insert);
        }
        match load_str(&source, Path::new("fuzz.toml"), &options()) {
            Ok(pipeline) => {
                prop_assert!(!pipeline.steps.is_empty());
                if let Err(problems) = check_against_plugins(&pipeline, &catalog::FakeCatalog::load()) {
                    check_positions(&source, &problems);
                }
            }
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                check_positions(&source, &problems);
            }
        }
    }

    #[test]
    fn templates_parse_or_fail_with_ranges_inside_the_text(text in "(\\PC|\\$|\\{|\\}){0,60}") {
        match parse_template(&text) {
            Ok(segments) => {
                for segment in segments {
                    if let Segment::Var { range, .. } = segment {
                        prop_assert!(range.end <= text.len() && text.is_char_boundary(range.start));
                        let starts = text[range].starts_with("${");
                        prop_assert!(starts, "variable range does not start at a variable");
                    }
                }
            }
            Err(error) => prop_assert!(error.range.end <= text.len() && error.range.start <= error.range.end),
        }
    }

    #[test]
    fn text_without_dollars_is_literal(text in "[^$]{0,60}") {
        let segments = parse_template(&text).unwrap();
        let joined: String = segments
            .iter()
            .map(|s| match s {
                Segment::Text(t) => t.clone(),
                Segment::Var { .. } => unreachable!("no `$` in the input"),
            })
            .collect();
        prop_assert_eq!(joined, text);
    }

    #[test]
    fn arbitrary_when_text_never_panics(text in "(\\PC|[()!&|=<>'\" .]){0,80}") {
        if let Ok(expr) = when::parse(&text) {
            let _ = expr.truth(&outputs());
        } else {
            let _ = evaluate_when(&text, &outputs());
        }
    }

    #[test]
    fn with_strings_expand_like_a_reference(pieces in proptest::collection::vec(piece(), 0..8)) {
        let template: String = pieces.iter().map(|(t, _)| t.as_str()).collect();
        let expected: String = pieces.iter().map(|(_, e)| e.as_str()).collect();
        let toml_string = serde_json::to_string(&template).unwrap();
        let source = format!(
            "[pipeline]\nname = \"p\"\n[variables]\nv = \"V$\"\n[target]\nengine = \"generic\"\nnamespace = \"ns\"\nname = \"t\"\n[[step]]\nid = \"a\"\nuses = \"x\"\nwith = {{ v = {toml_string} }}\n"
        );
        let pipeline = load_str(&source, Path::new("gen.toml"), &options()).map_err(|p| TestCaseError::fail(p.to_string()))?;
        prop_assert_eq!(&pipeline.steps[0].with["v"], &json!(expected));
    }

    #[test]
    fn when_matches_a_reference_interpreter(expr in arb_expr()) {
        let text = render(&expr);
        let expected = reference(&expr);
        prop_assert_eq!(evaluate_when(&text, &outputs()).ok(), Some(expected), "{}", text);
    }
}

/// A piece of a `with` string and what it expands to.
fn piece() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        "[^$\\p{C}]{0,6}".prop_map(|t| (t.clone(), t)),
        Just(("$${".to_string(), "${".to_string())),
        Just(("${vars.v}".to_string(), "V$".to_string())),
        Just(("${target.name}".to_string(), "t".to_string())),
        Just(("${env.NAMESPACE}".to_string(), "prod".to_string())),
        Just(("${env.UNSET:-d}".to_string(), "d".to_string())),
    ]
}

fn outputs() -> BTreeMap<String, Outputs> {
    let cert: Outputs = [
        ("changed".to_string(), json!(true)),
        ("serial".to_string(), json!("ab")),
    ]
    .into();
    let cfg: Outputs = [
        ("restart".to_string(), json!(false)),
        ("n".to_string(), json!(3)),
    ]
    .into();
    [("cert".to_string(), cert), ("cfg".to_string(), cfg)].into()
}

/// A boolean expression over the outputs above.
#[derive(Debug, Clone)]
enum E {
    Bool(bool),
    /// `steps.cert.outputs.changed` (true), `steps.cfg.outputs.restart`
    /// (false) or `steps.gone.outputs.x` (null: false).
    Out(u8),
    /// `steps.cfg.outputs.n == K`
    NEq(i64),
    Not(Box<E>),
    And(Box<E>, Box<E>),
    Or(Box<E>, Box<E>),
}

fn arb_expr() -> impl Strategy<Value = E> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(E::Bool),
        (0u8..3).prop_map(E::Out),
        (0i64..6).prop_map(E::NEq)
    ];
    leaf.prop_recursive(6, 48, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| E::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| E::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| E::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn render(e: &E) -> String {
    match e {
        E::Bool(b) => b.to_string(),
        E::Out(0) => "steps.cert.outputs.changed".into(),
        E::Out(1) => "steps.cfg.outputs.restart".into(),
        E::Out(_) => "steps.gone.outputs.x".into(),
        E::NEq(k) => format!("steps.cfg.outputs.n == {k}"),
        E::Not(a) => format!("!({})", render(a)),
        E::And(a, b) => format!("({}) && ({})", render(a), render(b)),
        E::Or(a, b) => format!("({}) || ({})", render(a), render(b)),
    }
}

fn reference(e: &E) -> bool {
    match e {
        E::Bool(b) => *b,
        E::Out(i) => *i == 0,
        E::NEq(k) => *k == 3,
        E::Not(a) => !reference(a),
        E::And(a, b) => reference(a) && reference(b),
        E::Or(a, b) => reference(a) || reference(b),
    }
}
