//! A TCP proxy in front of the sandbox's HTTPS port that records when the
//! first connection arrives: a freshly started `dbops` opens its first
//! connection for its first API request, so this is "time to first API
//! request" without touching the sandbox. TLS passes through unchanged.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};

/// A running proxy.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    first: Arc<Mutex<Option<Instant>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    /// Listen on a free loopback port and forward to `upstream`.
    pub fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let first = Arc::new(Mutex::new(None));
        let seen = first.clone();
        runtime.spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let now = Instant::now();
                if let Ok(mut first) = seen.lock() {
                    first.get_or_insert(now);
                }
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Ok(Proxy {
            addr,
            first,
            _runtime: runtime,
        })
    }

    /// Forget the first connection (before the next measured process).
    pub fn reset(&self) {
        if let Ok(mut first) = self.first.lock() {
            *first = None;
        }
    }

    /// When the first connection since [`Proxy::reset`] arrived.
    pub fn first_connection(&self) -> Option<Instant> {
        self.first.lock().ok().and_then(|first| *first)
    }
}
