//! The kubelet stand-in: one worker task per pod (see [`worker`]), fed with
//! the pod's latest version by a pod watch. A worker gives its pod a
//! loopback IP, reports Pending -> Running -> Ready, runs the pod's process
//! (annotation contract in the `controllers` module docs) and, once the API
//! server marks the pod for deletion (deletionTimestamp), stops the process
//! within the grace period and removes the pod with a delete of grace 0 and
//! a uid precondition. A pod that vanishes at once (grace 0 from the start)
//! has its worker aborted, which kills its process group.

mod env;
mod ip;
mod probe;
mod process;
mod spec;
mod status;
mod tls_endpoint;
mod volumes;
mod worker;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

pub use ip::IpAllocator;
pub use worker::pod_dir;

use super::KubeletConfig;
use super::events::Events;

/// What every pod worker shares.
struct Shared {
    client: Client,
    events: Events,
    config: KubeletConfig,
    state_dir: PathBuf,
    ips: IpAllocator,
}

/// The kubelet stand-in; cheap to clone.
#[derive(Clone)]
pub struct Kubelet {
    shared: Arc<Shared>,
}

/// A pod's worker; dropping it aborts the task (and kills its process).
struct Worker {
    latest: watch::Sender<Pod>,
    task: JoinHandle<()>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Kubelet {
    /// A kubelet writing pod directories under `state_dir/pods`.
    pub fn new(client: Client, config: KubeletConfig, state_dir: PathBuf) -> Self {
        Self {
            shared: Arc::new(Shared {
                events: Events::new(client.clone(), "kubelet"),
                client,
                config,
                state_dir,
                ips: IpAllocator::default(),
            }),
        }
    }

    /// Watches all pods and keeps one worker per pod uid until the watch
    /// ends (it retries with backoff, so it does not).
    pub async fn run(self) {
        let pods: Api<Pod> = Api::all(self.shared.client.clone());
        let mut workers: HashMap<String, Worker> = HashMap::new();
        let mut relisted: Option<HashSet<String>> = None;
        let mut events =
            std::pin::pin!(watcher(pods, watcher::Config::default()).default_backoff());
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Init) => relisted = Some(HashSet::new()),
                Ok(watcher::Event::InitApply(pod)) => {
                    if let (Some(seen), Some(uid)) = (relisted.as_mut(), pod.metadata.uid.clone()) {
                        seen.insert(uid);
                    }
                    self.apply(&mut workers, pod);
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(seen) = relisted.take() {
                        workers.retain(|uid, _| seen.contains(uid));
                    }
                }
                Ok(watcher::Event::Apply(pod)) => self.apply(&mut workers, pod),
                Ok(watcher::Event::Delete(pod)) => {
                    if let Some(uid) = pod.metadata.uid.as_deref() {
                        workers.remove(uid);
                    }
                }
                Err(err) => warn!(error = %err, "kubelet pod watch failed; retrying"),
            }
        }
    }

    fn apply(&self, workers: &mut HashMap<String, Worker>, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        match workers.get(&uid) {
            Some(worker) => {
                // A finished worker has dropped its receiver: nothing to do.
                let _ = worker.latest.send(pod);
            }
            None => {
                let (latest, receiver) = watch::channel(pod);
                let task = tokio::spawn(worker::run(Arc::clone(&self.shared), receiver));
                workers.insert(uid, Worker { latest, task });
            }
        }
    }
}
