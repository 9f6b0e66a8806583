//! Planning without the cluster: which members still need a restart, in
//! what order, and the durable state that makes the step resumable.

use std::collections::BTreeMap;

use dbops_engines::members::{self, Member, MemberRole, OrderStrategy};
use serde::{Deserialize, Serialize};

/// What the step remembers across runner restarts (in the run journal).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    /// Members restarted, in order, with seconds from restart to Ready.
    pub done: Vec<Done>,
    /// Members skipped because they already ran the wanted revision/config.
    pub skipped: Vec<String>,
    /// Members whose pod was (about to be) deleted: name -> uid before.
    pub in_flight: BTreeMap<String, String>,
    /// Template mode: what to restore and the stamp written.
    pub template: Option<TemplateState>,
}

/// One finished member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// Pod name.
    pub name: String,
    /// Seconds from the restart to Ready on the wanted revision.
    pub seconds: f64,
    /// The role it had when restarted.
    pub role: String,
}

/// Template mode bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateState {
    /// The partition before the step (None: unset).
    pub original_partition: Option<i64>,
    /// The value written to the restart annotation.
    pub stamp: String,
}

impl Saved {
    /// Whether `name` is finished (restarted or skipped).
    pub fn is_finished(&self, name: &str) -> bool {
        self.done.iter().any(|d| d.name == name) || self.skipped.iter().any(|s| s == name)
    }

    /// `zk-2=12.3,zk-1=9.8`.
    pub fn member_seconds(&self) -> String {
        self.done
            .iter()
            .map(|d| format!("{}={:.1}", d.name, d.seconds))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The order actually used.
    pub fn order(&self) -> String {
        self.done
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What "running the wanted version" means for this run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The workload's update revision, when a template change is rolling
    /// out (updateRevision differs from currentRevision).
    pub rolling_revision: Option<String>,
    /// (annotation key, wanted value) of the configuration hash.
    pub config_hash: Option<(String, String)>,
}

/// The facts about one member that decide whether it still needs a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberFacts {
    /// Pod name.
    pub name: String,
    /// Whether the pod exists, is Ready and not terminating.
    pub ready: bool,
    /// `controller-revision-hash`.
    pub revision: Option<String>,
    /// Value of the config hash annotation.
    pub config_hash: Option<String>,
}

/// Why a member needs no restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Restarted earlier in this run.
    AlreadyDone,
    /// Ready with the wanted configuration hash.
    ConfigHashCurrent,
    /// Ready on the revision being rolled out.
    OnWantedRevision,
}

/// Whether `member` can be skipped.
pub fn skip_reason(member: &MemberFacts, wanted: &Wanted, saved: &Saved) -> Option<Skip> {
    if saved.is_finished(&member.name) {
        return Some(Skip::AlreadyDone);
    }
    if !member.ready {
        return None;
    }
    if let Some((_, hash)) = &wanted.config_hash {
        return (member.config_hash.as_deref() == Some(hash.as_str()))
            .then_some(Skip::ConfigHashCurrent);
    }
    if let Some(revision) = &wanted.rolling_revision
        && member.revision.as_deref() == Some(revision.as_str())
    {
        return Some(Skip::OnWantedRevision);
    }
    None
}

/// The engine order of `remaining`, with the pipeline's `order` first.
pub fn order(strategy: OrderStrategy, remaining: &[Member], preferred: &[String]) -> Vec<String> {
    let engine_order = members::restart_order(strategy, remaining);
    let mut out: Vec<String> = preferred
        .iter()
        .filter(|name| engine_order.contains(name))
        .cloned()
        .collect();
    let rest: Vec<String> = engine_order
        .into_iter()
        .filter(|name| !out.contains(name))
        .collect();
    out.extend(rest);
    out
}

/// The next members to restart together.
pub fn next_batch(order: &[String], max_unavailable: u32) -> Vec<String> {
    order
        .iter()
        .take(max_unavailable.max(1) as usize)
        .cloned()
        .collect()
}

