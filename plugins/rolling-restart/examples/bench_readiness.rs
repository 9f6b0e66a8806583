//! Benchmark: how fast does rolling-restart move on once a member is back?
//!
//! For a 3-member StatefulSet whose pods take a fixed time to become Ready
//! in the sandbox (annotation `sandbox.dbops.io/start-delay`), it measures
//! the gap between a restarted pod turning Ready and the next member's pod
//! being deleted, for
//! - dbops: the rolling-restart step (delete mode, watch-driven waits),
//!   run in-process through the plugin's JSON entry point, and
//! - kubectl: `kubectl rollout restart statefulset` + `kubectl rollout status`
//!   (the sandbox's StatefulSet controller rolls the pods),
//!
//! against the same sandbox in the same run, alternating rounds. Both gaps
//! are timed by one independent watcher, so watch latency affects both alike.
//! Prints median and p99 per method, plus the wall time of a whole round.
//!
//! Run (one command; needs `kubectl` on the PATH):
//! ```text
//! cargo run --release -p dbops-plugin-rolling-restart --example bench_readiness -- [ROUNDS] [START_DELAY]
//! ```
//! Defaults: 10 rounds, start delay "1s".

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dbops_plugin_rolling_restart::RollingRestart;
use dbops_plugin_sdk::k8s_openapi::api::core::v1::Pod;
use dbops_plugin_sdk::kube::{Kube, ListParams, WatchEvent, WatchOutcome};
use dbops_plugin_sdk::protocol::{RunResponse, Target, Workload};
use dbops_plugin_sdk::serde_json::json;
use dbops_plugin_sdk::testing::TestHost;
use dbops_plugin_sdk::wait;
use dbops_probes::testing::manifests::{self, PodSet};
use dbops_sandbox::{Sandbox, SandboxConfig};

const NS: &str = "bench";
const NAME: &str = "db";

/// What the watcher saw, and when.
#[derive(Debug, Clone)]
enum Seen {
    /// A pod observed Ready for the first time.
    Ready,
    /// A pod observed terminating or deleted for the first time.
    Deleting,
}

type Log = Arc<Mutex<Vec<(Instant, Seen)>>>;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10);
    let delay = args.next().unwrap_or_else(|| "1s".to_string());
    let sandbox = Sandbox::start_background(SandboxConfig::default())?;
    let data = manifests::data_root()?;
    let set = PodSet {
        namespace: NS,
        name: NAME,
        replicas: 3,
        update_strategy: "RollingUpdate",
        data_root: data.path(),
    };
    sandbox.apply(manifests::namespace(NS))?;
    for object in manifests::delayed_pods(&set, &delay) {
        sandbox.apply(object)?;
    }
    let kubeconfig = data.path().join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig, None)?;
    let host = TestHost::new(&sandbox.url(), Some(&sandbox.admin_token()));
    wait_rolled_out(&host)?;

    let log: Log = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = spawn_watcher(&sandbox, Arc::clone(&log), Arc::clone(&stop));

    let mut dbops = Samples::default();
    let mut kubectl = Samples::default();
    for round in 0..rounds {
        let started = Instant::now();
        run_dbops(&host)?;
        dbops.record(&log, started, Instant::now());
        let started = Instant::now();
        run_kubectl(&kubeconfig)?;
        kubectl.record(&log, started, Instant::now());
        eprintln!("round {}/{rounds} done", round + 1);
    }
    stop.store(true, Ordering::SeqCst);
    let _ = watcher.join();

    println!("rolling restart of 3 pods that take {delay} to become Ready, {rounds} rounds each");
    println!("gap = a restarted pod observed Ready -> the next member's pod observed terminating");
    println!(
        "{:<42} {:>7} {:>11} {:>11} {:>13}",
        "method", "gaps", "median ms", "p99 ms", "round s (med)"
    );
    dbops.print("dbops rolling-restart (delete, watch)");
    kubectl.print("kubectl rollout restart + rollout status");
    sandbox.shutdown();
    Ok(())
}

fn target() -> Target {
    Target {
        engine: "generic".into(),
        namespace: NS.into(),
        name: NAME.into(),
        workload: Workload {
            kind: "StatefulSet".into(),
            name: NAME.into(),
            api_version: "apps/v1".into(),
        },
        database: None,
    }
}

