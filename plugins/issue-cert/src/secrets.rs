//! Secrets: read, write (create or conditional replace), label, back up,
//! restore exactly, prune old backups, delete only what dbops created.
//!
//! **Invariant**: Secret data never reaches a log, an Event or an error
//! message; errors name the Secret only.

use std::collections::BTreeMap;

use dbops_plugin_sdk::k8s_openapi::ByteString;
use dbops_plugin_sdk::k8s_openapi::api::core::v1::Secret;
use dbops_plugin_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use dbops_plugin_sdk::kube::{Api, DeleteParams, ListParams};
use dbops_plugin_sdk::serde_json::{self, Value, json};
use dbops_plugin_sdk::{Context, StepError, StepResult, Target};
use sha2::{Digest, Sha256};

/// `app.kubernetes.io/managed-by=dbops`.
pub const MANAGED_BY: &str = dbops_certs::summary::LABEL_MANAGED_BY;
/// The target name.
pub const TARGET: &str = dbops_certs::summary::LABEL_TARGET;
/// `issue-cert`.
pub const CREATED_BY: &str = "dbops.io/created-by";
/// `tls`, `keystore-password`, `ca` or `backup`.
pub const ROLE: &str = dbops_certs::summary::LABEL_ROLE;
/// The run that made a backup.
pub const RUN: &str = "dbops.io/run-id";
/// The Secret a backup is a copy of.
pub const BACKUP_OF: &str = "dbops.io/backup-of";
/// A backup's record of the original's type, labels and annotations (JSON).
pub const PREVIOUS_METADATA: &str = "dbops.io/previous-metadata";

/// What a Secret is for (its `dbops.io/role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The output TLS Secret.
    Tls,
    /// The keystore password.
    Password,
    /// The built-in CA.
    Ca,
    /// A previous revision kept for rollback.
    Backup,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Tls => "tls",
            Role::Password => "keystore-password",
            Role::Ca => "ca",
            Role::Backup => "backup",
        }
    }
}

/// Secret operations in the target's namespace.
pub struct Secrets<'h> {
    api: Api<'h, Secret>,
    target: Target,
}

