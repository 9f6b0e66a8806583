//! Which keys hold secrets, so their values are never shown in diffs or logs.

use crate::format::Format;
use crate::key::Key;

/// What a masked value is shown as.
pub const MASK: &str = "****";

/// What a masked value that this edit changed is shown as.
pub const MASK_CHANGED: &str = "**** (changed)";

/// Whether a setting name looks like it holds a secret: it contains
/// `password`, `passwd`, `secret`, `token`, `credential` or `jaas` (Kafka's
/// `sasl.jaas.config` carries inline passwords), or ends in `key`
/// or `pwd` (case-insensitive). Deliberately broad: masking a harmless
/// value costs little, showing a password costs a lot.
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "jaas",
    ]
    .iter()
    .any(|word| lower.contains(word))
        || lower.ends_with("key")
        || lower.ends_with("pwd")
}

/// Whether `key` in `format` holds a secret (for YAML/JSON: any segment of
/// the path, so a `secrets:` mapping is masked whole).
pub fn is_secret_key(format: Format, key: &Key) -> bool {
    match format {
        Format::Yaml | Format::Json => key.0.iter().any(|s| is_secret_name(s)),
        Format::Properties | Format::Ini => is_secret_name(key.leaf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_secret_names() {
        for name in [
            "ssl.keystore.password",
            "ssl.keyStore.passwordPath",
            "druid.metadata.storage.connector.password",
            "client_secret",
            "auth.token",
            "ssl_key",
            "ssl.key",
            "AccessKey",
            "listener.name.sasl_ssl.plain.sasl.jaas.config",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "ssl.keystore.location",
            "clientPort",
            "keystore.type",
            "ssl_cert",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}
