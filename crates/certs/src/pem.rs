//! PEM text: encode DER blocks, parse every block of a text.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Label of certificate blocks.
pub const CERTIFICATE: &str = "CERTIFICATE";
/// Label of PKCS#8 private keys.
pub const PRIVATE_KEY: &str = "PRIVATE KEY";

/// One PEM block. The contents of key blocks are zeroized on drop.
pub struct Block {
    /// The label, e.g. `CERTIFICATE`.
    pub label: String,
    /// The decoded DER bytes.
    pub der: Zeroizing<Vec<u8>>,
}

/// Encode `der` as a PEM block with 64-column lines and a final newline.
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in body.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Every PEM block of `text`, in order; text outside blocks is ignored.
/// `what` names the input in errors.
pub fn parse(text: &str, what: &str) -> Result<Vec<Block>> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = Zeroizing::new(String::new());
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            if line.contains(':') {
                return Err(pem_error(
                    what,
                    format!("block {label} has headers (encrypted PEM is not supported)"),
                ));
            }
            body.push_str(line);
        }
        if !closed {
            return Err(pem_error(what, format!("block {label} has no END line")));
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|e| pem_error(what, format!("block {label} is not base64: {e}")))?;
        blocks.push(Block {
            label: label.to_owned(),
            der: Zeroizing::new(der),
        });
    }
    Ok(blocks)
}

/// The DER of every `CERTIFICATE` block of `text`, in order.
pub fn certificates(text: &str, what: &str) -> Result<Vec<Vec<u8>>> {
    Ok(parse(text, what)?
        .into_iter()
        .filter(|b| b.label == CERTIFICATE)
        .map(|b| b.der.to_vec())
        .collect())
}

/// Encode several DER certificates as one PEM text.
pub fn encode_certificates<'a>(ders: impl IntoIterator<Item = &'a [u8]>) -> String {
    ders.into_iter().map(|d| encode(CERTIFICATE, d)).collect()
}

fn pem_error(what: &str, reason: String) -> Error {
    Error::Pem {
        what: what.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_blocks_and_skips_surrounding_text() {
        let der: Vec<u8> = (0..200u8).collect();
        let text = format!(
            "comment\n{}junk\n{}",
            encode("CERTIFICATE", &der),
            encode("PRIVATE KEY", &[1, 2, 3])
        );
        let blocks = parse(&text, "test").expect("parses");
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert_eq!(*blocks[0].der, der);
        assert_eq!(*blocks[1].der, vec![1, 2, 3]);
        assert!(encode("X", &der).lines().all(|l| l.len() <= 64));
    }

    #[test]
    fn reports_an_unterminated_block_with_the_input_name() {
        let err = parse("-----BEGIN CERTIFICATE-----\nAAAA\n", "ca.crt")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("ca.crt: not valid PEM: block CERTIFICATE has no END line")
        );
    }
}
