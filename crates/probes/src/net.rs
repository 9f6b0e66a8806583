//! Connections with a deadline: TCP, optionally upgraded to TLS, and bounded reads.
//!
//! Every read and write re-arms the socket timeout with the time left until
//! the probe's deadline, so a server that trickles bytes cannot hold a probe
//! past it, and every read has a size limit, so a server that sends garbage
//! cannot make a probe allocate without bound.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::error::{ProbeError, Result};
use crate::tls::{self, TlsOptions, TlsSession};

/// Where and how to reach one server.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host:port`, usually a pod IP and port (`10.1.2.3:2181`) or a Service name.
    pub address: String,
    /// Speak TLS from the first byte (not used by MySQL, which upgrades in-protocol).
    pub tls: Option<TlsOptions>,
    /// The longest one probe attempt may take, connection included.
    pub timeout: Duration,
}

impl Endpoint {
    /// A plaintext endpoint.
    pub fn plain(address: impl Into<String>, timeout: Duration) -> Endpoint {
        Endpoint {
            address: address.into(),
            tls: None,
            timeout,
        }
    }

    /// The same endpoint speaking TLS with `tls`.
    pub fn with_tls(mut self, tls: TlsOptions) -> Endpoint {
        self.tls = Some(tls);
        self
    }
}

/// Open a TCP connection to `address` before `deadline`, trying every resolved address.
pub(crate) fn connect_tcp(address: &str, deadline: Instant) -> Result<TcpStream> {
    let candidates: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|source| ProbeError::Resolve {
            address: address.to_string(),
            source,
        })?
        .collect();
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address");
    for candidate in candidates {
        let Some(left) = remaining(deadline) else {
            return Err(timeout(address, "connecting"));
        };
        match TcpStream::connect_timeout(&candidate, left) {
            Ok(stream) => {
                // Nagle only delays our small requests; failing to disable it is harmless.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(err) if is_timeout(&err) => return Err(timeout(address, "connecting")),
            Err(err) => last_error = err,
        }
    }
    Err(ProbeError::Connect {
        address: address.to_string(),
        source: last_error,
    })
}

/// Time left until `deadline`, or `None` once it passed.
pub(crate) fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
}

pub(crate) fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

pub(crate) fn timeout(address: &str, during: &str) -> ProbeError {
    ProbeError::Timeout {
        address: address.to_string(),
        during: during.to_string(),
    }
}

/// Arm both socket timeouts with the time left until `deadline`.
pub(crate) fn arm(sock: &TcpStream, address: &str, deadline: Instant, during: &str) -> Result<()> {
    let left = remaining(deadline).ok_or_else(|| timeout(address, during))?;
    sock.set_read_timeout(Some(left))
        .and_then(|()| sock.set_write_timeout(Some(left)))
        .map_err(|source| ProbeError::Io {
            address: address.to_string(),
            during: during.to_string(),
            source,
        })
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    /// Only while a plaintext stream is being upgraded to TLS.
    Upgrading,
}

/// One connection of one probe attempt.
pub(crate) struct Conn {
    address: String,
    deadline: Instant,
    stream: Stream,
    tls: Option<TlsSession>,
}

impl Conn {
    /// Connect to the endpoint, with TLS when it asks for it.
    pub(crate) fn open(endpoint: &Endpoint, deadline: Instant) -> Result<Conn> {
        let mut conn = Conn::open_plain(&endpoint.address, deadline)?;
        if let Some(options) = &endpoint.tls {
            conn.start_tls(options)?;
        }
        Ok(conn)
    }

    /// Connect over plain TCP (protocols that upgrade later use [`Conn::start_tls`]).
    pub(crate) fn open_plain(address: &str, deadline: Instant) -> Result<Conn> {
        let sock = connect_tcp(address, deadline)?;
        Ok(Conn {
            address: address.to_string(),
            deadline,
            stream: Stream::Plain(sock),
            tls: None,
        })
    }

