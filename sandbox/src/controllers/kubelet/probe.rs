//! Readiness probes: `tcpSocket`, `exec` and `httpGet` against the pod IP.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::process;

/// Runs the container's readiness probe once; a container without one is
/// ready.
pub async fn ready(
    container: &Container,
    pod_ip: &str,
    dir: &Path,
    env: &[(String, String)],
) -> bool {
    match &container.readiness_probe {
        Some(probe) => run(probe, container, pod_ip, dir, env).await,
        None => true,
    }
}

async fn run(
    probe: &Probe,
    container: &Container,
    pod_ip: &str,
    dir: &Path,
    env: &[(String, String)],
) -> bool {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(tcp) = &probe.tcp_socket {
        let Some(port) = resolve_port(&tcp.port, container) else {
            return false;
        };
        let host = tcp.host.clone().unwrap_or_else(|| pod_ip.to_owned());
        return matches!(
            tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port))).await,
            Ok(Ok(_))
        );
    }
    if let Some(exec) = &probe.exec {
        let argv = exec.command.clone().unwrap_or_default();
        return process::run_check(&argv, dir, env, timeout).await;
    }
    if let Some(http) = &probe.http_get {
        let Some(port) = resolve_port(&http.port, container) else {
            return false;
        };
        let host = http.host.clone().unwrap_or_else(|| pod_ip.to_owned());
        let path = http.path.clone().unwrap_or_else(|| "/".to_owned());
        return tokio::time::timeout(timeout, http_ok(&host, port, &path))
            .await
            .unwrap_or(false);
    }
    // gRPC or an empty probe: nothing the sandbox can check.
    true
}

/// A numeric port, or a named port looked up in the container's ports.
fn resolve_port(port: &IntOrString, container: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => name.parse().ok().or_else(|| {
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
        }),
    }
}

/// A plain HTTP/1.0 GET; success for a 2xx or 3xx status.
async fn http_ok(host: &str, port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect((host, port)).await else {
        return false;
    };
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: kube-probe/sandbox\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => read += n,
        }
    }
    let line = String::from_utf8_lossy(&head[..read]);
    matches!(line.get(9..10), Some("2") | Some("3"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(probe: serde_json::Value) -> Container {
        serde_json::from_value(json!({
            "name": "c",
            "ports": [{"name": "client", "containerPort": 1}],
            "readinessProbe": probe
        }))
        .expect("container")
    }

    #[tokio::test]
    async fn tcp_probe_follows_the_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let c = container(json!({"tcpSocket": {"port": port}}));
        let dir = std::env::temp_dir();
        assert!(ready(&c, "127.0.0.1", &dir, &[]).await);
        drop(listener);
        assert!(!ready(&c, "127.0.0.1", &dir, &[]).await);
    }

    #[tokio::test]
    async fn exec_probe_sees_env() {
        let c = container(json!({"exec": {"command": ["sh", "-c", "test \"$POD_NAME\" = zk-0"]}}));
        let dir = std::env::temp_dir();
        let env = vec![("POD_NAME".to_owned(), "zk-0".to_owned())];
        assert!(ready(&c, "127.0.0.1", &dir, &env).await);
        assert!(!ready(&c, "127.0.0.1", &dir, &[]).await);
    }

    #[test]
    fn named_ports_resolve() {
        let c = container(json!(null));
        assert_eq!(
            resolve_port(&IntOrString::String("client".into()), &c),
            Some(1)
        );
        assert_eq!(resolve_port(&IntOrString::String("nope".into()), &c), None);
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Some(80));
    }

    #[tokio::test]
    async fn no_probe_means_ready() {
        let c = container(json!(null));
        assert!(ready(&c, "127.0.0.1", &std::env::temp_dir(), &[]).await);
    }
}
