//! Kafka's binary protocol primitives: big-endian integers, (compact) strings
//! and arrays, unsigned varints and tagged fields, plus request framing.
//!
//! "Flexible" message versions (KIP-482) use compact strings/arrays (length
//! as an unsigned varint of length+1) and end every struct with tagged fields.
//! The reader is bounded: a length larger than the bytes left is an error,
//! never an allocation.

/// Builds a request body.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Writer {
        Writer::default()
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn i8(&mut self, value: i8) -> &mut Writer {
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn i16(&mut self, value: i16) -> &mut Writer {
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn i32(&mut self, value: i32) -> &mut Writer {
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn bool(&mut self, value: bool) -> &mut Writer {
        self.buf.push(u8::from(value));
        self
    }

    pub(crate) fn uvarint(&mut self, mut value: u32) -> &mut Writer {
        while value >= 0x80 {
            self.buf.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
        self
    }

    /// A string, compact when `flexible`.
    pub(crate) fn string(&mut self, value: &str, flexible: bool) -> &mut Writer {
        let bytes = value.as_bytes();
        if flexible {
            self.uvarint(bytes.len() as u32 + 1);
        } else {
            self.i16(bytes.len() as i16);
        }
        self.buf.extend_from_slice(bytes);
        self
    }

    /// A nullable string, compact when `flexible`.
    pub(crate) fn nullable_string(&mut self, value: Option<&str>, flexible: bool) -> &mut Writer {
        match value {
            Some(value) => self.string(value, flexible),
            None if flexible => self.uvarint(0),
            None => self.i16(-1),
        }
    }

    /// An array length (`None` for a null array), compact when `flexible`.
    pub(crate) fn array_len(&mut self, len: Option<usize>, flexible: bool) -> &mut Writer {
        match (len, flexible) {
            (Some(len), true) => self.uvarint(len as u32 + 1),
            (Some(len), false) => self.i32(len as i32),
            (None, true) => self.uvarint(0),
            (None, false) => self.i32(-1),
        }
    }

    /// An empty tagged-field section (only in flexible versions).
    pub(crate) fn no_tagged_fields(&mut self, flexible: bool) -> &mut Writer {
        if flexible {
            self.uvarint(0);
        }
        self
    }
}

/// Reads a response body; every method fails instead of reading past the end.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

pub(crate) type WireResult<T> = Result<T, String>;

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, len: usize, what: &str) -> WireResult<&'a [u8]> {
        if self.remaining() < len {
            return Err(format!(
                "truncated {what} at byte {} ({len} bytes needed, {} left)",
                self.pos,
                self.remaining()
            ));
        }
        let bytes = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &str) -> WireResult<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn i8(&mut self, what: &str) -> WireResult<i8> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i16(&mut self, what: &str) -> WireResult<i16> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i32(&mut self, what: &str) -> WireResult<i32> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i64(&mut self, what: &str) -> WireResult<i64> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn bool(&mut self, what: &str) -> WireResult<bool> {
        Ok(self.i8(what)? != 0)
    }

    pub(crate) fn uuid(&mut self, what: &str) -> WireResult<[u8; 16]> {
        self.array(what)
    }

    pub(crate) fn uvarint(&mut self, what: &str) -> WireResult<u32> {
        let mut value: u32 = 0;
        for shift in (0..35).step_by(7) {
            let byte = self.i8(what)? as u8;
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!(
            "varint {what} longer than 5 bytes at byte {}",
            self.pos
        ))
    }

    /// A nullable string, compact when `flexible`.
    pub(crate) fn nullable_string(
        &mut self,
        flexible: bool,
        what: &str,
    ) -> WireResult<Option<String>> {
        let len = if flexible {
            match self.uvarint(what)? {
                0 => return Ok(None),
                n => (n - 1) as usize,
            }
        } else {
            match self.i16(what)? {
                -1 => return Ok(None),
                n if n < 0 => return Err(format!("negative length {n} of {what}")),
                n => n as usize,
            }
        };
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("{what} is not UTF-8"))
            .map(Some)
    }

    /// A non-null string.
    pub(crate) fn string(&mut self, flexible: bool, what: &str) -> WireResult<String> {
        self.nullable_string(flexible, what)?
            .ok_or_else(|| format!("{what} is null"))
    }

    /// An array length; `None` for a null array. Each element takes at least
    /// `min_element_bytes`, so absurd lengths are rejected before any allocation.
    pub(crate) fn array_len(
        &mut self,
        flexible: bool,
        min_element_bytes: usize,
        what: &str,
    ) -> WireResult<Option<usize>> {
        let len = if flexible {
            match self.uvarint(what)? {
                0 => return Ok(None),
                n => (n - 1) as usize,
            }
        } else {
            match self.i32(what)? {
                -1 => return Ok(None),
                n if n < 0 => return Err(format!("negative length {n} of {what}")),
                n => n as usize,
            }
        };
        if len.saturating_mul(min_element_bytes.max(1)) > self.remaining() {
            return Err(format!(
                "{what} claims {len} elements but only {} bytes are left",
                self.remaining()
            ));
        }
        Ok(Some(len))
    }

    /// An array of i32 (e.g. replica ids).
    pub(crate) fn i32_array(&mut self, flexible: bool, what: &str) -> WireResult<Vec<i32>> {
        let len = self.array_len(flexible, 4, what)?.unwrap_or(0);
        (0..len).map(|_| self.i32(what)).collect()
    }

    /// Skip a tagged-field section (only in flexible versions).
    pub(crate) fn skip_tagged_fields(&mut self, flexible: bool) -> WireResult<()> {
        if !flexible {
            return Ok(());
        }
        let count = self.uvarint("tagged field count")?;
        for _ in 0..count {
            self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")? as usize;
            self.take(size, "tagged field")?;
        }
        Ok(())
    }
}

