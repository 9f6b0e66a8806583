//! The `issue-cert` step: add, rotate and remove TLS certificates of a
//! database, and switch its issuer without downtime.
//!
//! ```toml
//! [[steps]]
//! id = "cert"
//! uses = "issue-cert"
//! with = { action = "rotate", renew_before = "720h",
//!          issuer = { kind = "ca", name = "zk-ca", create_if_missing = true } }
//! ```
//!
//! Where to start: [`IssueCert::run`] dispatches on `with.action` to
//! [`add`] (`add`, `rotate`), [`rollover`] (`update-issuer`) and [`remove`];
//! [`issuer`] signs with the built-in CA or through [`certmanager`];
//! [`job`] reads and writes the output Secret, [`material`] builds its
//! contents (PEM, PKCS#12, JKS), [`sans`] computes the names, [`secrets`]
//! labels, backs up and restores Secrets, [`state`] is the durable state,
//! [`compensate`] the rollback. The `with` table is [`config::Config`],
//! checked by [`validate`] before anything touches the cluster.
//!
//! Output Secret (`<target>-tls` by default, `kubernetes.io/tls`):
//! `tls.crt` (leaf + CA), `tls.key` (PKCS#8 PEM), `ca.crt` (trust bundle),
//! and for JVM engines `keystore.p12`, `truststore.p12`, `keystore.jks`,
//! `truststore.jks` with the password in Secret
//! `<secret>-keystore-password` (key `password`), generated when absent.
//!
//! **Invariant**: private keys and passwords go only into Secrets: never
//! into logs, spans, Events, errors, outputs or durable state. The
//! previous contents of a Secret are kept in a backup Secret
//! (`<secret>-bak-<hash>`, labeled with the run) for compensation; the
//! journal holds only names, serials and the phase.

pub mod add;
pub mod certmanager;
pub mod compensate;
pub mod config;
pub mod issuer;
pub mod job;
pub mod material;
pub mod remove;
pub mod rollover;
pub mod sans;
pub mod secrets;
pub mod state;
pub mod validate;

use dbops_plugin_sdk::{Context, Outputs, Problem, Step, StepResult, Target, export_plugin};

use crate::config::{Action, Config};
use crate::job::Job;

/// The step.
pub struct IssueCert;

impl Step for IssueCert {
    type Config = Config;
    const NAME: &'static str = "issue-cert";
    const DESCRIPTION: &'static str = "Add, rotate, remove TLS certificates or switch issuer (built-in CA or cert-manager), with PKCS#12/JKS keystores";
    const OUTPUTS: &'static [(&'static str, &'static str)] = &[
        (
            "changed",
            "true when a Secret was written or deleted (restart the members)",
        ),
        (
            "serial",
            "serial number (hex) of the certificate now in the Secret",
        ),
        (
            "not_after",
            "end of validity of that certificate (RFC 3339)",
        ),
        (
            "fingerprint",
            "SHA-256 fingerprint (hex) of that certificate",
        ),
        ("secret_name", "the TLS Secret"),
        (
            "password_secret",
            "the keystore password Secret (empty without keystores)",
        ),
        (
            "backup_secret",
            "the backup of the previous Secret contents (empty when none)",
        ),
        (
            "phase",
            "update-issuer: the phase this run did (trust-both, issue, drop-old, done)",
        ),
        (
            "next_phase",
            "update-issuer: the phase still to run (issue, drop-old, done)",
        ),
        ("deleted", "remove: what was deleted, comma-separated"),
    ];
    const COMPENSATES: bool = true;

    fn validate(config: &Config, target: &Target) -> Vec<Problem> {
        validate::validate(config, target)
    }

    fn run(ctx: &Context<'_>, config: Config) -> StepResult<Outputs> {
        let mut job = Job::new(ctx, &config)?;
        if let Some(outputs) = job.state.done.clone() {
            return Ok(outputs);
        }
        match config.action {
            Action::Remove => remove::run(&mut job),
            Action::Add | Action::Rotate | Action::UpdateIssuer => {
                let workload = dbops_probes::cluster::load_workload(ctx, ctx.target())?;
                let spec = sans::leaf_spec(&config, ctx.target(), &workload);
                if config.action == Action::UpdateIssuer {
                    rollover::run(&mut job, &spec)
                } else {
                    add::run(&mut job, &spec)
                }
            }
        }
    }

    fn compensate(ctx: &Context<'_>, _config: Config) -> StepResult<()> {
        compensate::run(ctx)
    }
}

export_plugin!(IssueCert);
