//! Plugin files that are not dbops plugins are refused with a clear
//! message, before any cluster access (exit VALIDATION), and never crash
//! the runner: a real shared library without the entry symbol, and a file
//! that is not a shared library at all. (Wrong ABI version, world-writable
//! files or directories, sha256 pin mismatches, panicking and hanging
//! plugins are covered by runner/tests/run_plugins.rs and run_steps.rs.)

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use dbops_reliability::{Db, exit, outcome};

const PIPELINE: &str = r#"
[pipeline]
name = "refusal"
operation = "test"
on_failure = "halt"

[target]
engine = "generic"
namespace = "ns"
name = "db1"

[[step]]
id = "s"
uses = "impostor"
"#;

/// A private plugin dir (mode 755) holding `bytes` as libdbops_plugin_impostor.so.
fn plugin_dir(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let file = dir.path().join("libdbops_plugin_impostor.so");
    std::fs::write(&file, bytes).expect("write plugin");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let pipeline = dir.path().join("p.toml");
    std::fs::write(&pipeline, PIPELINE).expect("pipeline");
    (dir, pipeline)
}

fn validate(plugins: &Path, pipeline: &Path) -> dbops_reliability::Outcome {
    let db_less = std::process::Command::new(dbops_reliability::bin_dir().join("dbops"))
        .arg("--plugin-dir")
        .arg(plugins)
        .arg("validate")
        .arg(pipeline)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("dbops starts");
    outcome(db_less)
}

/// A real shared library of the system (libz), which has no dbops entry symbol.
fn foreign_library() -> Vec<u8> {
    let candidates = [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/aarch64-linux-gnu/libz.so.1",
        "/usr/lib/aarch64-linux-gnu/libz.so.1",
    ];
    candidates
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .expect("libz.so.1 exists (Debian package zlib1g, always installed)")
}

#[test]
fn a_shared_library_without_the_entry_symbol_is_refused() {
    let (dir, pipeline) = plugin_dir(&foreign_library());
    let out = validate(dir.path(), &pipeline);
    out.expect_code(exit::VALIDATION, "a library without dbops_plugin_v1");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("libdbops_plugin_impostor.so"),
        "names the file: {text}"
    );
    assert!(
        text.contains("dbops_plugin_v1"),
        "names the missing symbol: {text}"
    );
}

#[test]
fn a_file_that_is_not_a_shared_library_is_refused() {
    let (dir, pipeline) = plugin_dir(b"#!/bin/sh\necho not a plugin\n");
    let out = validate(dir.path(), &pipeline);
    out.expect_code(exit::VALIDATION, "not an ELF file");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("libdbops_plugin_impostor.so"),
        "names the file: {text}"
    );
}

#[test]
fn a_refused_plugin_writes_nothing_to_the_cluster() {
    // `dbops run` with the impostor: refused before the lock, the journal or
    // any Event; the target namespace stays empty of dbops objects.
    let db = Db::start("zookeeper", &[]);
    let (dir, pipeline) = plugin_dir(&foreign_library());
    let kubeconfig = db.dir.path().join("admin.kubeconfig");
    db.sandbox
        .write_kubeconfig(&kubeconfig, None)
        .expect("kubeconfig");
    let out = outcome(
        db.dbops(&["--plugin-dir"])
            .arg(dir.path())
            .arg("run")
            .arg(&pipeline)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--run-id")
            .arg("impostor-1")
            .spawn()
            .expect("dbops starts"),
    );
    out.expect_code(exit::VALIDATION, "run with a refused plugin");
    assert!(db.journal("ns", "impostor-1").is_none(), "no journal");
    let leases = db
        .sandbox
        .list("coordination.k8s.io/v1", "Lease", Some("ns"))
        .expect("list");
    assert!(leases.is_empty(), "no lock taken: {leases:?}");
    assert!(db.events("ns", "impostor-1").is_empty(), "no Events");
}
