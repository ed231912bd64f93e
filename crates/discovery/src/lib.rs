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
//! - `netns`   – test support: re-running a test in a private network namespace.
//! - this file – [`DiscoveryConfig`], [`Discovery`] (start/stop, the tasks), [`fuzz_wsd`].

#![forbid(unsafe_code)]
// Tests may unwrap (common rules); the library itself may not.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod http;
mod mdns;
mod net;
#[doc(hidden)]
pub mod netns;
mod soap;
#[cfg(test)]
mod tests;
mod wsd;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

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

/// A running announcer. Dropping it stops the tasks without saying goodbye; call
/// [`Discovery::stop`] to send WS-Discovery Bye and the mDNS goodbyes first.
pub struct Discovery {
    http_addr: Option<SocketAddr>,
    udp_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    wsd: Option<Arc<WsdShared>>,
    mdns: Option<mdns::Mdns>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("http_addr", &self.http_addr)
            .field("udp_addr", &self.udp_addr)
            .field("wsd", &self.wsd.is_some())
            .field("mdns", &self.mdns.is_some())
            .finish()
    }
}

/// [WS-Discovery 2005/04] 2.4 APP_MAX_DELAY: a reply to a multicast Probe or Resolve waits a
/// random time up to this, so that many devices do not answer in one burst.
const APP_MAX_DELAY_MS: u64 = 500;
/// [SOAP-over-UDP 2004/09] 3.4 retransmission: multicast messages are sent this many times,
/// unicast replies twice, with a random first gap that doubles up to the upper bound.
const MULTICAST_UDP_REPEAT: u32 = 4;
const UNICAST_UDP_REPEAT: u32 = 2;
const UDP_MIN_DELAY_MS: u64 = 50;
const UDP_MAX_DELAY_MS: u64 = 250;
const UDP_UPPER_DELAY_MS: u64 = 500;
/// Replies per second we are willing to send in all: a spoofed-source Probe flood must not
/// turn the server into a traffic reflector.
const REPLY_RATE: f64 = 32.0;
/// Delayed replies waiting at once; beyond this, probes are dropped.
const MAX_PENDING_REPLIES: usize = 64;
/// mDNS port (RFC 6762 3).
const MDNS_PORT: u16 = 5353;

/// State shared by the WS-Discovery tasks.
struct WsdShared {
    responder: Mutex<wsd::Responder>,
    /// The addresses we serve (configured or discovered at start).
    addrs: Vec<net::LocalAddr>,
    /// True when the addresses were configured: replies only go out from those. Otherwise
    /// any non-loopback address is served, so addresses gained after start work too.
    configured: bool,
    /// HTTP listeners: (bound IP or None for a wildcard of that family, family is v6, port).
    http_ports: Vec<(Option<IpAddr>, bool, u16)>,
    multicast: bool,
    /// Multicast sockets by family, for Hello and Bye.
    mcast_v4: Option<Arc<UdpSocket>>,
    mcast_v6: Option<Arc<UdpSocket>>,
    udp_port: u16,
    budget: Mutex<TokenBucket>,
    pending: Arc<Semaphore>,
}

struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * REPLY_RATE;
        self.tokens = (self.tokens + refill).min(REPLY_RATE);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind (a counter and a set); carry on.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl WsdShared {
    fn serves(&self, ip: IpAddr) -> bool {
        if self.configured {
            self.addrs.iter().any(|a| a.ip == ip)
        } else {
            !ip.is_loopback() && !ip.is_unspecified()
        }
    }

    /// Where a peer that reaches us on `ip` finds the metadata endpoint.
    fn xaddr_for(&self, ip: IpAddr) -> Option<SocketAddr> {
        let exact = self
            .http_ports
            .iter()
            .find(|(bound, _, _)| *bound == Some(ip));
        let wildcard = || {
            self.http_ports
                .iter()
                .find(|(bound, v6, _)| bound.is_none() && *v6 == ip.is_ipv6())
        };
        exact
            .or_else(wildcard)
            .map(|(_, _, port)| SocketAddr::new(ip, *port))
    }

    /// `bound_local` is the address of a unicast socket; for a wildcard socket the local
    /// address is looked up from the peer, and only for messages worth answering.
    fn handle(
        &self,
        datagram: &[u8],
        peer: SocketAddr,
        bound_local: Option<IpAddr>,
    ) -> wsd::Outcome {
        let outcome = match soap::parse(datagram) {
            Err(e) => wsd::Outcome::Invalid(e),
            Ok(env) => {
                let xaddr = || {
                    bound_local
                        .or_else(|| net::local_addr_for(peer))
                        .filter(|ip| self.serves(*ip))
                        .and_then(|ip| self.xaddr_for(ip))
                };
                lock(&self.responder).handle_envelope(&env, xaddr)
            }
        };
        match &outcome {
            wsd::Outcome::Reply(_) => tracing::debug!(%peer, "WS-Discovery match"),
            wsd::Outcome::Ignored(why) => tracing::trace!(%peer, why, "WS-Discovery ignored"),
            wsd::Outcome::Invalid(e) => tracing::trace!(%peer, error = %e, "WS-Discovery invalid"),
        }
        outcome
    }
}

