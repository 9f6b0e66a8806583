//! Readiness probes: `tcpSocket`, `exec` and `httpGet` against the pod IP.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
        let https = http.scheme.as_deref() == Some("HTTPS");
        return tokio::time::timeout(timeout, http_ok(&host, port, &path, https))
            .await
            .unwrap_or(false);
    }
    if let Some(grpc) = &probe.grpc {
        // Approximated: the gRPC port accepts connections.
        let Ok(port) = u16::try_from(grpc.port) else {
            return false;
        };
        return matches!(
            tokio::time::timeout(timeout, TcpStream::connect((pod_ip, port))).await,
            Ok(Ok(_))
        );
    }
    // An empty probe: nothing to check.
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

/// An HTTP/1.0 GET (over TLS for HTTPS, without verifying the server's
/// certificate, as the kubelet does); success for a 2xx or 3xx status.
async fn http_ok(host: &str, port: u16, path: &str, https: bool) -> bool {
    let Ok(stream) = TcpStream::connect((host, port)).await else {
        return false;
    };
    if !https {
        return http_exchange(stream, host, path).await;
    }
    let (Some(config), Ok(name)) = (
        insecure::client_config(),
        ServerName::try_from(host.to_owned()),
    ) else {
        return false;
    };
    match tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
    {
        Ok(tls) => http_exchange(tls, host, path).await,
        Err(_) => false,
    }
}

async fn http_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    path: &str,
) -> bool {
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

/// A TLS client that accepts any server certificate (HTTPS probes only).
mod insecure {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
    use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    #[derive(Debug)]
    struct AcceptAny(WebPkiSupportedAlgorithms);

    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_schemes()
        }
    }

    /// The client configuration of HTTPS probes (`None` only if the ring
    /// provider lacked the default protocol versions).
    pub fn client_config() -> Option<Arc<ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(AcceptAny(provider.signature_verification_algorithms));
        let builder = ClientConfig::builder_with_provider(provider as Arc<CryptoProvider>)
            .with_safe_default_protocol_versions()
            .ok()?;
        Some(Arc::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
        ))
    }
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
    async fn https_probe_does_not_verify_the_certificate() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(vec!["elsewhere.test".to_owned()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        std::fs::write(tmp.path().join("tls.crt"), cert.pem()).expect("write");
        std::fs::write(tmp.path().join("tls.key"), key.serialize_pem()).expect("write");
        let ip = std::net::Ipv4Addr::LOCALHOST;
        let port = std::net::TcpListener::bind((ip, 0))
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let _endpoint = super::super::tls_endpoint::TlsEndpoint::start(
            ip,
            port,
            tmp.path(),
            "tls.crt",
            "tls.key",
        )
        .await
        .expect("endpoint");
        let c =
            container(json!({"httpGet": {"port": port, "path": "/healthz", "scheme": "HTTPS"}}));
        assert!(ready(&c, "127.0.0.1", tmp.path(), &[]).await);
        let closed = container(json!({"httpGet": {"port": 1, "scheme": "HTTPS"}}));
        assert!(!ready(&closed, "127.0.0.1", tmp.path(), &[]).await);
    }

    #[tokio::test]
    async fn no_probe_means_ready() {
        let c = container(json!(null));
        assert!(ready(&c, "127.0.0.1", &std::env::temp_dir(), &[]).await);
    }
}
