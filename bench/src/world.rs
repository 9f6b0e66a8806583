//! The benchmark world: a sandbox, its kubeconfig, the built binaries, and
//! StatefulSets whose pods become Ready a fixed delay after they start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dbops_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A built file is missing.
    #[error(
        "{0} is not built; build the binary and plugins first: cargo build --release -p dbops -p dbops-plugin-pause -p dbops-plugin-resume -p dbops-plugin-rolling-restart -p dbops-plugin-health-check -p dbops-plugin-issue-cert -p dbops-plugin-patch-config"
    )]
    NotBuilt(PathBuf),
    /// The sandbox failed.
    #[error("sandbox: {0}")]
    Sandbox(#[from] dbops_sandbox::Error),
    /// File or process I/O.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Pods did not become Ready during set-up.
    #[error("{0} did not become Ready within {1:?} during set-up")]
    NotReady(String, Duration),
}

/// Wraps an I/O error with what was being done.
pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// A sandbox with an admin kubeconfig and a scratch directory.
pub struct World {
    /// The API server.
    pub sandbox: Sandbox,
    /// Scratch directory.
    pub dir: tempfile::TempDir,
    /// Admin kubeconfig (HTTPS).
    pub kubeconfig: PathBuf,
    /// Directory with `dbops` and the plugin libraries.
    pub bin_dir: PathBuf,
}

impl World {
    /// Start a sandbox; check that `dbops` and the plugins are built.
    pub fn start() -> Result<World, BenchError> {
        let bin_dir = std::env::current_exe()
            .map_err(io("find the benchmark's own executable"))?
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        for file in [
            "dbops",
            "libdbops_plugin_pause.so",
            "libdbops_plugin_resume.so",
            "libdbops_plugin_rolling_restart.so",
        ] {
            let path = bin_dir.join(file);
            if !path.exists() {
                return Err(BenchError::NotBuilt(path));
            }
        }
        // DBOPS_BENCH_SANDBOX_LOG=<filter> logs the in-process sandbox, e.g.
        // `dbops_sandbox::requests=debug` for every API request it serves.
        if let Ok(filter) = std::env::var("DBOPS_BENCH_SANDBOX_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .try_init();
        }
        let sandbox = Sandbox::start_background(SandboxConfig::default())?;
        let dir = tempfile::tempdir().map_err(io("create a temp dir"))?;
        let kubeconfig = dir.path().join("kubeconfig");
        sandbox
            .write_kubeconfig(&kubeconfig, None)
            .map_err(io("write the kubeconfig"))?;
        Ok(World {
            sandbox,
            dir,
            kubeconfig,
            bin_dir,
        })
    }

    /// A kubeconfig whose server is `addr` (e.g. a [`crate::proxy`]).
    pub fn kubeconfig_via(&self, addr: std::net::SocketAddr) -> Result<PathBuf, BenchError> {
        let text = std::fs::read_to_string(&self.kubeconfig).map_err(io("read the kubeconfig"))?;
        let text = text.replace(&self.sandbox.https_url(), &format!("https://{addr}"));
        let path = self.dir.path().join("kubeconfig-proxy");
        std::fs::write(&path, text).map_err(io("write the proxy kubeconfig"))?;
        Ok(path)
    }

    /// Write a file into the scratch directory.
    pub fn write(&self, name: &str, text: &str) -> Result<PathBuf, BenchError> {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).map_err(io(format!("write {name}")))?;
        Ok(path)
    }

    /// `dbops --plugin-dir BIN_DIR` with a clean environment for OTEL/Job
    /// variables; its stderr is discarded unless `DBOPS_BENCH_LOG` is set.
    pub fn dbops(&self) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("dbops"));
        cmd.arg("--plugin-dir").arg(&self.bin_dir);
        for var in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "TRACEPARENT",
            "DBOPS_RUN_ID",
            "JOB_UID",
            "JOB_NAME",
            "JOB_COMPLETION_INDEX",
            "KUBERNETES_SERVICE_HOST",
        ] {
            cmd.env_remove(var);
        }
        // dbops's log is not part of the figures; DBOPS_BENCH_LOG=1 shows it
        // (e.g. with DBOPS_LOG=kube_client=debug, every API request).
        if std::env::var_os("DBOPS_BENCH_LOG").is_none() {
            cmd.stderr(std::process::Stdio::null());
        }
        cmd
    }

    /// Seed StatefulSets and wait until every pod in `namespace` is Ready.
    pub fn seed(&self, namespace: &str, sets: Vec<Value>, pods: usize) -> Result<(), BenchError> {
        for set in sets {
            self.sandbox.apply(set)?;
        }
        self.wait_ready(namespace, pods, Duration::from_secs(600))
    }

    /// Poll (set-up only, never measured) until `pods` pods are Ready.
    pub fn wait_ready(
        &self,
        namespace: &str,
        pods: usize,
        limit: Duration,
    ) -> Result<(), BenchError> {
        let start = Instant::now();
        loop {
            let ready = self
                .sandbox
                .list("v1", "Pod", Some(namespace))?
                .iter()
                .filter(|p| is_ready(p))
                .count();
            if ready >= pods {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(BenchError::NotReady(
                    format!("{pods} pods in {namespace} ({ready} Ready)"),
                    limit,
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
}

/// A StatefulSet of `members` pods that become Ready `ready_after` after
/// they start; `strategy` is `RollingUpdate` or `OnDelete`.
pub fn stateful_set(
    namespace: &str,
    name: &str,
    members: u32,
    ready_after: Duration,
    strategy: &str,
    labels: Value,
) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": members,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": strategy},
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {
                    "labels": {"app": name},
                    "annotations": {"sandbox.dbops.io/start-delay": format!("{}ms", ready_after.as_millis())}
                },
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "db", "image": "example/db:1"}]
                }
            }
        }
    })
}

/// The benchmark pipeline: pause, rolling-restart (`mode`), resume.
pub fn pipeline(namespace: &str, name: &str, mode: &str) -> String {
    format!(
        r#"[pipeline]
name = "bench-restart"
operation = "restart"
on_failure = "halt"

[target]
engine = "generic"
namespace = "{namespace}"
name = "{name}"

[[step]]
id = "pause"
uses = "pause"

[[step]]
id = "restart"
uses = "rolling-restart"
with = {{ mode = "{mode}", pre_check = "none", member_timeout = "120s" }}

[[step]]
id = "resume"
uses = "resume"
always = true
"#
    )
}

/// Run `cmd` to its end; returns wall time, exit code and the child's own
/// peak RSS in MiB (`VmHWM` of /proc/PID/status, polled every 20 ms).
/// Not `getrusage(RUSAGE_CHILDREN)`: Linux carries the parent's RSS high
/// water mark into a spawned child's `ru_maxrss` at exec, so with the
/// sandbox in this process it reports the benchmark's size, not dbops's.
pub fn run_with_peak_rss(mut cmd: Command) -> Result<(Duration, Option<i32>, f64), BenchError> {
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(io("run dbops"))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut hwm_kib = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            hwm_kib = hwm_kib.max(kib);
        }
        if let Some(status) = child.try_wait().map_err(io("wait for dbops"))? {
            return Ok((start.elapsed(), status.code(), hwm_kib as f64 / 1024.0));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
