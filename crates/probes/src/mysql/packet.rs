//! MySQL wire format: packet framing, length-encoded values, the server's
//! initial handshake and the client's replies.

use crate::error::{ProbeError, Result};
use crate::net::Conn;

/// The most a probe reads of one packet (our queries return a few rows).
pub const MAX_PACKET_BYTES: usize = 1024 * 1024;

pub(crate) const CLIENT_LONG_PASSWORD: u32 = 0x1;
pub(crate) const CLIENT_PROTOCOL_41: u32 = 0x200;
pub(crate) const CLIENT_SSL: u32 = 0x800;
pub(crate) const CLIENT_TRANSACTIONS: u32 = 0x2000;
pub(crate) const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
pub(crate) const CLIENT_MULTI_RESULTS: u32 = 0x20000;
pub(crate) const CLIENT_PLUGIN_AUTH: u32 = 0x80000;
pub(crate) const CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x200000;
const UTF8MB4_GENERAL_CI: u8 = 45;

/// Reads and writes packets, tracking the sequence id.
pub(crate) struct Packets {
    pub(crate) conn: Conn,
    pub(crate) seq: u8,
}

impl Packets {
    pub(crate) fn read(&mut self, during: &str) -> Result<Vec<u8>> {
        let mut header = [0u8; 4];
        self.conn.read_exact(&mut header, during)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        if len > MAX_PACKET_BYTES {
            return Err(self.protocol(format!(
                "a {len}-byte packet while {during} is larger than {MAX_PACKET_BYTES} bytes"
            )));
        }
        self.seq = header[3].wrapping_add(1);
        let mut payload = vec![0u8; len];
        self.conn.read_exact(&mut payload, during)?;
        Ok(payload)
    }

    pub(crate) fn write(&mut self, payload: &[u8], during: &str) -> Result<()> {
        let len = (payload.len() as u32).to_le_bytes();
        let mut packet = Vec::with_capacity(payload.len() + 4);
        packet.extend_from_slice(&[len[0], len[1], len[2], self.seq]);
        packet.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.conn.send(&packet, during)
    }

    pub(crate) fn protocol(&self, detail: String) -> ProbeError {
        ProbeError::Protocol {
            protocol: "mysql",
            address: self.conn.address().to_string(),
            detail,
        }
    }

    /// Turn an ERR packet into an error naming the server's code and message.
    pub(crate) fn refused(&self, packet: &[u8], during: &str) -> ProbeError {
        ProbeError::Refused {
            protocol: "mysql",
            address: self.conn.address().to_string(),
            detail: format!("{during}: {}", describe_err_packet(packet)),
        }
    }
}

/// "ERROR 1045 (28000): Access denied …" from an ERR packet.
pub(crate) fn describe_err_packet(packet: &[u8]) -> String {
    if packet.len() < 3 {
        return "an empty error packet".to_string();
    }
    let code = u16::from_le_bytes([packet[1], packet[2]]);
    let rest = &packet[3..];
    let (state, message) = match rest.split_first() {
        Some((b'#', after)) if after.len() >= 5 => (
            String::from_utf8_lossy(&after[..5]).into_owned(),
            &after[5..],
        ),
        _ => ("HY000".to_string(), rest),
    };
    let message = String::from_utf8_lossy(&message[..message.len().min(512)]);
    format!("ERROR {code} ({state}): {message}")
}

/// A bounded cursor over one packet.
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Cursor<'a> {
        Cursor { data, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], String> {
        if self.remaining() < len {
            return Err(format!("truncated {what} at byte {}", self.pos));
        }
        let out = &self.data[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Bytes up to a NUL (consumed), or to the end when there is none.
    pub(crate) fn nul_terminated(&mut self) -> &'a [u8] {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == 0) {
            Some(end) => {
                self.pos += end + 1;
                &rest[..end]
            }
            None => {
                self.pos = self.data.len();
                rest
            }
        }
    }

    /// A length-encoded integer; `None` for the NULL marker 0xfb.
    pub(crate) fn lenenc_int(&mut self, what: &str) -> Result<Option<u64>, String> {
        let first = self.u8(what)?;
        Ok(Some(match first {
            0xfb => return Ok(None),
            0xfc => u64::from(self.u16(what)?),
            0xfd => {
                let b = self.take(3, what)?;
                u64::from(u32::from_le_bytes([b[0], b[1], b[2], 0]))
            }
            0xfe => {
                let b = self.take(8, what)?;
                u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            0xff => return Err(format!("0xff is not a length ({what})")),
            small => u64::from(small),
        }))
    }

    /// A length-encoded string; `None` for SQL NULL.
    pub(crate) fn lenenc_string(&mut self, what: &str) -> Result<Option<String>, String> {
        let Some(len) = self.lenenc_int(what)? else {
            return Ok(None);
        };
        let len = usize::try_from(len).map_err(|_| format!("{what} is too long"))?;
        let bytes = self.take(len, what)?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }
}

/// The server's initial handshake (protocol version 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handshake {
    pub(crate) server_version: String,
    pub(crate) connection_id: u32,
    pub(crate) capabilities: u32,
    pub(crate) scramble: Vec<u8>,
    pub(crate) auth_plugin: String,
}