/// The client id sent in every request header.
pub(crate) const CLIENT_ID: &str = "dbops-probe";

/// Frame a request: size, header (v1, or v2 when `flexible_header`), body.
pub(crate) fn frame_request(
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    flexible_header: bool,
    body: &[u8],
) -> Vec<u8> {
    let mut header = Writer::new();
    header
        .i16(api_key)
        .i16(api_version)
        .i32(correlation_id)
        // The client id is a classic nullable string even in header v2.
        .nullable_string(Some(CLIENT_ID), false)
        .no_tagged_fields(flexible_header);
    let header = header.into_bytes();
    let size = (header.len() + body.len()) as i32;
    let mut out = Vec::with_capacity(4 + size as usize);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for value in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut writer = Writer::new();
            writer.uvarint(value);
            let bytes = writer.into_bytes();
            assert_eq!(Reader::new(&bytes).uvarint("v").unwrap(), value);
        }
        let mut writer = Writer::new();
        writer.uvarint(300);
        assert_eq!(writer.into_bytes(), vec![0xac, 0x02]);
    }

    #[test]
    fn strings_in_both_encodings() {
        let mut writer = Writer::new();
        writer
            .string("ab", false)
            .string("cd", true)
            .nullable_string(None, true);
        let bytes = writer.into_bytes();
        assert_eq!(bytes, vec![0, 2, b'a', b'b', 3, b'c', b'd', 0]);
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.string(false, "s").unwrap(), "ab");
        assert_eq!(reader.string(true, "s").unwrap(), "cd");
        assert_eq!(reader.nullable_string(true, "s").unwrap(), None);
        assert_eq!(reader.remaining(), 0);
    }

    #[test]
    fn absurd_lengths_are_rejected_without_allocating() {
        let bytes = [0x7f, 0xff, 0xff, 0xff, 0, 0];
        assert!(Reader::new(&bytes).array_len(false, 4, "a").is_err());
        let bytes = [0x7f, 0xff, b'x'];
        assert!(Reader::new(&bytes).string(false, "s").is_err());
        let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(Reader::new(&bytes).uvarint("v").is_err());
        assert!(Reader::new(&[]).i32("x").is_err());
    }

    #[test]
    fn request_headers_follow_the_spec() {
        let framed = frame_request(18, 3, 7, true, &[0xaa]);
        let expected_header: Vec<u8> = [
            &[0, 18, 0, 3, 0, 0, 0, 7][..],
            &[0, CLIENT_ID.len() as u8],
            CLIENT_ID.as_bytes(),
            &[0],    // header tagged fields
            &[0xaa], // body
        ]
        .concat();
        assert_eq!(&framed[4..], &expected_header[..]);
        assert_eq!(
            i32::from_be_bytes([framed[0], framed[1], framed[2], framed[3]]) as usize,
            expected_header.len()
        );
    }
}
