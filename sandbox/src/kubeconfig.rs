//! Writing a kubeconfig that points kubectl and kube at the sandbox.

use std::io;
use std::path::Path;

use base64::Engine as _;

/// The kubeconfig text for a server URL, bearer token and (for HTTPS) the CA
/// certificate in PEM.
pub fn render(server: &str, token: &str, ca_pem: Option<&str>, namespace: &str) -> String {
    let ca = ca_pem
        .map(|pem| {
            format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem)
            )
        })
        .unwrap_or_default();
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: dbops-sandbox\n  cluster:\n    server: \"{server}\"\n{ca}\
         users:\n\
         - name: dbops-sandbox-user\n  user:\n    token: \"{token}\"\n\
         contexts:\n\
         - name: dbops-sandbox\n  context:\n    cluster: dbops-sandbox\n    user: dbops-sandbox-user\n    namespace: \"{namespace}\"\n\
         current-context: dbops-sandbox\n\
         preferences: {{}}\n"
    )
}

/// Writes the kubeconfig to `path` (mode 0600: it holds a token), creating
/// parent directories.
pub fn write(path: &Path, text: &str) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