/// Replies go to the datagram's source; a source that could never have sent it (multicast,
/// unspecified, port 0) is spoofed and gets nothing.
fn plausible_peer(peer: SocketAddr) -> bool {
    let ip = peer.ip();
    peer.port() != 0
        && !ip.is_multicast()
        && !ip.is_unspecified()
        && ip != IpAddr::V4(std::net::Ipv4Addr::BROADCAST)
}

fn random_ms(lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rand::thread_rng().gen_range(lo..=hi))
}

async fn udp_loop(
    sock: Arc<UdpSocket>,
    shared: Arc<WsdShared>,
    bound_local: Option<IpAddr>,
    mut shutdown: watch::Receiver<bool>,
) {
    // One byte more than we accept, to notice datagrams that were cut short.
    let mut buf = vec![0u8; soap::MAX_SOAP_LEN + 1];
    loop {
        let received = tokio::select! {
            r = sock.recv_from(&mut buf) => r,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (n, peer) = match received {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "WS-Discovery receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(datagram) = buf.get(..n).filter(|d| d.len() <= soap::MAX_SOAP_LEN) else {
            continue;
        };
        if !plausible_peer(peer) {
            continue;
        }
        let wsd::Outcome::Reply(xml) = shared.handle(datagram, peer, bound_local) else {
            continue;
        };
        if !lock(&shared.budget).take() {
            tracing::debug!(%peer, "WS-Discovery reply dropped: rate limit");
            continue;
        }
        if !shared.multicast {
            // Unicast mode answers a directed probe at once, and once.
            if let Err(e) = sock.send_to(xml.as_bytes(), peer).await {
                tracing::debug!(%peer, error = %e, "WS-Discovery reply failed");
            }
            continue;
        }
        let Ok(permit) = Arc::clone(&shared.pending).try_acquire_owned() else {
            continue;
        };
        let sock = Arc::clone(&sock);
        tokio::spawn(async move {
            let _permit = permit;
            tokio::time::sleep(random_ms(0, APP_MAX_DELAY_MS)).await;
            let mut gap = random_ms(UDP_MIN_DELAY_MS, UDP_MAX_DELAY_MS);
            for i in 0..UNICAST_UDP_REPEAT {
                if i > 0 {
                    tokio::time::sleep(gap).await;
                    gap = (gap * 2).min(Duration::from_millis(UDP_UPPER_DELAY_MS));
                }
                if let Err(e) = sock.send_to(xml.as_bytes(), peer).await {
                    tracing::debug!(%peer, error = %e, "WS-Discovery reply failed");
                    return;
                }
            }
        });
    }
}

/// Sends one message per served address out of that address's interface, `repeat` times.
async fn multicast_each(shared: &WsdShared, messages: &[(net::LocalAddr, String)], repeat: u32) {
    let mut gap = random_ms(UDP_MIN_DELAY_MS, UDP_MAX_DELAY_MS);
    for i in 0..repeat {
        if i > 0 {
            tokio::time::sleep(gap).await;
            gap = (gap * 2).min(Duration::from_millis(UDP_UPPER_DELAY_MS));
        }
        for (addr, msg) in messages {
            let sock = if addr.ip.is_ipv6() {
                &shared.mcast_v6
            } else {
                &shared.mcast_v4
            };
            let Some(sock) = sock else { continue };
            if let Err(e) = net::send_multicast(sock, addr, shared.udp_port, msg.as_bytes()).await {
                tracing::debug!(ip = %addr.ip, error = %e, "WS-Discovery multicast send failed");
            }
        }
    }
}

fn tcp_listener(addr: SocketAddr) -> Result<TcpListener, DiscoveryError> {
    let err = |source| DiscoveryError::Bind {
        what: "WS-Discovery HTTP",
        addr,
        source,
    };
    let s =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    // A restart must not fail on the previous run's TIME_WAIT connections.
    s.set_reuse_address(true).map_err(err)?;
    if addr.is_ipv6() {
        s.set_only_v6(true).map_err(err)?;
    }
    s.set_nonblocking(true).map_err(err)?;
    s.bind(&addr.into()).map_err(err)?;
    s.listen(64).map_err(err)?;
    TcpListener::from_std(s.into()).map_err(err)
}

fn validate_label(value: &str) -> Result<(), &'static str> {
    if value.trim().is_empty() {
        return Err("empty");
    }
    if value.len() > 63 {
        return Err("longer than 63 bytes");
    }
    if value
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err("contains a control character, '/' or '\\'");
    }
    Ok(())
}

