//! The listener side: server-wide state, admission (connection limits), the accept loop,
//! live reconfiguration and graceful shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use lanshare_auth::{AuthPolicy, UserDb};
use lanshare_vfs::{ChangeHub, LocalFs, Notifying, Vfs};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tracing::{info, warn};

use crate::config::{EngineConfig, Limits, ShareConfig};
use crate::conn;
use crate::error::EngineError;
use crate::session::{SessionTable, lock};

/// Kernel (inotify) watches per share: one per directory watched, every directory of the tree
/// for a WATCH_TREE request. Beyond it changes other programs make are not reported (logged
/// once); changes made through lanshare always are.
const MAX_KERNEL_WATCHES: usize = 8192;

/// One configured share with its storage back-end opened.
pub(crate) struct Share {
    pub config: ShareConfig,
    /// `None` for IPC$.
    pub vfs: Option<Arc<dyn Vfs>>,
    /// Where changes to the share are reported and watched (CHANGE_NOTIFY); `vfs` reports to
    /// it, and for a local directory so does inotify.
    pub changes: Arc<ChangeHub>,
    pub is_ipc: bool,
    /// Tree connects to this share right now (for `max_users`); kept by `Tree`'s drop.
    pub users: AtomicU32,
}

impl Share {
    fn open(config: ShareConfig) -> Result<Share, EngineError> {
        let vfs = LocalFs::new(&config.path).map_err(|source| EngineError::ShareRoot {
            share: config.name.clone(),
            path: config.path.clone(),
            source,
        })?;
        let (changes, no_kernel) = ChangeHub::with_kernel(&config.path, MAX_KERNEL_WATCHES);
        if let Some(e) = no_kernel {
            warn!(share = %config.name, error = %e,
                "change notification without inotify: changes other programs make are not reported");
        }
        let vfs = Notifying::new(Arc::new(vfs), changes.clone());
        Ok(Share {
            config,
            vfs: Some(Arc::new(vfs)),
            changes,
            is_ipc: false,
            users: AtomicU32::new(0),
        })
    }
}

/// What `reload` can change: the shares and the limits.
pub(crate) struct Live {
    pub shares: Vec<Arc<Share>>,
    pub limits: Limits,
}

/// Why a newcomer was turned away, counted for `status` and named in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    MaxConnections,
    MaxConnectionsPerIp,
    MaxSessions,
    MaxUsers,
    MaxOpenFiles,
    MaxOpenFilesPerSession,
    MaxAsyncPerConnection,
}

impl Refusal {
    pub const ALL: [Refusal; 7] = [
        Refusal::MaxConnections,
        Refusal::MaxConnectionsPerIp,
        Refusal::MaxSessions,
        Refusal::MaxUsers,
        Refusal::MaxOpenFiles,
        Refusal::MaxOpenFilesPerSession,
        Refusal::MaxAsyncPerConnection,
    ];

    /// The setting's name as written in lanshare.toml.
    pub fn setting(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "limits.max_connections",
            Refusal::MaxConnectionsPerIp => "limits.max_connections_per_ip",
            Refusal::MaxSessions => "limits.max_sessions",
            Refusal::MaxUsers => "share.max_users",
            Refusal::MaxOpenFiles => "limits.max_open_files",
            Refusal::MaxOpenFilesPerSession => "limits.max_open_files_per_session",
            Refusal::MaxAsyncPerConnection => "limits.max_async_per_connection",
        }
    }
}

/// Server-wide counters since start.
#[derive(Default)]
pub(crate) struct Counters {
    pub refused: [AtomicU64; 7],
    pub accepted: AtomicU64,
    pub idle_closed: AtomicU64,
    pub handshake_timeouts: AtomicU64,
    pub read_deadline_drops: AtomicU64,
    pub protocol_drops: AtomicU64,
    pub logons: AtomicU64,
    pub logon_failures: AtomicU64,
    pub open_files: AtomicU64,
    /// Large WRITEs whose data was taken from the socket by the handler (`splice.rs`).
    pub socket_writes: AtomicU64,
}

impl Counters {
    pub fn refuse(&self, why: Refusal) {
        let i = Refusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.refused[i].fetch_add(1, Ordering::Relaxed);
    }
    pub fn refused(&self, why: Refusal) -> u64 {
        let i = Refusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.refused[i].load(Ordering::Relaxed)
    }
}

