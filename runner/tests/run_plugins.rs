//! End-to-end: plugin loading and its refusals, through the built binary.
//! `dbops validate` loads the plugins a pipeline uses (no cluster), so
//! these tests need no sandbox.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{header, plugin_file, text};

fn dbops(plugin_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbops"));
    cmd.arg("--plugin-dir")
        .arg(plugin_dir)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    cmd
}

fn pipeline(dir: &Path, uses: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("p.toml");
    let toml = header("ns", "db1", "halt")
        + &format!("\n[[step]]\nid = \"s\"\nuses = \"{uses}\"\n{extra}\n");
    std::fs::write(&path, toml).expect("write pipeline");
    path
}

/// A private plugin dir (mode 755) holding a copy of the named plugins.
fn plugin_dir_with(steps: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for step in steps {
        let src = plugin_file(step);
        let dst = dir.path().join(src.file_name().expect("file name"));
        std::fs::copy(&src, &dst).expect("copy plugin");
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    dir
}

#[test]
fn validate_loads_a_real_plugin() {
    let plugins = plugin_dir_with(&["test-step"]);
    let work = tempfile::tempdir().expect("tempdir");
    let p = pipeline(work.path(), "test-step", "with = { outputs = { a = 1 } }");
    let out = dbops(plugins.path())
        .arg("validate")
        .arg(&p)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The plugin's schema is enforced (unknown key).
    let p = pipeline(work.path(), "test-step", "with = { no_such_key = 1 }");
    let out = dbops(plugins.path())
        .arg("validate")
        .arg(&p)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no_such_key"), "{}", text(&out));
}

#[test]
fn abi_mismatch_is_refused_naming_file_and_versions() {
    let plugins = plugin_dir_with(&["bad-abi"]);
    let work = tempfile::tempdir().expect("tempdir");
    let p = pipeline(work.path(), "bad-abi", "");
    let out = dbops(plugins.path())
        .arg("validate")
        .arg(&p)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("libdbops_plugin_bad_abi.so"), "{t}");
    assert!(
        t.contains("ABI version 999") && t.contains("ABI version 1"),
        "{t}"
    );
    assert!(t.contains("upgrade dbops"), "says how to fix: {t}");
}

#[test]
fn world_writable_plugin_or_directory_is_refused() {
    let plugins = plugin_dir_with(&["test-step"]);
    let work = tempfile::tempdir().expect("tempdir");
    let p = pipeline(work.path(), "test-step", "");
    let file = plugins.path().join("libdbops_plugin_test_step.so");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = dbops(plugins.path())
        .arg("validate")
        .arg(&p)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("world-writable") && text(&out).contains("chmod o-w"),
        "{}",
        text(&out)
    );

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(plugins.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    let out = dbops(plugins.path())
        .arg("validate")
        .arg(&p)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("its directory"), "{}", text(&out));
    std::fs::set_permissions(plugins.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
}

#[test]
fn sha256_pin_mismatch_is_refused_with_both_digests() {
    use sha2::Digest;
    let plugins = plugin_dir_with(&["test-step"]);
    let work = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(plugins.path().join("libdbops_plugin_test_step.so")).expect("read");
    let actual = hex::encode(sha2::Sha256::digest(&bytes));
    let wrong = "ab".repeat(32);

    let p = pipeline(work.path(), "test-step", &format!("sha256 = \"{wrong}\""));
    let out = dbops(plugins.path())
        .arg("validate")
        .arg(&p)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&wrong) && text(&out).contains(&actual),
        "{}",
        text(&out)
    );

    let p = pipeline(work.path(), "test-step", &format!("sha256 = \"{actual}\""));
    let out = dbops(plugins.path())
        .arg("validate")
        .arg(&p)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn plugins_list_shows_name_version_abi_path_and_refusals() {
    let plugins = plugin_dir_with(&["test-step", "bad-abi"]);
    let out = dbops(plugins.path())
        .args(["plugins", "list"])
        .output()
        .expect("run");
    // A refused plugin makes the listing exit VALIDATION.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("test-step"))
        .unwrap_or_else(|| panic!("test-step listed: {stdout}"));
    assert!(
        line.contains(env!("CARGO_PKG_VERSION")) && line.contains(" 1 "),
        "{line}"
    );
    assert!(line.contains("libdbops_plugin_test_step.so"), "{line}");
    assert!(
        stdout.contains("refused") && stdout.contains("999"),
        "{stdout}"
    );
}

#[test]
fn plugins_list_json_reports_each_files_sha256() {
    use sha2::Digest;
    // Runs hash a plugin only when a step pins a digest; the listing
    // always reports it, so a pin can be copied from it.
    let plugins = plugin_dir_with(&["test-step"]);
    let bytes = std::fs::read(plugins.path().join("libdbops_plugin_test_step.so")).expect("read");
    let actual = hex::encode(sha2::Sha256::digest(&bytes));
    let out = dbops(plugins.path())
        .args(["plugins", "list", "--json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON listing");
    assert_eq!(rows[0]["name"], "test-step", "{rows}");
    assert_eq!(rows[0]["sha256"], actual.as_str(), "{rows}");
}

#[test]
fn unknown_plugin_lists_the_available_ones() {
    let plugins = plugin_dir_with(&["test-step"]);
    let work = tempfile::tempdir().expect("tempdir");
    let p = pipeline(work.path(), "test-stepp", "");
    let out = dbops(plugins.path())
        .arg("validate")
        .arg(&p)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("test-step"), "{}", text(&out));
}

#[test]
fn uses_can_name_a_plugin_file_relative_to_the_pipeline() {
    let plugins = plugin_dir_with(&["test-step"]);
    let empty = tempfile::tempdir().expect("tempdir");
    let p = pipeline(
        plugins.path(),
        "./libdbops_plugin_test_step.so",
        "with = { outputs = { value = 1 } }",
    );
    // The plugin directory is empty: the path in `uses` is what loads it.
    let out = dbops(empty.path())
        .arg("validate")
        .arg(&p)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_plugins_config_validator_is_compiled_once_and_checks_the_schema() {
    // A fleet checks its pipeline once per target: the compiled schema
    // validator is kept with the loaded plugin, not built again each time.
    let plugins = plugin_dir_with(&["test-step"]);
    let file = plugins.path().join("libdbops_plugin_test_step.so");
    let loaded = dbops::plugins::load_file(&file, &[]).expect("the test plugin loads");
    let first = loaded.config_validator().expect("a valid schema");
    let again = loaded.config_validator().expect("a valid schema");
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "compiled a second time"
    );
    assert!(
        !first.is_valid(&serde_json::json!({"no_such_option": true})),
        "the validator must be the plugin's schema (unknown keys refused)"
    );
}
