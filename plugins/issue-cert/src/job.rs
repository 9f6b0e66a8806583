//! What every action shares: the resolved names, the current output
//! Secret, the keystore password, writing the output Secret, and outputs.

use dbops_certs::summary::{CA_CRT, TLS_CRT, TLS_KEY};
use dbops_certs::{CertInfo, Password, PrivateKey, TrustBundle};
use dbops_engines::tls::KeystoreFormat;
use dbops_plugin_sdk::k8s_openapi::api::core::v1::Secret;
use dbops_plugin_sdk::serde_json::Value;
use dbops_plugin_sdk::{Context, Outputs, StepError, StepResult};

use crate::config::Config;
use crate::material::{self, Material, PASSWORD_KEY, certs_error};
use crate::secrets::{self, Role, Secrets};
use crate::state::State;

/// One run of the step: configuration, names and durable state.
pub struct Job<'c, 'h> {
    /// The step context.
    pub ctx: &'c Context<'h>,
    /// The `with` table.
    pub config: &'c Config,
    /// Secrets of the target namespace.
    pub secrets: Secrets<'h>,
    /// The output Secret.
    pub secret_name: String,
    /// The keystore password Secret.
    pub password_secret: String,
    /// Keystore formats besides PEM.
    pub formats: Vec<KeystoreFormat>,
    /// Durable state.
    pub state: State,
}

/// The output Secret as it is now, parsed.
pub struct Current {
    /// The Secret.
    pub secret: Secret,
    /// `tls.crt`.
    pub chain_pem: String,
    /// The leaf, DER.
    pub leaf_der: Vec<u8>,
    /// What the leaf says.
    pub info: CertInfo,
    /// `tls.key`, when readable.
    pub key: Option<PrivateKey>,
    /// `ca.crt` (empty when absent).
    pub bundle: TrustBundle,
}

impl<'c, 'h> Job<'c, 'h> {
    /// Resolve names and load the durable state.
    pub fn new(ctx: &'c Context<'h>, config: &'c Config) -> StepResult<Job<'c, 'h>> {
        let target = ctx.target();
        Ok(Job {
            ctx,
            config,
            secrets: Secrets::new(ctx),
            secret_name: config.secret_name(target),
            password_secret: config.password_secret(target),
            formats: config.formats(target),
            state: State::load(ctx)?,
        })
    }

    /// The output Secret, parsed; `None` when it does not exist.
    pub fn current(&self) -> StepResult<Option<Current>> {
        let Some(secret) = self.secrets.get(&self.secret_name)? else {
            return Ok(None);
        };
        let what = format!(
            "Secret {}/{}",
            self.ctx.target().namespace,
            self.secret_name
        );
        let Some(chain_pem) = secrets::text(&secret, TLS_CRT) else {
            return Err(StepError::permanent(
                "TlsSecretInvalid",
                format!(
                    "{what} exists but has no {TLS_CRT}; delete it or choose another secret_name"
                ),
            ));
        };
        // A corrupt certificate is never replaced silently: say which key of
        // which Secret is broken and how to get out of it.
        let invalid = |e: dbops_certs::Error| {
            StepError::permanent(
                "TlsSecretInvalid",
                format!(
                    "{e}; fix {TLS_CRT} of {what}, or delete {what} so that action \"add\" issues a new certificate"
                ),
            )
        };
        let ders = dbops_certs::pem::certificates(&chain_pem, &format!("{TLS_CRT} of {what}"))
            .map_err(invalid)?;
        let Some(leaf_der) = ders.first().cloned() else {
            return Err(StepError::permanent(
                "TlsSecretInvalid",
                format!("{TLS_CRT} of {what} holds no certificate"),
            ));
        };
        let info = dbops_certs::inspect::inspect_der(&leaf_der, &format!("{TLS_CRT} of {what}"))
            .map_err(invalid)?;
        let key =
            secrets::text(&secret, TLS_KEY).and_then(|k| PrivateKey::from_pem(&k, &what).ok());
        let mut bundle = match secrets::text(&secret, CA_CRT) {
            Some(text) => {
                TrustBundle::from_pem(&text, &format!("{CA_CRT} of {what}")).map_err(certs_error)?
            }
            None => TrustBundle::new(),
        };
        // Without ca.crt, the members trust the chain's last certificate (its CA).
        if bundle.is_empty()
            && let Some(ca) = ders.last().filter(|_| ders.len() > 1)
        {
            bundle.add_der(ca.clone());
        }
        Ok(Some(Current {
            secret,
            chain_pem,
            leaf_der,
            info,
            key,
            bundle,
        }))
    }