pub(crate) struct ServerState {
    /// The configuration the server started with; shares and limits live in `live`.
    pub config: EngineConfig,
    live: RwLock<Arc<Live>>,
    pub users: Arc<dyn UserDb>,
    pub auth_policy: Arc<AuthPolicy>,
    pub throttle: Arc<lanshare_auth::LogonThrottle>,
    pub ipc: Arc<Share>,
    pub sessions: SessionTable,
    next_session_id: AtomicU64,
    pub shutdown: watch::Receiver<bool>,
    shutdown_tx: watch::Sender<bool>,
    pub connections: AtomicU64,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    /// `max_inflight`: one permit per request being processed, server-wide.
    pub inflight: Arc<Semaphore>,
    pub inflight_limit: u32,
    pub counters: Counters,
    /// Per-file state shared by every open of every session (share modes, locks).
    pub objects: Arc<crate::objects::Objects>,
    pub started: Instant,
    pub started_at: SystemTime,
    listeners: Mutex<Vec<SocketAddr>>,
    /// Resume keys of server-side copy, valid across connections, sessions and shares.
    pub resume_keys: crate::handlers::ioctl::ResumeKeys,
    /// Pipes for spliced WRITEs, lent for one request at a time (`splice.rs`).
    pub pipes: crate::splice::PipePool,
}

impl ServerState {
    /// Session ids start at a random point, so that ids from before a restart are not
    /// mistaken for current ones, and stay below 2^32: Windows hands out 32-bit-sized ids
    /// and some clients (smbtorture's session-id test) keep them in 32-bit variables.
    pub fn new_session_id(&self) -> u64 {
        loop {
            let id = self.next_session_id.fetch_add(1, Ordering::Relaxed) & 0xFFFF_FFFF;
            if id != 0 && self.sessions.get(id).is_none() {
                return id;
            }
        }
    }

    /// Addresses the server is listening on (FSCTL_QUERY_NETWORK_INTERFACE_INFO).
    pub fn listener_addrs(&self) -> Vec<SocketAddr> {
        lock(&self.listeners).clone()
    }

    pub fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn limits(&self) -> Limits {
        self.live().limits.clone()
    }

    /// Share lookup is case-insensitive, as Windows does ([MS-SMB2] 3.3.5.7).
    pub fn find_share(&self, name: &str) -> Option<Arc<Share>> {
        if name.eq_ignore_ascii_case("IPC$") {
            return Some(self.ipc.clone());
        }
        let live = self.live();
        live.shares
            .iter()
            .find(|s| s.config.name.to_lowercase() == name.to_lowercase())
            .cloned()
    }

    /// Seconds since the server started: the clock for idle times (monotonic).
    pub fn now_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// FILETIME: 100 ns intervals since 1601-01-01.
pub(crate) fn filetime_now() -> u64 {
    const UNIX_EPOCH_AS_FILETIME: u64 = 116_444_736_000_000_000;
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    UNIX_EPOCH_AS_FILETIME + d.as_secs() * 10_000_000 + u64::from(d.subsec_nanos()) / 100
}

/// Requests processed at once when `max_inflight` is 0: enough for every core to stay busy
/// with deep client pipelines, few enough that a flood of 8 MiB writes cannot exhaust memory
/// (each in-flight request holds at most one frame).
fn default_inflight() -> u32 {
    4096
}

/// TCP keepalive: dead peers (a laptop that went to sleep) are found within about two
/// minutes and their connection slot is freed.
const KEEPALIVE_TIME: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 6;

/// TCP_NODELAY (a response must not wait for the ACK of the one before) and, when
/// configured, keepalive. True when every option was set.
fn set_socket_options(sock: &socket2::SockRef<'_>, keepalive: bool) -> bool {
    let nodelay = sock.set_tcp_nodelay(true).is_ok();
    if !keepalive {
        return nodelay;
    }
    let ka = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_TIME)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    nodelay && sock.set_tcp_keepalive(&ka).is_ok()
}

/// Whether an accepted socket came with the options [`set_socket_options`] put on its
/// listener.
fn has_socket_options(sock: &socket2::SockRef<'_>, keepalive: bool) -> bool {
    let nodelay = sock.tcp_nodelay().unwrap_or(false);
    if !keepalive {
        return nodelay;
    }
    nodelay
        && sock.keepalive().unwrap_or(false)
        && sock.tcp_keepalive_time().ok() == Some(KEEPALIVE_TIME)
        && sock.tcp_keepalive_interval().ok() == Some(KEEPALIVE_INTERVAL)
        && sock.tcp_keepalive_retries().ok() == Some(KEEPALIVE_RETRIES)
}

/// Holds a connection's place in the admission counts; releases it however the task ends.
struct Admitted {
    state: Arc<ServerState>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.state.connections.fetch_sub(1, Ordering::Relaxed);
        let mut per_ip = lock(&self.state.per_ip);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// The SMB server. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Server {
    pub(crate) state: Arc<ServerState>,
}

