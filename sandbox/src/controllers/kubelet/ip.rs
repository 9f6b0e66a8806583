//! Pod IP allocation on the loopback network.
//!
//! Addresses come from 127.10.0.1 - 127.250.255.254 (never 127.0.0.1, never
//! an address ending in .0 or .255). Each allocator starts at a random point
//! and moves forward, so a freed address is not reused soon and sandboxes in
//! parallel test processes rarely meet; an address where one of the pod's
//! ports cannot be bound (someone else uses it) is skipped.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::{Arc, Mutex};

const FIRST: u32 = u32::from_be_bytes([127, 10, 0, 1]);
const LAST: u32 = u32::from_be_bytes([127, 250, 255, 254]);

/// Hands out unique loopback addresses; cloning shares the pool.
#[derive(Debug, Clone)]
pub struct IpAllocator {
    inner: Arc<Mutex<Pool>>,
}

#[derive(Debug)]
struct Pool {
    next: u32,
    in_use: HashSet<Ipv4Addr>,
}

/// An allocated address, returned to the pool on drop.
#[derive(Debug)]
pub struct IpLease {
    ip: Ipv4Addr,
    pool: Arc<Mutex<Pool>>,
}

impl IpLease {
    /// The address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }
}

impl Drop for IpLease {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.in_use.remove(&self.ip);
        }
    }
}

impl Default for IpAllocator {
    fn default() -> Self {
        Self::starting_at(rand::random_range(FIRST..=LAST))
    }
}

impl IpAllocator {
    /// An allocator whose first candidate is `start` (for tests).
    pub fn starting_at(start: u32) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Pool {
                next: start.clamp(FIRST, LAST),
                in_use: HashSet::new(),
            })),
        }
    }

    /// Allocates `preferred` if it is a free loopback address (a pod that
    /// already has one keeps it), else the next free address where every
    /// port in `ports` can be bound.
    pub fn allocate(&self, preferred: Option<Ipv4Addr>, ports: &[u16]) -> Option<IpLease> {
        let mut pool = self.inner.lock().ok()?;
        if let Some(ip) = preferred.filter(|ip| ip.is_loopback() && *ip != Ipv4Addr::LOCALHOST)
            && pool.in_use.insert(ip)
        {
            return Some(self.lease(ip));
        }
        for _ in 0..4096 {
            let candidate = pool.next;
            pool.next = if candidate >= LAST {
                FIRST
            } else {
                candidate + 1
            };
            let ip = Ipv4Addr::from(candidate);
            let last_octet = ip.octets()[3];
            if last_octet == 0 || last_octet == 255 || pool.in_use.contains(&ip) {
                continue;
            }
            if ports.iter().all(|port| bindable(ip, *port)) {
                pool.in_use.insert(ip);
                return Some(self.lease(ip));
            }
        }
        None
    }

    fn lease(&self, ip: Ipv4Addr) -> IpLease {
        IpLease {
            ip,
            pool: Arc::clone(&self.inner),
        }
    }
}

fn bindable(ip: Ipv4Addr, port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(ip, port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_unique_addresses_and_skips_network_and_broadcast() {
        let pool = IpAllocator::starting_at(u32::from_be_bytes([127, 10, 0, 254]));
        let a = pool.allocate(None, &[]).expect("address");
        let b = pool.allocate(None, &[]).expect("address");
        assert_eq!(a.ip(), Ipv4Addr::new(127, 10, 0, 254));
        assert_eq!(b.ip(), Ipv4Addr::new(127, 10, 1, 1));
    }

    #[test]
    fn keeps_preferred_address_once() {
        let pool = IpAllocator::starting_at(FIRST);
        let wanted = Ipv4Addr::new(127, 20, 0, 5);
        let a = pool.allocate(Some(wanted), &[]).expect("address");
        assert_eq!(a.ip(), wanted);
        let b = pool.allocate(Some(wanted), &[]).expect("address");
        assert_ne!(b.ip(), wanted);
        let c = pool
            .allocate(Some(Ipv4Addr::LOCALHOST), &[])
            .expect("address");
        assert_ne!(c.ip(), Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn freed_address_returns_to_pool() {
        let pool = IpAllocator::starting_at(FIRST);
        let wanted = Ipv4Addr::new(127, 20, 0, 6);
        drop(pool.allocate(Some(wanted), &[]).expect("address"));
        assert_eq!(
            pool.allocate(Some(wanted), &[]).expect("address").ip(),
            wanted
        );
    }

    #[test]
    fn skips_address_whose_port_is_taken() {
        let taken = Ipv4Addr::new(127, 30, 0, 1);
        let _listener = TcpListener::bind(SocketAddrV4::new(taken, 0)).expect("bind");
        let port = _listener.local_addr().expect("addr").port();
        let pool = IpAllocator::starting_at(u32::from(taken));
        let lease = pool.allocate(None, &[port]).expect("address");
        assert_ne!(lease.ip(), taken);
    }
}
