//! `dbops validate PIPELINE...`: load, check plugins and validate every
//! file; print every problem of every file; exit VALIDATION if any. No
//! cluster I/O.

use std::path::{Path, PathBuf};

use super::prepare::prepare;
use crate::exit;

/// Arguments of `dbops validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Pipeline files.
    #[arg(required = true)]
    pub pipelines: Vec<PathBuf>,
    /// Override a variable or target field: KEY=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// Execute `dbops validate`.
pub fn validate(args: ValidateArgs, plugin_dir: &Path) -> i32 {
    let mut failed = 0;
    for path in &args.pipelines {
        match prepare(path, &args.sets, plugin_dir) {
            Ok((pipeline, _)) => println!(
                "{}: ok ({} steps, pipeline {})",
                path.display(),
                pipeline.steps.len(),
                pipeline.name
            ),
            Err(not_ready) => {
                failed += 1;
                eprintln!("{not_ready}");
            }
        }
    }
    if failed == 0 {
        exit::SUCCESS
    } else {
        eprintln!(
            "dbops: {failed} of {} pipeline(s) are not valid",
            args.pipelines.len()
        );
        exit::VALIDATION
    }
}
