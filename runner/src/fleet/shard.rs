//! Which targets this process runs (`--shard INDEX/COUNT`) and the run id
//! of each (`<base>-<namespace>-<name>`).
//!
//! A target's shard depends only on its own namespace and name (a hash),
//! not on which other targets exist: when a database is added or removed
//! while an Indexed Job runs, no other database moves to another index, so
//! a retried index resumes exactly the runs it started.

use sha2::{Digest, Sha256};

use super::targets::FleetTarget;

/// The longest run id the runner accepts.
const MAX_RUN_ID: usize = 50;

/// One share of the fleet: index `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This process's index, `0..count`.
    pub index: u32,
    /// How many shares the fleet is split into.
    pub count: u32,
}

/// A bad `--shard` or `--shard-count` value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShardError {
    /// Not `INDEX/COUNT`.
    #[error("--shard {0:?}: expected INDEX/COUNT with 0 <= INDEX < COUNT, e.g. --shard 2/10")]
    Syntax(String),
    /// `--shard-count` without an index.
    #[error(
        "--shard-count {0} needs this process's index: set JOB_COMPLETION_INDEX (an Indexed Job does) or pass --shard INDEX/COUNT"
    )]
    NoIndex(u32),
    /// JOB_COMPLETION_INDEX is not a number below the count.
    #[error("JOB_COMPLETION_INDEX={value:?} is not a number below --shard-count {count}")]
    BadIndex {
        /// The variable's value.
        value: String,
        /// The shard count.
        count: u32,
    },
}

impl std::str::FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError::Syntax(s.to_owned());
        let (index, count) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The shard from `--shard`, or from `--shard-count` and the Job's
    /// `JOB_COMPLETION_INDEX` (passed in as `completion_index`).
    pub fn resolve(
        shard: Option<Shard>,
        count: Option<u32>,
        completion_index: Option<String>,
    ) -> Result<Option<Shard>, ShardError> {
        if shard.is_some() {
            return Ok(shard);
        }
        let Some(count) = count.filter(|c| *c > 0) else {
            return Ok(None);
        };
        let value = completion_index.ok_or(ShardError::NoIndex(count))?;
        match value.trim().parse::<u32>() {
            Ok(index) if index < count => Ok(Some(Shard { index, count })),
            _ => Err(ShardError::BadIndex { value, count }),
        }
    }

    /// Whether `target` belongs to this shard.
    pub fn owns(&self, target: &FleetTarget) -> bool {
        let digest = Sha256::digest(format!("{}/{}", target.namespace, target.name).as_bytes());
        let head = u64::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ]);
        head % u64::from(self.count) == u64::from(self.index)
    }
}

/// This shard's targets, sorted by namespace and name.
pub fn select(mut targets: Vec<FleetTarget>, shard: Option<Shard>) -> Vec<FleetTarget> {
    targets.sort();
    targets.dedup();
    match shard {
        Some(shard) => targets.into_iter().filter(|t| shard.owns(t)).collect(),
        None => targets,
    }
}

/// The run id of one target: `<base>-<namespace>-<name>` (dots become
/// `-`); when that is longer than 50 characters, its first 41 characters
/// and 8 hex digits of its sha256, so it stays unique and stable.
pub fn run_id(base: &str, target: &FleetTarget) -> String {
    let full = format!("{base}-{}-{}", target.namespace, target.name).replace('.', "-");
    if full.len() <= MAX_RUN_ID {
        return full;
    }
    let hash = hex::encode(Sha256::digest(full.as_bytes()));
    let head = full[..MAX_RUN_ID - 9].trim_end_matches('-');
    format!("{head}-{}", &hash[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ns: &str, name: &str) -> FleetTarget {
        FleetTarget {
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn parses_shards() {
        assert_eq!(
            "2/10".parse(),
            Ok(Shard {
                index: 2,
                count: 10
            })
        );
        for bad in ["10/10", "1", "a/b", "0/0", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn resolves_job_completion_index() {
        let from_env = Shard::resolve(None, Some(4), Some("3".into()));
        assert_eq!(from_env, Ok(Some(Shard { index: 3, count: 4 })));
        assert_eq!(
            Shard::resolve(None, Some(4), None),
            Err(ShardError::NoIndex(4))
        );
        assert!(Shard::resolve(None, Some(4), Some("4".into())).is_err());
        assert_eq!(Shard::resolve(None, None, Some("1".into())), Ok(None));
    }

    #[test]
    fn shards_partition_the_fleet() {
        let fleet: Vec<_> = (0..200).map(|i| t("db", &format!("zk-{i}"))).collect();
        let mut seen = Vec::new();
        for index in 0..7 {
            let part = select(fleet.clone(), Some(Shard { index, count: 7 }));
            assert!(!part.is_empty(), "shard {index} of 200 targets is empty");
            assert!(part.windows(2).all(|w| w[0] < w[1]), "sorted");
            seen.extend(part);
        }
        seen.sort();
        let mut all = fleet;
        all.sort();
        assert_eq!(seen, all, "every target in exactly one shard");
    }

    #[test]
    fn a_targets_shard_ignores_the_others() {
        let shard = Shard { index: 1, count: 3 };
        let alone = select(vec![t("a", "x")], Some(shard));
        let crowd = select(
            (0..50)
                .map(|i| t("a", &format!("y{i}")))
                .chain([t("a", "x")])
                .collect(),
            Some(shard),
        );
        assert_eq!(alone.contains(&t("a", "x")), crowd.contains(&t("a", "x")));
    }

    #[test]
    fn run_ids_are_valid_unique_and_stable() {
        assert_eq!(run_id("nightly", &t("db", "zk.a")), "nightly-db-zk-a");
        let uid = "0f6a3c1e-5b7d-4c9e-8f2a-1b3c5d7e9f00";
        let a = run_id(uid, &t("databases", "tenant-1"));
        let b = run_id(uid, &t("databases", "tenant-2"));
        assert_ne!(a, b);
        assert_eq!(a, run_id(uid, &t("databases", "tenant-1")));
        for id in [a, b] {
            crate::commands::run::check_run_id(&id).expect("valid run id");
        }
    }
}
