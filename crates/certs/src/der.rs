//! The few DER encodings this crate writes and reads by hand (JKS key
//! protection, SEC1 to PKCS#8), with definite lengths only.

/// Encode a tag-length-value.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// One element read from DER input.
pub struct Element<'a> {
    /// The tag byte.
    pub tag: u8,
    /// The content octets.
    pub content: &'a [u8],
    /// Tag, length and content.
    pub whole: &'a [u8],
    /// The input after the element.
    pub rest: &'a [u8],
}

/// Read one tag-length-value.
pub fn read(input: &[u8]) -> Option<Element<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    Some(Element {
        tag,
        content: &rest[..len],
        whole: &input[..header + len],
        rest: &rest[len..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_long_form_above_127_bytes_and_read_back() {
        assert_eq!(tlv(0x04, &[0; 3])[..2], [0x04, 3]);
        let long = tlv(0x04, &[7; 300]);
        assert_eq!(long[..4], [0x04, 0x82, 0x01, 0x2C]);
        let e = read(&long).expect("reads");
        assert_eq!(
            (e.tag, e.content.len(), e.whole.len(), e.rest.len()),
            (0x04, 300, 304, 0)
        );
    }
}