impl Discovery {
    /// Binds the sockets, announces the server (WS-Discovery Hello, mDNS registration) and
    /// starts answering. Must be called inside a tokio runtime.
    pub async fn start(cfg: DiscoveryConfig) -> Result<Discovery, DiscoveryError> {
        validate_label(&cfg.computer_name)
            .map_err(|why| DiscoveryError::InvalidName(cfg.computer_name.clone(), why))?;
        validate_label(&cfg.workgroup)
            .map_err(|why| DiscoveryError::InvalidWorkgroup(cfg.workgroup.clone(), why))?;
        let (shutdown, _) = watch::channel(false);
        let mut me = Discovery {
            http_addr: None,
            udp_addr: None,
            shutdown,
            tasks: Vec::new(),
            wsd: None,
            mdns: None,
        };
        if !cfg.wsd && !cfg.mdns {
            return Ok(me);
        }
        let addrs = net::choose_addresses(&cfg.interfaces)?;
        if cfg.wsd {
            // On failure `me` is dropped, which stops whatever was already spawned.
            me.start_wsd(&cfg, &addrs)?;
        }
        if cfg.mdns {
            let ips: Vec<IpAddr> = if cfg.interfaces.is_empty() {
                Vec::new()
            } else {
                addrs.iter().map(|a| a.ip).collect()
            };
            me.mdns = Some(mdns::Mdns::start(
                &cfg.computer_name,
                cfg.smb_port,
                &ips,
                MDNS_PORT,
            )?);
        }
        Ok(me)
    }

    fn start_wsd(
        &mut self,
        cfg: &DiscoveryConfig,
        addrs: &[net::LocalAddr],
    ) -> Result<(), DiscoveryError> {
        let instance_id = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1);
        let identity = Arc::new(wsd::Identity::new(
            &cfg.computer_name,
            &cfg.workgroup,
            instance_id,
        ));

