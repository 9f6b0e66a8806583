//! Private material and where it must never appear: the needles to look
//! for (PEM body lines of private keys, passwords, their base64 forms as
//! stored in Secrets, binary keystores as base64) and a scan over text.

use std::collections::BTreeMap;

use base64::Engine as _;

/// One secret value to look for, with where it came from.
#[derive(Debug, Clone)]
pub struct Needle {
    /// e.g. `ns/zk-tls[tls.key] line 3`.
    pub origin: String,
    /// The text that must not appear.
    pub text: String,
}

/// Needles for the keys of a Secret that hold private material: `*.key`,
/// `password*`, keystores (`*.p12`, `*.jks`). Every PEM body line of a
/// private key (at least 16 characters), the whole value when it is not
/// PEM (a password), and the base64 of the whole value (how the Secret
/// stores it, and how a careless dump would show it).
pub fn needles(origin: &str, data: &BTreeMap<String, Vec<u8>>) -> Vec<Needle> {
    let mut out = Vec::new();
    for (key, value) in data {
        let private = key.ends_with(".key")
            || key.contains("password")
            || key.ends_with(".p12")
            || key.ends_with(".jks");
        if !private || value.is_empty() {
            continue;
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        out.push(Needle {
            origin: format!("{origin}[{key}] as base64"),
            text: encoded.chars().take(48).collect(),
        });
        let Ok(text) = std::str::from_utf8(value) else {
            continue;
        };
        if text.contains("-----BEGIN") {
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.len() >= 16 && !line.starts_with("-----") {
                    out.push(Needle {
                        origin: format!("{origin}[{key}] PEM line {i}"),
                        text: line.to_owned(),
                    });
                }
            }
        } else if text.trim().len() >= 8 {
            out.push(Needle {
                origin: format!("{origin}[{key}]"),
                text: text.trim().to_owned(),
            });
        }
    }
    out
}

/// The needles found in `haystack`, described with where they were found.
pub fn leaks(place: &str, haystack: &str, needles: &[Needle]) -> Vec<String> {
    needles
        .iter()
        .filter(|n| haystack.contains(&n.text))
        .map(|n| format!("{} found in {place}", n.origin))
        .collect()
}
