//! Keystore passwords: random generation and a type that never shows its content.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Characters of generated passwords: letters and digits only, so a
/// password is safe in properties files, shell variables and URLs.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Length of generated passwords (about 190 bits).
pub const GENERATED_LEN: usize = 32;

/// A password. Zeroized on drop; `Debug` shows `<redacted>`; no `Display`.
pub struct Password(Zeroizing<String>);

impl Password {
    /// A new random password of [`GENERATED_LEN`] letters and digits.
    pub fn generate() -> Result<Password> {
        let mut out = Zeroizing::new(String::with_capacity(GENERATED_LEN));
        let mut buf = Zeroizing::new([0u8; 64]);
        while out.len() < GENERATED_LEN {
            getrandom::fill(buf.as_mut_slice()).map_err(|e| Error::Random(e.to_string()))?;
            // Rejection sampling: 248 = 4 * 62 keeps the choice uniform.
            for &b in buf.iter().filter(|&&b| b < 248) {
                if out.len() == GENERATED_LEN {
                    break;
                }
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
        Ok(Password(out))
    }

    /// Wrap an existing password (e.g. read from a Secret).
    pub fn new(text: impl Into<String>) -> Password {
        Password(Zeroizing::new(text.into()))
    }

    /// The password text; only for writing it where it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_distinct() {
        let a = Password::generate().expect("random");
        let b = Password::generate().expect("random");
        assert_eq!(a.expose().len(), GENERATED_LEN);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "Password(<redacted>)");
    }
}
