//! The command line: one module per command. [`main`] sets up the runtime
//! and telemetry, runs the command and flushes traces on every exit path.
//!
//! Stages per command: `validate` and `plan` never touch the cluster
//! (`plan --diff` reads it, as a dry run); `run`, `status` and `certs` do;
//! `plugins list` only reads the plugin directory.

pub mod certs;
pub mod demo;
pub mod plan;
pub mod plugins;
pub mod prepare;
pub mod run;
pub mod sandbox;
pub mod status;
pub mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::exit;
use crate::telemetry::{LogFormat, Telemetry};

/// dbops: day-2 operations on databases in Kubernetes, as declarative
/// pipelines of plugin steps.
#[derive(Debug, Parser)]
#[command(name = "dbops", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr: readable text or JSON lines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "DBOPS_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Directory of plugin libraries (default: $DBOPS_PLUGIN_DIR, else next to the dbops binary).
    #[arg(long, global = true, value_name = "DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Cluster connection flags.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// Kubeconfig file (default: in-cluster config, else $KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl KubeArgs {
    /// Connect to the cluster these flags name (the error is for the user).
    pub async fn connect(&self) -> Result<crate::run::cluster::Cluster, String> {
        crate::run::cluster::connect(self.kubeconfig.as_deref(), self.context.as_deref())
            .await
            .map(crate::run::cluster::Cluster::new)
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline against the cluster.
    Run(run::RunArgs),
    /// Validate pipelines without touching the cluster; reports every problem.
    Validate(validate::ValidateArgs),
    /// Show the resolved steps and inputs of a pipeline; with --diff, also
    /// what a run would change in the cluster (a dry run); writes nothing.
    Plan(plan::PlanArgs),
    /// Plugin libraries.
    Plugins {
        /// What to do.
        #[command(subcommand)]
        command: plugins::PluginsCommand,
    },
    /// Runs recorded in the cluster (from their journals).
    Status(status::StatusArgs),
    /// TLS certificates dbops manages: issuer, serial, expiry; exits 7 when
    /// one expires within the threshold.
    Certs(certs::CertsArgs),
    /// Start a local Kubernetes API server sandbox (for trying dbops).
    Sandbox(sandbox::SandboxArgs),
    /// Run a complete demonstration against a local sandbox.
    Demo(demo::DemoArgs),
}

/// Run the parsed command line; returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dbops: cannot start the async runtime: {e}");
            return exit::INTERNAL;
        }
    };
    let telemetry = match Telemetry::init(cli.log_format, runtime.handle()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dbops: {e}");
            return exit::VALIDATION;
        }
    };
    // A panic must not skip the flush below.
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(dispatch(cli))
    }))
    .unwrap_or_else(|_| {
        eprintln!("dbops: internal error (panic); this is a bug, please report it");
        exit::INTERNAL
    });
    // Outside the runtime: the exporters block while flushing.
    telemetry.shutdown();
    // Plugin threads abandoned at a deadline must not keep the process alive.
    runtime.shutdown_background();
    code
}

async fn dispatch(cli: Cli) -> i32 {
    let plugin_dir = crate::plugins::plugin_dir(cli.plugin_dir.as_deref());
    match cli.command {
        Command::Run(args) => run::run(args, &plugin_dir, cli.log_format).await,
        Command::Validate(args) => validate::validate(args, &plugin_dir),
        Command::Plan(args) => plan::plan(args, &plugin_dir).await,
        Command::Plugins { command } => plugins::plugins(command, &plugin_dir),
        Command::Status(args) => status::status(args).await,
        Command::Certs(args) => certs::certs(args).await,
        Command::Sandbox(args) => sandbox::sandbox(args).await,
        Command::Demo(args) => demo::demo(args, &plugin_dir).await,
    }
}

/// Print an error for the user (stderr, also as a log event).
pub fn report_error(message: &str) {
    tracing::error!("{message}");
}