        // HTTP metadata listeners.
        let mut listeners = Vec::new();
        if cfg.interfaces.is_empty() && cfg.multicast {
            let v4 = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, cfg.wsd_http_port));
            listeners.push((None, false, tcp_listener(v4)?));
            if addrs.iter().any(|a| a.ip.is_ipv6()) {
                let v6 = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, cfg.wsd_http_port));
                match tcp_listener(v6) {
                    Ok(l) => listeners.push((None, true, l)),
                    Err(e) => tracing::info!(error = %e, "WSD metadata over IPv6 not available"),
                }
            }
        } else {
            for a in addrs {
                let l = tcp_listener(net::bind_addr(a, cfg.wsd_http_port))?;
                listeners.push((Some(a.ip), a.ip.is_ipv6(), l));
            }
        }
        let mut http_ports = Vec::new();
        for (ip, v6, l) in &listeners {
            let local = l.local_addr().map_err(|source| DiscoveryError::Bind {
                what: "WS-Discovery HTTP",
                addr: SocketAddr::new(ip.unwrap_or(IpAddr::from([0, 0, 0, 0])), cfg.wsd_http_port),
                source,
            })?;
            if self.http_addr.is_none() {
                self.http_addr = Some(local);
            }
            http_ports.push((*ip, *v6, local.port()));
        }

        // UDP sockets: (socket, the local IP it is bound to when unicast).
        let mut udp: Vec<(Arc<UdpSocket>, Option<IpAddr>)> = Vec::new();
        let (mut mcast_v4, mut mcast_v6) = (None, None);
        if cfg.multicast {
            if let Some(s) = net::multicast_socket_v4(cfg.wsd_udp_port, addrs)? {
                let s = Arc::new(s);
                mcast_v4 = Some(Arc::clone(&s));
                udp.push((s, None));
            }
            if let Some(s) = net::multicast_socket_v6(cfg.wsd_udp_port, addrs) {
                let s = Arc::new(s);
                mcast_v6 = Some(Arc::clone(&s));
                udp.push((s, None));
            }
            if udp.is_empty() {
                return Err(DiscoveryError::NoInterfaces);
            }
        } else {
            for a in addrs {
                let s = net::unicast_socket(net::bind_addr(a, cfg.wsd_udp_port))?;
                udp.push((Arc::new(s), Some(a.ip)));
            }
        }
        self.udp_addr = udp.first().and_then(|(s, _)| s.local_addr().ok());

        let shared = Arc::new(WsdShared {
            responder: Mutex::new(wsd::Responder::new((*identity).clone())),
            addrs: addrs.to_vec(),
            configured: !cfg.interfaces.is_empty(),
            http_ports,
            multicast: cfg.multicast,
            mcast_v4,
            mcast_v6,
            udp_port: cfg.wsd_udp_port,
            budget: Mutex::new(TokenBucket {
                tokens: REPLY_RATE,
                last: Instant::now(),
            }),
            pending: Arc::new(Semaphore::new(MAX_PENDING_REPLIES)),
        });
        for (_, _, l) in listeners {
            let rx = self.shutdown.subscribe();
            self.tasks
                .push(tokio::spawn(http::serve(l, Arc::clone(&identity), rx)));
        }
        for (s, bound) in udp {
            let rx = self.shutdown.subscribe();
            self.tasks
                .push(tokio::spawn(udp_loop(s, Arc::clone(&shared), bound, rx)));
        }
        if cfg.multicast {
            let hellos: Vec<(net::LocalAddr, String)> = {
                let mut r = lock(&shared.responder);
                addrs
                    .iter()
                    .filter_map(|a| shared.xaddr_for(a.ip).map(|x| (*a, r.hello(x))))
                    .collect()
            };
            let s = Arc::clone(&shared);
            let mut rx = self.shutdown.subscribe();
            self.tasks.push(tokio::spawn(async move {
                tokio::select! {
                    _ = multicast_each(&s, &hellos, MULTICAST_UDP_REPEAT) => {}
                    _ = rx.wait_for(|stop| *stop) => {}
                }
            }));
        }
        tracing::info!(
            name = %identity.computer_name,
            endpoint = %identity.urn(),
            http = ?self.http_addr,
            udp = ?self.udp_addr,
            multicast = cfg.multicast,
            "WS-Discovery started"
        );
        self.wsd = Some(shared);
        Ok(())
    }

    /// The bound metadata endpoint (the first one when several addresses are served).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The bound WS-Discovery UDP socket (the first one when several addresses are served).
    pub fn wsd_udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    /// Says goodbye (WS-Discovery Bye on each interface, mDNS goodbye records) and stops.
    pub async fn stop(mut self) {
        if let Some(shared) = self.wsd.take()
            && shared.multicast
        {
            let bye = lock(&shared.responder).bye();
            let byes: Vec<(net::LocalAddr, String)> =
                shared.addrs.iter().map(|a| (*a, bye.clone())).collect();
            // Two sends, not four: stopping should not take a second.
            multicast_each(&shared, &byes, 2).await;
        }
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            if tokio::time::timeout(Duration::from_secs(2), t)
                .await
                .is_err()
            {
                tracing::debug!("WS-Discovery task did not stop in time");
            }
        }
        if let Some(m) = self.mdns.take() {
            let _ = tokio::task::spawn_blocking(move || m.stop_blocking()).await;
        }
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Parses one WS-Discovery datagram and computes the reply, without any I/O; the entry point
/// of the cargo-fuzz target. Must never panic, whatever the bytes.
pub fn fuzz_wsd(datagram: &[u8]) {
    let id = wsd::Identity::new("FUZZ", "WORKGROUP", 1);
    let mut responder = wsd::Responder::new(id.clone());
    let local: SocketAddr = SocketAddr::from(([127, 0, 0, 1], WSD_HTTP_PORT));
    let _ = responder.handle_datagram(datagram, Some(local));
    let _ = wsd::answer_get(&id, datagram);
    // The HTTP head parser sees bytes from the network too.
    if let Ok(head) = http::parse_head(datagram) {
        let _ = http::respond(&id, &head, datagram);
    }
}
