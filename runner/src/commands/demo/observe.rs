//! What the demo shows while and after the pipeline runs, read from the
//! cluster like any client would: step progress from the run's journal
//! ConfigMap, the restart order from pod deletions (both by watch), and the
//! certificate each member serves (a TLS handshake with its pod IP).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::say;
use super::world::{NAMESPACE, TLS_PORT, World};
use crate::run::journal::{self, RunRecord, StepState};

/// Running observers; [`Observers::finish`] stops them.
pub struct Observers {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    restarts: Arc<Mutex<Vec<String>>>,
    printed: Arc<Mutex<HashMap<String, StepState>>>,
}

/// Start watching the run's journal and the namespace's pods.
pub fn start(client: kube::Client, namespace: &str, run_id: &str) -> Observers {
    let stop = CancellationToken::new();
    let restarts = Arc::new(Mutex::new(Vec::new()));
    let printed = Arc::new(Mutex::new(HashMap::new()));
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let maps: Api<ConfigMap> = Api::namespaced(client, namespace);
    let journal_name = journal::configmap_name(run_id);
    let tasks = vec![
        tokio::spawn(until(stop.clone(), watch_pods(pods, restarts.clone()))),
        tokio::spawn(until(
            stop.clone(),
            watch_journal(maps, journal_name, printed.clone()),
        )),
    ];
    Observers {
        stop,
        tasks,
        restarts,
        printed,
    }
}

impl Observers {
    /// Stop watching; print the final state of steps the watch did not
    /// show yet; return the restart order.
    pub async fn finish(self, record: &RunRecord) -> Vec<String> {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        if let Ok(mut printed) = self.printed.lock() {
            print_changes(record, &mut printed);
        }
        self.restarts.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

async fn until(stop: CancellationToken, work: impl Future<Output = ()>) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = work => {}
    }
}

/// Record each pod (by uid) the first time it is seen terminating.
async fn watch_pods(pods: Api<Pod>, restarts: Arc<Mutex<Vec<String>>>) {
    let mut seen = HashSet::new();
    let mut stream = std::pin::pin!(watcher(pods, watcher::Config::default()).applied_objects());
    while let Some(item) = stream.next().await {
        let Ok(pod) = item else { continue };
        let (Some(uid), Some(name)) = (pod.metadata.uid.clone(), pod.metadata.name.clone()) else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() && seen.insert(uid) {
            say(&format!("   ... restarting {name}"));
            if let Ok(mut r) = restarts.lock() {
                r.push(name);
            }
        }
    }
}

/// Print step state changes as the runner writes them to the journal.
async fn watch_journal(
    maps: Api<ConfigMap>,
    name: String,
    printed: Arc<Mutex<HashMap<String, StepState>>>,
) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(maps, config).applied_objects());
    while let Some(item) = stream.next().await {
        let Ok(map) = item else { continue };
        let Some(record) = serde_json::to_value(&map)
            .ok()
            .and_then(|v| journal::decode(&v))
        else {
            continue;
        };
        if let Ok(mut printed) = printed.lock() {
            print_changes(&record, &mut printed);
        }
    }
}

fn print_changes(record: &RunRecord, printed: &mut HashMap<String, StepState>) {
    for step in &record.steps {
        if step.state == StepState::Pending || printed.get(&step.id) == Some(&step.state) {
            continue;
        }
        printed.insert(step.id.clone(), step.state);
        let detail = match step.state {
            StepState::Succeeded => summary(&step.outputs),
            _ => step.message.clone().unwrap_or_default(),
        };
        say(&format!(
            "   step {:<8} {:<10} {}",
            step.id,
            state_name(step.state),
            detail
        ));
    }
}

fn state_name(state: StepState) -> &'static str {
    match state {
        StepState::Pending => "pending",
        StepState::Running => "running",
        StepState::Succeeded => "ok",
        StepState::Failed => "FAILED",
        StepState::Skipped => "skipped",
        StepState::Compensated => "rolled back",
        StepState::Interrupted => "interrupted",
    }
}

/// The outputs worth a line in the demo.
fn summary(outputs: &dbops_plugin_sdk::Outputs) -> String {
    [
        "changed",
        "serial",
        "not_after",
        "order",
        "members",
        "paused",
        "resumed",
    ]
    .iter()
    .filter_map(|key| {
        outputs.get(*key).map(|v| match v {
            serde_json::Value::String(s) => format!("{key}={s}"),
            other => format!("{key}={other}"),
        })
    })
    .collect::<Vec<_>>()
    .join(" ")
}

/// The serial of the certificate each member serves on its pod IP,
/// verified against the demo CA and the member's DNS name.
pub async fn served_serials(
    client: &kube::Client,
    world: &World,
) -> Result<BTreeMap<String, String>, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let mut serials = BTreeMap::new();
    for name in world.pods() {
        let pod = pods
            .get(&name)
            .await
            .map_err(|e| format!("reading pod {name}: {e}"))?;
        let ip = pod
            .status
            .and_then(|s| s.pod_ip)
            .ok_or_else(|| format!("pod {name} has no IP"))?;
        let server_name = format!("{name}.{}-pods.{NAMESPACE}.svc", super::world::NAME);
        let options =
            dbops_probes::tls::TlsOptions::verify(world.ca_pem.clone().into_bytes(), server_name);
        let endpoint =
            dbops_probes::Endpoint::plain(format!("{ip}:{TLS_PORT}"), Duration::from_secs(5))
                .with_tls(options);
        let report = tokio::task::spawn_blocking(move || dbops_probes::tls::probe(&endpoint))
            .await
            .map_err(|e| format!("TLS probe of {name} did not finish: {e}"))?
            .map_err(|e| format!("TLS handshake with {name} ({ip}:{TLS_PORT}): {e}"))?;
        serials.insert(name, report.session.leaf.serial);
    }
    Ok(serials)
}
