//! The demo's plugins: present in the plugin directory, or built on the spot.
//!
//! `cargo run --release -- demo` builds only the `dbops` binary, not the
//! plugin cdylibs (cargo cannot build sibling crates from a build script
//! without deadlocking on the target directory). So when plugins are missing
//! and this binary runs from the target directory of its own source
//! checkout, the demo runs `cargo build -p <plugins>` with the same profile
//! and target directory, saying so. Anywhere else it fails with the command
//! to run.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::plugins::file_name;

/// The steps of the rotate pipeline, and their packages.
const NEEDED: [(&str, &str); 5] = [
    ("pause", "dbops-plugin-pause"),
    ("issue-cert", "dbops-plugin-issue-cert"),
    ("rolling-restart", "dbops-plugin-rolling-restart"),
    ("health-check", "dbops-plugin-health-check"),
    ("resume", "dbops-plugin-resume"),
];

/// The workspace this binary was compiled from.
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Make sure every plugin the demo needs is in `dir`.
pub fn ensure(dir: &Path) -> Result<(), String> {
    let missing = missing(dir);
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|(step, _)| *step).collect();
    let Some(build) = self_build(dir) else {
        return Err(format!(
            "plugins {} are missing from {}; build them with `cargo build --release --workspace` and run target/release/dbops demo, or pass --plugin-dir",
            names.join(", "),
            dir.display()
        ));
    };
    let packages: Vec<&str> = NEEDED.iter().map(|(_, package)| *package).collect();
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(&build.workspace).arg("build");
    match build.profile.as_str() {
        "release" => {
            command.arg("--release");
        }
        "debug" => {}
        other => {
            command.args(["--profile", other]);
        }
    }
    command.arg("--target-dir").arg(&build.target_dir);
    for package in &packages {
        command.args(["-p", package]);
    }
    println!(
        "0. plugins {} are not built yet in {} (`cargo run` builds only the dbops binary); building them once: cargo build {}-p {}",
        names.join(", "),
        dir.display(),
        if build.profile == "release" {
            "--release "
        } else {
            ""
        },
        packages.join(" -p ")
    );
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo to build the plugins: {e}; run `cargo build --release --workspace` yourself"))?;
    if !status.success() {
        return Err(format!(
            "building the plugins failed ({status}); see cargo's output above"
        ));
    }
    let still = missing_names(dir);
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "cargo built the plugins but {} are still missing from {}",
            still.join(", "),
            dir.display()
        ))
    }
}

fn missing(dir: &Path) -> Vec<(&'static str, &'static str)> {
    NEEDED
        .iter()
        .copied()
        .filter(|(step, _)| !dir.join(file_name(step)).is_file())
        .collect()
}

fn missing_names(dir: &Path) -> Vec<&'static str> {
    missing(dir).into_iter().map(|(step, _)| step).collect()
}

/// How to build plugins next to this binary.
struct SelfBuild {
    workspace: PathBuf,
    target_dir: PathBuf,
    profile: String,
}

/// When `dir` is the directory of this executable, inside a cargo target
/// directory, and the source checkout it was built from still exists.
fn self_build(dir: &Path) -> Option<SelfBuild> {
    let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
    let exe_dir = exe.parent()?;
    if dir.canonicalize().ok()? != exe_dir {
        return None;
    }
    let profile = exe_dir.file_name()?.to_str()?.to_owned();
    let target_dir = exe_dir.parent()?.to_owned();
    let workspace = Path::new(WORKSPACE).canonicalize().ok()?;
    let is_checkout = workspace.join("Cargo.toml").is_file()
        && workspace.join("plugins/issue-cert/Cargo.toml").is_file();
    is_checkout.then_some(SelfBuild {
        workspace,
        target_dir,
        profile,
    })
}
