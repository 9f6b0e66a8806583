//! Durable step state (kept in the run journal): names, serials and the
//! chosen phase only. **Invariant**: never key material or passwords; the
//! previous Secret contents live in backup Secrets, referenced by name.

use dbops_plugin_sdk::k8s_openapi::api::core::v1::Secret;
use dbops_plugin_sdk::serde_json::Value;
use dbops_plugin_sdk::{Context, Outputs, StepResult};
use serde::{Deserialize, Serialize};

use crate::config::Phase;
use crate::secrets::Secrets;

/// What this step did so far in this run.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Secrets this step wrote or deleted, in order.
    #[serde(default)]
    pub touched: Vec<Touched>,
    /// The cert-manager Certificate this step created or changed.
    #[serde(default)]
    pub certificate: Option<CertificateChange>,
    /// `update-issuer`: the phase the first attempt chose (a retry after a
    /// crash finishes that phase instead of starting the next one).
    #[serde(default)]
    pub phase: Option<Phase>,
    /// The outputs, once the step finished.
    #[serde(default)]
    pub done: Option<Outputs>,
}

/// One Secret this step changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Touched {
    /// Its name.
    pub secret: String,
    /// The backup Secret holding its previous content; `None` when this step created it.
    pub backup: Option<String>,
}

/// The Certificate this step changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateChange {
    /// Its name.
    pub name: String,
    /// Its previous `spec` (no secrets in it); `None` when this step created it.
    pub previous_spec: Option<Value>,
}

impl State {
    /// Load the state of this step in this run (empty on the first attempt).
    pub fn load(ctx: &Context<'_>) -> StepResult<State> {
        Ok(ctx.state::<State>()?.unwrap_or_default())
    }

    /// Whether this step already started writing Secret `name`.
    pub fn touched(&self, name: &str) -> bool {
        self.touched.iter().any(|t| t.secret == name)
    }

    /// The backup of Secret `name` made by this step, if any.
    pub fn backup_of(&self, name: &str) -> Option<&str> {
        self.touched
            .iter()
            .find(|t| t.secret == name)
            .and_then(|t| t.backup.as_deref())
    }

    /// Before changing Secret `name` (currently `existing`): back it up once
    /// and save the state, so a crash at any point can be compensated.
    pub fn before_write(
        &mut self,
        ctx: &Context<'_>,
        secrets: &Secrets<'_>,
        name: &str,
        existing: Option<&Secret>,
    ) -> StepResult<()> {
        if self.touched(name) {
            return Ok(());
        }
        let backup = match existing {
            Some(secret) => Some(secrets.backup(secret, ctx.run_id(), ctx.step_id())?),
            None => None,
        };
        self.touched.push(Touched {
            secret: name.to_owned(),
            backup,
        });
        ctx.save_state(self)
    }

    /// Record the outputs and save.
    pub fn finish(&mut self, ctx: &Context<'_>, outputs: &Outputs) -> StepResult<()> {
        self.done = Some(outputs.clone());
        ctx.save_state(self)
    }
}
