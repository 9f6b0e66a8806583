//! Java KeyStore (JKS) files, written by hand: the format is small and
//! stable, and older JVM configurations still ask for it.
//!
//! Layout (all integers big-endian): magic `FEEDFEED`, version 2, entry
//! count; per entry a tag (1 = private key, 2 = trusted certificate), the
//! alias (Java modified UTF-8 with a u16 length), a millisecond timestamp,
//! then either the protected key (an `EncryptedPrivateKeyInfo` using the
//! JDK's proprietary key protector, OID 1.3.6.1.4.1.42.2.17.1.1) and its
//! certificate chain, or one certificate; each certificate is the type
//! `X.509` and its DER with a u32 length. The file ends with
//! SHA-1(password as UTF-16BE ‖ "Mighty Aphrodite" ‖ everything before).
//!
//! The key protector: salt = 20 random bytes; the keystream is
//! SHA-1(pw ‖ salt), SHA-1(pw ‖ previous digest), ...; output is
//! salt ‖ (key XOR keystream) ‖ SHA-1(pw ‖ key).

use std::time::{SystemTime, UNIX_EPOCH};

use sha1::{Digest, Sha1};
use zeroize::Zeroizing;

use crate::bundle::TrustBundle;
use crate::der;
use crate::error::{Error, Result};
use crate::key::PrivateKey;
use crate::password::Password;

const MAGIC: u32 = 0xFEED_FEED;
const VERSION: u32 = 2;
const TAG_PRIVATE_KEY: u32 = 1;
const TAG_TRUSTED_CERT: u32 = 2;
const WHITENER: &[u8] = b"Mighty Aphrodite";
/// DER of the JDK key protector's AlgorithmIdentifier OID 1.3.6.1.4.1.42.2.17.1.1.
const KEY_PROTECTOR_OID: [u8; 10] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0x2A, 0x02, 0x11, 0x01, 0x01];

/// A JKS keystore with one private key entry `alias` (key + chain, leaf
/// first), the key protected with the same password as the store.
pub fn keystore(
    alias: &str,
    key: &PrivateKey,
    chain_der: &[Vec<u8>],
    password: &Password,
) -> Result<Vec<u8>> {
    if chain_der.is_empty() {
        return Err(jks_error("the certificate chain is empty".into()));
    }
    let pw = password_bytes(password);
    let protected = protect_key(key.pkcs8_der(), &pw)?;
    let mut out = header(1);
    put_u32(&mut out, TAG_PRIVATE_KEY);
    put_alias(&mut out, alias)?;
    put_u64(&mut out, now_millis());
    put_bytes(&mut out, &encrypted_private_key_info(&protected))?;
    put_u32(&mut out, len_u32(chain_der.len())?);
    for der in chain_der {
        put_cert(&mut out, der)?;
    }
    finish(out, &pw)
}

/// A JKS truststore: every CA of `bundle` as a trusted certificate entry
/// `ALIAS_PREFIX`, `ALIAS_PREFIX-1`, ...
pub fn truststore(
    alias_prefix: &str,
    bundle: &TrustBundle,
    password: &Password,
) -> Result<Vec<u8>> {
    let mut out = header(len_u32(bundle.len())?);
    for (i, der) in bundle.certs().iter().enumerate() {
        put_u32(&mut out, TAG_TRUSTED_CERT);
        put_alias(&mut out, &alias_at(alias_prefix, i))?;
        put_u64(&mut out, now_millis());
        put_cert(&mut out, der)?;
    }
    finish(out, &password_bytes(password))
}

/// The alias of the `index`-th entry: `prefix`, `prefix-1`, `prefix-2`, ...
pub fn alias_at(prefix: &str, index: usize) -> String {
    if index == 0 {
        prefix.to_owned()
    } else {
        format!("{prefix}-{index}")
    }
}

/// Whether `data` is a JKS file whose integrity digest matches `password`.
pub fn verify(data: &[u8], password: &Password) -> bool {
    if data.len() < 12 + 20 || data[..4] != MAGIC.to_be_bytes() {
        return false;
    }
    let (body, digest) = data.split_at(data.len() - 20);
    store_digest(body, &password_bytes(password)).as_slice() == digest
}

