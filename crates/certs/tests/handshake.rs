//! Issued certificates work in real TLS: an in-memory rustls handshake
//! (the stack dbops' probes use) with mutual authentication, for every key
//! algorithm, verifying a member's DNS name, the wildcard, serverAuth and
//! clientAuth; a wrong name or an untrusted CA is refused.

use std::sync::Arc;
use std::time::Duration;

use dbops_certs::{Ca, CaSpec, Issued, KeyAlgorithm, LeafSpec, PrivateKey, Subject};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

fn ca(algorithm: KeyAlgorithm) -> Ca {
    named_ca(algorithm, "handshake CA")
}

fn named_ca(algorithm: KeyAlgorithm, name: &str) -> Ca {
    Ca::create(&CaSpec {
        subject: Subject {
            common_name: name.into(),
            ..Subject::default()
        },
        validity: Duration::from_secs(86_400),
        algorithm,
    })
    .expect("CA")
}

fn leaf(ca: &Ca, algorithm: KeyAlgorithm) -> (Issued, PrivateKey) {
    let key = PrivateKey::generate(algorithm).expect("key");
    let spec = LeafSpec {
        subject: Subject {
            common_name: "kafka".into(),
            ..Subject::default()
        },
        dns_names: vec![
            "kafka-0.kafka-pods.db.svc".into(),
            "*.kafka-pods.db.svc.cluster.local".into(),
        ],
        ip_addresses: Vec::new(),
        validity: Duration::from_secs(86_400),
        server_auth: true,
        client_auth: true,
    };
    (ca.issue(&spec, &key).expect("issues"), key)
}

fn chain(issued: &Issued, ca: &Ca) -> Vec<CertificateDer<'static>> {
    vec![
        CertificateDer::from(issued.cert_der.clone()),
        CertificateDer::from(ca.cert_der().to_vec()),
    ]
}

fn key_der(key: &PrivateKey) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()))
}

/// Handshake a client (trusting `client_trusts`, presenting `client`) with
/// a server (presenting `server`, requiring a client certificate from
/// `server_trusts`); returns the first error.
fn handshake(
    server: (&Issued, &PrivateKey, &Ca),
    client: (&Issued, &PrivateKey, &Ca),
    client_trusts: &Ca,
    server_trusts: &Ca,
    name: &str,
) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = |ca: &Ca| {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca.cert_der().to_vec()))
            .expect("root");
        Arc::new(roots)
    };
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots(server_trusts), provider.clone())
            .build()
            .map_err(|e| e.to_string())?;
    let server_config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain(server.0, server.2), key_der(server.1))
        .map_err(|e| e.to_string())?;
    let client_config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots(client_trusts))
        .with_client_auth_cert(chain(client.0, client.2), key_der(client.1))
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let mut c = ClientConnection::new(Arc::new(client_config), name).map_err(|e| e.to_string())?;
    let mut s = ServerConnection::new(Arc::new(server_config)).map_err(|e| e.to_string())?;
    for _ in 0..20 {
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(());
        }
        let mut buf = Vec::new();
        c.write_tls(&mut buf).map_err(|e| e.to_string())?;
        s.read_tls(&mut buf.as_slice()).map_err(|e| e.to_string())?;
        s.process_new_packets()
            .map_err(|e| format!("server: {e}"))?;
        let mut buf = Vec::new();
        s.write_tls(&mut buf).map_err(|e| e.to_string())?;
        c.read_tls(&mut buf.as_slice()).map_err(|e| e.to_string())?;
        c.process_new_packets()
            .map_err(|e| format!("client: {e}"))?;
    }
    Err("handshake did not finish".into())
}

#[test]
fn mutual_tls_succeeds_for_every_key_algorithm_and_member_name() {
    for (ca_alg, leaf_alg) in [
        (KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP256),
        (KeyAlgorithm::EcdsaP384, KeyAlgorithm::EcdsaP384),
        (KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048),
    ] {
        let ca = ca(ca_alg);
        let (server, server_key) = leaf(&ca, leaf_alg);
        let (client, client_key) = leaf(&ca, leaf_alg);
        for name in [
            "kafka-0.kafka-pods.db.svc",
            "kafka-2.kafka-pods.db.svc.cluster.local",
        ] {
            handshake(
                (&server, &server_key, &ca),
                (&client, &client_key, &ca),
                &ca,
                &ca,
                name,
            )
            .unwrap_or_else(|e| panic!("{leaf_alg} {name}: {e}"));
        }
    }
}

#[test]
fn a_wrong_name_or_an_untrusted_ca_is_refused() {
    let ca1 = ca(KeyAlgorithm::EcdsaP256);
    let ca2 = named_ca(KeyAlgorithm::EcdsaP256, "another CA");
    let (server, server_key) = leaf(&ca1, KeyAlgorithm::EcdsaP256);
    let (client, client_key) = leaf(&ca1, KeyAlgorithm::EcdsaP256);
    let s = (&server, &server_key, &ca1);
    let c = (&client, &client_key, &ca1);
    let wrong_name =
        handshake(s, c, &ca1, &ca1, "kafka-0.other.db.svc").expect_err("name mismatch");
    assert!(wrong_name.contains("client:"), "{wrong_name}");
    let untrusted =
        handshake(s, c, &ca2, &ca1, "kafka-0.kafka-pods.db.svc").expect_err("unknown CA");
    assert!(untrusted.contains("UnknownIssuer"), "{untrusted}");
    let client_untrusted =
        handshake(s, c, &ca1, &ca2, "kafka-0.kafka-pods.db.svc").expect_err("client CA unknown");
    assert!(client_untrusted.contains("server:"), "{client_untrusted}");
}
