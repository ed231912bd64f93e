//! Interface addresses and the WS-Discovery UDP sockets.
//!
//! Multicast mode binds one wildcard socket per address family on the WS-Discovery port and
//! joins the group ([WS-Discovery 2005/04] 2.4: 239.255.255.250 and FF02::C, port 3702) on each
//! chosen interface. A wildcard socket does not tell which local address a datagram was sent
//! to, so the address a peer reaches us on is asked of the kernel's routing instead
//! ([`local_addr_for`]); that is also the address the reply leaves from, so the XAddrs we
//! advertise are the ones the peer can connect to.
//!
//! Unicast mode (tests, or a network without multicast) binds one socket per chosen address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket as StdUdpSocket};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::DiscoveryError;

pub const WSD_GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
pub const WSD_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xc);

/// One local address we announce, with the index of its interface (for IPv6 multicast and
/// link-local scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddr {
    pub ip: IpAddr,
    pub index: Option<u32>,
}

/// The addresses to serve: the configured ones (looked up to learn their interface index), or
/// every non-loopback address of an interface that is up.
pub fn choose_addresses(configured: &[IpAddr]) -> Result<Vec<LocalAddr>, DiscoveryError> {
    let ifs = if_addrs::get_if_addrs().map_err(DiscoveryError::Interfaces)?;
    let index_of = |ip: IpAddr| ifs.iter().find(|i| i.ip() == ip).and_then(|i| i.index);
    let mut out: Vec<LocalAddr> = Vec::new();
    if configured.is_empty() {
        for i in &ifs {
            if i.is_loopback() || !i.is_oper_up() {
                continue;
            }
            let ip = i.ip();
            if !out.iter().any(|a| a.ip == ip) {
                out.push(LocalAddr { ip, index: i.index });
            }
        }
    } else {
        for &ip in configured {
            if !out.iter().any(|a| a.ip == ip) {
                out.push(LocalAddr {
                    ip,
                    index: index_of(ip),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(DiscoveryError::NoInterfaces);
    }
    Ok(out)
}

/// The socket address for binding `ip`, with the interface scope a link-local IPv6 address
/// needs.
pub fn bind_addr(addr: &LocalAddr, port: u16) -> SocketAddr {
    match addr.ip {
        IpAddr::V6(v6) if is_v6_link_local(&v6) => {
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, addr.index.unwrap_or(0)))
        }
        ip => SocketAddr::new(ip, port),
    }
}

pub fn is_v6_link_local(ip: &Ipv6Addr) -> bool {
    (ip.segments()[0] & 0xffc0) == 0xfe80
}

fn udp_socket(domain: Domain) -> std::io::Result<Socket> {
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    // Another WS-Discovery responder (wsdd) may share the host; SO_REUSEADDR lets both receive
    // the multicast traffic.
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

fn bind_err(what: &'static str, addr: SocketAddr) -> impl FnOnce(std::io::Error) -> DiscoveryError {
    move |source| DiscoveryError::Bind { what, addr, source }
}

/// A socket bound to one address (unicast mode).
pub fn unicast_socket(addr: SocketAddr) -> Result<tokio::net::UdpSocket, DiscoveryError> {
    let made = (|| -> std::io::Result<tokio::net::UdpSocket> {
        let s = udp_socket(Domain::for_address(addr))?;
        if addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.bind(&addr.into())?;
        tokio::net::UdpSocket::from_std(s.into())
    })();
    made.map_err(bind_err("WS-Discovery UDP", addr))
}

/// The IPv4 wildcard socket joined to 239.255.255.250 on each IPv4 address in `addrs`.
/// Returns `None` when there is no IPv4 address to serve.
pub fn multicast_socket_v4(
    port: u16,
    addrs: &[LocalAddr],
) -> Result<Option<tokio::net::UdpSocket>, DiscoveryError> {
    // One join per interface: a second address on the same interface would only fail with
    // EADDRINUSE.
    let mut seen_index: Vec<u32> = Vec::new();
    let mut v4: Vec<Ipv4Addr> = Vec::new();
    for a in addrs {
        let IpAddr::V4(ip) = a.ip else { continue };
        if let Some(idx) = a.index {
            if seen_index.contains(&idx) {
                continue;
            }
            seen_index.push(idx);
        }
        v4.push(ip);
    }
    if v4.is_empty() {
        return Ok(None);
    }
    let bind = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let s = udp_socket(Domain::IPV4).map_err(bind_err("WS-Discovery UDP", bind))?;
    s.bind(&bind.into())
        .map_err(bind_err("WS-Discovery UDP", bind))?;
    // Link-local scope: our datagrams are for this network segment only ([SOAP-over-UDP] 3.2).
    s.set_multicast_ttl_v4(1)
        .map_err(bind_err("WS-Discovery UDP", bind))?;
    let mut joined = 0;
    for ip in &v4 {
        match s.join_multicast_v4(&WSD_GROUP_V4, ip) {
            Ok(()) => joined += 1,
            Err(e) => tracing::warn!(%ip, error = %e, "cannot join the WS-Discovery group"),
        }
    }
    if joined == 0 {
        tracing::warn!("WS-Discovery joined no IPv4 multicast group; only unicast probes work");
    }
    tokio::net::UdpSocket::from_std(s.into())
        .map(Some)
        .map_err(bind_err("WS-Discovery UDP", bind))
}

/// The IPv6 wildcard socket joined to FF02::C on the interface of each IPv6 address in `addrs`.
/// IPv6 is best effort: a host without it gets `None` and a log line, not an error.
pub fn multicast_socket_v6(port: u16, addrs: &[LocalAddr]) -> Option<tokio::net::UdpSocket> {
    let mut indexes: Vec<u32> = addrs
        .iter()
        .filter(|a| a.ip.is_ipv6())
        .filter_map(|a| a.index)
        .collect();
    indexes.sort_unstable();
    indexes.dedup();
    if indexes.is_empty() {
        return None;
    }
    let bind = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    let made = (|| -> std::io::Result<Socket> {
        let s = udp_socket(Domain::IPV6)?;
        s.set_only_v6(true)?;
        s.bind(&bind.into())?;
        s.set_multicast_hops_v6(1)?;
        Ok(s)
    })();
    let s = match made {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(error = %e, "WS-Discovery over IPv6 not available");
            return None;
        }
    };
    for idx in indexes {
        if let Err(e) = s.join_multicast_v6(&WSD_GROUP_V6, idx) {
            tracing::warn!(interface = idx, error = %e, "cannot join FF02::C");
        }
    }
    tokio::net::UdpSocket::from_std(s.into()).ok()
}

/// Sends one multicast datagram out of the interface of `from`.
pub async fn send_multicast(
    sock: &tokio::net::UdpSocket,
    from: &LocalAddr,
    port: u16,
    msg: &[u8],
) -> std::io::Result<()> {
    let sref = SockRef::from(sock);
    let dest = match from.ip {
        IpAddr::V4(v4) => {
            sref.set_multicast_if_v4(&v4)?;
            SocketAddr::from((WSD_GROUP_V4, port))
        }
        IpAddr::V6(_) => {
            let idx = from.index.unwrap_or(0);
            sref.set_multicast_if_v6(idx)?;
            SocketAddr::V6(SocketAddrV6::new(WSD_GROUP_V6, port, 0, idx))
        }
    };
    sock.send_to(msg, dest).await.map(|_| ())
}

/// The local address the kernel would send from to reach `peer`: a connected UDP socket is
/// routed but sends nothing.
pub fn local_addr_for(peer: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = match peer {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let s = StdUdpSocket::bind(any).ok()?;
    s.connect(peer).ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_routes_to_loopback() {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(local_addr_for(peer), Some(IpAddr::from([127, 0, 0, 1])));
    }

    #[test]
    fn configured_addresses_are_kept_in_order_without_duplicates() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let got = choose_addresses(&[lo, other, lo]).unwrap();
        assert_eq!(
            got.iter().map(|a| a.ip).collect::<Vec<_>>(),
            vec![lo, other]
        );
        // 127.0.0.1 sits on `lo`, whose index the lookup must find.
        assert!(got[0].index.is_some());
    }

    #[test]
    fn automatic_choice_skips_loopback() {
        if let Ok(addrs) = choose_addresses(&[]) {
            assert!(addrs.iter().all(|a| !a.ip.is_loopback()));
        }
    }

    #[test]
    fn link_local_v6_binds_with_scope() {
        let a = LocalAddr {
            ip: "fe80::1".parse().unwrap(),
            index: Some(7),
        };
        match bind_addr(&a, 5357) {
            SocketAddr::V6(v6) => assert_eq!(v6.scope_id(), 7),
            other => panic!("{other}"),
        }
        assert!(!is_v6_link_local(&"fd00::1".parse().unwrap()));
    }
}
