//! Conditions for [`crate::kube::Api::wait_until`], modelled on
//! kube-runtime's `wait` module: a [`Condition`] is any
//! `Fn(Option<&K>) -> bool` (None = the object does not exist), combinable
//! with [`Condition::and`], [`Condition::or`], [`Condition::not`]. The
//! caller supplies the deadline.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;

/// A predicate over the current state of one object.
pub trait Condition<K> {
    /// Whether the condition holds (`None`: the object is absent).
    fn matches_object(&self, obj: Option<&K>) -> bool;

    /// Both conditions hold.
    fn and<Other: Condition<K>>(self, other: Other) -> And<Self, Other>
    where
        Self: Sized,
    {
        And(self, other)
    }

    /// Either condition holds.
    fn or<Other: Condition<K>>(self, other: Other) -> Or<Self, Other>
    where
        Self: Sized,
    {
        Or(self, other)
    }

    /// The condition does not hold.
    fn not(self) -> Not<Self>
    where
        Self: Sized,
    {
        Not(self)
    }
}

impl<K, F: Fn(Option<&K>) -> bool> Condition<K> for F {
    fn matches_object(&self, obj: Option<&K>) -> bool {
        self(obj)
    }
}

/// See [`Condition::and`].
pub struct And<A, B>(A, B);
impl<K, A: Condition<K>, B: Condition<K>> Condition<K> for And<A, B> {
    fn matches_object(&self, obj: Option<&K>) -> bool {
        self.0.matches_object(obj) && self.1.matches_object(obj)
    }
}

/// See [`Condition::or`].
pub struct Or<A, B>(A, B);
impl<K, A: Condition<K>, B: Condition<K>> Condition<K> for Or<A, B> {
    fn matches_object(&self, obj: Option<&K>) -> bool {
        self.0.matches_object(obj) || self.1.matches_object(obj)
    }
}

/// See [`Condition::not`].
pub struct Not<A>(A);
impl<K, A: Condition<K>> Condition<K> for Not<A> {
    fn matches_object(&self, obj: Option<&K>) -> bool {
        !self.0.matches_object(obj)
    }
}

/// The object does not exist, or exists with another uid (it was replaced).
pub fn is_deleted<
    K: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
>(
    uid: &str,
) -> impl Condition<K> + '_ {
    move |obj: Option<&K>| obj.is_none_or(|o| o.metadata().uid.as_deref() != Some(uid))
}

/// The pod exists and its `Ready` condition is `True` (and it is not terminating).
pub fn pod_is_ready() -> impl Condition<Pod> {
    |pod: Option<&Pod>| pod.is_some_and(pod_ready)
}

/// The pod was recreated (uid differs from `old_uid`) and is Ready.
pub fn pod_replaced_and_ready(old_uid: &str) -> impl Condition<Pod> + '_ {
    move |pod: Option<&Pod>| {
        pod.is_some_and(|p| p.metadata.uid.as_deref() != Some(old_uid) && pod_ready(p))
    }
}

/// Whether a pod is Ready and not being deleted.
pub fn pod_ready(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod's `controller-revision-hash` label.
pub fn pod_revision(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
        .map(String::as_str)
}

/// The StatefulSet controller observed the latest spec, and every replica
/// is updated and ready (what `kubectl rollout status` waits for).
pub fn statefulset_rolled_out() -> impl Condition<StatefulSet> {
    |sts: Option<&StatefulSet>| {
        let Some(sts) = sts else { return false };
        let Some(status) = &sts.status else {
            return false;
        };
        let want = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let observed =
            status.observed_generation.unwrap_or(0) >= sts.metadata.generation.unwrap_or(0);
        observed
            && status.ready_replicas.unwrap_or(0) == want
            && status.updated_replicas.unwrap_or(0) == want
            && status.current_revision.is_some()
            && status.current_revision == status.update_revision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(uid: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn replaced_and_ready_needs_both() {
        let cond = pod_replaced_and_ready("old");
        assert!(!cond.matches_object(Some(&pod("old", true))));
        assert!(!cond.matches_object(Some(&pod("new", false))));
        assert!(cond.matches_object(Some(&pod("new", true))));
        assert!(!cond.matches_object(None));
    }

    #[test]
    fn combinators_compose() {
        let ready = pod_is_ready();
        let gone = is_deleted::<Pod>("a");
        let either = pod_is_ready().or(is_deleted::<Pod>("a"));
        assert!(ready.matches_object(Some(&pod("a", true))));
        assert!(gone.matches_object(None));
        assert!(either.matches_object(None));
        assert!(pod_is_ready().not().matches_object(Some(&pod("a", false))));
        assert!(
            !pod_is_ready()
                .and(is_deleted::<Pod>("a"))
                .matches_object(Some(&pod("a", true)))
        );
    }
}
