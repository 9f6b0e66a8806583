//! Support for the reliability and security tests in `tests/`: they run
//! the BUILT `dbops` binary (and the plugin libraries next to it; `cargo
//! build --workspace` builds both) against a sandbox started in the test,
//! as the ServiceAccount of `deploy/` with RBAC enforced, on the fake
//! databases of `dbops-e2e` (whose pods serve TLS only when their
//! configuration says so).
//!
//! Where to start: [`Db::start`] (a sandbox with one fake database per
//! namespace), [`Db::spawn`] / [`Db::run`] (one `dbops run`), [`Db::wait_for`]
//! (polling a condition on the cluster, never sleeping as
//! synchronisation), [`members_serve_secret`] and [`mounted`] (what the
//! members really run), [`secrets`] (scanning text for private material).

pub mod otlp;
pub mod secrets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use dbops_e2e::world::Engine;
pub use dbops_e2e::{Env, Outcome, bin_dir, cluster, rbac, repo_root};
use dbops_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

/// Exit codes of `runner/src/exit.rs` (the binary's contract).
pub mod exit {
    /// Success.
    pub const SUCCESS: i32 = 0;
    /// Invalid pipeline or refused plugin.
    pub const VALIDATION: i32 = 2;
    /// A step failed; completed steps rolled back.
    pub const FAILED_ROLLED_BACK: i32 = 3;
    /// A step failed; not (everything) rolled back.
    pub const FAILED_NOT_ROLLED_BACK: i32 = 4;
    /// Another run holds the lock.
    pub const LOCK_HELD: i32 = 5;
    /// Interrupted by SIGTERM/SIGINT.
    pub const INTERRUPTED: i32 = 6;
}

/// A sandbox holding fake databases of one engine, one per namespace, and
/// the deploy/ RBAC in each namespace.
pub struct Db {
    /// The sandbox.
    pub sandbox: Sandbox,
    /// The engine of every database.
    pub engine: Engine,
    /// Scratch directory (kubeconfigs, pipeline copies).
    pub dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Db {
    /// Start a sandbox and create a fake `engine` database, with RBAC, in
    /// every namespace of `namespaces`; wait until all members are Ready.
    pub fn start(engine: &str, namespaces: &[String]) -> Db {
        Self::start_with(engine, namespaces, SandboxConfig::default())
    }

    /// [`Db::start`] with a sandbox configuration (faults, seed).
    pub fn start_with(engine: &str, namespaces: &[String], config: SandboxConfig) -> Db {
        let bin = bin_dir();
        let sandbox = Sandbox::start_background(config).expect("the sandbox starts");
        let engine = Engine::named(engine);
        let db = Db {
            sandbox,
            engine,
            dir: tempfile::tempdir().expect("temp dir"),
            bin,
        };
        for ns in namespaces {
            for object in engine.objects(ns) {
                db.sandbox.apply(object).expect("fake database created");
            }
            rbac::apply(&db.sandbox, ns);
        }
        for ns in namespaces {
            db.wait_ready(ns);
        }
        db
    }

    /// A kubeconfig of the deploy/ ServiceAccount of `namespace`.
    pub fn kubeconfig(&self, namespace: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{namespace}.kubeconfig"));
        if !path.exists() {
            let token = self
                .sandbox
                .service_account_token(namespace, rbac::SERVICE_ACCOUNT);
            self.sandbox
                .write_kubeconfig(&path, Some(&token))
                .expect("kubeconfig written");
        }
        path
    }

    /// `dbops ARGS...` with the built plugins and no outer OTEL/run-id
    /// variables; stdout and stderr piped.
    pub fn dbops(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bin.join("dbops"));
        cmd.args(args).env("DBOPS_PLUGIN_DIR", &self.bin);
        for var in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "TRACEPARENT",
            "JOB_UID",
            "JOB_NAME",
            "DBOPS_RUN_ID",
            "KUBERNETES_SERVICE_HOST",
        ] {
            cmd.env_remove(var);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// `dbops run PIPELINE --kubeconfig (namespace's) --run-id ID --set ...`
    /// with the engine's fake-world sets for `operation` plus `extra`.
    /// `pipeline` is a file of pipelines/ or a path.
    pub fn run_cmd(
        &self,
        pipeline: &str,
        namespace: &str,
        run_id: &str,
        extra: &[&str],
    ) -> Command {
        let path = if Path::new(pipeline).is_absolute() {
            PathBuf::from(pipeline)
        } else {
            repo_root().join("pipelines").join(pipeline)
        };
        let operation = operation_of(pipeline);
        let kubeconfig = self.kubeconfig(namespace);
        let mut cmd = self.dbops(&["run"]);
        cmd.arg(&path)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--run-id")
            .arg(run_id);
        for set in self
            .engine
            .sets(namespace, &operation)
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
        {
            cmd.arg("--set").arg(set);
        }
        cmd
    }

    /// Spawn a run (see [`Db::run_cmd`]).
    pub fn spawn(&self, pipeline: &str, namespace: &str, run_id: &str, extra: &[&str]) -> Child {
        self.run_cmd(pipeline, namespace, run_id, extra)
            .spawn()
            .expect("dbops starts")
    }

    /// Run to completion (see [`Db::run_cmd`]).
    pub fn run(&self, pipeline: &str, namespace: &str, run_id: &str, extra: &[&str]) -> Outcome {
        outcome(self.spawn(pipeline, namespace, run_id, extra))
    }

    /// The journal of a run, if written.
    pub fn journal(&self, namespace: &str, run_id: &str) -> Option<Value> {
        let text = cluster::config_file(
            &self.sandbox,
            namespace,
            &format!("dbops-run-{run_id}"),
            "journal.json",
        )?;
        Some(serde_json::from_str(&text).expect("the journal is JSON"))
    }

    /// Poll `check` every 10 ms until it returns Some; fail after `limit`.
    pub fn wait_for<T>(&self, limit: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
        wait_for(limit, what, check)
    }

    /// Wait until every member of the database in `namespace` exists, is not
    /// terminating and is Ready (read without RBAC or faults).
    pub fn wait_ready(&self, namespace: &str) {
        self.wait_for(Duration::from_secs(60), "every member Ready", || {
            self.engine
                .pods()
                .iter()
                .all(|p| {
                    self.sandbox
                        .get("v1", "Pod", namespace, p)
                        .expect("get pod")
                        .is_some_and(|pod| is_ready(&pod))
                })
                .then_some(())
        });
    }

    /// The engine's configuration file in ConfigMap `<name>-config`.
    pub fn config(&self, namespace: &str) -> String {
        cluster::config_file(
            &self.sandbox,
            namespace,
            &format!("{}-config", self.engine.name),
            self.engine.file,
        )
        .expect("the configuration ConfigMap exists")
    }

    /// A Secret's decoded data.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        cluster::secret(&self.sandbox, namespace, name)
    }

