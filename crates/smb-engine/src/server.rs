//! The listener side: server-wide state, the accept loop and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use lanshare_auth::{AuthPolicy, UserDb};
use lanshare_vfs::{LocalFs, Vfs};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{EngineConfig, ShareConfig};
use crate::conn;
use crate::error::EngineError;
use crate::session::SessionTable;

/// One configured share with its storage back-end opened.
pub(crate) struct Share {
    pub config: ShareConfig,
    /// `None` for IPC$.
    pub vfs: Option<Arc<dyn Vfs>>,
    pub is_ipc: bool,
}

pub(crate) struct ServerState {
    pub config: EngineConfig,
    pub users: Arc<dyn UserDb>,
    pub auth_policy: Arc<AuthPolicy>,
    pub shares: Vec<Arc<Share>>,
    pub ipc: Arc<Share>,
    pub sessions: SessionTable,
    next_session_id: AtomicU64,
    pub shutdown: watch::Receiver<bool>,
    shutdown_tx: watch::Sender<bool>,
    pub connections: AtomicU64,
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

    /// Share lookup is case-insensitive, as Windows does ([MS-SMB2] 3.3.5.7).
    pub fn find_share(&self, name: &str) -> Option<Arc<Share>> {
        if name.eq_ignore_ascii_case("IPC$") {
            return Some(self.ipc.clone());
        }
        self.shares
            .iter()
            .find(|s| s.config.name.to_lowercase() == name.to_lowercase())
            .cloned()
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

/// The SMB server. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Server {
    pub(crate) state: Arc<ServerState>,
}

impl Server {
    /// Open every share root and prepare the server. Fails with a message that names the share
    /// when a root cannot be opened.
    pub fn new(config: EngineConfig, users: Arc<dyn UserDb>) -> Result<Server, EngineError> {
        let mut shares = Vec::with_capacity(config.shares.len());
        for sc in &config.shares {
            let vfs = LocalFs::new(&sc.path).map_err(|source| EngineError::ShareRoot {
                share: sc.name.clone(),
                path: sc.path.clone(),
                source,
            })?;
            shares.push(Arc::new(Share {
                config: sc.clone(),
                vfs: Some(Arc::new(vfs)),
                is_ipc: false,
            }));
        }
        let mut ipc_cfg = ShareConfig::new("IPC$", "");
        ipc_cfg.comment = "IPC Service".into();
        let ipc = Arc::new(Share {
            config: ipc_cfg,
            vfs: None,
            is_ipc: true,
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
        Ok(Server {
            state: Arc::new(ServerState {
                config,
                users,
                auth_policy,
                shares,
                ipc,
                sessions: SessionTable::default(),
                next_session_id: AtomicU64::new(first_id),
                shutdown,
                shutdown_tx,
                connections: AtomicU64::new(0),
            }),
        })
    }

    /// Accept connections until [`Server::shutdown`] is called.
    ///
    /// Each connection runs in its own task; a panic there ends that connection only.
    pub async fn serve(&self, listener: TcpListener) -> std::io::Result<()> {
        let mut shutdown = self.state.shutdown.clone();
        let local = listener.local_addr()?;
        info!(%local, "SMB listener ready");
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
            };
            match accepted {
                Ok((stream, peer)) => self.spawn_connection(stream, peer),
                // EMFILE and friends: keep serving the clients we have, retry shortly.
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        info!(%local, "SMB listener stopped");
        Ok(())
    }

    fn spawn_connection(&self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let state = self.state.clone();
        tokio::spawn(async move {
            state.connections.fetch_add(1, Ordering::Relaxed);
            conn::run(state.clone(), stream, peer).await;
            state.connections.fetch_sub(1, Ordering::Relaxed);
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
}
