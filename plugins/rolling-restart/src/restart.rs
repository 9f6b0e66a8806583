//! Restarting members and waiting, by watch, until they are back.

use std::time::{Duration, Instant};

use dbops_plugin_sdk::k8s_openapi::api::core::v1::Pod;
use dbops_plugin_sdk::kube::{DeleteParams, Deletion, KubeError, Patch};
use dbops_plugin_sdk::serde_json::{Value, json};
use dbops_plugin_sdk::wait::{self, Condition};
use dbops_plugin_sdk::{Context, StepError, StepResult, Target};
use dbops_probes::cluster::{self, Workload, annotation, pod_status_summary};

use crate::plan::Wanted;

/// What a restarted member must show before it counts as back.
#[derive(Debug, Clone)]
pub struct BackWhen {
    /// The pod uid before the restart (the new pod must differ).
    pub old_uid: Option<String>,
    /// The revision the new pod must run (None: any).
    pub revision: Option<String>,
    /// The config hash annotation it must carry.
    pub config_hash: Option<(String, String)>,
}

impl BackWhen {
    /// For a member of `workload` with ordinal `ordinal`: pods at or above
    /// the partition get the update revision.
    pub fn new(
        workload: &Workload,
        ordinal: u32,
        old_uid: Option<String>,
        wanted: &Wanted,
    ) -> BackWhen {
        let updates = i64::from(ordinal) >= workload.partition.unwrap_or(0);
        BackWhen {
            old_uid,
            revision: if updates {
                workload.update_revision.clone()
            } else {
                None
            },
            config_hash: wanted.config_hash.clone(),
        }
    }

    fn holds(&self, pod: &Pod) -> bool {
        let replaced = self.old_uid.is_none() || pod.metadata.uid != self.old_uid;
        let revision = self
            .revision
            .as_deref()
            .is_none_or(|want| wait::pod_revision(pod) == Some(want));
        let hash = self
            .config_hash
            .as_ref()
            .is_none_or(|(key, want)| annotation(pod, key) == Some(want.as_str()));
        replaced && revision && hash && wait::pod_ready(pod)
    }

    /// The wait condition.
    pub fn condition(&self) -> impl Condition<Pod> + '_ {
        move |pod: Option<&Pod>| pod.is_some_and(|p| self.holds(p))
    }
}

/// Delete a member's pod (only that exact pod: uid precondition).
/// Returns the resourceVersion of the deletion, from which a watch sees
/// the member come back ([`wait_back`]); `None` when the pod was already
/// gone or replaced, or the answer carried no version.
pub fn delete_pod(
    ctx: &Context<'_>,
    namespace: &str,
    name: &str,
    uid: Option<&str>,
) -> StepResult<Option<String>> {
    let params = DeleteParams {
        precondition_uid: uid.map(str::to_string),
        ..Default::default()
    };
    match ctx
        .kube()
        .api::<Pod>(Some(namespace))
        .delete_versioned(name, &params)
    {
        Ok(Deletion::Accepted { resource_version }) => Ok(resource_version),
        Ok(Deletion::NotFound) => Ok(None),
        // The uid precondition failed: the pod was already replaced.
        Err(err) if err.is_conflict() => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Wait by watch until the member is back; a timeout is a permanent failure
/// naming the member and its last status. `deleted_at`: the version of
/// this run's deletion of the old pod ([`delete_pod`]); the watch starts
/// there instead of reading the pod first (the old pod, terminating at
/// that version, cannot be "back").
pub fn wait_back(
    ctx: &Context<'_>,
    namespace: &str,
    name: &str,
    back: &BackWhen,
    deleted_at: Option<&str>,
    timeout: Duration,
) -> StepResult<f64> {
    let started = Instant::now();
    let pods = ctx.kube().api::<Pod>(Some(namespace));
    let waited = match deleted_at.filter(|_| back.old_uid.is_some()) {
        Some(version) => pods.wait_until_after(name, version, back.condition(), timeout),
        None => pods.wait_until(name, back.condition(), timeout),
    };
    match waited {
        Ok(_) => Ok(started.elapsed().as_secs_f64()),
        Err(KubeError::Timeout { waited, .. }) => {
            let last = match pods.get_opt(name) {
                Ok(Some(pod)) => describe_not_back(&pod, back),
                Ok(None) => "the pod does not exist (not recreated by the controller?)".to_string(),
                Err(err) => format!("its status could not be read: {err}"),
            };
            Err(StepError::permanent(
                "MemberNotReady",
                format!(
                    "member {namespace}/{name} was not back Ready within {}s: {last}",
                    waited.as_secs()
                ),
            ))
        }
        Err(err) => Err(err.into()),
    }
}

fn describe_not_back(pod: &Pod, back: &BackWhen) -> String {
    let mut text = pod_status_summary(pod);
    if back.old_uid.is_some() && pod.metadata.uid == back.old_uid {
        text.push_str("; still the old pod (not restarted)");
    }
    if let Some(want) = &back.revision
        && wait::pod_revision(pod) != Some(want.as_str())
    {
        text.push_str(&format!(
            "; revision {} instead of {want}",
            wait::pod_revision(pod).unwrap_or("none")
        ));
    }
    if let Some((key, want)) = &back.config_hash
        && annotation(pod, key) != Some(want.as_str())
    {
        text.push_str(&format!("; annotation {key} is not {want}"));
    }
    text
}

/// Template mode: stop the controller from rolling by itself (partition =
/// replicas) and bump the restart annotation, in one patch; wait until the
/// controller has computed the new update revision.
pub fn bump_template(
    ctx: &Context<'_>,
    target: &Target,
    workload: &Workload,
    annotation_key: &str,
    stamp: &str,
    timeout: Duration,
) -> StepResult<Workload> {
    let api = cluster::workload_api(ctx, target);
    let patch = json!({
        "spec": {
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": workload.replicas}},
            "template": {"metadata": {"annotations": {annotation_key: stamp}}}
        }
    });
    api.patch(&workload.name, &Patch::Merge(patch))?;
    wait_observed(ctx, target, timeout)
}

/// Set the partition (template mode); waits until the controller observed it.
pub fn set_partition(
    ctx: &Context<'_>,
    target: &Target,
    partition: Option<i64>,
    timeout: Duration,
) -> StepResult<Workload> {
    let value = partition.map(Value::from).unwrap_or(Value::Null);
    let patch = json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": value}}}});
    cluster::workload_api(ctx, target).patch(&target.workload.name, &Patch::Merge(patch))?;
    wait_observed(ctx, target, timeout)
}

fn wait_observed(ctx: &Context<'_>, target: &Target, timeout: Duration) -> StepResult<Workload> {
    let observed = |object: Option<&Value>| {
        object.is_some_and(|o| {
            let generation = o
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let seen = o
                .pointer("/status/observedGeneration")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            seen >= generation
        })
    };
    cluster::workload_api(ctx, target).wait_until(&target.workload.name, observed, timeout)?;
    cluster::load_workload(ctx, target)
}