    /// The TLS Secret `<name>-tls`.
    pub fn tls_secret(&self, namespace: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.secret(namespace, &format!("{}-tls", self.engine.name))
    }

    /// Pod name -> uid of the members ("" for a member that does not
    /// exist at the moment, e.g. between deletion and recreation).
    pub fn pod_uids(&self, namespace: &str) -> BTreeMap<String, String> {
        self.engine
            .pods()
            .into_iter()
            .map(|p| {
                let uid = self
                    .sandbox
                    .get("v1", "Pod", namespace, &p)
                    .expect("get pod")
                    .and_then(|pod| {
                        pod.pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                (p, uid)
            })
            .collect()
    }

    /// Whether the StatefulSet carries dbops' pause annotation.
    pub fn paused(&self, namespace: &str) -> bool {
        cluster::paused(&self.sandbox, namespace, self.engine.name)
    }

    /// The file `key` of volume `volume` as the CURRENT container of `pod`
    /// got it (the kubelet writes volumes at container start).
    pub fn mounted(&self, namespace: &str, pod: &str, volume: &str, key: &str) -> String {
        let uid = &self.pod_uids(namespace)[pod];
        let file = self
            .sandbox
            .state_dir()
            .join("pods")
            .join(format!("{namespace}_{pod}_{uid}"))
            .join("volumes")
            .join(volume)
            .join(key);
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{pod}: mounted file {}: {e}", file.display()))
    }

    /// Every member serves the certificate of the TLS Secret, chained to
    /// its `ca.crt`, for its stable DNS name; returns that serial.
    pub fn members_serve_secret(&self, namespace: &str) -> String {
        let secret = self.tls_secret(namespace).expect("the TLS Secret exists");
        let serial = cluster::hex(&cluster::serial_of(&secret["tls.crt"]));
        for pod in self.engine.pods() {
            let ip = cluster::pod_ip(&self.sandbox, namespace, &pod);
            let name = format!("{pod}.{}-pods.{namespace}.svc", self.engine.name);
            let served = cluster::served_serial(
                &format!("{ip}:{}", self.engine.tls_port),
                &secret["ca.crt"],
                &name,
            )
            .unwrap_or_else(|e| panic!("{pod} serves a certificate chained to ca.crt: {e}"));
            assert_eq!(
                cluster::hex(&served),
                serial,
                "{namespace}/{pod} serves the certificate of the Secret (all members new)"
            );
        }
        serial
    }

    /// Put the settings `text` into Secret `<name>-custom-config` (the
    /// reconfigure pipelines' source).
    pub fn custom_config(&self, namespace: &str, text: &str) {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(text);
        self.sandbox
            .apply(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": format!("{}-custom-config", self.engine.name), "namespace": namespace},
                "data": {self.engine.file: data}}))
            .expect("custom config Secret");
    }

    /// Events of a run.
    pub fn events(&self, namespace: &str, run_id: &str) -> Vec<Value> {
        cluster::events_of(&self.sandbox, namespace, run_id)
    }
}

/// Wait for a child and collect its output.
pub fn outcome(child: Child) -> Outcome {
    let output = child.wait_with_output().expect("wait for dbops");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Poll `check` every 10 ms until it returns Some; fail after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a pod is Ready and not terminating.
pub fn is_ready(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The operation of a pipeline file name (`zookeeper-rotate-tls.toml` ->
/// `rotate-tls`).
pub fn operation_of(pipeline: &str) -> String {
    let file = Path::new(pipeline)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    file.split_once('-')
        .map(|(_, op)| op.to_owned())
        .unwrap_or_default()
}

/// A step's record in a journal (None if absent).
pub fn step<'a>(journal: &'a Value, id: &str) -> Option<&'a Value> {
    journal["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
}

/// A step's state in a journal ("" if absent).
pub fn state(journal: &Value, id: &str) -> String {
    step(journal, id)
        .and_then(|s| s["state"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// A copy of pipelines/FILE in `dir` with `edit` applied to its text.
pub fn edited_pipeline(dir: &Path, file: &str, edit: impl FnOnce(String) -> String) -> String {
    let text = std::fs::read_to_string(repo_root().join("pipelines").join(file))
        .expect("pipeline readable");
    let path = dir.join(file);
    std::fs::write(&path, edit(text)).expect("pipeline copy written");
    path.to_str().expect("utf-8 path").to_owned()
}
