//! What the rolling-restart and health-check plugins share (feature `sdk`):
//! the target workload and its member pods, and probe settings (TLS trust,
//! client certificates, MySQL credentials) read from Secrets.
//!
//! **Invariant**: Secret contents never reach logs or errors; errors name
//! the Secret and key only.

use std::collections::BTreeMap;

use dbops_plugin_sdk::k8s_openapi::api::core::v1::{Pod, Secret};
use dbops_plugin_sdk::kube::{Api, ApiResource, ListParams};
use dbops_plugin_sdk::serde_json::Value;
use dbops_plugin_sdk::{Context, Problem, StepError, StepResult, Target, wait};
use serde::{Deserialize, Serialize};

use crate::mysql::{Credentials, Password};
use crate::tls::{CertExpectation, ClientIdentity, TlsOptions, Trust};

/// The StatefulSet or KubeDB PetSet whose pods are the members.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// `StatefulSet` or `PetSet`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// `spec.replicas`.
    pub replicas: u32,
    /// `spec.serviceName`: the governing headless Service.
    pub service_name: Option<String>,
    /// `status.updateRevision`: the revision new pods get.
    pub update_revision: Option<String>,
    /// `status.currentRevision`.
    pub current_revision: Option<String>,
    /// `spec.updateStrategy.type` (`RollingUpdate` when absent).
    pub strategy: String,
    /// `spec.updateStrategy.rollingUpdate.partition`.
    pub partition: Option<i64>,
    /// `metadata.generation` > `status.observedGeneration`: the controller has not seen the latest spec.
    pub spec_pending: bool,
    /// `spec.selector.matchLabels` as a label selector (`app=zk,tier=db`), when set.
    pub selector: Option<String>,
}

impl Workload {
    /// Read the fields dbops needs from the object's JSON.
    pub fn from_value(kind: &str, namespace: &str, object: &Value) -> Result<Workload, String> {
        let text = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let name = text("/metadata/name").ok_or("the workload has no metadata.name")?;
        let replicas = object
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let generation = object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let observed = object
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        Ok(Workload {
            kind: kind.to_string(),
            name,
            namespace: namespace.to_string(),
            replicas: u32::try_from(replicas)
                .map_err(|_| format!("spec.replicas {replicas} is too large"))?,
            service_name: text("/spec/serviceName").filter(|s| !s.is_empty()),
            update_revision: text("/status/updateRevision"),
            current_revision: text("/status/currentRevision"),
            strategy: text("/spec/updateStrategy/type").unwrap_or_else(|| "RollingUpdate".into()),
            partition: object
                .pointer("/spec/updateStrategy/rollingUpdate/partition")
                .and_then(Value::as_i64),
            spec_pending: observed < generation,
            selector: match_labels(object),
        })
    }

    /// The member pod names, `NAME-0` .. `NAME-(replicas-1)`.
    pub fn member_names(&self) -> Vec<String> {
        (0..self.replicas)
            .map(|i| format!("{}-{i}", self.name))
            .collect()
    }

    /// The Service name used in member DNS names (the governing Service, or the workload name).
    pub fn service(&self) -> &str {
        self.service_name.as_deref().unwrap_or(&self.name)
    }
}

/// `spec.selector.matchLabels` as a label selector string.
fn match_labels(object: &Value) -> Option<String> {
    let labels = object.pointer("/spec/selector/matchLabels")?.as_object()?;
    let pairs: Vec<String> = labels
        .iter()
        .filter_map(|(key, value)| Some(format!("{key}={}", value.as_str()?)))
        .collect();
    (!pairs.is_empty()).then(|| pairs.join(","))
}

/// The plural resource name of a workload kind.
pub fn plural_of(kind: &str) -> String {
    match kind {
        "StatefulSet" => "statefulsets".into(),
        "PetSet" => "petsets".into(),
        other => format!("{}s", other.to_ascii_lowercase()),
    }
}

