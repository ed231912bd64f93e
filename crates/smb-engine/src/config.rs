//! The engine's view of the configuration: plain data, already validated by the binary.
//!
//! The TOML file, its error messages and the CLI live in the `lanshare` crate; the engine only
//! sees these types, so tests can build a server without touching a file.

use std::path::PathBuf;
use std::time::Duration;

use smb_wire::Dialect;

/// `security.signing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningPolicy {
    /// Sign when the client asks or requires it; never refuse an unsigned client.
    Enabled,
    /// Every authenticated (non-guest, non-anonymous) session must sign
    /// ([MS-SMB2] 3.3.5.5.3: Session.SigningRequired). Windows 11 24H2's default.
    Required,
}

/// `security.encryption` (Windows' `EncryptData` / `RejectUnencryptedAccess`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncryptionPolicy {
    /// Not advertised; an encrypted frame ends the connection.
    Off,
    /// Advertised; each client decides (smbclient `--client-protection=encrypt`, a share's
    /// `encrypt = true`). Samba's and Windows' default.
    Enabled,
    /// Every session of a client that can encrypt is told to (SMB2_SESSION_FLAG_ENCRYPT_DATA);
    /// older clients still connect unencrypted.
    Desired,
    /// Like `Desired`, and a client that cannot encrypt is refused.
    Required,
}

/// `security.anonymous` (the `RestrictAnonymous` / `NullSessionShares` knobs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnonymousPolicy {
    /// Null sessions are refused with STATUS_LOGON_FAILURE.
    Deny,
    /// Null sessions may connect to IPC$ only (share listing), nothing else.
    IpcOnly,
    /// Null sessions may connect to shares marked `guest_ok`.
    Allow,
}

/// One `[[share]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareConfig {
    /// The name clients use, case-insensitively (`\\server\NAME`).
    pub name: String,
    pub path: PathBuf,
    pub comment: String,
    pub read_only: bool,
    /// Guest and (when `anonymous = allow`) null sessions may connect.
    pub guest_ok: bool,
    /// Listed by NetrShareEnum; hidden shares are still reachable by name.
    pub browseable: bool,
    /// `share.max_users` (`net share /users:N`): concurrent tree connects to this share;
    /// the next one gets STATUS_REQUEST_NOT_ACCEPTED. 0 = unlimited.
    pub max_users: u32,
    /// `share.encrypt`: every request to this share must be encrypted (SMB 3.x); a client
    /// that cannot is refused at TREE_CONNECT with STATUS_ACCESS_DENIED.
    pub encrypt: bool,
}

/// Everything the SMB engine needs to run.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// NetBIOS-style server name (upper case, ≤ 15 chars), used in NTLM target info.
    pub server_name: String,
    /// The workgroup wkssvc reports and discovery announces ("WORKGROUP" unless configured).
    pub workgroup: String,
    /// Stable across restarts when the binary persists it; random otherwise.
    pub server_guid: [u8; 16],
    pub signing: SigningPolicy,
    pub encryption: EncryptionPolicy,
    pub anonymous: AnonymousPolicy,
    /// Map unknown users (and `guest`) to a guest session.
    pub allow_guest: bool,
    pub min_dialect: Dialect,
    pub max_dialect: Dialect,
    pub shares: Vec<ShareConfig>,
    /// Largest READ/WRITE/TRANSACT the server advertises ([MS-SMB2] 2.2.4, large MTU).
    pub max_io_size: u32,
    /// A connection that has not finished NEGOTIATE + SESSION_SETUP by then is dropped.
    pub handshake_timeout: Duration,
    /// Longest time a partly received frame may take to arrive (slow-loris guard).
    pub frame_read_timeout: Duration,
    /// `limits.max_credits`: credits granted to one connection never exceed this.
    pub max_credits: u16,
    /// `limits.max_async_per_connection` (Windows' AsynchronousCredits): pending async
    /// operations (change notify, blocking locks) one connection may have; beyond it a new
    /// one gets STATUS_INSUFFICIENT_RESOURCES. 0 = unlimited.
    pub max_async_per_connection: u32,
    /// The limits that `reload` can change while clients stay connected.
    pub limits: Limits,
    /// `limits.max_inflight` (the MaxWorkItems idea): requests being processed server-wide.
    /// At the limit the server stops reading from sockets (back-pressure) instead of failing
    /// requests. 0 = sized from memory at start.
    pub max_inflight: u32,
    /// TCP keepalive probes, so dead peers are reaped and never fill a limit.
    pub tcp_keepalive: bool,
    /// Failed-logon throttling per source address and per account ([MS-NLMP] leaves it to
    /// the server; Windows has its account lockout policy).
    pub logon_throttle: lanshare_auth::ThrottleConfig,
    /// Every failed logon is answered after this delay, so an online guesser on one
    /// connection gets a few tries per second at most, before the lockout stops it.
    pub logon_failure_delay: Duration,
    /// `server.oplock_break_timeout`: how long a CREATE waits for the holder to acknowledge
    /// an oplock break before treating it as broken to none ([MS-SMB2] 3.3.2.1: 35 s).
    pub oplock_break_timeout: Duration,
}