    /// The keystore password when keystores are written: read from its
    /// Secret, or generated and stored there (never logged).
    pub fn password(&mut self) -> StepResult<Option<Password>> {
        if self.formats.iter().all(|f| *f == KeystoreFormat::Pem) {
            return Ok(None);
        }
        if let Some(secret) = self.secrets.get(&self.password_secret)? {
            return match secrets::text(&secret, PASSWORD_KEY).filter(|p| !p.is_empty()) {
                Some(text) => Ok(Some(Password::new(text))),
                None => Err(StepError::permanent(
                    "PasswordSecretInvalid",
                    format!(
                        "Secret {} has no non-empty key {PASSWORD_KEY:?}; fix or delete it",
                        self.password_secret
                    ),
                )),
            };
        }
        let password = Password::generate().map_err(certs_error)?;
        self.state
            .before_write(self.ctx, &self.secrets, &self.password_secret, None)?;
        let data = [(
            PASSWORD_KEY.to_owned(),
            password.expose().as_bytes().to_vec(),
        )]
        .into();
        self.secrets
            .write(&self.password_secret, Role::Password, data, None)?;
        Ok(Some(password))
    }

    /// Write the output Secret (backing up its previous content first).
    pub fn write_output(
        &mut self,
        existing: Option<&Secret>,
        chain_pem: &str,
        key: &PrivateKey,
        bundle: &TrustBundle,
    ) -> StepResult<Secret> {
        let password = self.password()?;
        let data = material::secret_data(&Material {
            chain_pem,
            key,
            bundle,
            formats: &self.formats,
            alias: &self.config.keystore_alias,
            password: password.as_ref(),
        })?;
        self.state
            .before_write(self.ctx, &self.secrets, &self.secret_name, existing)?;
        let written = self
            .secrets
            .write(&self.secret_name, Role::Tls, data, existing)?;
        if let Some(backup) = self.state.backup_of(&self.secret_name).map(str::to_owned) {
            let keep = usize::try_from(self.config.keep_backups).unwrap_or(usize::MAX);
            self.secrets
                .prune_backups(&self.secret_name, keep, &backup)?;
        }
        Ok(written)
    }

    /// The outputs for certificate `info`.
    pub fn outputs(&self, changed: bool, info: Option<&CertInfo>) -> Outputs {
        let mut outputs = Outputs::new();
        let text = |s: &str| Value::String(s.to_owned());
        outputs.insert("changed".into(), Value::Bool(changed));
        outputs.insert("secret_name".into(), text(&self.secret_name));
        let has_password = self.formats.iter().any(|f| *f != KeystoreFormat::Pem);
        outputs.insert(
            "password_secret".into(),
            text(if has_password {
                &self.password_secret
            } else {
                ""
            }),
        );
        outputs.insert(
            "backup_secret".into(),
            text(self.state.backup_of(&self.secret_name).unwrap_or("")),
        );
        outputs.insert(
            "serial".into(),
            text(info.map(|i| i.serial_hex.as_str()).unwrap_or("")),
        );
        outputs.insert(
            "fingerprint".into(),
            text(info.map(|i| i.fingerprint_sha256.as_str()).unwrap_or("")),
        );
        let not_after = info
            .and_then(|i| {
                i.not_after
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        outputs.insert("not_after".into(), Value::String(not_after));
        outputs.insert("phase".into(), text(""));
        outputs.insert("next_phase".into(), text(""));
        outputs
    }

    /// Save the outputs as the step's result (not in a dry run) and return them.
    pub fn finish(&mut self, outputs: Outputs) -> StepResult<Outputs> {
        if self.ctx.dry_run() {
            return Ok(outputs);
        }
        self.state.finish(self.ctx, &outputs)?;
        Ok(outputs)
    }
}
