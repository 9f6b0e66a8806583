//! The StatefulSet algorithm as a pure function: from the set and its pods
//! to the next actions and the status. No I/O here.

use std::collections::BTreeMap;

/// How pods are created and removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodManagement {
    /// One at a time, in ordinal order, each Ready before the next.
    OrderedReady,
    /// All at once.
    Parallel,
}

/// How a template change reaches existing pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateStrategy {
    /// Replace pods with ordinal >= partition, highest first, one at a time.
    RollingUpdate {
        /// Pods below this ordinal keep the current revision.
        partition: u32,
    },
    /// Only pods deleted by someone else get the new revision.
    OnDelete,
}

/// What the planner needs to know about the set.
#[derive(Debug, Clone)]
pub struct SetView {
    /// `spec.replicas`.
    pub replicas: u32,
    /// `spec.podManagementPolicy`.
    pub management: PodManagement,
    /// `spec.updateStrategy`.
    pub strategy: UpdateStrategy,
    /// Name of the revision of the current template.
    pub update_revision: String,
    /// `status.currentRevision`, or the update revision for a new set.
    pub current_revision: String,
}

/// What the planner needs to know about one pod of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// The pod's name.
    pub name: String,
    /// The revision in its `controller-revision-hash` label.
    pub revision: String,
    /// Phase Running and condition Ready True.
    pub ready: bool,
    /// Has a deletionTimestamp.
    pub terminating: bool,
    /// Phase Failed or Succeeded: must be replaced.
    pub finished: bool,
}

/// Which template a new pod gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revision {
    /// The set's current revision (below the partition).
    Current,
    /// The set's update revision.
    Update,
}

/// One write the controller performs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the pod with this ordinal from this revision.
    Create {
        /// The ordinal.
        ordinal: u32,
        /// The template to use.
        revision: Revision,
    },
    /// Delete this pod (scale down, failed pod, or rolling update).
    Delete {
        /// The pod's name.
        name: String,
    },
}

/// The status fields the planner computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Non-terminating pods.
    pub replicas: u32,
    /// Of those, Running and Ready.
    pub ready: u32,
    /// Of those, at the current revision.
    pub current: u32,
    /// Of those, at the update revision.
    pub updated: u32,
    /// The current revision after this pass.
    pub current_revision: String,
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Writes to perform now, in order.
    pub actions: Vec<Action>,
    /// Status figures.
    pub counts: Counts,
}

/// Plans one pass over a set whose pods are given by ordinal.
pub fn plan(set: &SetView, pods: &BTreeMap<u32, PodView>) -> Plan {
    let mut actions = Vec::new();
    let ordered = set.management == PodManagement::OrderedReady;
    let replicas = set.replicas;

    // 1. Replace finished pods; create missing ones (ordered: one at a time,
    //    only once every lower ordinal is Ready).
    let mut blocked = false;
    for ordinal in 0..replicas {
        match pods.get(&ordinal) {
            Some(pod) if pod.finished && !pod.terminating => {
                actions.push(Action::Delete {
                    name: pod.name.clone(),
                });
                blocked |= ordered;
            }
            Some(pod) => {
                if ordered && (!pod.ready || pod.terminating) {
                    blocked = true;
                }
            }
            None => {
                if ordered && blocked {
                    break;
                }
                actions.push(Action::Create {
                    ordinal,
                    revision: revision_for(set, ordinal),
                });
                blocked |= ordered;
            }
        }
        if ordered && blocked {
            break;
        }
    }

    // 2. Scale down, highest ordinal first.
    let condemned: Vec<&PodView> = pods
        .range(replicas..)
        .rev()
        .map(|(_, pod)| pod)
        .filter(|pod| !pod.terminating)
        .collect();
    let any_terminating = pods.values().any(|pod| pod.terminating);
    if ordered {
        let all_ready = pods.values().all(|pod| pod.ready && !pod.terminating);
        if actions.is_empty()
            && all_ready
            && !any_terminating
            && let Some(pod) = condemned.first()
        {
            actions.push(Action::Delete {
                name: pod.name.clone(),
            });
        }
    } else {
        actions.extend(condemned.iter().map(|pod| Action::Delete {
            name: pod.name.clone(),
        }));
    }

    // 3. Rolling update: once every wanted pod exists and is Ready, replace
    //    the highest stale ordinal at or above the partition.
    if let UpdateStrategy::RollingUpdate { partition } = set.strategy {
        let complete = (0..replicas).all(|ordinal| {
            pods.get(&ordinal)
                .is_some_and(|pod| pod.ready && !pod.terminating)
        });
        if actions.is_empty() && complete && !any_terminating {
            let stale = (partition..replicas).rev().find_map(|ordinal| {
                pods.get(&ordinal)
                    .filter(|pod| pod.revision != set.update_revision)
            });
            if let Some(pod) = stale {
                actions.push(Action::Delete {
                    name: pod.name.clone(),
                });
            }
        }
    }

    Plan {
        actions,
        counts: counts(set, pods),
    }
}

