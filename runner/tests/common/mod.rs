//! Shared set-up of the runner's end-to-end tests: a sandbox API server
//! started in-process, a kubeconfig for it, pipelines written to a temp
//! dir, and the BUILT `dbops` binary run as a child process with the test
//! plugins (real cdylibs) from the cargo target directory.
#![allow(dead_code)] // Each test module uses a different part of this module.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dbops_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

/// The directory holding the built `dbops` binary and the plugin cdylibs.
pub fn target_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_dbops"));
    exe.parent()
        .map(Path::to_owned)
        .expect("the dbops binary has a parent directory")
}

/// The path of a built plugin; fails with instructions when it is missing.
pub fn plugin_file(step: &str) -> PathBuf {
    let file = target_dir().join(format!("libdbops_plugin_{}.so", step.replace('-', "_")));
    assert!(
        file.exists(),
        "test plugin {} is not built; run `cargo build -p dbops-test-plugin-{step}` (scripts/test.sh builds the whole workspace first)",
        file.display()
    );
    file
}

/// A sandbox, a temp dir and helpers to run `dbops` against them.
pub struct World {
    /// The API server.
    pub sandbox: Sandbox,
    /// Scratch directory (pipelines, kubeconfig, plugin copies).
    pub dir: tempfile::TempDir,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// Plugin directory passed with --plugin-dir.
    pub plugin_dir: PathBuf,
}

impl World {
    /// Start a sandbox and make sure the test plugin is built.
    pub fn start() -> World {
        plugin_file("test-step");
        let sandbox =
            Sandbox::start_background(SandboxConfig::default()).expect("start the sandbox");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        sandbox
            .write_kubeconfig(&kubeconfig, None)
            .expect("write kubeconfig");
        World {
            sandbox,
            dir,
            kubeconfig,
            plugin_dir: target_dir(),
        }
    }

    /// Write a pipeline file.
    pub fn pipeline(&self, name: &str, toml: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, toml).expect("write pipeline");
        path
    }

    /// `dbops` with the plugin dir and no OTEL variables from the outer environment.
    pub fn dbops(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbops"));
        cmd.arg("--plugin-dir").arg(&self.plugin_dir);
        for var in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "TRACEPARENT",
            "DBOPS_RUN_ID",
            "JOB_UID",
            "JOB_NAME",
            "DBOPS_PLUGIN_DIR",
            "KUBERNETES_SERVICE_HOST",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// `dbops run PIPELINE --kubeconfig K --run-id ID [extra...]`.
    pub fn run_cmd(&self, pipeline: &Path, run_id: &str, extra: &[&str]) -> Command {
        let mut cmd = self.dbops();
        cmd.arg("run")
            .arg(pipeline)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--run-id")
            .arg(run_id)
            .args(extra);
        cmd
    }

    /// Run to completion.
    pub fn run(&self, pipeline: &Path, run_id: &str, extra: &[&str]) -> Output {
        self.run_cmd(pipeline, run_id, extra)
            .output()
            .expect("run dbops")
    }

    /// The calls recorded by test-step in ConfigMap `name` of namespace `ns`.
    pub fn calls(&self, ns: &str, name: &str) -> Vec<String> {
        self.sandbox
            .get("v1", "ConfigMap", ns, name)
            .expect("get record configmap")
            .and_then(|cm| {
                cm.pointer("/data/calls")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// The run journal document, if the ConfigMap exists.
    pub fn journal(&self, ns: &str, run_id: &str) -> Option<Value> {
        let cm = self
            .sandbox
            .get("v1", "ConfigMap", ns, &format!("dbops-run-{run_id}"))
            .expect("get journal");
        cm.map(|cm| {
            let text = cm
                .pointer("/data/journal.json")
                .and_then(Value::as_str)
                .expect("journal.json key");
            serde_json::from_str(text).expect("journal is JSON")
        })
    }

    /// Poll (every 50 ms, up to `limit`) until `check` returns Some.
    pub fn wait_for<T>(
        &self,
        limit: Duration,
        what: &str,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = check() {
                return v;
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Seed the target workload so Events have something to point at.
    pub fn seed_target(&self, ns: &str, name: &str) {
        self.sandbox
            .apply(json!({
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "replicas": 0,
                    "serviceName": name,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "db", "image": "example/db:1"}]}
                    }
                }
            }))
            .expect("seed statefulset");
    }
}

/// A pipeline header for target `ns/name` with `on_failure`.
pub fn header(ns: &str, name: &str, on_failure: &str) -> String {
    format!(
        r#"[pipeline]
name = "test"
description = "end-to-end test pipeline"
operation = "test"
on_failure = "{on_failure}"

[target]
engine = "generic"
namespace = "{ns}"
name = "{name}"

[defaults]
timeout = "30s"
retry = {{ attempts = 1, initial_backoff = "10ms", max_backoff = "50ms" }}
"#
    )
}

/// Stdout and stderr of an output, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Step states of a journal, as (id, state, attempts).
pub fn states(journal: &Value) -> Vec<(String, String, u64)> {
    journal["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or_default().to_owned(),
                s["state"].as_str().unwrap_or_default().to_owned(),
                s["attempts"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}