/// The API of the target's workload kind.
pub fn workload_api<'h>(ctx: &Context<'h>, target: &Target) -> Api<'h, Value> {
    let resource = ApiResource::new(
        &target.workload.api_version,
        &target.workload.kind,
        &plural_of(&target.workload.kind),
    );
    ctx.kube().dynamic(resource, Some(&target.namespace))
}

/// Read the target's workload.
pub fn load_workload(ctx: &Context<'_>, target: &Target) -> StepResult<Workload> {
    let object = workload_api(ctx, target).get(&target.workload.name)?;
    Workload::from_value(&target.workload.kind, &target.namespace, &object).map_err(|reason| {
        StepError::permanent(
            "UnexpectedObject",
            format!(
                "{} {}/{}: {reason}",
                target.workload.kind, target.namespace, target.workload.name
            ),
        )
    })
}

/// One member: its name, ordinal and pod (None while it does not exist).
#[derive(Debug, Clone)]
pub struct Member {
    /// Pod name.
    pub name: String,
    /// StatefulSet ordinal.
    pub ordinal: u32,
    /// The pod, when it exists.
    pub pod: Option<Pod>,
}

impl Member {
    /// `status.podIP`.
    pub fn ip(&self) -> Option<&str> {
        self.pod.as_ref()?.status.as_ref()?.pod_ip.as_deref()
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> Option<&str> {
        self.pod.as_ref()?.metadata.uid.as_deref()
    }

    /// Ready and not terminating.
    pub fn is_ready(&self) -> bool {
        self.pod.as_ref().is_some_and(wait::pod_ready)
    }

    /// The `controller-revision-hash` label.
    pub fn revision(&self) -> Option<&str> {
        self.pod.as_ref().and_then(wait::pod_revision)
    }

    /// A pod annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        annotation(self.pod.as_ref()?, key)
    }

    /// A pod label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.pod
            .as_ref()?
            .metadata
            .labels
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    /// One line describing the pod's state, for errors.
    pub fn status_summary(&self) -> String {
        match &self.pod {
            None => "the pod does not exist".to_string(),
            Some(pod) => pod_status_summary(pod),
        }
    }
}

