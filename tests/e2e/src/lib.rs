//! Support for the end-to-end tests in `tests/`: they run the BUILT `dbops`
//! binary, with the plugin libraries next to it in the target directory
//! (`cargo build --workspace` builds both; scripts/test.sh does that before
//! the tests), against a sandbox started in the test, as the ServiceAccount
//! of `deploy/` with RBAC enforced.
//!
//! Where to start: [`Env::start`] (sandbox + kubeconfigs), [`world`]
//! (a fake database of each engine: pods run a small server that, like the
//! real engine, serves TLS only when its configuration says so), [`rbac`]
//! (the Role of `deploy/base`, applied to a namespace, optionally without
//! one rule), [`Env::run`] (one `dbops run`), [`cluster`] (reading back
//! Secrets, ConfigMaps, pods, journals, served certificates).

pub mod cluster;
pub mod rbac;
pub mod world;

use std::path::{Path, PathBuf};
use std::process::Command;

use dbops_sandbox::{Sandbox, SandboxConfig};

/// The repository root (this crate is `tests/e2e`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The target directory holding the built `dbops` and plugins: the test
/// executable is `<target>/<profile>/deps/<test>-<hash>`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in <target>/<profile>/deps")
        .to_owned();
    let dbops = dir.join("dbops");
    assert!(
        dbops.is_file(),
        "{} is missing: build the binary and the plugins first with `cargo build --workspace` (scripts/test.sh does)",
        dbops.display()
    );
    for step in [
        "pause",
        "resume",
        "issue-cert",
        "patch-config",
        "rolling-restart",
        "health-check",
    ] {
        let file = dir.join(format!("libdbops_plugin_{}.so", step.replace('-', "_")));
        assert!(
            file.is_file(),
            "plugin {} is missing: run `cargo build --workspace` (scripts/test.sh does) so the plugin cdylibs are built",
            file.display()
        );
    }
    dir
}

/// The outcome of one `dbops` invocation.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code.
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr (logs and the run summary).
    pub stderr: String,
}

impl Outcome {
    /// Panic with the output unless the exit code is `code`.
    pub fn expect_code(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.code, code,
            "{what}: expected exit code {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// A sandbox, a temp dir with kubeconfigs, and the binary.
pub struct Env {
    /// The sandbox.
    pub sandbox: Sandbox,
    /// Temp dir for kubeconfigs.
    pub dir: tempfile::TempDir,
    /// The admin kubeconfig.
    pub admin_kubeconfig: PathBuf,
    bin: PathBuf,
}

impl Env {
    /// Start a sandbox with default settings.
    pub fn start() -> Env {
        let bin = bin_dir();
        let sandbox =
            Sandbox::start_background(SandboxConfig::default()).expect("the sandbox starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let admin_kubeconfig = dir.path().join("admin.kubeconfig");
        sandbox
            .write_kubeconfig(&admin_kubeconfig, None)
            .expect("kubeconfig written");
        Env {
            sandbox,
            dir,
            admin_kubeconfig,
            bin,
        }
    }

    /// A kubeconfig for ServiceAccount `namespace/name` (RBAC enforced).
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        let path = self
            .dir
            .path()
            .join(format!("{namespace}-{name}.kubeconfig"));
        let token = self.sandbox.service_account_token(namespace, name);
        self.sandbox
            .write_kubeconfig(&path, Some(&token))
            .expect("kubeconfig written");
        path
    }

    /// `dbops ARGS...` with the plugins of the target directory.
    pub fn dbops(&self, args: &[&str]) -> Outcome {
        let output = Command::new(self.bin.join("dbops"))
            .args(args)
            .env("DBOPS_PLUGIN_DIR", &self.bin)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("JOB_UID")
            .env_remove("JOB_NAME")
            .env_remove("DBOPS_RUN_ID")
            .output()
            .expect("dbops runs");
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `dbops run pipelines/FILE --kubeconfig K --run-id ID --set ...`.
    pub fn run(&self, file: &str, kubeconfig: &Path, run_id: &str, sets: &[String]) -> Outcome {
        let pipeline = repo_root().join("pipelines").join(file);
        let pipeline = pipeline.to_str().expect("utf-8 path").to_owned();
        let kubeconfig = kubeconfig.to_str().expect("utf-8 path").to_owned();
        let mut args = vec![
            "run",
            &pipeline,
            "--kubeconfig",
            &kubeconfig,
            "--run-id",
            run_id,
        ];
        for set in sets {
            args.push("--set");
            args.push(set);
        }
        self.dbops(&args)
    }
}
