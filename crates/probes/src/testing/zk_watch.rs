//! Watching a real ZooKeeper ensemble while its members are restarted: a
//! test samples the ensemble every ~100 ms ([`look`]) and then checks that
//! a majority answered at every moment and that the ensemble kept its
//! leader for as long as the original leader's pod lived
//! ([`assert_quorum_kept`]), and in which order the pods were replaced
//! ([`replacement_order`]).
//!
//! How a pod is read (sandbox, kube client, plugin test host) is the
//! caller's: [`look`] takes a function from pod name to [`PodView`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::net::Endpoint;
use crate::zookeeper::{self, MemberState};

/// What a test knows of one pod.
#[derive(Debug, Clone)]
pub struct PodView {
    /// `metadata.uid`.
    pub uid: String,
    /// `status.podIP`, once assigned.
    pub ip: Option<String>,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

/// One look at the ensemble.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Members answering `ruok` with `imok`.
    pub imok: usize,
    /// The leader, when exactly one member leads.
    pub leader: Option<String>,
    /// Members serving as leader or follower.
    pub serving: usize,
    /// Each pod's uid; None while it does not exist or is being deleted.
    pub uids: BTreeMap<String, Option<String>>,
}

impl Sample {
    /// Whether pod `pod` still had uid `uid` (was not yet replaced).
    pub fn has_uid(&self, pod: &str, uid: &str) -> bool {
        self.uids.get(pod).cloned().flatten().as_deref() == Some(uid)
    }
}

/// Ask every member of `pods` (on its pod IP and `client_port`) `ruok` and
/// `srvr`, reading each pod with `view`.
pub fn look(pods: &[String], client_port: u16, view: impl Fn(&str) -> Option<PodView>) -> Sample {
    let mut imok = 0;
    let mut states = Vec::new();
    let mut uids = BTreeMap::new();
    for pod in pods {
        let seen = view(pod);
        uids.insert(
            pod.clone(),
            seen.as_ref().filter(|v| !v.deleting).map(|v| v.uid.clone()),
        );
        let Some(ip) = seen.and_then(|v| v.ip) else {
            continue;
        };
        let endpoint = Endpoint::plain(format!("{ip}:{client_port}"), Duration::from_secs(1));
        if zookeeper::ruok(&endpoint).is_ok() {
            imok += 1;
        }
        states.push(MemberState {
            name: pod.clone(),
            stats: zookeeper::srvr(&endpoint).map(|(stats, _)| stats),
        });
    }
    let quorum = zookeeper::judge_quorum(&states);
    Sample {
        imok,
        serving: quorum.followers.len() + usize::from(quorum.leader.is_some()),
        leader: quorum.leader,
        uids,
    }
}

/// The leader of `sample`, when every one of `members` serves.
pub fn whole_quorum_leader(sample: &Sample, members: usize) -> Result<String, String> {
    match &sample.leader {
        Some(leader) if sample.serving == members => Ok(leader.clone()),
        _ => Err(format!("no whole quorum: {sample:?}")),
    }
}

/// The order in which the samples first show each pod of `before` (pod ->
/// uid) replaced: its uid changed, or it was gone or being deleted.
pub fn replacement_order(before: &BTreeMap<String, String>, samples: &[Sample]) -> Vec<String> {
    let mut first_change: Vec<(usize, String)> = before
        .iter()
        .filter_map(|(pod, uid)| {
            samples
                .iter()
                .position(|s| !s.has_uid(pod, uid))
                .map(|index| (index, pod.clone()))
        })
        .collect();
    first_change.sort();
    first_change.into_iter().map(|(_, pod)| pod).collect()
}

/// Panic unless, in every sample, a majority of `members` answered `ruok`
/// and, while `leader_pod` still had `leader_uid`, a majority served (as
/// leader or as followers of it: only followers were down). Also panics
/// with fewer than 10 samples (the prober did not watch).
pub fn assert_quorum_kept(samples: &[Sample], members: usize, leader_pod: &str, leader_uid: &str) {
    let majority = members / 2 + 1;
    assert!(
        samples.len() >= 10,
        "the prober took only {} samples",
        samples.len()
    );
    for (i, sample) in samples.iter().enumerate() {
        assert!(
            sample.imok >= majority,
            "sample {i}: only {} of {members} members answered ruok: {sample:?}",
            sample.imok
        );
        // A majority serving is the quorum: a follower serves only while it
        // follows a leader. The leader's own `srvr` answer is not required
        // in every sample: on a loaded machine one 4lw call to it can time
        // out while its followers keep serving (seen in CI: 2 followers
        // serving, the leader's srvr missing).
        if sample.has_uid(leader_pod, leader_uid) {
            assert!(
                sample.serving >= majority,
                "sample {i}: the ensemble lost its quorum while only followers restarted: {sample:?}"
            );
        }
    }
}
