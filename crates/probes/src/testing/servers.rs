//! Small servers for tests: serve every connection of a listener with a
//! handler, over plain TCP or TLS (rustls). Used by this crate's tests and
//! by the Kafka fake.
#![allow(clippy::unwrap_used)] // Reason: test support; a broken test server should fail loudly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::IssuedCert;

/// A rustls server config serving `cert`.
pub fn server_config(cert: &IssuedCert) -> Arc<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    Arc::new(config)
}

/// A bidirectional stream the handlers talk over (plain or TLS).
pub trait Duplex: Read + Write + Send {}
impl<T: Read + Write + Send> Duplex for T {}

/// Serve every connection on 127.0.0.1:0 with `handler` in its own thread,
/// over TLS when `tls` is given. Returns the address.
pub fn serve<F>(tls: Option<Arc<rustls::ServerConfig>>, handler: F) -> String
where
    F: Fn(&mut dyn Duplex) + Send + Sync + 'static,
{
    serve_on("127.0.0.1:0".parse().unwrap(), tls, handler)
        .unwrap()
        .to_string()
}

/// Like [`serve`], on `address` (e.g. a sandbox pod IP and a fixed port).
pub fn serve_on<F>(
    address: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: F,
) -> std::io::Result<SocketAddr>
where
    F: Fn(&mut dyn Duplex) + Send + Sync + 'static,
{
    let listener = TcpListener::bind(address)?;
    let address = listener.local_addr()?;
    let handler = Arc::new(handler);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handler = handler.clone();
            let tls = tls.clone();
            thread::spawn(move || handle(stream, tls, &*handler));
        }
    });
    Ok(address)
}

fn handle(
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: &dyn Fn(&mut dyn Duplex),
) {
    match tls {
        None => {
            let mut stream = stream;
            handler(&mut stream);
        }
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(config) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            handler(&mut tls);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }
}
