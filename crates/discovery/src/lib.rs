//! lanshare-discovery: makes a lanshare server show up by itself in Windows' "Network" folder
//! (WS-Discovery + the DPWS metadata exchange, what `wsdd` does for Samba) and in macOS Finder
//! and Linux file managers (mDNS/DNS-SD `_smb._tcp` and `_device-info._tcp`, what `avahi` does).
//!
//! What it is not: it knows nothing about SMB beyond the port number it advertises; it does
//! not answer NetBIOS name queries or LLMNR, and it does not browse for other devices.
//!
//! Layout:
//! - `soap`    – bounded, namespace-aware reading of incoming SOAP envelopes (quick-xml, no DTD,
//!   no entity expansion) and XML escaping for the templated replies.
//! - `wsd`     – the WS-Discovery target service without I/O: Probe → ProbeMatches,
//!   Resolve → ResolveMatches, Hello, Bye, duplicate suppression, and the WS-Transfer
//!   GetResponse carrying `pub:Computer` = `NAME/Workgroup:WORKGROUP`.
//! - `net`     – interface addresses, the UDP sockets (multicast group 239.255.255.250 and
//!   ff02::c, port 3702), and which local address a peer reaches us on.
//! - `http`    – a minimal HTTP/1.1 server for the metadata endpoint (port 5357): one
//!   request per connection, size-capped, with deadlines and a connection cap.
//! - `mdns`    – registration with the `mdns-sd` daemon.
//! - this file – [`DiscoveryConfig`], [`Discovery`] (start/stop, the tasks), [`fuzz_wsd`].

#![forbid(unsafe_code)]
// Tests may unwrap (common rules); the library itself may not.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod http;
mod mdns;
mod net;
mod soap;
mod wsd;

use std::net::{IpAddr, SocketAddr};

pub use soap::SoapError;

/// Default UDP port of WS-Discovery ([WS-Discovery 2005/04] 2.4, `PORT`).
pub const WSD_UDP_PORT: u16 = 3702;
/// Default TCP port of the Windows WSD HTTP metadata endpoint (`WSDAPI`'s 5357).
pub const WSD_HTTP_PORT: u16 = 5357;

/// What to announce, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// NetBIOS-style name (follows the configured server name): the instance name in mDNS,
    /// the host name `NAME.local`, and `\\NAME` in Windows.
    pub computer_name: String,
    /// e.g. "WORKGROUP".
    pub workgroup: String,
    /// Advertised in `_smb._tcp`.
    pub smb_port: u16,
    /// Addresses to announce and bind; empty = every non-loopback address of the host.
    pub interfaces: Vec<IpAddr>,
    /// WS-Discovery (and its HTTP metadata endpoint) on.
    pub wsd: bool,
    /// mDNS/DNS-SD on. mDNS is always multicast: `multicast` below does not affect it.
    pub mdns: bool,
    /// 5357 by default; 0 = any (tests).
    pub wsd_http_port: u16,
    /// 3702 by default; tests may use another (0 = any, only with `multicast: false`).
    pub wsd_udp_port: u16,
    /// Join the WS-Discovery multicast groups and send Hello/Bye. Off: WS-Discovery listens
    /// only for unicast datagrams on each interface address (tests on loopback).
    pub multicast: bool,
}

impl DiscoveryConfig {
    /// Everything on, standard ports, all interfaces.
    pub fn new(computer_name: &str, workgroup: &str, smb_port: u16) -> DiscoveryConfig {
        DiscoveryConfig {
            computer_name: computer_name.to_owned(),
            workgroup: workgroup.to_owned(),
            smb_port,
            interfaces: Vec::new(),
            wsd: true,
            mdns: true,
            wsd_http_port: WSD_HTTP_PORT,
            wsd_udp_port: WSD_UDP_PORT,
            multicast: true,
        }
    }
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig::new("LANSHARE", "WORKGROUP", 445)
    }
}

/// Why discovery could not start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("invalid computer name {0:?}: {1}")]
    InvalidName(String, &'static str),
    #[error("invalid workgroup {0:?}: {1}")]
    InvalidWorkgroup(String, &'static str),
    #[error("no usable network interface address to announce")]
    NoInterfaces,
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot list network interfaces: {0}")]
    Interfaces(std::io::Error),
    #[error("mDNS: {0}")]
    Mdns(String),
}

/// Parses one WS-Discovery datagram and computes the reply, without any I/O; the entry point
/// of the cargo-fuzz target. Must never panic, whatever the bytes.
pub fn fuzz_wsd(datagram: &[u8]) {
    let id = wsd::Identity::new("FUZZ", "WORKGROUP", 1);
    let mut responder = wsd::Responder::new(id.clone());
    let local: SocketAddr = SocketAddr::from(([127, 0, 0, 1], WSD_HTTP_PORT));
    let _ = responder.handle_datagram(datagram, Some(local));
    let _ = wsd::answer_get(&id, datagram);
}