fn run_dbops(host: &TestHost) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // A fresh host state per round: the step restarts every member again.
    *host.state.lock().map_err(|_| "poisoned")? = None;
    host.set_deadline(Some(Duration::from_secs(300)));
    let request = TestHost::request(
        "restart",
        target(),
        json!({"member_timeout": "2m", "probe": {"port": 8080}}),
    );
    match host.run::<RollingRestart>(&request) {
        RunResponse::Ok { .. } => Ok(()),
        RunResponse::Error {
            reason, message, ..
        } => Err(format!("rolling-restart failed: {reason}: {message}").into()),
    }
}

fn run_kubectl(
    kubeconfig: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let kubectl = |args: &[&str]| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["-n", NS])
            .args(args)
            .output()
            .map_err(|e| format!("cannot run kubectl (install kubernetes-client): {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        Ok(())
    };
    kubectl(&["rollout", "restart", &format!("statefulset/{NAME}")])?;
    kubectl(&[
        "rollout",
        "status",
        &format!("statefulset/{NAME}"),
        "--timeout=5m",
    ])
}

fn wait_rolled_out(host: &TestHost) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let pods = Kube::new(host).api::<Pod>(Some(NS));
    for i in 0..3 {
        pods.wait_until(
            &format!("{NAME}-{i}"),
            wait::pod_is_ready(),
            Duration::from_secs(60),
        )?;
    }
    Ok(())
}

/// Watch the namespace's pods, logging first sightings of Ready and of deletion per uid.
fn spawn_watcher(sandbox: &Sandbox, log: Log, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    let (url, token) = (sandbox.url(), sandbox.admin_token());
    thread::spawn(move || {
        let host = TestHost::new(&url, Some(&token));
        let pods = Kube::new(&host).api::<Pod>(Some(NS));
        let mut ready = std::collections::BTreeSet::new();
        let mut deleting = std::collections::BTreeSet::new();
        while !stop.load(Ordering::SeqCst) {
            let Ok(list) = pods.list(&ListParams::default()) else {
                continue;
            };
            let Ok(mut stream) = pods.watch(&ListParams::default(), &list.resource_version) else {
                continue;
            };
            while !stop.load(Ordering::SeqCst) {
                let (pod, gone) = match stream.next(Duration::from_millis(200)) {
                    Ok(WatchOutcome::Event(WatchEvent::Added(p) | WatchEvent::Modified(p))) => {
                        (p, false)
                    }
                    Ok(WatchOutcome::Event(WatchEvent::Deleted(p))) => (p, true),
                    Ok(WatchOutcome::Event(WatchEvent::Bookmark(_)) | WatchOutcome::Timeout) => {
                        continue;
                    }
                    _ => break,
                };
                let now = Instant::now();
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                let mut log = log
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if (gone || pod.metadata.deletion_timestamp.is_some())
                    && deleting.insert(uid.clone())
                {
                    log.push((now, Seen::Deleting));
                } else if wait::pod_ready(&pod) && ready.insert(uid.clone()) {
                    log.push((now, Seen::Ready));
                }
            }
        }
    })
}

/// Gaps and round times of one method.
#[derive(Default)]
struct Samples {
    gaps: Vec<Duration>,
    rounds: Vec<Duration>,
}

impl Samples {
    /// Within [from, to]: for each deletion after the first, the time since
    /// the latest pod turned Ready.
    fn record(&mut self, log: &Log, from: Instant, to: Instant) {
        let log = log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let window: Vec<&(Instant, Seen)> =
            log.iter().filter(|(t, _)| *t >= from && *t <= to).collect();
        let mut last_ready: Option<Instant> = None;
        let mut deletions = 0;
        for (t, seen) in window {
            match seen {
                Seen::Ready => last_ready = Some(*t),
                Seen::Deleting => {
                    deletions += 1;
                    if deletions > 1
                        && let Some(ready) = last_ready
                    {
                        self.gaps.push(t.saturating_duration_since(ready));
                    }
                }
            }
        }
        self.rounds.push(to - from);
    }

    fn print(&self, method: &str) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{method:<42} {:>7} {:>11.1} {:>11.1} {:>13.2}",
            self.gaps.len(),
            percentile(&self.gaps, 0.5).map_or(f64::NAN, ms),
            percentile(&self.gaps, 0.99).map_or(f64::NAN, ms),
            percentile(&self.rounds, 0.5).map_or(f64::NAN, |d| d.as_secs_f64()),
        );
    }
}

/// Nearest-rank percentile.
fn percentile(values: &[Duration], p: f64) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}