/// A pod annotation.
pub fn annotation<'p>(pod: &'p Pod, key: &str) -> Option<&'p str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// Phase, readiness and container problems of a pod, in one line.
pub fn pod_status_summary(pod: &Pod) -> String {
    let Some(status) = &pod.status else {
        return "no status yet (not scheduled?)".to_string();
    };
    let mut parts = vec![format!(
        "phase {}",
        status.phase.as_deref().unwrap_or("unknown")
    )];
    if pod.metadata.deletion_timestamp.is_some() {
        parts.push("terminating".to_string());
    }
    for condition in status.conditions.iter().flatten() {
        if condition.type_ == "Ready" {
            let mut text = format!("Ready={}", condition.status);
            if let Some(reason) = &condition.reason {
                text.push_str(&format!(" ({reason})"));
            }
            parts.push(text);
        }
    }
    for container in status.container_statuses.iter().flatten() {
        let state = container.state.as_ref();
        if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
            parts.push(format!(
                "container {} waiting: {}{}",
                container.name,
                waiting.reason.as_deref().unwrap_or("unknown"),
                waiting
                    .message
                    .as_deref()
                    .map(|m| format!(" ({})", m.chars().take(200).collect::<String>()))
                    .unwrap_or_default()
            ));
        } else if let Some(terminated) = state.and_then(|s| s.terminated.as_ref()) {
            parts.push(format!(
                "container {} terminated with exit code {}{}",
                container.name,
                terminated.exit_code,
                terminated
                    .reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
        }
        if container.restart_count > 0 {
            parts.push(format!(
                "container {} restarted {} times",
                container.name, container.restart_count
            ));
        }
    }
    parts.join(", ")
}

/// The members of `workload`, with their pods as they are now: one list by
/// the workload's selector (or one get per member when it has none).
pub fn load_members(ctx: &Context<'_>, workload: &Workload) -> StepResult<Vec<Member>> {
    let pods = ctx.kube().api::<Pod>(Some(&workload.namespace));
    let mut listed: BTreeMap<String, Pod> = match &workload.selector {
        Some(selector) => pods
            .list(&ListParams::labels(selector.clone()))?
            .items
            .into_iter()
            .filter_map(|pod| Some((pod.metadata.name.clone()?, pod)))
            .collect(),
        None => BTreeMap::new(),
    };
    workload
        .member_names()
        .into_iter()
        .enumerate()
        .map(|(ordinal, name)| {
            let pod = match workload.selector {
                Some(_) => listed.remove(&name),
                None => pods.get_opt(&name)?,
            };
            Ok(Member {
                name,
                ordinal: ordinal as u32,
                pod,
            })
        })
        .collect()
}

// ------------------------------------------------------------ TLS settings

fn default_ca_key() -> String {
    "ca.crt".to_string()
}

/// How probes speak TLS, as written in a step's `with` table.
#[derive(
    Debug, Clone, Default, PartialEq, Serialize, Deserialize, dbops_plugin_sdk::schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct TlsSettings {
    /// Secret (in the target's namespace) holding the CA bundle the served
    /// certificates must chain to, e.g. the issue-cert step's output Secret.
    pub ca_secret: Option<String>,
    /// Key of the CA bundle in `ca_secret` (default `ca.crt`).
    #[serde(default = "default_ca_key")]
    pub ca_key: String,
    /// The name each member's certificate must be valid for. `{pod}`,
    /// `{service}` and `{namespace}` are replaced; default
    /// `{pod}.{service}.{namespace}.svc`.
    pub server_name: Option<String>,
    /// Accept any certificate without verification. Must be explicit and is
    /// logged as a warning on every probe.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// The serial number the served leaf certificate must have (hex), e.g.
    /// `${steps.cert.outputs.serial}` after a rotation.
    pub expected_serial: Option<String>,
    /// The SHA-256 fingerprint the served leaf certificate must have (hex).
    pub expected_sha256: Option<String>,
    /// Secret with `tls.crt` and `tls.key` to present as a client
    /// certificate, for servers that require one.
    pub client_secret: Option<String>,
}

impl TlsSettings {
    /// Problems with these settings, with JSON pointers under `path`.
    pub fn problems(&self, path: &str) -> Vec<Problem> {
        let mut problems = Vec::new();
        match (&self.ca_secret, self.insecure_skip_verify) {
            (None, false) => problems.push(Problem {
                path: format!("{path}/ca_secret"),
                message: "tls needs `ca_secret` (the Secret holding the CA to verify against), or an explicit `insecure_skip_verify = true`".into(),
            }),
            (Some(_), true) => problems.push(Problem {
                path: format!("{path}/insecure_skip_verify"),
                message: "`insecure_skip_verify = true` ignores `ca_secret`; remove one of them".into(),
            }),
            _ => {}
        }
        if let Some(name) = &self.server_name {
            let unknown: Vec<&str> = placeholders(name)
                .into_iter()
                .filter(|p| !matches!(*p, "pod" | "service" | "namespace"))
                .collect();
            if !unknown.is_empty() {
                problems.push(Problem {
                    path: format!("{path}/server_name"),
                    message: format!(
                        "server_name {name:?} uses unknown placeholders {unknown:?}; only {{pod}}, {{service}} and {{namespace}} are replaced"
                    ),
                });
            }
        }
        problems
    }
}

fn placeholders(template: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        found.push(&after[..end]);
        rest = &after[end + 1..];
    }
    found
}

/// Replace `{pod}`, `{service}` and `{namespace}`.
pub fn expand_name(template: &str, pod: &str, service: &str, namespace: &str) -> String {
    template
        .replace("{pod}", pod)
        .replace("{service}", service)
        .replace("{namespace}", namespace)
}

/// The default name a member's certificate is checked against.
pub const DEFAULT_SERVER_NAME: &str = "{pod}.{service}.{namespace}.svc";