impl<'h> Secrets<'h> {
    /// Secrets of the target's namespace.
    pub fn new(ctx: &Context<'h>) -> Secrets<'h> {
        let target = ctx.target().clone();
        Secrets {
            api: ctx.kube().api::<Secret>(Some(&target.namespace)),
            target,
        }
    }

    /// Read a Secret; `None` when absent.
    pub fn get(&self, name: &str) -> StepResult<Option<Secret>> {
        Ok(self.api.get_opt(name)?)
    }

    /// The labels dbops puts on a Secret with `role`.
    pub fn labels(&self, role: Role) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY.to_owned(), "dbops".to_owned()),
            (TARGET.to_owned(), label_value(&self.target.name)),
            (CREATED_BY.to_owned(), "issue-cert".to_owned()),
            (ROLE.to_owned(), role.label().to_owned()),
        ])
    }

    /// Whether dbops created `secret` for this target.
    pub fn is_ours(&self, secret: &Secret) -> bool {
        let labels = secret.metadata.labels.clone().unwrap_or_default();
        labels.get(MANAGED_BY).map(String::as_str) == Some("dbops")
            && labels.get(TARGET) == Some(&label_value(&self.target.name))
            && labels.get(CREATED_BY).map(String::as_str) == Some("issue-cert")
    }

    /// Write `data` to Secret `name`: replace `existing` (conditional on its
    /// resourceVersion, keeping its type and labels; a Secret dbops did not
    /// create does not get dbops' labels) or create it with them.
    pub fn write(
        &self,
        name: &str,
        role: Role,
        data: BTreeMap<String, Vec<u8>>,
        existing: Option<&Secret>,
    ) -> StepResult<Secret> {
        let data = data.into_iter().map(|(k, v)| (k, ByteString(v))).collect();
        match existing {
            Some(current) => {
                let mut next = current.clone();
                next.metadata.managed_fields = None;
                // A Secret someone else created stays theirs: `remove`
                // deletes only what dbops created.
                if self.is_ours(current) {
                    next.metadata
                        .labels
                        .get_or_insert_with(BTreeMap::new)
                        .extend(self.labels(role));
                }
                next.data = Some(data);
                next.string_data = None;
                Ok(self
                    .api
                    .replace(name, &next)
                    .map_err(|e| StepError::from(e).context(format!("writing Secret {name}")))?)
            }
            None => {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        namespace: Some(self.target.namespace.clone()),
                        labels: Some(self.labels(role)),
                        ..ObjectMeta::default()
                    },
                    type_: Some(secret_type(role).to_owned()),
                    data: Some(data),
                    ..Secret::default()
                };
                Ok(self
                    .api
                    .create(&secret)
                    .map_err(|e| StepError::from(e).context(format!("creating Secret {name}")))?)
            }
        }
    }

    /// Copy `secret` into a backup Secret labeled with the run; returns the
    /// backup's name. Idempotent: an existing backup of this run is kept.
    pub fn backup(&self, secret: &Secret, run_id: &str, step_id: &str) -> StepResult<String> {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let backup_name = backup_name(&name, run_id, step_id);
        if self.get(&backup_name)?.is_some() {
            return Ok(backup_name);
        }
        let previous = json!({
            "type": secret.type_,
            "labels": secret.metadata.labels,
            "annotations": secret.metadata.annotations,
        });
        let mut labels = self.labels(Role::Backup);
        labels.insert(RUN.to_owned(), label_value(run_id));
        labels.insert(BACKUP_OF.to_owned(), label_value(&name));
        let backup = Secret {
            metadata: ObjectMeta {
                name: Some(backup_name.clone()),
                namespace: Some(self.target.namespace.clone()),
                labels: Some(labels),
                annotations: Some(BTreeMap::from([(
                    PREVIOUS_METADATA.to_owned(),
                    previous.to_string(),
                )])),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            data: secret.data.clone(),
            ..Secret::default()
        };
        self.api
            .create(&backup)
            .map_err(|e| StepError::from(e).context(format!("backing up Secret {name}")))?;
        Ok(backup_name)
    }

    /// Make Secret `name` exactly what backup `backup_name` recorded: data,
    /// type, labels and annotations.
    pub fn restore(&self, name: &str, backup_name: &str) -> StepResult<()> {
        let Some(backup) = self.get(backup_name)? else {
            return Err(StepError::permanent(
                "BackupMissing",
                format!(
                    "cannot restore Secret {name}: its backup Secret {backup_name} is gone; restore it by hand"
                ),
            ));
        };
        let previous: Value = backup
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PREVIOUS_METADATA))
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(Value::Null);
        let field = |key: &str| previous.get(key).cloned().unwrap_or(Value::Null);
        let type_: Option<String> = serde_json::from_value(field("type")).unwrap_or_default();
        let labels: Option<BTreeMap<String, String>> =
            serde_json::from_value(field("labels")).unwrap_or_default();
        let annotations: Option<BTreeMap<String, String>> =
            serde_json::from_value(field("annotations")).unwrap_or_default();
        let current = self.get(name)?;
        match current {
            Some(mut current) if current.type_ == type_ => {
                current.metadata.labels = labels;
                current.metadata.annotations = annotations;
                current.metadata.managed_fields = None;
                current.data = backup.data;
                current.string_data = None;
                self.api
                    .replace(name, &current)
                    .map_err(|e| StepError::from(e).context(format!("restoring Secret {name}")))?;
            }
            other => {
                if other.is_some() {
                    self.api.delete(name, &DeleteParams::default())?;
                }
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        namespace: Some(self.target.namespace.clone()),
                        labels,
                        annotations,
                        ..ObjectMeta::default()
                    },
                    type_,
                    data: backup.data,
                    ..Secret::default()
                };
                self.api
                    .create(&secret)
                    .map_err(|e| StepError::from(e).context(format!("restoring Secret {name}")))?;
            }
        }
        Ok(())
    }

    /// Delete Secret `name` if dbops created it for this target; returns whether it was deleted.
    pub fn delete_if_ours(&self, name: &str) -> StepResult<bool> {
        match self.get(name)? {
            Some(secret) if self.is_ours(&secret) => {
                Ok(self.api.delete(name, &DeleteParams::default())?)
            }
            _ => Ok(false),
        }
    }

    /// Backups of Secret `of`, oldest first.
    pub fn backups_of(&self, of: &str) -> StepResult<Vec<Secret>> {
        let selector = format!(
            "{MANAGED_BY}=dbops,{ROLE}=backup,{TARGET}={},{BACKUP_OF}={}",
            label_value(&self.target.name),
            label_value(of)
        );
        let mut items = self.api.list(&ListParams::labels(selector))?.items;
        items.sort_by(|a, b| {
            let key = |s: &Secret| {
                (
                    s.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    s.metadata.name.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        Ok(items)
    }

    /// Delete the oldest backups of `of` beyond `keep`, never `except`.
    pub fn prune_backups(&self, of: &str, keep: usize, except: &str) -> StepResult<Vec<String>> {
        let backups = self.backups_of(of)?;
        let excess = backups.len().saturating_sub(keep.max(1));
        let mut deleted = Vec::new();
        for backup in backups.into_iter().take(excess) {
            let name = backup.metadata.name.unwrap_or_default();
            if name != except && self.api.delete(&name, &DeleteParams::default())? {
                deleted.push(name);
            }
        }
        Ok(deleted)
    }
}

/// A Secret's data as bytes by key.
pub fn data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .as_ref()
        .map(|d| d.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
        .unwrap_or_default()
}

/// One key of a Secret as UTF-8 text.
pub fn text(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
}

/// The backup name for Secret `name` in this run and step (stable across retries).
pub fn backup_name(name: &str, run_id: &str, step_id: &str) -> String {
    let digest = hex::encode(Sha256::digest(format!("{run_id}/{step_id}/{name}")));
    let base: String = name.chars().take(240).collect();
    format!("{base}-bak-{}", &digest[..10])
}

fn secret_type(role: Role) -> &'static str {
    match role {
        Role::Tls | Role::Ca => "kubernetes.io/tls",
        Role::Password | Role::Backup => "Opaque",
    }
}

/// A string usable as a label value (63 characters of `[A-Za-z0-9-_.]`).
pub fn label_value(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

impl Secrets<'_> {
    /// Delete Secret `name` (callers check ownership first).
    pub fn api_delete(&self, name: &str) -> StepResult<bool> {
        Ok(self.api.delete(name, &DeleteParams::default())?)
    }
}
