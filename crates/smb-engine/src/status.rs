//! The live view behind `lanshare status`, `sessions` and `files` (what `net config server`,
//! `net session` and `net file` show on Windows), and the two administrative actions.
//!
//! Plain data with `serde::Serialize`, so the binary can print it as a table or as JSON.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde::Serialize;

use crate::server::{Refusal, Server};
use crate::session::lock;

/// One limit: its setting, the live count it bounds, and how often it refused someone.
#[derive(Clone, Debug, Serialize)]
pub struct LimitStatus {
    /// The lanshare.toml key, e.g. `limits.max_sessions`.
    pub setting: &'static str,
    /// 0 = unlimited.
    pub limit: u64,
    /// The count the limit applies to right now (None where it is per connection/share).
    pub current: Option<u64>,
    /// Newcomers refused by this limit since the server started.
    pub refused: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShareStatus {
    pub name: String,
    pub path: String,
    pub comment: String,
    pub read_only: bool,
    pub guest_ok: bool,
    pub browseable: bool,
    /// Tree connects right now, and `max_users` (0 = unlimited).
    pub users: u32,
    pub max_users: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServerStatus {
    pub server_name: String,
    pub version: &'static str,
    pub listeners: Vec<String>,
    pub uptime_secs: u64,
    pub started_unix: u64,
    pub connections: u64,
    pub sessions: u64,
    pub open_files: u64,
    pub inflight_limit: u32,
    pub inflight_now: u32,
    pub idle_timeout_secs: u64,
    pub handshake_timeout_secs: u64,
    pub max_credits: u16,
    pub signing: String,
    pub anonymous: String,
    pub guest: bool,
    pub limits: Vec<LimitStatus>,
    pub shares: Vec<ShareStatus>,
    /// Connections closed by the idle timer, the handshake timer, the read deadline, and for
    /// protocol violations, since start.
    pub idle_closed: u64,
    pub handshake_timeouts: u64,
    pub read_deadline_drops: u64,
    pub protocol_drops: u64,
    pub logons: u64,
    pub logon_failures: u64,
    /// Addresses and accounts locked out by the failed-logon throttle right now.
    pub locked_out_addresses: usize,
    pub locked_out_accounts: usize,
    pub accepted_connections: u64,
    /// Large plain WRITEs to files in memory whose data went from the socket straight into
    /// the file (`splice`), or was discarded from the socket when the WRITE was refused.
    pub socket_writes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SessionInfo {
    pub id: u64,
    pub user: String,
    pub client: String,
    pub dialect: String,
    pub signing: bool,
    pub encryption: bool,
    pub guest: bool,
    pub anonymous: bool,
    pub trees: usize,
    pub opens: usize,
    pub idle_secs: u64,
    pub connected_unix: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct OpenFileInfo {
    /// The id `close-file` takes.
    pub id: u64,
    pub session: u64,
    pub user: String,
    pub client: String,
    pub share: String,
    pub path: String,
    pub directory: bool,
    /// The granted access mask, and a short rendering (R, W, D).
    pub access: u32,
    pub access_text: String,
    /// The open has a durable handle: it survives a dropped connection.
    pub durable: bool,
    /// A durable open whose connection is gone, kept for its client's reconnect: seconds
    /// left before it is closed. Its `session` is 0.
    pub detached_secs_left: Option<u64>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn access_text(a: u32) -> String {
    let mut s = String::new();
    if a & 0x21 != 0 {
        s.push('R');
    }
    if a & 0x6 != 0 {
        s.push('W');
    }
    if a & 0x1_0000 != 0 {
        s.push('D');
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

impl Server {
    pub fn status(&self) -> ServerStatus {
        let st = &self.state;
        let live = st.live();
        let l = &live.limits;
        let c = &st.counters;
        let sessions = st.sessions.len() as u64;
        let connections = st.connections.load(Ordering::Relaxed);
        let open_files = st.counters.open_files.load(Ordering::Relaxed);
        let lim = |why: Refusal, limit: u64, current: Option<u64>| LimitStatus {
            setting: why.setting(),
            limit,
            current,
            refused: c.refused(why),
        };
        ServerStatus {
            server_name: st.config.server_name.clone(),
            version: env!("CARGO_PKG_VERSION"),
            listeners: self.listeners().iter().map(|a| a.to_string()).collect(),
            uptime_secs: st.started.elapsed().as_secs(),
            started_unix: unix(st.started_at),
            connections,
            sessions,
            open_files,
            inflight_limit: st.inflight_limit,
            inflight_now: st
                .inflight_limit
                .saturating_sub(st.inflight.available_permits() as u32),
            idle_timeout_secs: l.idle_timeout.as_secs(),
            handshake_timeout_secs: st.config.handshake_timeout.as_secs(),
            max_credits: st.config.max_credits,
            signing: format!("{:?}", st.config.signing).to_lowercase(),
            anonymous: format!("{:?}", st.config.anonymous).to_lowercase(),
            guest: st.config.allow_guest,
            limits: vec![
                lim(Refusal::MaxSessions, l.max_sessions.into(), Some(sessions)),
                lim(
                    Refusal::MaxConnections,
                    l.max_connections.into(),
                    Some(connections),
                ),
                lim(
                    Refusal::MaxConnectionsPerIp,
                    l.max_connections_per_ip.into(),
                    None,
                ),
                lim(
                    Refusal::MaxOpenFiles,
                    l.max_open_files.into(),
                    Some(open_files),
                ),
                lim(
                    Refusal::MaxOpenFilesPerSession,
                    l.max_open_files_per_session.into(),
                    None,
                ),
                lim(Refusal::MaxUsers, 0, None),
                lim(
                    Refusal::MaxAsyncPerConnection,
                    st.config.max_async_per_connection.into(),
                    None,
                ),
            ],
            shares: live
                .shares
                .iter()
                .map(|s| ShareStatus {
                    name: s.config.name.clone(),
                    path: s.config.path.display().to_string(),
                    comment: s.config.comment.clone(),
                    read_only: s.config.read_only,
                    guest_ok: s.config.guest_ok,
                    browseable: s.config.browseable,
                    users: s.users.load(Ordering::Relaxed),
                    max_users: s.config.max_users,
                })
                .collect(),
            idle_closed: c.idle_closed.load(Ordering::Relaxed),
            handshake_timeouts: c.handshake_timeouts.load(Ordering::Relaxed),
            read_deadline_drops: c.read_deadline_drops.load(Ordering::Relaxed),
            protocol_drops: c.protocol_drops.load(Ordering::Relaxed),
            logons: c.logons.load(Ordering::Relaxed),
            logon_failures: c.logon_failures.load(Ordering::Relaxed),
            locked_out_addresses: st.throttle.locked_out(std::time::Instant::now()).0,
            locked_out_accounts: st.throttle.locked_out(std::time::Instant::now()).1,
            accepted_connections: c.accepted.load(Ordering::Relaxed),
            socket_writes: c.socket_writes.load(Ordering::Relaxed),
        }
    }

    pub fn sessions(&self) -> Vec<SessionInfo> {
        let now = self.state.now_secs();
        let mut out: Vec<SessionInfo> = self
            .state
            .sessions
            .all()
            .into_iter()
            .filter_map(|s| {
                let auth = s.auth()?;
                Some(SessionInfo {
                    id: s.id,
                    user: auth.user_name().to_string(),
                    client: s.peer.to_string(),
                    dialect: format!("{}", s.dialect),
                    signing: auth.signing.is_some(),
                    encryption: auth.crypto.is_some(),
                    guest: auth.is_guest(),
                    anonymous: auth.is_anonymous(),
                    trees: lock(&s.trees).len(),
                    opens: lock(&s.opens).len(),
                    idle_secs: now.saturating_sub(s.last_active.load(Ordering::Relaxed)),
                    connected_unix: unix(s.created),
                })
            })
            .collect();
        out.sort_by_key(|s| s.id);
        out
    }

    pub fn open_files(&self) -> Vec<OpenFileInfo> {
        let mut out = Vec::new();
        for s in self.state.sessions.all() {
            let Some(auth) = s.auth() else { continue };
            for open in lock(&s.opens).values() {
                let share = s
                    .tree(open.tree_id())
                    .map(|t| t.share.config.name.clone())
                    .unwrap_or_default();
                out.push(OpenFileInfo {
                    id: open.file_id.volatile,
                    session: s.id,
                    user: auth.user_name().to_string(),
                    client: s.peer.to_string(),
                    share,
                    path: open.current_path().to_windows_string(),
                    directory: open.is_dir,
                    access: open.access,
                    access_text: access_text(open.access),
                    durable: open.is_durable(),
                    detached_secs_left: None,
                });
            }
        }
        let now = std::time::Instant::now();
        for (open, d) in self.state.objects.durable.detached() {
            let share = crate::session::lock(&open.durable)
                .as_ref()
                .map(|d| d.share_name.clone())
                .unwrap_or_default();
            out.push(OpenFileInfo {
                id: open.file_id.volatile,
                session: 0,
                user: d.user,
                client: d.client,
                share,
                path: open.current_path().to_windows_string(),
                directory: open.is_dir,
                access: open.access,
                access_text: access_text(open.access),
                durable: true,
                detached_secs_left: Some(d.until.saturating_duration_since(now).as_secs()),
            });
        }
        out.sort_by_key(|o| (o.session, o.id));
        out
    }

    /// `lanshare close-session ID` (`net session \\client /delete`): the session's opens are
    /// closed and its next request gets STATUS_USER_SESSION_DELETED.
    pub fn close_session(&self, id: u64) -> bool {
        let Some(s) = self.state.sessions.remove(id) else {
            return false;
        };
        s.expire();
        s.close_opens(None);
        lock(&s.trees).clear();
        tracing::info!(
            session = format_args!("{id:#x}"),
            "session closed by the administrator"
        );
        true
    }

    /// `lanshare close-file ID` (`net file ID /close`). The id is unique per session; when
    /// two sessions share it, `session` picks one.
    pub fn close_file(&self, id: u64, session: Option<u64>) -> bool {
        for s in self.state.sessions.all() {
            if session.is_some_and(|want| want != s.id) {
                continue;
            }
            let open = lock(&s.opens).remove(&id);
            if let Some(open) = open {
                open.close();
                tracing::info!(file = id, session = format_args!("{:#x}", s.id), path = %open.path, "file closed by the administrator");
                return true;
            }
        }
        // A detached durable open (session 0 in `files`).
        if session.is_none_or(|s| s == 0)
            && let Some(open) = self.state.objects.durable.take_detached_by_id(id)
        {
            open.close();
            tracing::info!(file = id, path = %open.path, "detached durable open closed by the administrator");
            return true;
        }
        false
    }
}
