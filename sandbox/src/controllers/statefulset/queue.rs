//! The controller's work queue: a set is reconciled as soon as something
//! about it changed, never by two reconciles at once.
//!
//! kube-runtime's `Controller` passes every trigger through a `DelayQueue`
//! whose millisecond timer wheel rounds "now" up to its next tick, so each
//! reconcile started 1-2 ms after the event that asked for it. In the
//! sandbox that delay sits on the path of every pod re-creation (a member
//! restart waits for it) and showed up in the benchmarks as overhead of
//! the tool under test. Real controllers' work queues hand a key to a
//! worker at once; this one does the same:
//!
//! - [`WorkQueue::add`]: queue a key unless it is queued already; a key
//!   whose reconcile is running is remembered and queued again when that
//!   reconcile ends (the change it missed is seen by the next pass).
//! - [`WorkQueue::add_after`]: queue a key later (retry after an error, the
//!   periodic resync); only the earliest pending delay per key is kept.
//! - [`WorkQueue::start`] / the returned [`Running`] guard: a reconcile
//!   holds the key until the guard drops, also when it panics, so a key can
//!   never be stuck as "running".

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

/// Keys waiting, running or due again.
struct State<K> {
    /// Sent to the worker loop, not yet started.
    queued: HashSet<K>,
    /// Being reconciled.
    running: HashSet<K>,
    /// Changed while running: queue again when the reconcile ends.
    again: HashSet<K>,
    /// The earliest delayed add pending per key.
    delayed: HashMap<K, Instant>,
}

/// A cheap handle on the queue.
pub struct WorkQueue<K> {
    state: Arc<Mutex<State<K>>>,
    ready: mpsc::UnboundedSender<K>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> WorkQueue<K> {
    /// A queue and the receiver of the keys to reconcile, in order.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<K>) {
        let (ready, receiver) = mpsc::unbounded_channel();
        let state = State {
            queued: HashSet::new(),
            running: HashSet::new(),
            again: HashSet::new(),
            delayed: HashMap::new(),
        };
        (
            Self {
                state: Arc::new(Mutex::new(state)),
                ready,
            },
            receiver,
        )
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        // The state stays consistent under every operation below (none of
        // them can panic halfway), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reconcile `key` as soon as possible.
    pub fn add(&self, key: K) {
        let mut state = self.lock();
        if state.running.contains(&key) {
            state.again.insert(key);
        } else if state.queued.insert(key.clone()) {
            // The receiver lives as long as the controller; if it is gone
            // there is nobody left to reconcile anything.
            let _ = self.ready.send(key);
        }
    }

    /// Reconcile `key` after `delay` (unless an earlier delayed add of it
    /// is pending already).
    pub fn add_after(&self, key: K, delay: Duration) {
        let at = Instant::now() + delay;
        {
            let mut state = self.lock();
            if state
                .delayed
                .get(&key)
                .is_some_and(|pending| *pending <= at)
            {
                return;
            }
            state.delayed.insert(key.clone(), at);
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let due = {
                let mut state = queue.lock();
                let due = state.delayed.get(&key) == Some(&at);
                if due {
                    state.delayed.remove(&key);
                }
                due
            };
            if due {
                queue.add(key);
            }
        });
    }

    /// Take a received key for reconciling; `None` when it is being
    /// reconciled already (it is then queued again when that ends).
    pub fn start(&self, key: K) -> Option<Running<K>> {
        let mut state = self.lock();
        state.queued.remove(&key);
        if !state.running.insert(key.clone()) {
            state.again.insert(key);
            return None;
        }
        Some(Running {
            queue: self.clone(),
            key,
        })
    }

    fn finish(&self, key: &K) {
        let again = {
            let mut state = self.lock();
            state.running.remove(key);
            state.again.remove(key)
        };
        if again {
            self.add(key.clone());
        }
    }
}

/// A key being reconciled; dropping it ends the reconcile.
pub struct Running<K: Clone + Eq + Hash + Send + 'static> {
    queue: WorkQueue<K>,
    key: K,
}

impl<K: Clone + Eq + Hash + Send + 'static> Running<K> {
    /// The key.
    pub fn key(&self) -> &K {
        &self.key
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> Drop for Running<K> {
    fn drop(&mut self) {
        self.queue.finish(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_queued_once_and_never_runs_twice_at_once() {
        let (queue, mut ready) = WorkQueue::new();
        queue.add("a");
        queue.add("a");
        queue.add("b");
        assert_eq!(ready.recv().await, Some("a"));
        assert_eq!(ready.recv().await, Some("b"));
        assert!(ready.try_recv().is_err(), "a was queued once");

        let running = queue.start("a").expect("a starts");
        // Changed while running: not sent now, sent when the run ends.
        queue.add("a");
        assert!(ready.try_recv().is_err());
        drop(running);
        assert_eq!(ready.recv().await, Some("a"));
        let again = queue.start("a").expect("a starts again");
        assert_eq!(*again.key(), "a");
        drop(again);
        assert!(ready.try_recv().is_err(), "nothing was missed since");
    }

    #[tokio::test]
    async fn a_panicking_reconcile_releases_its_key() {
        let (queue, mut ready) = WorkQueue::new();
        queue.add(1);
        let key = ready.recv().await.expect("key");
        let running = queue.start(key).expect("starts");
        let task = tokio::spawn(async move {
            let _running = running;
            panic!("reconcile bug");
        });
        assert!(task.await.is_err());
        queue.add(1);
        let key = ready.recv().await.expect("queued again after the panic");
        assert!(queue.start(key).is_some());
    }

    #[tokio::test]
    async fn only_the_earliest_delayed_add_is_kept() {
        let (queue, mut ready) = WorkQueue::new();
        queue.add_after("a", Duration::from_secs(300));
        queue.add_after("a", Duration::from_millis(50));
        queue.add_after("a", Duration::from_secs(10));
        let key = tokio::time::timeout(Duration::from_secs(5), ready.recv())
            .await
            .expect("the 50 ms add came");
        assert_eq!(key, Some("a"));
        // Nothing else is pending: the 300 s sleeper finds its entry gone
        // and adds nothing; the 10 s add was never scheduled.
        assert!(queue.lock().delayed.is_empty());
        assert!(ready.try_recv().is_err());
    }
}