/// The revision a newly created pod with `ordinal` gets.
fn revision_for(set: &SetView, ordinal: u32) -> Revision {
    match set.strategy {
        UpdateStrategy::RollingUpdate { partition } if ordinal < partition => Revision::Current,
        _ => Revision::Update,
    }
}

/// Status figures; the current revision catches up with the update revision
/// once every wanted pod runs it and is Ready.
fn counts(set: &SetView, pods: &BTreeMap<u32, PodView>) -> Counts {
    let live: Vec<&PodView> = pods.values().filter(|pod| !pod.terminating).collect();
    let ready = live.iter().filter(|pod| pod.ready).count() as u32;
    let updated = live
        .iter()
        .filter(|pod| pod.revision == set.update_revision)
        .count() as u32;
    let all_updated = (0..set.replicas).all(|ordinal| {
        pods.get(&ordinal)
            .is_some_and(|pod| !pod.terminating && pod.ready && pod.revision == set.update_revision)
    });
    let current_revision = if all_updated {
        set.update_revision.clone()
    } else {
        set.current_revision.clone()
    };
    let current = live
        .iter()
        .filter(|pod| pod.revision == current_revision)
        .count() as u32;
    Counts {
        replicas: live.len() as u32,
        ready,
        current,
        updated,
        current_revision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(replicas: u32, strategy: UpdateStrategy) -> SetView {
        SetView {
            replicas,
            management: PodManagement::OrderedReady,
            strategy,
            update_revision: "web-new".into(),
            current_revision: "web-old".into(),
        }
    }

    fn pod(ordinal: u32, revision: &str, ready: bool) -> (u32, PodView) {
        (
            ordinal,
            PodView {
                name: format!("web-{ordinal}"),
                revision: revision.into(),
                ready,
                terminating: false,
                finished: false,
            },
        )
    }

    const ROLLING: UpdateStrategy = UpdateStrategy::RollingUpdate { partition: 0 };

    #[test]
    fn ordered_creation_waits_for_ready() {
        let s = set(3, ROLLING);
        let p = plan(&s, &BTreeMap::new());
        assert_eq!(
            p.actions,
            vec![Action::Create {
                ordinal: 0,
                revision: Revision::Update
            }]
        );
        let pods = BTreeMap::from([pod(0, "web-new", false)]);
        assert!(plan(&s, &pods).actions.is_empty());
        let pods = BTreeMap::from([pod(0, "web-new", true)]);
        assert_eq!(
            plan(&s, &pods).actions,
            vec![Action::Create {
                ordinal: 1,
                revision: Revision::Update
            }]
        );
    }

    #[test]
    fn parallel_creates_all_and_removes_all_condemned() {
        let mut s = set(3, ROLLING);
        s.management = PodManagement::Parallel;
        assert_eq!(plan(&s, &BTreeMap::new()).actions.len(), 3);
        s.replicas = 1;
        let pods = BTreeMap::from([
            pod(0, "web-new", true),
            pod(1, "web-new", false),
            pod(2, "web-new", true),
        ]);
        assert_eq!(
            plan(&s, &pods).actions,
            vec![
                Action::Delete {
                    name: "web-2".into()
                },
                Action::Delete {
                    name: "web-1".into()
                }
            ]
        );
    }

    #[test]
    fn ordered_scale_down_removes_highest_first() {
        let s = set(1, ROLLING);
        let pods = BTreeMap::from([
            pod(0, "web-new", true),
            pod(1, "web-new", true),
            pod(2, "web-new", true),
        ]);
        assert_eq!(
            plan(&s, &pods).actions,
            vec![Action::Delete {
                name: "web-2".into()
            }]
        );
    }

    #[test]
    fn rolling_update_replaces_highest_stale_pod_above_partition() {
        let s = set(3, UpdateStrategy::RollingUpdate { partition: 1 });
        let pods = BTreeMap::from([
            pod(0, "web-old", true),
            pod(1, "web-old", true),
            pod(2, "web-old", true),
        ]);
        assert_eq!(
            plan(&s, &pods).actions,
            vec![Action::Delete {
                name: "web-2".into()
            }]
        );
        let pods = BTreeMap::from([
            pod(0, "web-old", true),
            pod(1, "web-old", true),
            pod(2, "web-new", true),
        ]);
        assert_eq!(
            plan(&s, &pods).actions,
            vec![Action::Delete {
                name: "web-1".into()
            }]
        );
        // Ordinal 0 is below the partition: left alone, and recreated from
        // the current revision if deleted.
        let pods = BTreeMap::from([
            pod(0, "web-old", true),
            pod(1, "web-new", true),
            pod(2, "web-new", true),
        ]);
        let p = plan(&s, &pods);
        assert!(p.actions.is_empty());
        assert_eq!(p.counts.updated, 2);
        assert_eq!(p.counts.current_revision, "web-old");
        let pods = BTreeMap::from([pod(1, "web-new", true), pod(2, "web-new", true)]);
        assert_eq!(
            plan(&s, &pods).actions,
            vec![Action::Create {
                ordinal: 0,
                revision: Revision::Current
            }]
        );
    }

    #[test]
    fn rolling_update_waits_while_a_pod_is_not_ready() {
        let s = set(3, ROLLING);
        let pods = BTreeMap::from([
            pod(0, "web-old", true),
            pod(1, "web-old", true),
            pod(2, "web-new", false),
        ]);
        assert!(plan(&s, &pods).actions.is_empty());
    }

    #[test]
    fn on_delete_never_deletes_and_recreates_from_update_revision() {
        let s = set(2, UpdateStrategy::OnDelete);
        let pods = BTreeMap::from([pod(0, "web-old", true), pod(1, "web-old", true)]);
        assert!(plan(&s, &pods).actions.is_empty());
        let pods = BTreeMap::from([pod(0, "web-old", true)]);
        assert_eq!(
            plan(&s, &pods).actions,
            vec![Action::Create {
                ordinal: 1,
                revision: Revision::Update
            }]
        );
    }

    #[test]
    fn current_revision_catches_up_when_all_updated_and_ready() {
        let s = set(2, ROLLING);
        let pods = BTreeMap::from([pod(0, "web-new", true), pod(1, "web-new", true)]);
        let p = plan(&s, &pods);
        assert_eq!(p.counts.current_revision, "web-new");
        assert_eq!(p.counts.current, 2);
        assert_eq!(p.counts.ready, 2);
    }

    #[test]
    fn failed_pod_is_deleted_for_recreation() {
        let s = set(1, ROLLING);
        let (o, mut p) = pod(0, "web-new", false);
        p.finished = true;
        let pods = BTreeMap::from([(o, p)]);
        assert_eq!(
            plan(&s, &pods).actions,
            vec![Action::Delete {
                name: "web-0".into()
            }]
        );
    }
}
