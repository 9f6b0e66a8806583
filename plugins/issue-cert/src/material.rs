//! The contents of the output Secret: PEM files and, for JVM engines,
//! PKCS#12 and JKS keystores and truststores.

use std::collections::BTreeMap;

use dbops_certs::summary::{CA_CRT, TLS_CRT, TLS_KEY};
use dbops_certs::{Password, PrivateKey, TrustBundle, jks, pkcs12};
use dbops_engines::tls::KeystoreFormat;
use dbops_plugin_sdk::{StepError, StepResult};

/// `keystore.p12`.
pub const KEYSTORE_P12: &str = "keystore.p12";
/// `truststore.p12`.
pub const TRUSTSTORE_P12: &str = "truststore.p12";
/// `keystore.jks`.
pub const KEYSTORE_JKS: &str = "keystore.jks";
/// `truststore.jks`.
pub const TRUSTSTORE_JKS: &str = "truststore.jks";
/// Key of the password in the password Secret.
pub const PASSWORD_KEY: &str = "password";
/// Alias prefix of CA entries in truststores.
pub const CA_ALIAS: &str = "ca";

/// What goes into the output Secret.
pub struct Material<'a> {
    /// `tls.crt`: leaf first, then its chain.
    pub chain_pem: &'a str,
    /// The leaf's key.
    pub key: &'a PrivateKey,
    /// `ca.crt` and the truststores.
    pub bundle: &'a TrustBundle,
    /// Keystore formats besides PEM.
    pub formats: &'a [KeystoreFormat],
    /// Alias of the key entry.
    pub alias: &'a str,
    /// The keystore password (required when `formats` has keystores).
    pub password: Option<&'a Password>,
}

/// The Secret data for `material`.
pub fn secret_data(material: &Material<'_>) -> StepResult<BTreeMap<String, Vec<u8>>> {
    let mut data = BTreeMap::new();
    data.insert(TLS_CRT.to_owned(), material.chain_pem.as_bytes().to_vec());
    data.insert(
        TLS_KEY.to_owned(),
        material.key.pkcs8_pem().as_bytes().to_vec(),
    );
    data.insert(CA_CRT.to_owned(), material.bundle.to_pem().into_bytes());
    let wants = |f: KeystoreFormat| material.formats.contains(&f);
    if !wants(KeystoreFormat::Pkcs12) && !wants(KeystoreFormat::Jks) {
        return Ok(data);
    }
    let Some(password) = material.password else {
        return Err(StepError::permanent(
            "PluginBug",
            "keystores were requested without a password",
        ));
    };
    let chain = dbops_certs::pem::certificates(material.chain_pem, TLS_CRT).map_err(certs_error)?;
    if wants(KeystoreFormat::Pkcs12) {
        let keystore = pkcs12::keystore(material.alias, material.key, &chain, password);
        data.insert(KEYSTORE_P12.to_owned(), keystore.map_err(certs_error)?);
        let truststore = pkcs12::truststore(CA_ALIAS, material.bundle, password);
        data.insert(TRUSTSTORE_P12.to_owned(), truststore.map_err(certs_error)?);
    }
    if wants(KeystoreFormat::Jks) {
        let keystore = jks::keystore(material.alias, material.key, &chain, password);
        data.insert(KEYSTORE_JKS.to_owned(), keystore.map_err(certs_error)?);
        let truststore = jks::truststore(CA_ALIAS, material.bundle, password);
        data.insert(TRUSTSTORE_JKS.to_owned(), truststore.map_err(certs_error)?);
    }
    Ok(data)
}

/// A certs error as a permanent step error (its message never holds key material).
pub fn certs_error(e: dbops_certs::Error) -> StepError {
    StepError::permanent("CertificateError", e.to_string())
}
