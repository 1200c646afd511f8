//! Ports for components started as processes of their own, whose address must be known
//! before they start (a component in this process binds port 0 instead).

use std::net::SocketAddr;

/// A free loopback port for a process started apart to bind (bound here, then released).
///
/// Drawn below the kernel's ephemeral range (Linux: `ip_local_port_range`, 32768–60999 by
/// default), from which `bind(0)` and every outgoing connection take their ports: a port
/// of that range, once released, could be taken as the source port of any connection
/// before the external process binds it ("Address already in use", seen with parallel
/// tests). Below it only another reservation could take it, and each is drawn at random.
pub fn reserve_loopback_port() -> std::io::Result<SocketAddr> {
    use std::hash::{BuildHasher, Hasher};
    let low = ephemeral_low();
    if low > 11_000 {
        let span = u64::from(low - 10_000);
        for _ in 0..256 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u8(0);
            let port = 10_000 + (h.finish() % span) as u16;
            if let Ok(l) = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))) {
                return l.local_addr();
            }
        }
    }
    std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?.local_addr()
}

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserved_port_is_free_and_below_the_ephemeral_range() {
        let low = ephemeral_low();
        for _ in 0..20 {
            let addr = reserve_loopback_port().unwrap();
            assert!(addr.ip().is_loopback());
            if low > 11_000 {
                assert!((10_000..low).contains(&addr.port()), "{addr}");
            }
            // Released: the process it is for can bind it.
            std::net::TcpListener::bind(addr).unwrap();
        }
    }
}