/// A role's name for outputs and spans.
pub fn role_name(role: MemberRole) -> String {
    match role {
        MemberRole::Druid(role) => format!("{role:?}").to_ascii_lowercase(),
        other => format!("{other:?}")
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let lower = c.to_ascii_lowercase();
                if c.is_ascii_uppercase() && i > 0 {
                    vec!['_', lower]
                } else {
                    vec![lower]
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &str, ready: bool, revision: &str, hash: Option<&str>) -> MemberFacts {
        MemberFacts {
            name: name.into(),
            ready,
            revision: Some(revision.into()),
            config_hash: hash.map(str::to_string),
        }
    }

    #[test]
    fn members_done_earlier_in_the_run_are_skipped_after_a_resume() {
        let saved = Saved {
            done: vec![Done {
                name: "zk-2".into(),
                seconds: 3.0,
                role: "follower".into(),
            }],
            ..Default::default()
        };
        let wanted = Wanted::default();
        assert_eq!(
            skip_reason(&facts("zk-2", true, "r1", None), &wanted, &saved),
            Some(Skip::AlreadyDone)
        );
        assert_eq!(
            skip_reason(&facts("zk-1", true, "r1", None), &wanted, &saved),
            None
        );
    }

    #[test]
    fn a_ready_member_on_the_rolling_revision_is_skipped_but_not_when_unready() {
        let wanted = Wanted {
            rolling_revision: Some("r2".into()),
            config_hash: None,
        };
        let saved = Saved::default();
        assert_eq!(
            skip_reason(&facts("zk-0", true, "r2", None), &wanted, &saved),
            Some(Skip::OnWantedRevision)
        );
        assert_eq!(
            skip_reason(&facts("zk-0", true, "r1", None), &wanted, &saved),
            None
        );
        assert_eq!(
            skip_reason(&facts("zk-0", false, "r2", None), &wanted, &saved),
            None
        );
    }

    #[test]
    fn the_config_hash_decides_when_given() {
        let wanted = Wanted {
            rolling_revision: Some("r2".into()),
            config_hash: Some(("dbops.io/config-hash".into(), "abc".into())),
        };
        let saved = Saved::default();
        assert_eq!(
            skip_reason(&facts("a-0", true, "r1", Some("abc")), &wanted, &saved),
            Some(Skip::ConfigHashCurrent)
        );
        // On the new revision but with an old config hash: restart it.
        assert_eq!(
            skip_reason(&facts("a-0", true, "r2", Some("old")), &wanted, &saved),
            None
        );
    }

    #[test]
    fn the_pipeline_order_comes_first_then_the_engine_order() {
        let remaining = vec![
            Member::new("zk-0", MemberRole::Leader),
            Member::new("zk-1", MemberRole::Follower),
            Member::new("zk-2", MemberRole::Follower),
        ];
        assert_eq!(
            order(OrderStrategy::ZookeeperLeaderLast, &remaining, &[]),
            ["zk-2", "zk-1", "zk-0"]
        );
        assert_eq!(
            order(
                OrderStrategy::ZookeeperLeaderLast,
                &remaining,
                &["zk-0".into(), "zk-9".into()]
            ),
            ["zk-0", "zk-2", "zk-1"]
        );
        assert_eq!(
            next_batch(&["a".into(), "b".into(), "c".into()], 2),
            ["a", "b"]
        );
        assert_eq!(next_batch(&["a".into()], 0), ["a"]);
    }

    #[test]
    fn outputs_list_the_order_and_seconds() {
        let saved = Saved {
            done: vec![
                Done {
                    name: "zk-2".into(),
                    seconds: 1.25,
                    role: "follower".into(),
                },
                Done {
                    name: "zk-0".into(),
                    seconds: 2.0,
                    role: "leader".into(),
                },
            ],
            ..Default::default()
        };
        assert_eq!(saved.order(), "zk-2,zk-0");
        assert_eq!(saved.member_seconds(), "zk-2=1.2,zk-0=2.0");
        assert_eq!(role_name(MemberRole::ActiveController), "active_controller");
        assert_eq!(
            role_name(MemberRole::Druid(
                dbops_engines::members::DruidRole::MiddleManager
            )),
            "middlemanager"
        );
    }
}