/// TLS settings with the Secrets read.
#[derive(Debug, Clone)]
pub struct ResolvedTls {
    trust: Trust,
    client: Option<ClientIdentity>,
    server_name: String,
    expect: CertExpectation,
}

impl ResolvedTls {
    /// TLS options for one member (or the Service when `pod` is the Service name).
    pub fn for_member(&self, pod: &str, service: &str, namespace: &str) -> TlsOptions {
        TlsOptions {
            server_name: expand_name(&self.server_name, pod, service, namespace),
            trust: self.trust.clone(),
            expect: self.expect.clone(),
            client_identity: self.client.clone(),
        }
    }

    /// TLS options for an explicit server name.
    pub fn for_name(&self, server_name: &str) -> TlsOptions {
        TlsOptions {
            server_name: server_name.to_string(),
            trust: self.trust.clone(),
            expect: self.expect.clone(),
            client_identity: self.client.clone(),
        }
    }

    /// Whether certificates are verified.
    pub fn verifies(&self) -> bool {
        self.trust != Trust::InsecureSkipVerify
    }
}

/// Read a Secret's data; errors name the Secret, never its content.
pub fn secret_data(
    ctx: &Context<'_>,
    namespace: &str,
    name: &str,
) -> StepResult<BTreeMap<String, Vec<u8>>> {
    let secret = ctx
        .kube()
        .api::<Secret>(Some(namespace))
        .get_opt(name)?
        .ok_or_else(|| {
            StepError::permanent(
                "SecretNotFound",
                format!("secret {namespace}/{name} does not exist; create it or fix the name in the pipeline"),
            )
        })?;
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, value.0))
        .collect();
    for (key, value) in secret.string_data.unwrap_or_default() {
        data.insert(key, value.into_bytes());
    }
    Ok(data)
}

fn secret_key(
    data: &BTreeMap<String, Vec<u8>>,
    namespace: &str,
    secret: &str,
    key: &str,
) -> StepResult<Vec<u8>> {
    data.get(key).cloned().ok_or_else(|| {
        StepError::permanent(
            "SecretKeyMissing",
            format!(
                "secret {namespace}/{secret} has no key {key:?} (it has {:?})",
                data.keys().collect::<Vec<_>>()
            ),
        )
    })
}

/// Read the Secrets the settings name.
pub fn resolve_tls(
    ctx: &Context<'_>,
    namespace: &str,
    settings: &TlsSettings,
) -> StepResult<ResolvedTls> {
    let trust = match (&settings.ca_secret, settings.insecure_skip_verify) {
        (_, true) => Trust::InsecureSkipVerify,
        (Some(secret), false) => {
            let data = secret_data(ctx, namespace, secret)?;
            let ca = secret_key(&data, namespace, secret, &settings.ca_key)?;
            crate::tls::parse_certificates(&ca, "CA bundle").map_err(|err| {
                StepError::permanent(
                    "InvalidCaBundle",
                    format!("secret {namespace}/{secret} key {}: {err}", settings.ca_key),
                )
            })?;
            Trust::CaBundlePem(ca)
        }
        (None, false) => {
            return Err(StepError::permanent(
                "InvalidConfig",
                "tls needs ca_secret or an explicit insecure_skip_verify = true",
            ));
        }
    };
    let client = match &settings.client_secret {
        None => None,
        Some(secret) => {
            let data = secret_data(ctx, namespace, secret)?;
            Some(ClientIdentity {
                cert_chain_pem: secret_key(&data, namespace, secret, "tls.crt")?,
                key_pem: secret_key(&data, namespace, secret, "tls.key")?,
            })
        }
    };
    Ok(ResolvedTls {
        trust,
        client,
        server_name: settings
            .server_name
            .clone()
            .unwrap_or_else(|| DEFAULT_SERVER_NAME.to_string()),
        expect: CertExpectation {
            serial: settings
                .expected_serial
                .clone()
                .filter(|s| !s.trim().is_empty()),
            sha256: settings
                .expected_sha256
                .clone()
                .filter(|s| !s.trim().is_empty()),
        },
    })
}