pub(crate) fn parse_handshake(packet: &[u8]) -> Result<Handshake, String> {
    let mut c = Cursor::new(packet);
    let protocol = c.u8("protocol version")?;
    if protocol != 10 {
        return Err(format!(
            "protocol version {protocol}, expected 10 (is this a MySQL port?)"
        ));
    }
    let server_version = String::from_utf8_lossy(c.nul_terminated()).into_owned();
    let connection_id = c.u32("connection id")?;
    let mut scramble = c.take(8, "auth plugin data")?.to_vec();
    c.u8("filler")?;
    let mut capabilities = u32::from(c.u16("capabilities")?);
    let mut auth_plugin = "mysql_native_password".to_string();
    if c.remaining() > 0 {
        c.u8("character set")?;
        c.u16("status flags")?;
        capabilities |= u32::from(c.u16("upper capabilities")?) << 16;
        let auth_data_len = c.u8("auth data length")? as usize;
        c.take(10, "reserved bytes")?;
        if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let part2_len = auth_data_len.saturating_sub(8).max(13);
            let part2 = c.take(part2_len.min(c.remaining()), "auth plugin data part 2")?;
            scramble.extend_from_slice(part2);
            while scramble.last() == Some(&0) {
                scramble.pop();
            }
        }
        if capabilities & CLIENT_PLUGIN_AUTH != 0 && c.remaining() > 0 {
            auth_plugin = String::from_utf8_lossy(c.nul_terminated()).into_owned();
        }
    }
    Ok(Handshake {
        server_version,
        connection_id,
        capabilities,
        scramble,
        auth_plugin,
    })
}

/// The capabilities this client asks for, limited to what the server offers.
pub(crate) fn client_capabilities(server: u32, tls: bool) -> u32 {
    let wanted = CLIENT_LONG_PASSWORD
        | CLIENT_PROTOCOL_41
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_MULTI_RESULTS
        | CLIENT_PLUGIN_AUTH
        | CLIENT_PLUGIN_AUTH_LENENC
        | if tls { CLIENT_SSL } else { 0 };
    wanted & server
}

/// The SSLRequest packet payload.
pub(crate) fn ssl_request(capabilities: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&capabilities.to_le_bytes());
    out.extend_from_slice(&(MAX_PACKET_BYTES as u32).to_le_bytes());
    out.push(UTF8MB4_GENERAL_CI);
    out.extend_from_slice(&[0u8; 23]);
    out
}

/// The HandshakeResponse41 payload.
pub(crate) fn handshake_response(
    capabilities: u32,
    user: &str,
    auth_response: &[u8],
    auth_plugin: &str,
) -> Vec<u8> {
    let mut out = ssl_request(capabilities);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    if capabilities & CLIENT_PLUGIN_AUTH_LENENC != 0 {
        write_lenenc_int(&mut out, auth_response.len() as u64);
    } else {
        out.push(auth_response.len() as u8);
    }
    out.extend_from_slice(auth_response);
    if capabilities & CLIENT_PLUGIN_AUTH != 0 {
        out.extend_from_slice(auth_plugin.as_bytes());
        out.push(0);
    }
    out
}

pub(crate) fn write_lenenc_int(out: &mut Vec<u8>, value: u64) {
    match value {
        0..=250 => out.push(value as u8),
        251..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(value as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            out.push(0xfd);
            out.extend_from_slice(&(value as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

/// An EOF packet (0xfe with a short payload), as opposed to a row or lenenc 0xfe.
pub(crate) fn is_eof(packet: &[u8]) -> bool {
    packet.first() == Some(&0xfe) && packet.len() < 9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mariadb_handshake() -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(b"5.5.5-10.11.19-MariaDB\0");
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(b"abcdefgh");
        p.push(0);
        let caps: u32 =
            CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | CLIENT_SSL;
        p.extend_from_slice(&(caps as u16).to_le_bytes());
        p.push(45);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0u8; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0");
        p.extend_from_slice(b"mysql_native_password\0");
        p
    }

    #[test]
    fn the_initial_handshake_is_parsed() {
        let hs = parse_handshake(&mariadb_handshake()).unwrap();
        assert_eq!(hs.server_version, "5.5.5-10.11.19-MariaDB");
        assert_eq!(hs.connection_id, 7);
        assert_eq!(hs.scramble, b"abcdefghijklmnopqrst");
        assert_eq!(hs.auth_plugin, "mysql_native_password");
        assert_ne!(hs.capabilities & CLIENT_SSL, 0);
    }

    #[test]
    fn every_truncation_of_a_handshake_fails_cleanly() {
        let full = mariadb_handshake();
        for cut in 0..20 {
            assert!(parse_handshake(&full[..cut]).is_err(), "cut at {cut}");
        }
        assert!(parse_handshake(b"\xff\x15\x04#08004Too many connections").is_err());
    }

    #[test]
    fn lenenc_values_round_trip() {
        for value in [
            0u64,
            250,
            251,
            65_535,
            65_536,
            16_777_215,
            16_777_216,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            write_lenenc_int(&mut out, value);
            assert_eq!(Cursor::new(&out).lenenc_int("v").unwrap(), Some(value));
        }
        assert_eq!(Cursor::new(&[0xfb]).lenenc_string("v").unwrap(), None);
        assert!(Cursor::new(&[0x05, b'a']).lenenc_string("v").is_err());
    }

    #[test]
    fn error_packets_are_described() {
        let text = describe_err_packet(b"\xff\x15\x04#28000Access denied for user 'x'");
        assert_eq!(text, "ERROR 1045 (28000): Access denied for user 'x'");
    }
}