/// Recover the PKCS#8 key protected by [`keystore`] (for tests and checks).
pub fn unprotect_key(protected: &[u8], password: &Password) -> Result<Zeroizing<Vec<u8>>> {
    if protected.len() < 40 {
        return Err(jks_error("the protected key is too short".into()));
    }
    let pw = password_bytes(password);
    let (salt, rest) = protected.split_at(20);
    let (encrypted, check) = rest.split_at(rest.len() - 20);
    let stream = keystream(&pw, salt, encrypted.len());
    let plain: Zeroizing<Vec<u8>> = Zeroizing::new(
        encrypted
            .iter()
            .zip(stream.iter())
            .map(|(a, b)| a ^ b)
            .collect(),
    );
    let mut h = Sha1::new();
    h.update(&*pw);
    h.update(&*plain);
    if h.finalize().as_slice() != check {
        return Err(jks_error("wrong password or corrupted key".into()));
    }
    Ok(plain)
}

fn protect_key(pkcs8: &[u8], pw: &[u8]) -> Result<Vec<u8>> {
    let mut salt = [0u8; 20];
    getrandom::fill(&mut salt).map_err(|e| Error::Random(e.to_string()))?;
    let stream = keystream(pw, &salt, pkcs8.len());
    let mut out = Vec::with_capacity(pkcs8.len() + 40);
    out.extend_from_slice(&salt);
    out.extend(pkcs8.iter().zip(stream.iter()).map(|(a, b)| a ^ b));
    let mut h = Sha1::new();
    h.update(pw);
    h.update(pkcs8);
    out.extend_from_slice(&h.finalize());
    Ok(out)
}

fn keystream(pw: &[u8], salt: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut stream = Zeroizing::new(Vec::with_capacity(len + 20));
    let mut digest = salt.to_vec();
    while stream.len() < len {
        let mut h = Sha1::new();
        h.update(pw);
        h.update(&digest);
        digest = h.finalize().to_vec();
        stream.extend_from_slice(&digest);
    }
    stream.truncate(len);
    stream
}

/// `SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING protected }`.
fn encrypted_private_key_info(protected: &[u8]) -> Vec<u8> {
    let mut alg = der::tlv(0x06, &KEY_PROTECTOR_OID);
    alg.extend_from_slice(&[0x05, 0x00]);
    let mut body = der::tlv(0x30, &alg);
    body.extend(der::tlv(0x04, protected));
    der::tlv(0x30, &body)
}

fn password_bytes(password: &Password) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(
        password
            .expose()
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect(),
    )
}

fn header(count: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    put_u32(&mut out, MAGIC);
    put_u32(&mut out, VERSION);
    put_u32(&mut out, count);
    out
}

fn finish(mut out: Vec<u8>, pw: &[u8]) -> Result<Vec<u8>> {
    let digest = store_digest(&out, pw);
    out.extend_from_slice(&digest);
    Ok(out)
}

fn store_digest(body: &[u8], pw: &[u8]) -> Vec<u8> {
    let mut h = Sha1::new();
    h.update(pw);
    h.update(WHITENER);
    h.update(body);
    h.finalize().to_vec()
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    put_u32(out, len_u32(bytes.len())?);
    out.extend_from_slice(bytes);
    Ok(())
}

/// Java's `writeUTF`: u16 length, then modified UTF-8 (plain UTF-8 for the
/// printable ASCII we allow in aliases). Java lowercases aliases; so do we.
fn put_alias(out: &mut Vec<u8>, alias: &str) -> Result<()> {
    if alias.is_empty() || !alias.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(jks_error(format!(
            "alias {alias:?} must be non-empty printable ASCII without spaces"
        )));
    }
    put_utf(out, &alias.to_ascii_lowercase());
    Ok(())
}

fn put_utf(out: &mut Vec<u8>, text: &str) {
    let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&text.as_bytes()[..usize::from(len)]);
}

fn put_cert(out: &mut Vec<u8>, der: &[u8]) -> Result<()> {
    put_utf(out, "X.509");
    put_bytes(out, der)
}

fn len_u32(len: usize) -> Result<u32> {
    u32::try_from(len).map_err(|_| jks_error(format!("a length of {len} does not fit the format")))
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn jks_error(reason: String) -> Error {
    Error::Keystore {
        format: "JKS",
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyAlgorithm;

    #[test]
    fn the_key_protector_round_trips_and_detects_a_wrong_password() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let pw = Password::new("changeit");
        let protected = protect_key(key.pkcs8_der(), &password_bytes(&pw)).expect("protects");
        assert_eq!(protected.len(), key.pkcs8_der().len() + 40);
        let plain = unprotect_key(&protected, &pw).expect("unprotects");
        assert_eq!(plain.as_slice(), key.pkcs8_der());
        assert!(unprotect_key(&protected, &Password::new("wrong")).is_err());
    }
}