// ------------------------------------------------------------ credentials

fn default_username_key() -> String {
    "username".to_string()
}

fn default_password_key() -> String {
    "password".to_string()
}

/// Where a database account's credentials are (a `kubernetes.io/basic-auth` style Secret).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, dbops_plugin_sdk::schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct CredentialsSettings {
    /// Secret name in the target's namespace (KubeDB: `<db>-auth`).
    pub secret: String,
    /// Key of the user name (default `username`).
    #[serde(default = "default_username_key")]
    pub username_key: String,
    /// Key of the password (default `password`).
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

/// Read the credentials; the password is only ever held in a [`Password`].
pub fn load_credentials(
    ctx: &Context<'_>,
    namespace: &str,
    settings: &CredentialsSettings,
) -> StepResult<Credentials> {
    let data = secret_data(ctx, namespace, &settings.secret)?;
    let user = secret_key(&data, namespace, &settings.secret, &settings.username_key)?;
    let password = secret_key(&data, namespace, &settings.secret, &settings.password_key)?;
    let text = |bytes: Vec<u8>, key: &str| {
        String::from_utf8(bytes).map_err(|_| {
            StepError::permanent(
                "InvalidCredentials",
                format!(
                    "secret {namespace}/{} key {key:?} is not UTF-8",
                    settings.secret
                ),
            )
        })
    };
    Ok(Credentials {
        user: text(user, &settings.username_key)?
            .trim_end_matches('\n')
            .to_string(),
        password: Password::new(text(password, &settings.password_key)?.trim_end_matches('\n')),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbops_plugin_sdk::serde_json::json;

    #[test]
    fn workload_fields_are_read_from_statefulset_json() {
        let sts = json!({
            "metadata": {"name": "zk", "generation": 3},
            "spec": {"replicas": 3, "serviceName": "zk-pods",
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}},
            "status": {"observedGeneration": 3, "updateRevision": "zk-abc", "currentRevision": "zk-abc"}
        });
        let w = Workload::from_value("StatefulSet", "db", &sts).unwrap();
        assert_eq!(w.member_names(), ["zk-0", "zk-1", "zk-2"]);
        assert_eq!(w.service(), "zk-pods");
        assert_eq!(w.update_revision.as_deref(), Some("zk-abc"));
        assert_eq!(w.partition, Some(0));
        assert!(!w.spec_pending);
        assert_eq!(w.selector, None);
        let selected = json!({"metadata": {"name": "zk"},
            "spec": {"selector": {"matchLabels": {"app": "zk", "tier": "db"}}}});
        assert_eq!(
            Workload::from_value("StatefulSet", "db", &selected)
                .unwrap()
                .selector
                .as_deref(),
            Some("app=zk,tier=db")
        );
        let pending = json!({"metadata": {"name": "x", "generation": 2}, "status": {"observedGeneration": 1}});
        assert!(
            Workload::from_value("PetSet", "db", &pending)
                .unwrap()
                .spec_pending
        );
        assert_eq!(plural_of("PetSet"), "petsets");
    }

    #[test]
    fn tls_settings_need_a_ca_or_an_explicit_opt_out() {
        let none = TlsSettings::default();
        assert_eq!(none.problems("/tls")[0].path, "/tls/ca_secret");
        let both = TlsSettings {
            ca_secret: Some("ca".into()),
            insecure_skip_verify: true,
            ..Default::default()
        };
        assert_eq!(both.problems("/tls").len(), 1);
        let bad_name = TlsSettings {
            ca_secret: Some("ca".into()),
            server_name: Some("{pod}.{svc}".into()),
            ..Default::default()
        };
        assert!(bad_name.problems("/tls")[0].message.contains("svc"));
        assert_eq!(
            expand_name(DEFAULT_SERVER_NAME, "zk-0", "zk-pods", "db"),
            "zk-0.zk-pods.db.svc"
        );
    }
}
