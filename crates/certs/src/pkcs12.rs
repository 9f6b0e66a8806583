//! PKCS#12 keystores (key + chain) and truststores (trusted CA
//! certificates, marked trusted for Java), encrypted with PBES2/AES-256 and
//! an HMAC-SHA256 MAC, readable by Java 11+ keytool and OpenSSL 3.

use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKeyChain};

use crate::bundle::TrustBundle;
use crate::error::{Error, Result};
use crate::key::PrivateKey;
use crate::password::Password;

/// A PKCS#12 keystore with one entry `alias`: `key` and its chain (leaf first).
pub fn keystore(
    alias: &str,
    key: &PrivateKey,
    chain_der: &[Vec<u8>],
    password: &Password,
) -> Result<Vec<u8>> {
    let key = p12_keystore::PrivateKey::from_der(key.pkcs8_der()).map_err(p12_error)?;
    let certs = chain_der
        .iter()
        .map(|der| Certificate::from_der(der).map_err(p12_error))
        .collect::<Result<Vec<_>>>()?;
    let Some(leaf) = certs.first() else {
        return Err(Error::Keystore {
            format: "PKCS#12",
            reason: "the certificate chain is empty".into(),
        });
    };
    let local_key_id = crate::inspect::fingerprint(leaf.as_der());
    let local_key_id = hex::decode(&local_key_id[..40]).unwrap_or_default();
    let mut store = KeyStore::new();
    store.add_entry(
        alias,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, key, certs)),
    );
    store.writer(password.expose()).write().map_err(p12_error)
}

/// A PKCS#12 truststore: every CA of `bundle` as a trusted certificate
/// entry `ALIAS_PREFIX`, `ALIAS_PREFIX-1`, ...
pub fn truststore(
    alias_prefix: &str,
    bundle: &TrustBundle,
    password: &Password,
) -> Result<Vec<u8>> {
    let mut store = KeyStore::new();
    for (i, der) in bundle.certs().iter().enumerate() {
        let cert = Certificate::from_der(der).map_err(p12_error)?;
        store.add_entry(
            &crate::jks::alias_at(alias_prefix, i),
            KeyStoreEntry::Certificate(cert),
        );
    }
    store.writer(password.expose()).write().map_err(p12_error)
}

fn p12_error(e: p12_keystore::error::Error) -> Error {
    Error::Keystore {
        format: "PKCS#12",
        reason: e.to_string(),
    }
}