    /// Run the TLS handshake on this (plaintext) connection.
    pub(crate) fn start_tls(&mut self, options: &TlsOptions) -> Result<()> {
        let Stream::Plain(sock) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Err(ProbeError::TlsSettings {
                reason: format!("connection to {} is already using tls", self.address),
            });
        };
        let (stream, session) = tls::handshake(sock, &self.address, options, self.deadline)?;
        self.stream = Stream::Tls(Box::new(stream));
        self.tls = Some(session);
        Ok(())
    }

    /// The TLS session, when the connection uses TLS.
    pub(crate) fn tls_session(&self) -> Option<&TlsSession> {
        self.tls.as_ref()
    }

    /// Give the TLS session to the caller's report.
    pub(crate) fn take_tls_session(&mut self) -> Option<TlsSession> {
        self.tls.take()
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    fn sock(&self) -> Option<&TcpStream> {
        match &self.stream {
            Stream::Plain(sock) => Some(sock),
            Stream::Tls(stream) => Some(&stream.sock),
            Stream::Upgrading => None,
        }
    }

    fn prepare(&self, during: &str) -> Result<()> {
        match self.sock() {
            Some(sock) => arm(sock, &self.address, self.deadline, during),
            None => Err(self.io_error(
                io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the tls upgrade failed earlier",
                ),
                during,
            )),
        }
    }

    fn io_error(&self, err: io::Error, during: &str) -> ProbeError {
        if is_timeout(&err) {
            timeout(&self.address, during)
        } else {
            ProbeError::Io {
                address: self.address.clone(),
                during: during.to_string(),
                source: err,
            }
        }
    }

    fn raw_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.stream {
            Stream::Plain(sock) => sock.read(buf),
            Stream::Tls(stream) => stream.read(buf),
            Stream::Upgrading => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Send all of `bytes`.
    pub(crate) fn send(&mut self, bytes: &[u8], during: &str) -> Result<()> {
        self.prepare(during)?;
        let outcome = match &mut self.stream {
            Stream::Plain(sock) => sock.write_all(bytes).and_then(|()| sock.flush()),
            Stream::Tls(stream) => stream.write_all(bytes).and_then(|()| stream.flush()),
            Stream::Upgrading => Err(io::ErrorKind::NotConnected.into()),
        };
        outcome.map_err(|err| self.io_error(err, during))
    }

    /// Fill `buf` completely.
    pub(crate) fn read_exact(&mut self, buf: &mut [u8], during: &str) -> Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            self.prepare(during)?;
            match self.raw_read(&mut buf[filled..]) {
                Ok(0) => {
                    return Err(self.io_error(
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "the server closed the connection after {filled} of {} bytes",
                                buf.len()
                            ),
                        ),
                        during,
                    ));
                }
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(self.io_error(err, during)),
            }
        }
        Ok(())
    }

    /// Read until the server closes the connection or `complete` says the
    /// bytes so far are a whole answer; fail past `limit` bytes.
    pub(crate) fn read_until(
        &mut self,
        limit: usize,
        during: &str,
        complete: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if complete(&data) {
                return Ok(data);
            }
            self.prepare(during)?;
            match self.raw_read(&mut chunk) {
                Ok(0) => return Ok(data),
                Ok(n) => {
                    if data.len() + n > limit {
                        return Err(ProbeError::Protocol {
                            protocol: "tcp",
                            address: self.address.clone(),
                            detail: format!(
                                "the answer is longer than {limit} bytes while {during}"
                            ),
                        });
                    }
                    data.extend_from_slice(&chunk[..n]);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                // Servers that close a TLS connection without close_notify
                // (ZooKeeper after a four-letter word) end the answer here.
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof && self.tls.is_some() => {
                    return Ok(data);
                }
                Err(err) => return Err(self.io_error(err, during)),
            }
        }
    }

    /// Read until the server closes the connection, at most `limit` bytes.
    pub(crate) fn read_to_end(&mut self, limit: usize, during: &str) -> Result<Vec<u8>> {
        self.read_until(limit, during, |_| false)
    }
}
