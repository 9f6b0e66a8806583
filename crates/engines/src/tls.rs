//! What each engine needs from a TLS Secret (used by the issue-cert step).
//!
//! Every TLS Secret holds PEM `tls.crt` (leaf + chain), `tls.key` (PKCS#8,
//! the only encoding Kafka accepts, read by every other engine too) and
//! `ca.crt`. JVM engines (ZooKeeper, Kafka, Druid) also get PKCS#12 and JKS
//! keystores and truststores protected by a password kept in its own
//! Secret; MySQL-family engines read the PEM files directly.

use crate::Engine;

/// A keystore format an engine can be configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeystoreFormat {
    /// PEM files `tls.crt`, `tls.key`, `ca.crt` (always present).
    Pem,
    /// `keystore.p12` and `truststore.p12`.
    Pkcs12,
    /// `keystore.jks` and `truststore.jks`.
    Jks,
}

impl KeystoreFormat {
    /// The name used in configuration: `pem`, `pkcs12`, `jks`.
    pub fn name(self) -> &'static str {
        match self {
            KeystoreFormat::Pem => "pem",
            KeystoreFormat::Pkcs12 => "pkcs12",
            KeystoreFormat::Jks => "jks",
        }
    }
}

/// The TLS material an engine reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsNeeds {
    /// The keystore formats to write by default.
    pub formats: &'static [KeystoreFormat],
    /// Whether the private key must be PKCS#8 PEM (dbops always writes PKCS#8).
    pub pkcs8_key: bool,
    /// How the engine should receive the keystore password, for docs and
    /// for patch-config: a file path setting where the engine has one.
    pub password_setting: Option<&'static str>,
}

const JVM: &[KeystoreFormat] = &[
    KeystoreFormat::Pem,
    KeystoreFormat::Pkcs12,
    KeystoreFormat::Jks,
];
const PEM_ONLY: &[KeystoreFormat] = &[KeystoreFormat::Pem];

/// What `engine` needs in its TLS Secret.
pub fn needs(engine: Engine) -> TlsNeeds {
    match engine {
        // ZooKeeper 3.8+ reads the password from a file (`ssl.keyStore.passwordPath`).
        Engine::Zookeeper => TlsNeeds {
            formats: JVM,
            pkcs8_key: true,
            password_setting: Some("ssl.keyStore.passwordPath"),
        },
        // Kafka's PEM support takes PKCS#8 keys only.
        Engine::Kafka => TlsNeeds {
            formats: JVM,
            pkcs8_key: true,
            password_setting: Some("ssl.keystore.password"),
        },
        Engine::Druid => TlsNeeds {
            formats: JVM,
            pkcs8_key: true,
            password_setting: Some("druid.server.https.keyStorePassword"),
        },
        Engine::Perconaxtradb | Engine::Generic => TlsNeeds {
            formats: PEM_ONLY,
            pkcs8_key: true,
            password_setting: None,
        },
    }
}

/// Whether the engine needs a keystore password Secret.
pub fn needs_password(engine: Engine) -> bool {
    needs(engine)
        .formats
        .iter()
        .any(|f| *f != KeystoreFormat::Pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jvm_engines_get_keystores_and_mysql_gets_pem() {
        for engine in [Engine::Zookeeper, Engine::Kafka, Engine::Druid] {
            assert!(
                needs(engine).formats.contains(&KeystoreFormat::Jks),
                "{engine}"
            );
            assert!(needs_password(engine));
        }
        assert_eq!(needs(Engine::Perconaxtradb).formats, &[KeystoreFormat::Pem]);
        assert!(!needs_password(Engine::Generic));
    }
}