impl Server {
    /// Open every share root and prepare the server. Fails with a message that names the share
    /// when a root cannot be opened.
    pub fn new(config: EngineConfig, users: Arc<dyn UserDb>) -> Result<Server, EngineError> {
        let shares = config
            .shares
            .iter()
            .cloned()
            .map(|sc| Share::open(sc).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ipc_cfg = ShareConfig::new("IPC$", "");
        ipc_cfg.comment = "IPC Service".into();
        let ipc = Arc::new(Share {
            config: ipc_cfg,
            vfs: None,
            changes: ChangeHub::new(),
            is_ipc: true,
            users: AtomicU32::new(0),
        });
        let auth_policy = Arc::new(AuthPolicy {
            allow_anonymous: config.anonymous != crate::config::AnonymousPolicy::Deny,
            allow_guest: config.allow_guest,
            netbios_domain: config.server_name.clone(),
            netbios_computer: config.server_name.clone(),
            dns_domain: String::new(),
            dns_computer: config.server_name.to_lowercase(),
        });
        let (shutdown_tx, shutdown) = watch::channel(false);
        let first_id = u64::from(rand::random::<u32>() >> 4) + 1;
        let inflight_limit = if config.max_inflight == 0 {
            default_inflight()
        } else {
            config.max_inflight
        };
        let live = Live {
            shares,
            limits: config.limits.clone(),
        };
        let throttle = Arc::new(lanshare_auth::LogonThrottle::new(
            config.logon_throttle.clone(),
        ));
        Ok(Server {
            state: Arc::new(ServerState {
                live: RwLock::new(Arc::new(live)),
                config,
                users,
                auth_policy,
                throttle,
                ipc,
                sessions: SessionTable::default(),
                next_session_id: AtomicU64::new(first_id),
                shutdown,
                shutdown_tx,
                connections: AtomicU64::new(0),
                per_ip: Mutex::new(HashMap::new()),
                inflight: Arc::new(Semaphore::new(inflight_limit as usize)),
                inflight_limit,
                counters: Counters::default(),
                objects: Arc::default(),
                started: Instant::now(),
                started_at: SystemTime::now(),
                listeners: Mutex::new(Vec::new()),
                resume_keys: Default::default(),
                pipes: Default::default(),
            }),
        })
    }

    /// Accept connections until [`Server::shutdown`] is called.
    ///
    /// The listener is registered (and shows in [`Server::listeners`] and `lanshare status`)
    /// when this is called, not when the returned future is first polled: the CLI prints
    /// "listening" before its accept tasks get scheduled, and a status query made right after
    /// that line must already see the listener.
    ///
    /// Each connection runs in its own task; a panic there ends that connection only.
    pub fn serve(
        &self,
        listener: TcpListener,
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
        let local = listener.local_addr();
        if let Ok(local) = local {
            lock(&self.state.listeners).push(local);
        }
        let this = self.clone();
        async move { this.accept_loop(listener, local?).await }
    }

    async fn accept_loop(&self, listener: TcpListener, local: SocketAddr) -> std::io::Result<()> {
        let mut shutdown = self.state.shutdown.clone();
        // One future for the listener's life: made anew for each accept, it joined and left
        // the watch's waiter list (a lock each way) once per connection.
        let shutdown = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        tokio::pin!(shutdown);
        info!(%local, "SMB listener ready");
        let keepalive = self.state.config.tcp_keepalive;
        // Set once on the listener, the options need no system calls per connection where
        // accepted sockets inherit them (Linux: five `setsockopt`s fewer per accept, about 2 %
        // of the server's CPU per session set up). Whether they do is checked on the first
        // connection; until then, and wherever they do not, each socket gets its own.
        let mut inherits = if set_socket_options(&socket2::SockRef::from(&listener), keepalive) {
            None
        } else {
            Some(false)
        };
        loop {
            let accepted = tokio::select! {
                // Shutdown first: it is a flag check, and a burst of connects must not delay it.
                biased;
                () = &mut shutdown => break,
                r = listener.accept() => r,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let sock = socket2::SockRef::from(&stream);
                    let inherited =
                        *inherits.get_or_insert_with(|| has_socket_options(&sock, keepalive));
                    if !inherited {
                        set_socket_options(&sock, keepalive);
                    }
                    self.admit(stream, peer)
                }
                // EMFILE and friends: keep serving the clients we have, retry shortly.
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        lock(&self.state.listeners).retain(|a| *a != local);
        info!(%local, "SMB listener stopped");
        Ok(())
    }

    /// Admission ([MS-SMB2] has no word on it; this is the `max_connections` and
    /// `max_connections_per_ip` policy): refused sockets are closed right after a log line
    /// that names the limit; clients already connected are untouched.
    fn admit(&self, stream: TcpStream, peer: SocketAddr) {
        let state = &self.state;
        let limits = state.limits();
        let ip = peer.ip();
        let total = state.connections.load(Ordering::Relaxed);
        if limits.max_connections != 0 && total >= u64::from(limits.max_connections) {
            state.counters.refuse(Refusal::MaxConnections);
            warn!(%peer, current = total, limit = limits.max_connections,
                  "connection refused: limits.max_connections reached");
            return;
        }
        {
            let mut per_ip = lock(&state.per_ip);
            let n = per_ip.entry(ip).or_insert(0);
            if limits.max_connections_per_ip != 0 && *n >= limits.max_connections_per_ip {
                let current = *n;
                if current == 0 {
                    per_ip.remove(&ip);
                }
                drop(per_ip);
                state.counters.refuse(Refusal::MaxConnectionsPerIp);
                warn!(%peer, current, limit = limits.max_connections_per_ip,
                      "connection refused: limits.max_connections_per_ip reached for this address");
                return;
            }
            *n += 1;
        }
        state.connections.fetch_add(1, Ordering::Relaxed);
        state.counters.accepted.fetch_add(1, Ordering::Relaxed);
        let admitted = Admitted {
            state: state.clone(),
            ip,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            conn::run(state, stream, peer).await;
        });
    }

    /// Stop accepting and end every connection at its next frame boundary.
    pub fn shutdown(&self) {
        let _ = self.state.shutdown_tx.send(true);
    }

    /// Connections currently open.
    pub fn connection_count(&self) -> u64 {
        self.state.connections.load(Ordering::Relaxed)
    }

    /// Sessions currently established or being set up.
    pub fn session_count(&self) -> usize {
        self.state.sessions.len()
    }

    /// Apply a new configuration's shares and limits without dropping anyone
    /// (`lanshare reload`, SIGHUP). Shares whose path is unchanged keep their state and caches;
    /// removed shares stay reachable for trees already connected to them, but take no new
    /// tree connects. Settings that need a restart (name, listeners, signing, dialects) are
    /// reported, not applied.
    pub fn reload(&self, new: EngineConfig) -> Result<Vec<String>, EngineError> {
        let state = &self.state;
        let old = state.live();
        let mut shares = Vec::with_capacity(new.shares.len());
        for sc in &new.shares {
            let kept = old
                .shares
                .iter()
                .find(|s| s.config.name.eq_ignore_ascii_case(&sc.name) && s.config.path == sc.path);
            match kept {
                Some(s) if s.config == *sc => shares.push(s.clone()),
                Some(s) => {
                    // Same storage, new settings: a fresh Share would lose the user count, so
                    // carry it over.
                    let share = Share {
                        config: sc.clone(),
                        vfs: s.vfs.clone(),
                        changes: s.changes.clone(),
                        is_ipc: false,
                        users: AtomicU32::new(s.users.load(Ordering::Relaxed)),
                    };
                    shares.push(Arc::new(share));
                }
                None => shares.push(Arc::new(Share::open(sc.clone())?)),
            }
        }
        let mut notes = Vec::new();
        let c = &state.config;
        if c.server_name != new.server_name
            || c.signing != new.signing
            || c.anonymous != new.anonymous
            || c.allow_guest != new.allow_guest
            || c.min_dialect != new.min_dialect
            || c.max_dialect != new.max_dialect
            || c.max_credits != new.max_credits
        {
            notes.push(
                "server name, security and protocol settings take effect after a restart"
                    .to_string(),
            );
        }
        if old.limits != new.limits {
            notes.push(format!("limits updated: {:?}", new.limits));
        }
        *state.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Live {
            shares,
            limits: new.limits,
        });
        info!(shares = new.shares.len(), "configuration reloaded");
        Ok(notes)
    }

    /// Addresses the server is listening on.
    pub fn listeners(&self) -> Vec<SocketAddr> {
        lock(&self.state.listeners).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The accept loop stops setting options per connection only when accepted sockets are
    /// seen to carry the listener's; this checks both halves on the machine the tests run on.
    #[test]
    fn accepted_sockets_carry_the_listeners_options() {
        for keepalive in [false, true] {
            let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let _c = std::net::TcpStream::connect(plain.local_addr().unwrap()).unwrap();
            let (s, _) = plain.accept().unwrap();
            assert!(!has_socket_options(&socket2::SockRef::from(&s), keepalive));
            assert!(set_socket_options(&socket2::SockRef::from(&s), keepalive));
            assert!(has_socket_options(&socket2::SockRef::from(&s), keepalive));

            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            assert!(set_socket_options(
                &socket2::SockRef::from(&listener),
                keepalive
            ));
            let _c = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (s, _) = listener.accept().unwrap();
            let inherited = has_socket_options(&socket2::SockRef::from(&s), keepalive);
            #[cfg(target_os = "linux")]
            assert!(inherited, "keepalive {keepalive}");
            let _ = inherited;
        }
    }
}
