//! `dbops sandbox`: start the local Kubernetes API server sandbox (crate
//! `dbops-sandbox`), write an admin kubeconfig and serve until Ctrl-C.
//! Lets a user try pipelines without a cluster.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::exit;

/// Arguments of `dbops sandbox`.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Where to write the admin kubeconfig.
    #[arg(long, default_value = "sandbox.kubeconfig", value_name = "FILE")]
    pub kubeconfig_out: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
}

/// Execute `dbops sandbox`.
pub async fn sandbox(args: SandboxArgs) -> i32 {
    let config = dbops_sandbox::SandboxConfig {
        listen: args.listen,
        ..Default::default()
    };
    match dbops_sandbox::serve_forever(config, &args.kubeconfig_out).await {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            eprintln!("dbops sandbox: {e}");
            exit::INTERNAL
        }
    }
}
