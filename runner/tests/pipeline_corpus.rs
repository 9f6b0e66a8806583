//! The corpus of malformed pipelines (runner/tests/data/pipelines/bad):
//! each `NAME.toml` must fail loading or the plugin checks with exactly the
//! problems rendered in `NAME.expected` (messages, file:line:column,
//! snippets, help). A first line `# dbops-test: --set K=V ...` passes
//! overrides. The good pipelines (…/good) must load and pass the checks.
//!
//! After an intended change of messages, regenerate the expected files
//! with `DBOPS_BLESS=1 cargo test -p dbops --test integration pipeline_corpus` and
//! review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use dbops::pipeline::{LoadOptions, Problems, check_against_plugins, load};

use crate::catalog;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pipelines")
}

fn env(name: &str) -> Option<String> {
    (name == "NAMESPACE").then(|| "prod".to_string())
}

fn overrides(source: &str) -> Vec<(String, String)> {
    let Some(rest) = source
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# dbops-test:"))
    else {
        return Vec::new();
    };
    rest.split_whitespace()
        .filter(|w| *w != "--set")
        .map(|w| {
            let (k, v) = w.split_once('=').expect("--set K=V");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Loads and checks a pipeline with the file named relative to the data
/// directory, so rendered paths do not depend on the checkout.
fn problems(relative: &str) -> Option<Problems> {
    let dir = data_dir();
    let source = std::fs::read_to_string(dir.join(relative)).unwrap();
    let options = LoadOptions::with_overrides(overrides(&source)).with_env(env);
    let cwd_relative = dir.join(relative);
    let pipeline = match load(&cwd_relative, &options) {
        Ok(p) => p,
        Err(mut problems) => {
            for p in &mut problems.0 {
                p.file = PathBuf::from(relative);
            }
            return Some(problems);
        }
    };
    let catalog = catalog::FakeCatalog::load();
    check_against_plugins(&pipeline, &catalog)
        .err()
        .map(|mut problems| {
            for p in &mut problems.0 {
                p.file = PathBuf::from(relative);
            }
            problems
        })
}

fn files(sub: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir().join(sub))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .map(|n| format!("{sub}/{n}"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_malformed_pipeline_fails_with_its_expected_problems() {
    let bless = std::env::var_os("DBOPS_BLESS").is_some();
    let bad = files("bad");
    assert!(
        bad.len() >= 30,
        "the corpus must hold at least 30 malformed pipelines, found {}",
        bad.len()
    );
    let mut failures = Vec::new();
    for name in &bad {
        let Some(found) = problems(name) else {
            failures.push(format!(
                "{name}: loaded and passed the plugin checks, but it is malformed"
            ));
            continue;
        };
        let rendered = found.to_string();
        let expected_path = data_dir().join(name.replace(".toml", ".expected"));
        if bless {
            std::fs::write(&expected_path, &rendered).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if rendered != expected {
            failures.push(format!("{name}: expected\n{expected}\nfound\n{rendered}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files differ:\n\n{}",
        failures.len(),
        bad.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_expected_file_has_its_pipeline() {
    let dir = data_dir().join("bad");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".expected") {
            assert!(
                dir.join(format!("{stem}.toml")).exists(),
                "{name} has no {stem}.toml"
            );
        }
    }
}

#[test]
fn good_pipelines_load_and_pass_the_plugin_checks() {
    let good = files("good");
    assert!(!good.is_empty());
    for name in good {
        if let Some(problems) = problems(&name) {
            panic!("{name} should be valid:\n{problems}");
        }
    }
}
