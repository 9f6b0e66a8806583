//! The built-in `tls-endpoint` process: a TLS server on the pod IP serving
//! the certificate chain and key read from the pod's Secret volume at
//! container start, so a probe sees exactly which certificate a pod serves.
//!
//! Answers, over TLS or plain TCP (told apart by the first byte): `ruok` ->
//! `imok`; `srvr`/`stat` -> a ZooKeeper-like status; an HTTP `GET`/`HEAD` ->
//! `200 ok`; anything else is echoed until the client closes.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

/// The endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum TlsEndpointError {
    /// No Secret volume holds the certificate.
    #[error(
        "tls-endpoint: no volume holds {file} (set annotation sandbox.dbops.io/tls-secret-volume)"
    )]
    NoVolume {
        /// The certificate file name looked for.
        file: String,
    },
    /// The certificate or key file is unreadable or not PEM.
    #[error("tls-endpoint: cannot load {path}: {reason}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair (e.g. key does not match).
    #[error("tls-endpoint: certificate and key rejected: {0}")]
    Config(#[source] rustls::Error),
    /// The port cannot be bound.
    #[error("tls-endpoint: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// A running endpoint; dropping it closes the listener and every connection.
#[derive(Debug)]
pub struct TlsEndpoint {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Picks the volume directory holding the key pair: the named volume, or
/// the first (in pod order) holding `cert_file`.
pub fn key_pair_dir(
    volumes: &[(String, PathBuf)],
    named: Option<&str>,
    cert_file: &str,
) -> Result<PathBuf, TlsEndpointError> {
    volumes
        .iter()
        .find(|(name, dir)| match named {
            Some(wanted) => name == wanted,
            None => dir.join(cert_file).is_file(),
        })
        .map(|(_, dir)| dir.clone())
        .ok_or_else(|| TlsEndpointError::NoVolume {
            file: cert_file.to_owned(),
        })
}

impl TlsEndpoint {
    /// Loads the pair from `dir` and listens on `ip:port`.
    pub async fn start(
        ip: Ipv4Addr,
        port: u16,
        dir: &Path,
        cert_file: &str,
        key_file: &str,
    ) -> Result<Self, TlsEndpointError> {
        let config = server_config(&dir.join(cert_file), &dir.join(key_file))?;
        let addr = SocketAddr::from((ip, port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| TlsEndpointError::Bind { addr, source })?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            connections.spawn(serve(stream, acceptor.clone()));
                        }
                        Err(err) => debug!(error = %err, "tls-endpoint accept failed"),
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(Self { task })
    }
}

fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsEndpointError> {
    let bad = |path: &Path, reason: String| TlsEndpointError::BadPem {
        path: path.to_owned(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|err| bad(cert, err.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|err| bad(cert, err.to_string()))?;
    if chain.is_empty() {
        return Err(bad(cert, "no CERTIFICATE block".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|err| bad(key, err.to_string()))?;
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(TlsEndpointError::Config)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsEndpointError::Config)
}

const IDLE: Duration = Duration::from_secs(30);

async fn serve(stream: TcpStream, acceptor: TlsAcceptor) {
    let mut first = [0u8; 1];
    let is_tls = matches!(
        tokio::time::timeout(IDLE, stream.peek(&mut first)).await,
        Ok(Ok(1)) if first[0] == 0x16
    );
    if is_tls {
        match tokio::time::timeout(IDLE, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => answer(tls).await,
            Ok(Err(err)) => debug!(error = %err, "tls-endpoint handshake failed"),
            Err(_) => debug!("tls-endpoint handshake timed out"),
        }
    } else {
        answer(stream).await;
    }
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = vec![0u8; 4096];
    let Ok(Ok(n)) = tokio::time::timeout(IDLE, stream.read(&mut buf)).await else {
        return;
    };
    if n == 0 {
        return;
    }
    let request = &buf[..n];
    let reply: Option<&[u8]> = if request.starts_with(b"ruok") {
        Some(b"imok")
    } else if request.starts_with(b"srvr") || request.starts_with(b"stat") {
        Some(b"Zookeeper version: 3.8.4-sandbox, built on 01/01/2024\nLatency min/avg/max: 0/0.0/0\nReceived: 1\nSent: 1\nConnections: 1\nOutstanding: 0\nZxid: 0x0\nMode: standalone\nNode count: 5\n")
    } else if request.starts_with(b"GET ") || request.starts_with(b"HEAD ") {
        Some(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
    } else {
        None
    };
    match reply {
        Some(reply) => {
            let _ = stream.write_all(reply).await;
        }
        None => {
            // Echo until the peer closes or goes idle.
            let mut chunk = request.to_vec();
            loop {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
                match tokio::time::timeout(IDLE, stream.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => chunk = buf[..n].to_vec(),
                    _ => break,
                }
            }
        }
    }
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        std::fs::write(dir.join("tls.crt"), cert.pem()).expect("write");
        std::fs::write(dir.join("tls.key"), key.serialize_pem()).expect("write");
        cert.pem()
    }

    #[tokio::test]
    async fn answers_ruok_in_plain_tcp() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write_pair(tmp.path());
        let ip = Ipv4Addr::new(127, 0, 0, 1);
        let probe = std::net::TcpListener::bind((ip, 0)).expect("bind");
        let port = probe.local_addr().expect("addr").port();
        drop(probe);
        let _endpoint = TlsEndpoint::start(ip, port, tmp.path(), "tls.crt", "tls.key")
            .await
            .expect("start");
        let mut stream = TcpStream::connect((ip, port)).await.expect("connect");
        stream.write_all(b"ruok").await.expect("write");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.expect("read");
        assert_eq!(reply, "imok");
    }

    #[test]
    fn picks_volume_with_certificate() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        std::fs::create_dir_all(&a).expect("mkdir");
        std::fs::create_dir_all(&b).expect("mkdir");
        write_pair(&b);
        let volumes = vec![("a".to_owned(), a.clone()), ("b".to_owned(), b.clone())];
        assert_eq!(key_pair_dir(&volumes, None, "tls.crt").expect("dir"), b);
        assert_eq!(
            key_pair_dir(&volumes, Some("a"), "tls.crt").expect("dir"),
            a
        );
        assert!(key_pair_dir(&volumes, Some("c"), "tls.crt").is_err());
    }
}
