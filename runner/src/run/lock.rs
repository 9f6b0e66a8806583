//! The per-target lock: a `coordination.k8s.io/v1` Lease named
//! `dbops-lock-<target>` in the target's namespace, so two runs never
//! operate on one database at once.
//!
//! - `holderIdentity` is the run id. A run with the same id (a restarted
//!   Job pod) takes its own lease back at once.
//! - The holder renews `renewTime` every third of `leaseDurationSeconds` in
//!   the background. Another run takes the lease over only when
//!   `renewTime + leaseDurationSeconds` has passed (the holder died).
//! - Writes carry the `resourceVersion` read before, so two contenders
//!   cannot both win: the loser gets 409 and sees the winner.
//! - Release clears `holderIdentity`; the Lease object stays. An
//!   interrupted run does not release: its lease runs out unless the same
//!   run resumes first.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::cluster::{Cluster, ClusterError};

/// Errors taking the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// A live run holds the lease.
    #[error(
        "target {namespace}/{target} is locked by run {holder} (lease {namespace}/{lease}, last renewed {renewed}, expires {expires} unless renewed); wait for that run to finish, or, if it is gone, for the lease to expire"
    )]
    Held {
        /// Namespace.
        namespace: String,
        /// Target name.
        target: String,
        /// Lease name.
        lease: String,
        /// The holder's run id.
        holder: String,
        /// Last renewal (RFC 3339).
        renewed: String,
        /// Expiry (RFC 3339).
        expires: String,
    },
    /// The API call failed.
    #[error("cannot take the lock lease {namespace}/{lease}: {source}")]
    Cluster {
        /// Namespace.
        namespace: String,
        /// Lease name.
        lease: String,
        /// Cause.
        #[source]
        source: ClusterError,
    },
}

/// A held lock; renewed in the background until [`Lock::release`].
pub struct Lock {
    cluster: Cluster,
    path: String,
    holder: String,
    /// The lease as we last wrote it (shared with the renewer), so release
    /// is one write when nobody else touched it.
    last_written: Arc<Mutex<Option<Value>>>,
    renewer: JoinHandle<()>,
    /// Cancelled when the lease was lost (someone else took it over).
    pub lost: CancellationToken,
}

/// The Lease name for a target.
pub fn lease_name(target: &str) -> String {
    format!("dbops-lock-{target}")
}

fn micro_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn text<'a>(lease: &'a Value, pointer: &str) -> Option<&'a str> {
    lease.pointer(pointer).and_then(Value::as_str)
}

/// When a lease expires; `None` when it has no holder.
fn expiry(lease: &Value) -> Option<(String, DateTime<Utc>, DateTime<Utc>)> {
    let holder = text(lease, "/spec/holderIdentity").filter(|h| !h.is_empty())?;
    let renewed = text(lease, "/spec/renewTime")
        .or_else(|| text(lease, "/spec/acquireTime"))
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let seconds = lease
        .pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    Some((
        holder.to_owned(),
        renewed,
        renewed + chrono::Duration::seconds(seconds),
    ))
}

/// Take the target's lock for `holder` (the run id).
pub async fn acquire(
    cluster: &Cluster,
    namespace: &str,
    target: &str,
    holder: &str,
    duration: Duration,
) -> Result<Lock, LockError> {
    let lease = lease_name(target);
    let collection = format!("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases");
    let path = format!("{collection}/{lease}");
    let fail = |source| LockError::Cluster {
        namespace: namespace.to_owned(),
        lease: lease.clone(),
        source,
    };
    let seconds = duration.as_secs().max(1);
    for _ in 0..5 {
        let now = Utc::now();
        let current = cluster.get(&path).await.map_err(fail)?;
        let (body, method, at) = match &current {
            None => (
                json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {
                        "name": lease,
                        "namespace": namespace,
                        "labels": {"app.kubernetes.io/managed-by": "dbops"},
                    },
                    "spec": {
                        "holderIdentity": holder,
                        "leaseDurationSeconds": seconds,
                        "acquireTime": micro_time(now),
                        "renewTime": micro_time(now),
                        "leaseTransitions": 0,
                    },
                }),
                "POST",
                collection.clone(),
            ),
            Some(existing) => {
                let transitions = existing
                    .pointer("/spec/leaseTransitions")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let same_holder = match expiry(existing) {
                    None => false,
                    Some((h, _, _)) if h == holder => true,
                    Some((h, renewed, expires)) if expires > now => {
                        return Err(LockError::Held {
                            namespace: namespace.to_owned(),
                            target: target.to_owned(),
                            lease: lease.clone(),
                            holder: h,
                            renewed: renewed.to_rfc3339_opts(SecondsFormat::Secs, true),
                            expires: expires.to_rfc3339_opts(SecondsFormat::Secs, true),
                        });
                    }
                    Some((h, _, expires)) => {
                        tracing::warn!(
                            previous_holder = %h,
                            expired = %expires.to_rfc3339_opts(SecondsFormat::Secs, true),
                            "taking over the expired lock lease {namespace}/{lease}"
                        );
                        false
                    }
                };
                let mut updated = existing.clone();
                updated["spec"]["holderIdentity"] = json!(holder);
                updated["spec"]["leaseDurationSeconds"] = json!(seconds);
                updated["spec"]["renewTime"] = json!(micro_time(now));
                if !same_holder {
                    updated["spec"]["acquireTime"] = json!(micro_time(now));
                    updated["spec"]["leaseTransitions"] = json!(transitions + 1);
                }
                (updated, "PUT", path.clone())
            }
        };
        match cluster.json(method, &at, Some(&body)).await {
            Ok(written) => {
                tracing::info!(lease = %lease, "took the lock of target {namespace}/{target}");
                let lost = CancellationToken::new();
                let last_written = Arc::new(Mutex::new(written));
                let renewer = tokio::spawn(renew(
                    cluster.clone(),
                    path.clone(),
                    holder.to_owned(),
                    duration,
                    lost.clone(),
                    last_written.clone(),
                ));
                return Ok(Lock {
                    cluster: cluster.clone(),
                    path,
                    holder: holder.to_owned(),
                    last_written,
                    renewer,
                    lost,
                });
            }
            // Someone else wrote in between: look again.
            Err(e) if matches!(e.status(), Some(409)) => continue,
            Err(e) => return Err(fail(e)),
        }
    }
    Err(fail(ClusterError::Status {
        method: "PUT".into(),
        path,
        status: 409,
        message: "the lease kept changing while we tried to take it".into(),
    }))
}