/// Limits that apply to newcomers and can change at run time (`lanshare reload`). Lowering one
/// below the current count refuses newcomers; it never disconnects anyone. 0 = unlimited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `limits.max_sessions` (the `Users` knob of a Windows workstation, which stops at
    /// 5/10/20): the next SESSION_SETUP gets STATUS_REQUEST_NOT_ACCEPTED, the status behind
    /// "No more connections can be made to this remote computer…".
    pub max_sessions: u32,
    /// `limits.max_connections`: TCP connections; a refused one is closed after a log line.
    pub max_connections: u32,
    /// `limits.max_connections_per_ip`.
    pub max_connections_per_ip: u32,
    /// `limits.max_open_files`: server-wide; CREATE gets STATUS_TOO_MANY_OPENED_FILES.
    pub max_open_files: u32,
    /// `limits.max_open_files_per_session`.
    pub max_open_files_per_session: u32,
    /// `limits.idle_timeout` (the `autodisconnect` knob): a connection with no request and no
    /// open file for this long is closed. Zero = never. Durable opens do not keep a
    /// connection alive: they outlive it for `durable_handle_timeout`.
    pub idle_timeout: Duration,
    /// `limits.durable_handle_timeout`: the longest an open with a durable handle is kept
    /// after its connection is lost, for the client to reclaim it. A v2 request gets the
    /// time it asks for up to this; v1 handles and v2 requests that name no time get 60 s
    /// (Windows' default), or this when lower. Zero = durable handles are not granted.
    pub durable_handle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 0,
            max_connections: 0,
            max_connections_per_ip: 0,
            max_open_files: 0,
            max_open_files_per_session: 0,
            // Windows' autodisconnect default.
            idle_timeout: Duration::from_secs(15 * 60),
            // The most Windows grants a v2 request (smbtorture expects it).
            durable_handle_timeout: Duration::from_secs(300),
        }
    }
}

impl EngineConfig {
    /// Safe defaults: every dialect, signing required, no guest, no anonymous, 8 MiB I/O.
    pub fn new(server_name: impl Into<String>) -> Self {
        EngineConfig {
            server_name: server_name.into(),
            workgroup: "WORKGROUP".into(),
            server_guid: rand::random(),
            signing: SigningPolicy::Required,
            encryption: EncryptionPolicy::Enabled,
            anonymous: AnonymousPolicy::Deny,
            allow_guest: false,
            min_dialect: Dialect::SMB2_0_2,
            max_dialect: Dialect::SMB3_1_1,
            shares: Vec::new(),
            max_io_size: 8 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(30),
            frame_read_timeout: Duration::from_secs(30),
            max_credits: 8192,
            max_async_per_connection: 512,
            limits: Limits::default(),
            max_inflight: 0,
            tcp_keepalive: true,
            logon_throttle: lanshare_auth::ThrottleConfig::default(),
            logon_failure_delay: Duration::from_millis(300),
            oplock_break_timeout: Duration::from_secs(35),
        }
    }

    pub fn with_share(mut self, share: ShareConfig) -> Self {
        self.shares.push(share);
        self
    }
}

impl ShareConfig {
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        ShareConfig {
            name: name.into(),
            path: path.into(),
            comment: String::new(),
            read_only: false,
            guest_ok: false,
            browseable: true,
            max_users: 0,
            encrypt: false,
        }
    }
}
