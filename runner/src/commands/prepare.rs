//! Load -> check plugins -> validate, shared by `run`, `validate` and
//! `plan`. **Invariant**: no cluster I/O here; the only I/O is reading the
//! pipeline file and loading plugin libraries.

use std::path::Path;

use crate::pipeline::{self, LoadOptions, Pipeline};
use crate::plugins::PluginSet;

/// Why a pipeline is not ready to run: every problem, as text blocks.
#[derive(Debug)]
pub struct NotReady {
    /// One block per problem (already formatted for a terminal).
    pub problems: Vec<String>,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Parse `--set KEY=VALUE` pairs.
pub fn parse_sets(sets: &[String]) -> Result<Vec<(String, String)>, NotReady> {
    let mut pairs = Vec::new();
    let mut problems = Vec::new();
    for set in sets {
        match set.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => pairs.push((k.trim().to_owned(), v.to_owned())),
            _ => problems.push(format!(
                "--set {set:?}: expected KEY=VALUE, e.g. --set target.name=zk-prod"
            )),
        }
    }
    if problems.is_empty() {
        Ok(pairs)
    } else {
        Err(NotReady { problems })
    }
}

/// Load and fully validate a pipeline with its plugins.
pub fn prepare(
    path: &Path,
    sets: &[String],
    plugin_dir: &Path,
) -> Result<(Pipeline, PluginSet), NotReady> {
    let overrides = parse_sets(sets)?;
    let pipeline =
        pipeline::load(path, &LoadOptions::with_overrides(overrides)).map_err(|problems| {
            NotReady {
                problems: vec![problems.to_string()],
            }
        })?;
    let plugins = PluginSet::load_for(&pipeline, plugin_dir).map_err(|errors| NotReady {
        problems: errors.iter().map(|e| format!("error: {e}")).collect(),
    })?;
    pipeline::check_against_plugins(&pipeline, &plugins).map_err(|problems| NotReady {
        problems: vec![problems.to_string()],
    })?;
    // The validator reports unknown plugins; this guards the executor.
    let missing: Vec<String> = pipeline
        .steps
        .iter()
        .filter(|s| plugins.get(&s.uses).is_none())
        .map(|s| {
            format!(
                "error: step `{}` uses `{}`, but no such plugin is in {}; available: {}",
                s.id,
                s.uses,
                plugin_dir.display(),
                plugins.available().join(", ")
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(NotReady { problems: missing });
    }
    Ok((pipeline, plugins))
}
