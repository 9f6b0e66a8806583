//! Serves a sandbox until Ctrl-C and writes an admin kubeconfig:
//! `cargo run -p dbops-sandbox --example serve -- /tmp/sandbox.kubeconfig`.

use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), dbops_sandbox::Error> {
    let path = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("sandbox.kubeconfig"), PathBuf::from);
    dbops_sandbox::serve_forever(dbops_sandbox::SandboxConfig::default(), &path).await
}
