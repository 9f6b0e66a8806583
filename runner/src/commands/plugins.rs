//! `dbops plugins list`: every plugin library in the plugin directory with
//! its name, version, ABI version and path. Files that fail the safety
//! checks or speak another ABI are listed with the reason (and make the
//! command exit VALIDATION).

use std::path::Path;

use clap::Subcommand;

use crate::exit;
use crate::plugins::{discover, load_file_with_digest};

/// `dbops plugins ...`.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List the plugins in the plugin directory.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Execute `dbops plugins`.
pub fn plugins(command: PluginsCommand, dir: &Path) -> i32 {
    let PluginsCommand::List { json } = command;
    let found = match discover(dir) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("dbops: {e}");
            return exit::VALIDATION;
        }
    };
    let mut rows = Vec::new();
    let mut broken = 0;
    for (name, path) in found {
        match load_file_with_digest(&path) {
            Ok(p) => rows.push(serde_json::json!({
                "name": p.info.name,
                "version": p.info.version,
                "abi": p.info.abi_version,
                "path": p.path.display().to_string(),
                "sha256": p.sha256,
                "compensates": p.info.has_compensate,
                "description": p.info.description,
            })),
            Err(e) => {
                broken += 1;
                rows.push(serde_json::json!({
                    "name": name,
                    "path": path.display().to_string(),
                    "error": e.to_string(),
                }));
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else {
        println!("{:<22} {:<9} {:<4} PATH", "NAME", "VERSION", "ABI");
        for row in &rows {
            let text = |k: &str| {
                row.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("-")
                    .to_owned()
            };
            match row.get("error").and_then(|v| v.as_str()) {
                Some(error) => println!(
                    "{:<22} {:<9} {:<4} {}\n  refused: {error}",
                    text("name"),
                    "-",
                    "-",
                    text("path")
                ),
                None => println!(
                    "{:<22} {:<9} {:<4} {}",
                    text("name"),
                    text("version"),
                    row.get("abi").and_then(|v| v.as_u64()).unwrap_or(0),
                    text("path")
                ),
            }
        }
        if rows.is_empty() {
            println!(
                "(no plugins in {}; set --plugin-dir or DBOPS_PLUGIN_DIR)",
                dir.display()
            );
        }
    }
    if broken == 0 {
        exit::SUCCESS
    } else {
        exit::VALIDATION
    }
}
