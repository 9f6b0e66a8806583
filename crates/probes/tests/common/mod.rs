//! Shared helpers of the integration tests: small servers on loopback.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
#![allow(dead_code)] // each test crate uses a subset

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use dbops_probes::testing::IssuedCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let handler = Arc::new(handler);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handler = handler.clone();
            let tls = tls.clone();
            thread::spawn(move || handle(stream, tls, &*handler));
        }
    });
    address
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
