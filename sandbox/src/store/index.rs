//! Secondary indexes of one table, kept in step with its objects by
//! `Store::commit` (the only place objects change): objects by label
//! `(key, value)` and by owner uid.
//!
//! They turn the two hot scans of a busy sandbox into lookups: a list or
//! watch with an equality label selector (`app=db-7`, what controllers and
//! dbops send for a set's pods) visits only the objects carrying that
//! label, and garbage collection after a delete visits only the
//! dependents of the removed object, instead of every object of the
//! namespace (which grows with every Event and journal written).

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::Key;
use crate::selector::LabelSelector;

/// The indexes of one table.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// `(label key, label value)` -> objects carrying it.
    labels: HashMap<(String, String), BTreeSet<Key>>,
    /// owner uid (`metadata.ownerReferences[].uid`) -> objects it owns.
    owners: HashMap<String, BTreeSet<Key>>,
}

/// Which objects can match a label selector.
pub(super) enum Candidates<'a> {
    /// Any object (the selector has no equality requirement).
    All,
    /// Only these (the smallest set of one of its equality requirements).
    Keys(&'a BTreeSet<Key>),
    /// None: some equality requirement is met by no object.
    Nothing,
}

impl Index {
    /// Record `obj`, stored under `key`.
    pub(super) fn insert(&mut self, key: &Key, obj: &Value) {
        for pair in labels(obj) {
            self.labels.entry(pair).or_default().insert(key.clone());
        }
        for uid in owner_uids(obj) {
            self.owners
                .entry(uid.to_owned())
                .or_default()
                .insert(key.clone());
        }
    }

    /// Forget `obj` (the version previously recorded under `key`).
    pub(super) fn remove(&mut self, key: &Key, obj: &Value) {
        for pair in labels(obj) {
            if let Some(keys) = self.labels.get_mut(&pair) {
                keys.remove(key);
                if keys.is_empty() {
                    self.labels.remove(&pair);
                }
            }
        }
        for uid in owner_uids(obj) {
            if let Some(keys) = self.owners.get_mut(uid) {
                keys.remove(key);
                if keys.is_empty() {
                    self.owners.remove(uid);
                }
            }
        }
    }

    /// The objects that can match `selector`.
    pub(super) fn candidates(&self, selector: &LabelSelector) -> Candidates<'_> {
        let mut best: Option<&BTreeSet<Key>> = None;
        for (k, v) in selector.equalities() {
            match self.labels.get(&(k.to_owned(), v.to_owned())) {
                None => return Candidates::Nothing,
                Some(keys) if best.is_none_or(|b| keys.len() < b.len()) => best = Some(keys),
                Some(_) => {}
            }
        }
        best.map_or(Candidates::All, Candidates::Keys)
    }

    /// The objects whose ownerReferences name `uid`.
    pub(super) fn owned_by(&self, uid: &str) -> impl Iterator<Item = &Key> {
        self.owners.get(uid).into_iter().flatten()
    }
}

/// The string labels of an object (only those can satisfy `k=v`).
fn labels(obj: &Value) -> impl Iterator<Item = (String, String)> + '_ {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
}

/// The owner uids of an object (each once).
fn owner_uids(obj: &Value) -> BTreeSet<&str> {
    obj.get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid")?.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> Key {
        ("ns".into(), name.into())
    }

    #[test]
    fn follows_labels_and_owners_through_changes() {
        let mut index = Index::default();
        let v1 = json!({"metadata": {"labels": {"app": "a", "n": 1},
            "ownerReferences": [{"uid": "u1"}, {"uid": "u1"}]}});
        index.insert(&key("x"), &v1);
        let sel = |s: &str| LabelSelector::parse(s).expect("selector");
        assert!(matches!(index.candidates(&sel("app=a")), Candidates::Keys(k) if k.len() == 1));
        // A non-string label value never satisfies `k=v`.
        assert!(matches!(index.candidates(&sel("n=1")), Candidates::Nothing));
        assert!(matches!(index.candidates(&sel("app")), Candidates::All));
        assert_eq!(index.owned_by("u1").count(), 1);

        let v2 = json!({"metadata": {"labels": {"app": "b"}}});
        index.remove(&key("x"), &v1);
        index.insert(&key("x"), &v2);
        assert!(matches!(
            index.candidates(&sel("app=a")),
            Candidates::Nothing
        ));
        assert!(matches!(
            index.candidates(&sel("app=b,app=b")),
            Candidates::Keys(_)
        ));
        assert_eq!(index.owned_by("u1").count(), 0);
        index.remove(&key("x"), &v2);
        assert!(index.labels.is_empty() && index.owners.is_empty());
    }

    #[test]
    fn picks_the_smallest_equality_set() {
        let mut index = Index::default();
        for i in 0..5 {
            let labels = if i == 0 {
                json!({"tier": "db", "app": "zk"})
            } else {
                json!({"tier": "db"})
            };
            index.insert(
                &key(&format!("p{i}")),
                &json!({"metadata": {"labels": labels}}),
            );
        }
        let selector = LabelSelector::parse("tier=db,app=zk").expect("selector");
        match index.candidates(&selector) {
            Candidates::Keys(keys) => assert_eq!(keys.iter().collect::<Vec<_>>(), [&key("p0")]),
            _ => panic!("expected the app=zk set"),
        }
    }
}
