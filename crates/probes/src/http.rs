//! A minimal HTTP/1.1 GET client: enough to ask a health endpoint.
//!
//! One request per connection (`Connection: close`); the response is read
//! until its end is known (Content-Length, the last chunk, or the server
//! closing), never past [`MAX_RESPONSE_BYTES`].

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{ProbeError, Result};
use crate::net::{Conn, Endpoint};
use crate::tls::TlsSession;

/// The most a probe reads of one response, headers included.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// What to ask for and what counts as healthy.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// Path and query, starting with `/`.
    pub path: String,
    /// `Host` header; defaults to the TLS server name or the address.
    pub host: Option<String>,
    /// Accepted status codes; empty means any 2xx.
    pub expect_status: Vec<u16>,
    /// When set, the body (trimmed) must equal this.
    pub expect_body: Option<String>,
}

impl HttpCheck {
    /// GET `path`, expecting any 2xx.
    pub fn get(path: impl Into<String>) -> HttpCheck {
        HttpCheck {
            path: path.into(),
            host: None,
            expect_status: Vec::new(),
            expect_body: None,
        }
    }
}

/// A response that passed the check.
#[derive(Debug, Clone, Serialize)]
pub struct HttpReport {
    /// The status code.
    pub status: u16,
    /// The body, decoded as UTF-8 lossily and cut to 512 bytes.
    pub body_preview: String,
    /// The TLS session for `https`.
    pub tls: Option<TlsSession>,
    /// Time from connect to the end of the response.
    pub latency: Duration,
}

/// A parsed HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body with any chunked encoding removed.
    pub body: Vec<u8>,
}

/// GET `check.path` from `endpoint` (HTTPS when `endpoint.tls` is set) and check the answer.
pub fn probe(endpoint: &Endpoint, check: &HttpCheck) -> Result<HttpReport> {
    let started = Instant::now();
    let mut conn = Conn::open(endpoint, started + endpoint.timeout)?;
    let host = check
        .host
        .clone()
        .or_else(|| endpoint.tls.as_ref().map(|tls| tls.server_name.clone()))
        .unwrap_or_else(|| endpoint.address.clone());
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: dbops-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        check.path
    );
    conn.send(request.as_bytes(), "sending the http request")?;
    let raw = conn.read_until(MAX_RESPONSE_BYTES, "reading the http response", |bytes| {
        matches!(parse_response(bytes), Ok(Some(_)))
    })?;
    let response = match parse_response(&raw) {
        Ok(Some(response)) => response,
        // The server closed the connection: a body without length ends here.
        Ok(None) => parse_until_close(&raw).map_err(|detail| protocol(endpoint, detail))?,
        Err(detail) => return Err(protocol(endpoint, detail)),
    };
    let body_text = String::from_utf8_lossy(&response.body).into_owned();
    let status_ok = if check.expect_status.is_empty() {
        (200..300).contains(&response.status)
    } else {
        check.expect_status.contains(&response.status)
    };
    if !status_ok {
        return Err(ProbeError::Unhealthy {
            address: endpoint.address.clone(),
            detail: format!(
                "GET {} answered {} (expected {}): {}",
                check.path,
                response.status,
                describe_expected(&check.expect_status),
                preview(&body_text, 200)
            ),
        });
    }
    if let Some(expected) = &check.expect_body
        && body_text.trim() != expected
    {
        return Err(ProbeError::Unhealthy {
            address: endpoint.address.clone(),
            detail: format!(
                "GET {} answered {:?}, expected {expected:?}",
                check.path,
                preview(body_text.trim(), 200)
            ),
        });
    }
    Ok(HttpReport {
        status: response.status,
        body_preview: preview(&body_text, 512),
        tls: conn.take_tls_session(),
        latency: started.elapsed(),
    })
}

fn describe_expected(statuses: &[u16]) -> String {
    if statuses.is_empty() {
        "2xx".to_string()
    } else {
        statuses
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

fn preview(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn protocol(endpoint: &Endpoint, detail: String) -> ProbeError {
    ProbeError::Protocol {
        protocol: "http",
        address: endpoint.address.clone(),
        detail,
    }
}

struct Head {
    status: u16,
    headers: Vec<(String, String)>,
    body_start: usize,
}

fn parse_head(bytes: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = find(bytes, b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&bytes[..end])
        .map_err(|_| "the response head is not valid text".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!(
            "not an HTTP/1.x response: {:?}",
            preview(status_line, 80)
        ));
    }
    let status = parts
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..1000).contains(code))
        .ok_or_else(|| format!("bad status line {:?}", preview(status_line, 80)))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {:?}", preview(line, 80)))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Some(Head {
        status,
        headers,
        body_start: end + 4,
    }))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Parse a response whose end is known from its own framing; `Ok(None)` while incomplete.
pub fn parse_response(bytes: &[u8]) -> Result<Option<Response>, String> {
    let Some(head) = parse_head(bytes)? else {
        return Ok(None);
    };
    let rest = &bytes[head.body_start..];
    let chunked = header(&head.headers, "transfer-encoding")
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        match decode_chunked(rest)? {
            Some(body) => body,
            None => return Ok(None),
        }
    } else if let Some(length) = header(&head.headers, "content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad content-length {length:?}"))?;
        if rest.len() < length {
            return Ok(None);
        }
        rest[..length].to_vec()
    } else if head.status == 204 || head.status == 304 || head.status < 200 {
        Vec::new()
    } else {
        // Delimited by connection close.
        return Ok(None);
    };
    Ok(Some(Response {
        status: head.status,
        headers: head.headers,
        body,
    }))
}

/// Parse a response after the server closed the connection.
pub fn parse_until_close(bytes: &[u8]) -> Result<Response, String> {
    let head = parse_head(bytes)?
        .ok_or_else(|| "the connection closed before the response head ended".to_string())?;
    let chunked = header(&head.headers, "transfer-encoding").is_some();
    if chunked || header(&head.headers, "content-length").is_some() {
        return Err("the connection closed before the response body ended".to_string());
    }
    Ok(Response {
        status: head.status,
        body: bytes[head.body_start..].to_vec(),
        headers: head.headers,
    })
}

fn decode_chunked(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(rest, b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&rest[..line_end])
            .map_err(|_| "bad chunk size line".to_string())?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            // Trailers end with an empty line; most servers send none.
            return Ok(find(rest, b"\r\n").map(|_| body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        if &rest[size..size + 2] != b"\r\n" {
            return Err("a chunk does not end with CRLF".to_string());
        }
        rest = &rest[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_bodies_are_complete_only_when_all_bytes_arrived() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ntrue";
        let response = parse_response(full).unwrap().unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"true");
        assert_eq!(parse_response(&full[..full.len() - 1]).unwrap(), None);
    }

    #[test]
    fn chunked_bodies_are_reassembled() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\ntr\r\n2;ext=1\r\nue\r\n0\r\n\r\n";
        let response = parse_response(raw).unwrap().unwrap();
        assert_eq!(response.body, b"true");
        assert_eq!(parse_response(&raw[..raw.len() - 2]).unwrap(), None);
    }

    #[test]
    fn garbage_is_a_parse_error_not_a_panic() {
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
        assert!(parse_response(&[0xff; 64]).unwrap().is_none());
    }

    #[test]
    fn a_body_without_length_ends_at_close() {
        let raw = b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nhello";
        assert_eq!(parse_response(raw).unwrap(), None);
        assert_eq!(parse_until_close(raw).unwrap().body, b"hello");
    }
}
