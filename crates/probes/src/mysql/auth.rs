//! Password scrambles for `mysql_native_password` and `caching_sha2_password`.

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The auth plugins this client can answer.
pub(crate) const NATIVE: &str = "mysql_native_password";
pub(crate) const CACHING_SHA2: &str = "caching_sha2_password";
pub(crate) const CLEAR: &str = "mysql_clear_password";

/// SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))); empty for an empty password.
pub(crate) fn native_password(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password);
    let stage2 = Sha1::digest(stage1);
    let mut hasher = Sha1::new();
    hasher.update(scramble);
    hasher.update(stage2);
    let mask = hasher.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

/// SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble); empty for an empty password.
pub(crate) fn caching_sha2_password(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha256::digest(password);
    let stage2 = Sha256::digest(stage1);
    let mut hasher = Sha256::new();
    hasher.update(stage2);
    hasher.update(scramble);
    let mask = hasher.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAMBLE: &[u8; 20] = b"0123456789abcdefghij";

    /// What a server does: it stores SHA1(SHA1(pw)) and checks the response.
    fn native_server_accepts(stored: &[u8], scramble: &[u8], response: &[u8]) -> bool {
        let mut hasher = Sha1::new();
        hasher.update(scramble);
        hasher.update(stored);
        let mask = hasher.finalize();
        let stage1: Vec<u8> = response
            .iter()
            .zip(mask.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        Sha1::digest(&stage1).as_slice() == stored
    }

    /// What a MySQL 8 server does on the fast path: it caches SHA256(SHA256(pw)).
    fn sha2_server_accepts(cached: &[u8], scramble: &[u8], response: &[u8]) -> bool {
        let mut hasher = Sha256::new();
        hasher.update(cached);
        hasher.update(scramble);
        let mask = hasher.finalize();
        let stage1: Vec<u8> = response
            .iter()
            .zip(mask.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        Sha256::digest(&stage1).as_slice() == cached
    }

    #[test]
    fn native_scramble_is_what_the_server_verifies() {
        let stored = Sha1::digest(Sha1::digest(b"secret-pw"));
        let response = native_password(b"secret-pw", SCRAMBLE);
        assert_eq!(response.len(), 20);
        assert!(native_server_accepts(&stored, SCRAMBLE, &response));
        assert!(!native_server_accepts(
            &stored,
            SCRAMBLE,
            &native_password(b"wrong", SCRAMBLE)
        ));
        assert!(native_password(b"", SCRAMBLE).is_empty());
    }

    #[test]
    fn caching_sha2_scramble_is_what_the_server_verifies() {
        let cached = Sha256::digest(Sha256::digest(b"secret-pw"));
        let response = caching_sha2_password(b"secret-pw", SCRAMBLE);
        assert_eq!(response.len(), 32);
        assert!(sha2_server_accepts(&cached, SCRAMBLE, &response));
        assert!(!sha2_server_accepts(
            &cached,
            b"another-scramble-xyz",
            &response
        ));
    }
}
