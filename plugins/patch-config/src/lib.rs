//! The `patch-config` step plugin: KubeDB's "Reconfigure" and the
//! configuration half of "Reconfigure TLS", for configuration held in a
//! ConfigMap or Secret.
//!
//! - Modes `merge` (set, change, delete keys), `replace` (whole files) and
//!   `remove-custom` (back to the content from before dbops first changed
//!   the object, kept in `<object>-dbops-config-defaults`).
//! - Format-aware and lossless for properties and my.cnf
//!   (dbops-config-formats); what it writes must read back as intended.
//! - `tls = "add"|"remove"` applies the engine's TLS settings
//!   (dbops-engines), so adding TLS is one line of pipeline.
//! - Backup per run and step (`<object>-dbops-backup-<run>-<step>`),
//!   restored exactly by compensation; dry run logs a masked diff.
//! - Outputs `changed`, `config_hash`, `restart_required`, `diff_lines`,
//!   `backup`; in a dry run also `diff` (masked; `dbops plan --diff` shows it).
//!
//! Modules: [`config`] (the `with` table), [`edit`] (pure computation),
//! [`store`] (ConfigMaps/Secrets), [`run`] (the step).

pub mod config;
pub mod edit;
pub mod run;
pub mod store;

use dbops_plugin_sdk::{Context, Outputs, Problem, Step, StepResult, Target, export_plugin};

/// The step.
pub struct PatchConfig;

impl Step for PatchConfig {
    type Config = config::Config;
    const NAME: &'static str = "patch-config";
    const DESCRIPTION: &'static str = "Merge, replace or remove custom configuration in a ConfigMap or Secret (properties, my.cnf, YAML, JSON), with TLS presets, backup and masked diffs";
    const OUTPUTS: &'static [(&'static str, &'static str)] = &[
        ("changed", "true when any file's settings changed"),
        (
            "config_hash",
            "sha256 of the object's files after the change (for a pod template annotation)",
        ),
        (
            "restart_required",
            "true when the change needs a restart (see `restart`)",
        ),
        ("diff_lines", "number of added plus removed lines"),
        (
            "diff",
            "dry run only: the unified diff of every file it would change, secret values masked",
        ),
        (
            "backup",
            "the backup object's name (empty when nothing was written)",
        ),
    ];
    const COMPENSATES: bool = true;

    fn validate(config: &config::Config, target: &Target) -> Vec<Problem> {
        config.plan(target).err().unwrap_or_default()
    }

    fn run(ctx: &Context<'_>, config: config::Config) -> StepResult<Outputs> {
        run::run(ctx, &config)
    }

    fn compensate(ctx: &Context<'_>, config: config::Config) -> StepResult<()> {
        run::compensate(ctx, &config)
    }
}

export_plugin!(PatchConfig);