async fn renew(
    cluster: Cluster,
    path: String,
    holder: String,
    duration: Duration,
    lost: CancellationToken,
    last_written: Arc<Mutex<Option<Value>>>,
) {
    let period = (duration / 3).max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(period).await;
        match cluster.get(&path).await {
            Ok(Some(mut lease)) => {
                if text(&lease, "/spec/holderIdentity") != Some(holder.as_str()) {
                    tracing::error!(
                        holder = text(&lease, "/spec/holderIdentity").unwrap_or(""),
                        "lost the lock lease {path}: another run took it over; stopping"
                    );
                    lost.cancel();
                    return;
                }
                lease["spec"]["renewTime"] = json!(micro_time(Utc::now()));
                match cluster.json("PUT", &path, Some(&lease)).await {
                    Ok(written) => *lock_ignoring_poison(&last_written) = written,
                    Err(e) => {
                        tracing::warn!("renewing the lock lease {path} failed (will retry): {e}")
                    }
                }
            }
            Ok(None) => {
                tracing::error!("the lock lease {path} was deleted; stopping");
                lost.cancel();
                return;
            }
            Err(e) => tracing::warn!("renewing the lock lease {path} failed (will retry): {e}"),
        }
    }
}

impl Lock {
    /// Stop renewing but keep the holder: the lease expires after its
    /// duration unless a process of the same run (a restarted Job pod)
    /// takes it back first. Used for interrupted runs, which are meant to
    /// be resumed before another run touches the target.
    pub fn keep_until_expiry(self) {
        self.renewer.abort();
    }

    /// Stop renewing and clear the holder so the next run need not wait.
    /// Writes over the lease as we last wrote it (its resourceVersion makes
    /// that fail if anyone else wrote since); reads it first only then.
    pub async fn release(self) {
        self.renewer.abort();
        let mut known = lock_ignoring_poison(&self.last_written).take();
        for _ in 0..3 {
            let cached = known.take();
            let read = match cached {
                Some(lease) => Ok(Some(lease)),
                None => self.cluster.get(&self.path).await,
            };
            let lease = match read {
                Ok(Some(lease)) => lease,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("releasing the lock lease {} failed: {e}", self.path);
                    return;
                }
            };
            if text(&lease, "/spec/holderIdentity") != Some(self.holder.as_str()) {
                return;
            }
            let mut released = lease;
            released["spec"]["holderIdentity"] = Value::Null;
            match self.cluster.json("PUT", &self.path, Some(&released)).await {
                Ok(_) => return,
                Err(e) if e.status() == Some(409) => continue,
                Err(e) => {
                    tracing::warn!("releasing the lock lease {} failed: {e}", self.path);
                    return;
                }
            }
        }
    }
}

fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_from_renew_time_and_duration() {
        let lease = json!({"spec": {
            "holderIdentity": "run-1",
            "renewTime": "2026-01-01T00:00:00.000000Z",
            "leaseDurationSeconds": 30
        }});
        let (holder, renewed, expires) = expiry(&lease).expect("held");
        assert_eq!(holder, "run-1");
        assert_eq!((expires - renewed).num_seconds(), 30);
        assert!(expiry(&json!({"spec": {"holderIdentity": ""}})).is_none());
    }
}
