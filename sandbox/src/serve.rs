//! `dbops sandbox`: serve until interrupted.

use std::path::Path;

use crate::{Error, Sandbox, SandboxConfig};

/// Starts a sandbox, writes an admin kubeconfig to `kubeconfig_path`,
/// prints how to use it, and serves until Ctrl-C (SIGINT) or SIGTERM.
/// Call it from the caller's tokio runtime (what `dbops sandbox` does).
pub async fn serve_forever(config: SandboxConfig, kubeconfig_path: &Path) -> Result<(), Error> {
    let sandbox = Sandbox::start(config).await?;
    sandbox
        .write_kubeconfig(kubeconfig_path, None)
        .map_err(|e| {
            Error::Background(format!(
                "cannot write the kubeconfig {}: {e}",
                kubeconfig_path.display()
            ))
        })?;
    let path = kubeconfig_path.display();
    println!(
        "dbops sandbox: Kubernetes API at {} and {}",
        sandbox.https_url(),
        sandbox.url()
    );
    println!("kubeconfig (admin): {path}");
    println!();
    println!("  export KUBECONFIG={path}");
    println!("  kubectl get namespaces");
    println!("  dbops run PIPELINE --kubeconfig {path}");
    println!();
    println!("Stop with Ctrl-C.");
    wait_for_signal().await;
    sandbox.shutdown();
    Ok(())
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}
