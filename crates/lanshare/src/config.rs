//! The `lanshare.toml` configuration file: reference, parsing and validation.
//!
//! # Reference
//!
//! ```toml
//! [server]
//! name = "FILESRV"              # NetBIOS-style name: letters, digits, - and _, at most 15.
//!                               # Default: the host name's first label, upper-cased.
//! listen = ["0.0.0.0:445"]      # IP:PORT, one string or a list; [::]:445 for IPv6.
//!                               # `lanshare serve --listen` replaces this list.
//! users_file = "/etc/lanshare/users"   # written by `lanshare user add|del|passwd`
//! log = "info"                  # tracing EnvFilter syntax, e.g. "info,smb_engine=debug".
//!                               # RUST_LOG and -v override it.
//! # control_socket = "/run/lanshare/control.sock"
//!                               # the local socket `lanshare status|sessions|files|reload|
//!                               # close-session|close-file` talk to. Mode 0600, in a 0700
//!                               # folder; only the server's own user (and root) may use it.
//!                               # Default: /run/lanshare/control.sock as root, else
//!                               # $XDG_RUNTIME_DIR/lanshare.sock, else
//!                               # /tmp/lanshare-UID/control.sock. "" turns it off.
//!
//! [security]
//! signing = "required"          # required | enabled. Default required (Windows 11 24H2's rule:
//!                               # every user session signs; guest/anonymous never sign).
//!                               # A client that cannot sign gets STATUS_ACCESS_DENIED at logon.
//! encryption = "enabled"        # off | enabled | desired | required (Windows' EncryptData /
//!                               # RejectUnencryptedAccess). off: not offered, an encrypted
//!                               # message ends the connection. enabled (default): offered,
//!                               # each client decides (smbclient --client-protection=encrypt).
//!                               # desired: every SMB 3.x session is told to encrypt; SMB 2.x
//!                               # clients still connect unencrypted. required: like desired,
//!                               # and a client that cannot encrypt (SMB 2.x, or without a
//!                               # common cipher) is refused with STATUS_ACCESS_DENIED
//!                               # (smbclient: NT_STATUS_ACCESS_DENIED).
//! anonymous = "deny"            # deny | ipc-only | allow. Null sessions: refused; IPC$ only
//!                               # (share listing); or also shares with guest_ok = true.
//! guest = false                 # map unknown users and "guest" to a guest session.
//! min_protocol = "SMB2_02"      # SMB2_02 | SMB2_10 | SMB3_00 | SMB3_02 | SMB3_11
//! max_protocol = "SMB3_11"      # (smbclient's names for 2.0.2, 2.1, 3.0, 3.0.2, 3.1.1)
//!
//! [limits]                      # 0 = unlimited for every count below. Each limit's live
//!                               # value and refusals are in `lanshare status`; a refusal is
//!                               # logged with the limit's name and the current count.
//! max_sessions = 0              # logged-on sessions (a Windows workstation stops at 20).
//!                               # At the limit the next SESSION_SETUP gets
//!                               # STATUS_REQUEST_NOT_ACCEPTED: Windows shows "No more
//!                               # connections can be made to this remote computer at this
//!                               # time…", smbclient NT_STATUS_REQUEST_NOT_ACCEPTED.
//! max_connections = 0           # TCP connections, server-wide. At the limit a new
//!                               # connection is accepted, logged and closed at once; the
//!                               # client sees the connection reset (smbclient: "protocol
//!                               # negotiation failed: NT_STATUS_CONNECTION_RESET").
//! max_connections_per_ip = 0    # TCP connections from one address; refused the same way.
//! max_open_files = 0            # open files and folders, server-wide; at the limit CREATE
//!                               # gets STATUS_TOO_MANY_OPENED_FILES
//! max_open_files_per_session = 0  # the same, per session
//! idle_timeout = "15m"          # close a connection with no request and no open file for
//!                               # this long (Windows' autodisconnect); 0 = never. Clients
//!                               # reconnect silently. Applies to connections made after a
//!                               # reload. Durable opens do not keep a connection busy: they
//!                               # stay open without it (durable_handle_timeout).
//! durable_handle_timeout = "5m" # an Office document or any file a client opened with a
//!                               # durable handle stays open, locks and all, this long after
//!                               # the connection drops (Wi-Fi blip, sleep, idle_timeout),
//!                               # and the client takes it back when it reconnects. The most
//!                               # a client may ask for; 60 s when it names no time (Windows'
//!                               # default). 0 = no durable handles.
//! max_credits = 8192            # credits one connection may hold (1..=65535, Windows'
//!                               # Smb2CreditsMax); never granted beyond, nothing refused
//! max_async_per_connection = 512  # pending change-notify / blocking locks per connection
//!                               # (Windows' AsynchronousCredits). They never use up the
//!                               # credits reads and writes need; beyond the limit a new one
//!                               # gets STATUS_INSUFFICIENT_RESOURCES. 0 = unlimited.
//! max_inflight = 0              # requests in progress server-wide (Windows' MaxWorkItems).
//!                               # At the limit the server stops reading from sockets
//!                               # (back-pressure): clients slow down, nothing fails.
//!                               # 0 = automatic (4096).
//! keepalive = true              # TCP keepalive (first probe after 60 s idle, 6 probes 10 s
//!                               # apart), so dead peers are reaped and never fill a limit
//! handshake_timeout = "30s"     # NEGOTIATE + SESSION_SETUP must finish within this, or the
//!                               # connection is closed (counted in status); 0 = off
//! frame_read_timeout = "30s"    # a message that has started to arrive must be complete
//!                               # within this (a client trickling bytes cannot hold a slot);
//!                               # else the connection is closed (counted); 0 = off
//! oplock_break_timeout = "35s"  # how long an open that breaks another client's oplock
//!                               # waits for that client to acknowledge (it then goes on as
//!                               # if the oplock were released); 0 = the spec's 35 s
//!                               # Durations: "500ms", "30s", "15m", "1h", or integer seconds.
//!
//! [metrics]                     # off unless `listen` is set
//! # listen = "127.0.0.1:9631"   # Prometheus text format at http://ADDR/metrics: sessions,
//!                               # connections, open files, limits and refusals per limit,
//!                               # logons, failures, idle closes. No authentication: keep it
//!                               # on loopback or a management network.
//!
//! [discovery]                   # how Windows ("Network") and macOS/Linux file managers find
//!                               # the server by themselves, under the server name. The
//!                               # default for wsd and mdns: on when a listen address is not
//!                               # loopback (0.0.0.0, [::] or a LAN address; announced on that
//!                               # address's interface, or on every interface for 0.0.0.0/[::]),
//!                               # off when every listen address is loopback.
//! # wsd = true                  # WS-Discovery: UDP 3702 (multicast 239.255.255.250, ff02::c)
//!                               # and its HTTP metadata on TCP 5357; Windows 10/11 list the
//!                               # server under Network. What wsdd does for Samba.
//! # mdns = true                 # mDNS/DNS-SD on UDP 5353 (224.0.0.251, ff02::fb):
//!                               # NAME._smb._tcp and _device-info._tcp, for Finder, GNOME
//!                               # Files, Dolphin, `avahi-browse -rt _smb._tcp`. What avahi
//!                               # does for Samba; shares the port with a running avahi.
//! workgroup = "WORKGROUP"       # the workgroup Windows files the server under (WS-Discovery);
//!                               # letters, digits, - and _, at most 15
//!                               # A port that cannot be bound (wsdd or another lanshare holds
//!                               # 3702/5357) or a network without multicast gives one warning;
//!                               # the SMB server runs on regardless.
//!
//! [[share]]                     # one block per share; at least one is required
//! name = "docs"                 # what clients type: \\FILESRV\docs. At most 80 characters,
//!                               # none of " / \ [ ] : | < > + = ; , * ?  IPC$ is reserved.
//!                               # Unique, case-insensitively.
//! path = "/srv/docs"            # an existing directory
//! comment = "Team documents"    # shown by `net view` / `smbclient -L` (default "")
//! read_only = false             # default false
//! guest_ok = false              # guests (and anonymous when anonymous = "allow") may connect
//! browseable = true             # listed in the share list (default true)
//! max_users = 0                 # concurrent connections to this share (net share /users:N);
//!                               # at the limit TREE_CONNECT gets STATUS_REQUEST_NOT_ACCEPTED
//! encrypt = false               # every request to this share must be encrypted (SMB 3.x);
//!                               # a client that cannot encrypt is refused at TREE_CONNECT
//!                               # with STATUS_ACCESS_DENIED (smbclient -m SMB2_10:
//!                               # NT_STATUS_ACCESS_DENIED); SMB 3.x clients are told to
//!                               # encrypt and do so without being asked.
//! ```
//!
//! Relative paths (`users_file`, `share.path`) are taken relative to the config file's folder.
//! SIGHUP or `lanshare reload` re-reads the file: shares and the counting limits of `[limits]`
//! (sessions, connections, open files, idle timeout) change at once, and lowering one below the
//! current count refuses newcomers without disconnecting anyone; the server name, `listen`,
//! `users_file`, `log`, `control_socket`, `[security]`, `[metrics]`, `[discovery]`, `max_credits`,
//! `max_async_per_connection`, `max_inflight`, `keepalive`, `handshake_timeout` and
//! `frame_read_timeout`, `oplock_break_timeout` need a restart (`lanshare reload` says which changed).
//! Unknown sections and keys are errors. Every error names the file, the line and column, and
//! the fix, e.g. `lanshare.toml:7:1: unknown key `sgning` in [security]; did you mean
//! `signing`? (allowed: signing, encryption, anonymous, guest, min_protocol, max_protocol)`.
//!
//! How it works: the text is parsed twice. `toml_edit` keeps the span of every key, which is
//! what lets unknown keys be reported with their section and position; then serde (with
//! `deny_unknown_fields` as a backstop) reads the values, keeping spans (`toml::Spanned`) on
//! the ones that get semantic checks.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::names;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/lanshare/lanshare.toml";
pub const DEFAULT_USERS_FILE: &str = "/etc/lanshare/users";
pub const DEFAULT_LISTEN: &str = "0.0.0.0:445";
pub const DEFAULT_LOG: &str = "info";
pub const DEFAULT_MAX_CREDITS: u16 = 8192;
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_FRAME_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// [MS-SMB2] 3.3.2.1: the oplock break acknowledgment timer.
pub const DEFAULT_OPLOCK_BREAK_TIMEOUT: Duration = Duration::from_secs(35);
/// Windows' `autodisconnect` default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The most Windows grants a client asking for a durable handle.
pub const DEFAULT_DURABLE_HANDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Windows' `AsynchronousCredits` default.
pub const DEFAULT_MAX_ASYNC: u32 = 512;

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// A config file larger than this is surely not a config file; refuse before reading it all.
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The validated configuration.

/// `security.signing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    Required,
    Enabled,
}

/// `security.encryption`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    Off,
    Enabled,
    Desired,
    Required,
}

impl Encryption {
    pub const NAMES: [&'static str; 4] = ["off", "enabled", "desired", "required"];
}

/// `server.control_socket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlSocket {
    /// Not set: the default place for the server's user (see `control::default_socket_path`).
    Default,
    /// `control_socket = ""`: no control socket.
    Off,
    At(PathBuf),
}

/// `security.anonymous`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anonymous {
    Deny,
    IpcOnly,
    Allow,
}

/// An SMB dialect by smbclient's name (`-m SMB3_11`). Ordered oldest to newest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Smb2_02,
    Smb2_10,
    Smb3_00,
    Smb3_02,
    Smb3_11,
}

impl Protocol {
    pub const ALL: [Protocol; 5] = [
        Protocol::Smb2_02,
        Protocol::Smb2_10,
        Protocol::Smb3_00,
        Protocol::Smb3_02,
        Protocol::Smb3_11,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Smb2_02 => "SMB2_02",
            Protocol::Smb2_10 => "SMB2_10",
            Protocol::Smb3_00 => "SMB3_00",
            Protocol::Smb3_02 => "SMB3_02",
            Protocol::Smb3_11 => "SMB3_11",
        }
    }

    /// Case-insensitive, by smbclient's name.
    pub fn parse(s: &str) -> Option<Protocol> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
    }

    /// The dialect revision on the wire ([MS-SMB2] 2.2.3).
    pub fn dialect_revision(self) -> u16 {
        match self {
            Protocol::Smb2_02 => 0x0202,
            Protocol::Smb2_10 => 0x0210,
            Protocol::Smb3_00 => 0x0300,
            Protocol::Smb3_02 => 0x0302,
            Protocol::Smb3_11 => 0x0311,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signing::Required => "required",
            Signing::Enabled => "enabled",
        })
    }
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encryption::Off => "off",
            Encryption::Enabled => "enabled",
            Encryption::Desired => "desired",
            Encryption::Required => "required",
        })
    }
}

impl fmt::Display for Anonymous {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Anonymous::Deny => "deny",
            Anonymous::IpcOnly => "ipc-only",
            Anonymous::Allow => "allow",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    pub name: String,
    pub listen: Vec<SocketAddr>,
    pub users_file: PathBuf,
    pub log: String,
    pub control_socket: ControlSocket,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecuritySettings {
    pub signing: Signing,
    pub encryption: Encryption,
    pub anonymous: Anonymous,
    pub guest: bool,
    pub min_protocol: Protocol,
    pub max_protocol: Protocol,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitSettings {
    pub max_sessions: u32,
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    pub max_open_files: u32,
    pub max_open_files_per_session: u32,
    /// `Duration::ZERO` means never.
    pub idle_timeout: Duration,
    /// `Duration::ZERO`: no durable handles.
    pub durable_handle_timeout: Duration,
    pub max_credits: u16,
    pub max_async_per_connection: u32,
    /// 0 means sized from memory by the engine.
    pub max_inflight: u32,
    pub keepalive: bool,
    /// `Duration::ZERO` means off.
    pub handshake_timeout: Duration,
    /// `Duration::ZERO` means off.
    pub frame_read_timeout: Duration,
    /// `Duration::ZERO` means the default.
    pub oplock_break_timeout: Duration,
}

/// `[metrics]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Where the Prometheus endpoint listens; `None` = off (the default).
    pub listen: Option<SocketAddr>,
}

/// `[discovery]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoverySettings {
    /// WS-Discovery; `None` = automatic (see [`DiscoverySettings::wsd_on`]).
    pub wsd: Option<bool>,
    /// mDNS/DNS-SD; `None` = automatic.
    pub mdns: Option<bool>,
    /// Upper-cased.
    pub workgroup: String,
}

pub const DEFAULT_WORKGROUP: &str = "WORKGROUP";

impl Default for DiscoverySettings {
    fn default() -> Self {
        DiscoverySettings {
            wsd: None,
            mdns: None,
            workgroup: DEFAULT_WORKGROUP.into(),
        }
    }
}

/// A server that listens only on loopback is not on a LAN: announcing it there would invite
/// clients that cannot connect.
pub fn listens_on_lan(listen: &[SocketAddr]) -> bool {
    listen.iter().any(|a| !a.ip().is_loopback())
}

impl DiscoverySettings {
    /// WS-Discovery on for these listen addresses (given after `--listen` replaced the file's).
    pub fn wsd_on(&self, listen: &[SocketAddr]) -> bool {
        self.wsd.unwrap_or_else(|| listens_on_lan(listen))
    }

    /// mDNS on for these listen addresses.
    pub fn mdns_on(&self, listen: &[SocketAddr]) -> bool {
        self.mdns.unwrap_or_else(|| listens_on_lan(listen))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub name: String,
    /// Absolute (relative paths were resolved against the config file's folder).
    pub path: PathBuf,
    pub comment: String,
    pub read_only: bool,
    pub guest_ok: bool,
    pub browseable: bool,
    /// 0 = unlimited.
    pub max_users: u32,
    /// Only encrypted (SMB 3.x) access.
    pub encrypt: bool,
}

/// A validated configuration. Built by [`Config::load`] / [`Config::parse`], or by hand (the
/// `serve PATH…` mode) from [`Config::defaults`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub server: ServerSettings,
    pub security: SecuritySettings,
    pub limits: LimitSettings,
    pub metrics: MetricsSettings,
    pub discovery: DiscoverySettings,
    pub shares: Vec<Share>,
    /// Things that are legal but probably not what was meant (printed by check-config/serve).
    pub warnings: Vec<String>,
}

impl Config {
    /// Every default, no shares, with the given server name.
    pub fn defaults(server_name: impl Into<String>) -> Config {
        Config {
            server: ServerSettings {
                name: server_name.into(),
                listen: vec![SocketAddr::from(([0, 0, 0, 0], 445))],
                users_file: PathBuf::from(DEFAULT_USERS_FILE),
                log: DEFAULT_LOG.into(),
                control_socket: ControlSocket::Default,
            },
            security: SecuritySettings {
                signing: Signing::Required,
                encryption: Encryption::Enabled,
                anonymous: Anonymous::Deny,
                guest: false,
                min_protocol: Protocol::Smb2_02,
                max_protocol: Protocol::Smb3_11,
            },
            limits: LimitSettings {
                max_sessions: 0,
                max_connections: 0,
                max_connections_per_ip: 0,
                max_open_files: 0,
                max_open_files_per_session: 0,
                idle_timeout: DEFAULT_IDLE_TIMEOUT,
                durable_handle_timeout: DEFAULT_DURABLE_HANDLE_TIMEOUT,
                max_credits: DEFAULT_MAX_CREDITS,
                max_async_per_connection: DEFAULT_MAX_ASYNC,
                max_inflight: 0,
                keepalive: true,
                handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
                frame_read_timeout: DEFAULT_FRAME_READ_TIMEOUT,
                oplock_break_timeout: DEFAULT_OPLOCK_BREAK_TIMEOUT,
            },
            metrics: MetricsSettings::default(),
            discovery: DiscoverySettings::default(),
            shares: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let label = path.display().to_string();
        let text = read_config_text(path, &label)?;
        let base = base_dir(path);
        Config::parse(&text, &label, &base)
    }

    /// Parses and validates config text. `label` names the file in messages; relative paths
    /// are resolved against `base_dir`.
    pub fn parse(text: &str, label: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        let raw = parse_raw(text, label)?;
        let mut v = Validator {
            text,
            label,
            base_dir,
            errors: Vec::new(),
        };
        let config = v.validate(raw);
        if v.errors.is_empty() {
            Ok(config)
        } else {
            // Errors without a place (no shares at all) come first: they matter most.
            v.errors
                .sort_by_key(|e| (e.line.unwrap_or(0), e.column.unwrap_or(0)));
            Err(ConfigErrors(v.errors))
        }
    }

    /// A human summary for `check-config`.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let listen: Vec<String> = self.server.listen.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(s, "server name:   {}", self.server.name);
        let _ = writeln!(s, "listen:        {}", listen.join(", "));
        let _ = writeln!(s, "users file:    {}", self.server.users_file.display());
        let _ = writeln!(s, "log:           {}", self.server.log);
        let control = match &self.server.control_socket {
            ControlSocket::Default => "default place".to_string(),
            ControlSocket::Off => "off".to_string(),
            ControlSocket::At(p) => p.display().to_string(),
        };
        let _ = writeln!(s, "control:       {control}");
        if let Some(m) = self.metrics.listen {
            let _ = writeln!(s, "metrics:       http://{m}/metrics");
        }
        let d = &self.discovery;
        let onoff = |v: bool| if v { "on" } else { "off" };
        let _ = writeln!(
            s,
            "discovery:     WS-Discovery {}, mDNS {}{}, workgroup {}",
            onoff(d.wsd_on(&self.server.listen)),
            onoff(d.mdns_on(&self.server.listen)),
            if d.wsd.is_none() || d.mdns.is_none() {
                if listens_on_lan(&self.server.listen) {
                    " (automatic: a listen address is on the LAN)"
                } else {
                    " (automatic: loopback only)"
                }
            } else {
                ""
            },
            d.workgroup
        );
        let _ = writeln!(
            s,
            "security:      signing {}, encryption {}, anonymous {}, guest {}, protocols {}..{}",
            self.security.signing,
            self.security.encryption,
            self.security.anonymous,
            if self.security.guest { "on" } else { "off" },
            self.security.min_protocol,
            self.security.max_protocol
        );
        let l = &self.limits;
        let count = |n: u32| {
            if n == 0 {
                "unlimited".to_string()
            } else {
                n.to_string()
            }
        };
        let dur = |d: Duration| {
            if d.is_zero() {
                "off".to_string()
            } else {
                format_duration(d)
            }
        };
        let _ = writeln!(
            s,
            "limits:        sessions {}, connections {} ({} per address), open files {} ({} per session)",
            count(l.max_sessions),
            count(l.max_connections),
            count(l.max_connections_per_ip),
            count(l.max_open_files),
            count(l.max_open_files_per_session)
        );
        let _ = writeln!(
            s,
            "               idle_timeout {}, durable_handle_timeout {}, handshake_timeout {}, frame_read_timeout {}, max_credits {}, max_async_per_connection {}, max_inflight {}, keepalive {}",
            dur(l.idle_timeout),
            dur(l.durable_handle_timeout),
            dur(l.handshake_timeout),
            dur(l.frame_read_timeout),
            l.max_credits,
            count(l.max_async_per_connection),
            if l.max_inflight == 0 {
                "auto".to_string()
            } else {
                l.max_inflight.to_string()
            },
            if l.keepalive { "on" } else { "off" }
        );
        let _ = writeln!(s, "shares ({}):", self.shares.len());
        for share in &self.shares {
            let mut flags = vec![if share.read_only {
                "read-only"
            } else {
                "read-write"
            }];
            if share.guest_ok {
                flags.push("guest ok");
            }
            if !share.browseable {
                flags.push("hidden");
            }
            if share.encrypt {
                flags.push("encrypted");
            }
            let max_users = format!("max {} users", share.max_users);
            if share.max_users > 0 {
                flags.push(&max_users);
            }
            let _ = write!(
                s,
                "  {:<16} {}  ({})",
                share.name,
                share.path.display(),
                flags.join(", ")
            );
            if !share.comment.is_empty() {
                let _ = write!(s, "  \"{}\"", share.comment);
            }
            s.push('\n');
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }
}

/// The TOML reference at the top of this module's documentation, so that
/// `lanshare check-config --help` and the docs cannot drift apart.
pub fn reference() -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in include_str!("config.rs").lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            if inside {
                break;
            }
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        if !inside {
            inside = doc.trim() == "```toml";
            continue;
        }
        if doc.trim() == "```" {
            break;
        }
        out.push_str(doc);
        out.push('\n');
    }
    out
}

/// Only the `server.users_file` setting of a config file (resolved), without the semantic
/// checks: `lanshare user …` must work even while, say, a share folder is missing.
pub fn users_file_from(path: &Path) -> Result<PathBuf, ConfigErrors> {
    let label = path.display().to_string();
    let text = read_config_text(path, &label)?;
    let raw = parse_raw(&text, &label)?;
    Ok(match raw.server.users_file {
        Some(f) => resolve(&base_dir(path), f.get_ref()),
        None => PathBuf::from(DEFAULT_USERS_FILE),
    })
}

/// Only the `server.control_socket` setting of a config file (resolved), without the semantic
/// checks: `lanshare status` must find a running server even while its file is being edited.
pub fn control_socket_from(path: &Path) -> Result<ControlSocket, ConfigErrors> {
    let label = path.display().to_string();
    let text = read_config_text(path, &label)?;
    let raw = parse_raw(&text, &label)?;
    Ok(match raw.server.control_socket {
        Some(p) if p.get_ref().trim().is_empty() => ControlSocket::Off,
        Some(p) => ControlSocket::At(resolve(&base_dir(path), p.get_ref().trim())),
        None => ControlSocket::Default,
    })
}

fn base_dir(config_path: &Path) -> PathBuf {
    match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn read_config_text(path: &Path, label: &str) -> Result<String, ConfigErrors> {
    use std::io::Read;
    let fail = |message: String, fix: &str| {
        ConfigErrors(vec![ConfigError {
            file: label.to_string(),
            line: None,
            column: None,
            message,
            fix: Some(fix.to_string()),
        }])
    };
    let file = std::fs::File::open(path).map_err(|e| {
        let fix = match e.kind() {
            std::io::ErrorKind::NotFound => {
                "create it (see the reference in `lanshare check-config --help`) or pass --config FILE"
            }
            std::io::ErrorKind::PermissionDenied => "run as a user that may read it (or sudo)",
            _ => "check the path",
        };
        fail(format!("cannot open the config file: {e}"), fix)
    })?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| {
            fail(
                format!("cannot read the config file: {e}"),
                "it must be UTF-8 text",
            )
        })?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(fail(
            format!("the config file is larger than {MAX_CONFIG_BYTES} bytes"),
            "point --config at the TOML file",
        ));
    }
    Ok(text)
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// One problem in a config file, with its position and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as it was named (`--config` argument).
    pub file: String,
    /// 1-based; `None` when the problem has no single place (e.g. no shares at all).
    pub line: Option<usize>,
    /// 1-based, in characters.
    pub column: Option<usize>,
    pub message: String,
    pub fix: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "; {fix}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one file, in file order. Displayed one per line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of a byte offset into `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

fn error_at(
    text: &str,
    label: &str,
    span: Option<Range<usize>>,
    message: String,
    fix: Option<String>,
) -> ConfigError {
    let (line, column) = match span {
        Some(s) => {
            let (l, c) = line_col(text, s.start);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    ConfigError {
        file: label.to_string(),
        line,
        column,
        message,
        fix,
    }
}

// ---------------------------------------------------------------------------------------------
// Pass 1: syntax and unknown keys (toml_edit keeps key spans).

const ROOT_KEYS: &[&str] = &[
    "server",
    "security",
    "limits",
    "metrics",
    "discovery",
    "share",
];
const SERVER_KEYS: &[&str] = &["name", "listen", "users_file", "log", "control_socket"];
const SECURITY_KEYS: &[&str] = &[
    "signing",
    "encryption",
    "anonymous",
    "guest",
    "min_protocol",
    "max_protocol",
];
const LIMITS_KEYS: &[&str] = &[
    "max_sessions",
    "max_connections",
    "max_connections_per_ip",
    "max_open_files",
    "max_open_files_per_session",
    "idle_timeout",
    "durable_handle_timeout",
    "max_credits",
    "max_async_per_connection",
    "max_inflight",
    "keepalive",
    "handshake_timeout",
    "frame_read_timeout",
    "oplock_break_timeout",
];
const METRICS_KEYS: &[&str] = &["listen"];
const DISCOVERY_KEYS: &[&str] = &["wsd", "mdns", "workgroup"];
const SHARE_KEYS: &[&str] = &[
    "name",
    "path",
    "comment",
    "read_only",
    "guest_ok",
    "browseable",
    "max_users",
    "encrypt",
];

fn section_keys(section: &str) -> &'static [&'static str] {
    match section {
        "server" => SERVER_KEYS,
        "security" => SECURITY_KEYS,
        "limits" => LIMITS_KEYS,
        "metrics" => METRICS_KEYS,
        "discovery" => DISCOVERY_KEYS,
        "share" => SHARE_KEYS,
        _ => &[],
    }
}

fn check_keys(text: &str, label: &str) -> Result<(), ConfigErrors> {
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
        ConfigErrors(vec![error_at(
            text,
            label,
            e.span(),
            format!("TOML syntax error: {}", e.message().trim()),
            Some(
                "fix the syntax: strings need quotes, each table header on its own line ([server], [[share]])"
                    .into(),
            ),
        )])
    })?;
    let mut errors = Vec::new();
    let root = doc.as_table();
    for (key, item) in root.iter() {
        let key_span = root.get_key_value(key).and_then(|(k, _)| k.span());
        let span = key_span.or_else(|| item.span());
        if !ROOT_KEYS.contains(&key) {
            errors.push(unknown_root_key(text, label, key, item, span));
            continue;
        }
        match (key, item) {
            ("share", toml_edit::Item::ArrayOfTables(arr)) => {
                for (i, t) in arr.iter().enumerate() {
                    let ctx = format!("[[share]] #{}", i + 1);
                    check_table_keys(text, label, t, SHARE_KEYS, &ctx, &mut errors);
                }
            }
            ("share", toml_edit::Item::Value(toml_edit::Value::Array(arr))) => {
                for (i, v) in arr.iter().enumerate() {
                    if let Some(t) = v.as_inline_table() {
                        let ctx = format!("share #{}", i + 1);
                        check_table_keys(text, label, t, SHARE_KEYS, &ctx, &mut errors);
                    }
                }
            }
            ("share", toml_edit::Item::Table(_)) => errors.push(error_at(
                text,
                label,
                span,
                "`[share]` is a single table, but shares are a list".into(),
                Some("write `[[share]]` (double brackets) above each share".into()),
            )),
            (section, item) => {
                if let Some(t) = item.as_table_like() {
                    let ctx = format!("[{section}]");
                    check_table_keys(text, label, t, section_keys(section), &ctx, &mut errors);
                }
                // Not a table at all: serde reports the type error in pass 2.
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

fn unknown_root_key(
    text: &str,
    label: &str,
    key: &str,
    item: &toml_edit::Item,
    span: Option<Range<usize>>,
) -> ConfigError {
    let is_section = item.is_table() || item.is_array_of_tables();
    // A key written above the first header belongs to no section: say which one it wanted.
    let home = ["server", "security", "limits", "discovery", "share"]
        .into_iter()
        .find(|s| section_keys(s).contains(&key));
    let (message, fix) = if is_section {
        let hint = match names::did_you_mean(key, ROOT_KEYS) {
            Some("share") => "did you mean `[[share]]`? ".to_string(),
            Some(s) => format!("did you mean `[{s}]`? "),
            None => String::new(),
        };
        (
            format!("unknown section `[{key}]`"),
            format!(
                "{hint}(allowed: [server], [security], [limits], [metrics], [discovery], [[share]])"
            ),
        )
    } else if let Some(home) = home {
        let header = if home == "share" {
            "[[share]]".to_string()
        } else {
            format!("[{home}]")
        };
        (
            format!("key `{key}` is outside any section"),
            format!("move it below the `{header}` header"),
        )
    } else {
        let hint = match names::did_you_mean(key, ROOT_KEYS) {
            Some(s) => format!("did you mean the section `[{s}]`? "),
            None => String::new(),
        };
        (
            format!("unknown key `{key}` at the top level"),
            format!(
                "{hint}(allowed at the top level: the sections [server], [security], [limits], [metrics], [discovery], [[share]])"
            ),
        )
    };
    error_at(text, label, span, message, Some(fix))
}

fn check_table_keys(
    text: &str,
    label: &str,
    table: &dyn toml_edit::TableLike,
    allowed: &[&str],
    ctx: &str,
    errors: &mut Vec<ConfigError>,
) {
    for (key, item) in table.iter() {
        if allowed.contains(&key) {
            continue;
        }
        let span = table
            .get_key_value(key)
            .and_then(|(k, _)| k.span())
            .or_else(|| item.span());
        let mut fix = String::new();
        if let Some(s) = names::did_you_mean(key, allowed) {
            fix.push_str(&format!("did you mean `{s}`? "));
        } else if let Some(home) = ["server", "security", "limits", "discovery", "share"]
            .into_iter()
            .find(|s| section_keys(s).contains(&key))
        {
            let header = if home == "share" {
                "[[share]]".to_string()
            } else {
                format!("[{home}]")
            };
            fix.push_str(&format!("`{key}` belongs in {header}; "));
        }
        fix.push_str(&format!("(allowed: {})", allowed.join(", ")));
        errors.push(error_at(
            text,
            label,
            span,
            format!("unknown key `{key}` in {ctx}"),
            Some(fix),
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Pass 2: values (serde).

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    security: RawSecurity,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    discovery: RawDiscovery,
    #[serde(default)]
    share: Vec<Spanned<RawShare>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: Option<Spanned<String>>,
    /// A string or a list of strings.
    listen: Option<Spanned<toml::Value>>,
    users_file: Option<Spanned<String>>,
    log: Option<Spanned<String>>,
    control_socket: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    signing: Option<Spanned<String>>,
    encryption: Option<Spanned<String>>,
    anonymous: Option<Spanned<String>>,
    guest: Option<bool>,
    min_protocol: Option<Spanned<String>>,
    max_protocol: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_sessions: Option<Spanned<i64>>,
    max_connections: Option<Spanned<i64>>,
    max_connections_per_ip: Option<Spanned<i64>>,
    max_open_files: Option<Spanned<i64>>,
    max_open_files_per_session: Option<Spanned<i64>>,
    idle_timeout: Option<Spanned<toml::Value>>,
    durable_handle_timeout: Option<Spanned<toml::Value>>,
    max_credits: Option<Spanned<i64>>,
    max_async_per_connection: Option<Spanned<i64>>,
    max_inflight: Option<Spanned<i64>>,
    keepalive: Option<bool>,
    /// A duration string or an integer of seconds.
    handshake_timeout: Option<Spanned<toml::Value>>,
    frame_read_timeout: Option<Spanned<toml::Value>>,
    oplock_break_timeout: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDiscovery {
    wsd: Option<bool>,
    mdns: Option<bool>,
    workgroup: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShare {
    name: Spanned<String>,
    path: Spanned<String>,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    guest_ok: bool,
    #[serde(default = "yes")]
    browseable: bool,
    max_users: Option<Spanned<i64>>,
    #[serde(default)]
    encrypt: bool,
}

fn yes() -> bool {
    true
}

fn parse_raw(text: &str, label: &str) -> Result<RawConfig, ConfigErrors> {
    check_keys(text, label)?;
    toml::from_str::<RawConfig>(text).map_err(|e| {
        let message = e.message().trim().to_string();
        let fix = serde_fix(&message);
        ConfigErrors(vec![error_at(text, label, e.span(), message, fix)])
    })
}

/// A fix for serde's messages, which say what is wrong but not what to write instead.
fn serde_fix(message: &str) -> Option<String> {
    let fix = if message.contains("expected a boolean") {
        "write true or false, without quotes"
    } else if message.contains("expected i64") || message.contains("expected an integer") {
        "write a whole number, without quotes"
    } else if message.contains("expected a string") {
        "write the value in double quotes"
    } else if message.contains("missing field `name`") || message.contains("missing field `path`") {
        "every [[share]] needs `name` (what clients type) and `path` (the folder)"
    } else if message.contains("expected a sequence") {
        "shares are written as `[[share]]` blocks"
    } else {
        "see the reference in `lanshare check-config --help`"
    };
    Some(fix.to_string())
}

// ---------------------------------------------------------------------------------------------
// Pass 3: semantic checks.

struct Validator<'a> {
    text: &'a str,
    label: &'a str,
    base_dir: &'a Path,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    fn err(&mut self, span: Range<usize>, message: String, fix: impl Into<String>) {
        let e = error_at(self.text, self.label, Some(span), message, Some(fix.into()));
        self.errors.push(e);
    }

    fn err_nowhere(&mut self, message: String, fix: impl Into<String>) {
        let e = error_at(self.text, self.label, None, message, Some(fix.into()));
        self.errors.push(e);
    }

    /// Builds the config, recording every problem in `self.errors` (the result is only usable
    /// when there are none).
    fn validate(&mut self, raw: RawConfig) -> Config {
        let default_name = names::server_name_from_hostname(&names::hostname().unwrap_or_default());
        let mut c = Config::defaults(default_name);

        // [server]
        if let Some(name) = raw.server.name {
            let n = name.get_ref().to_ascii_uppercase();
            match names::check_server_name(&n) {
                Ok(()) => c.server.name = n,
                Err(why) => self.err(
                    name.span(),
                    format!("server name `{}` {why}", name.get_ref()),
                    "pick a short name such as \"FILESRV\", or remove `name` to use the host name",
                ),
            }
        }
        if let Some(addrs) = raw
            .server
            .listen
            .as_ref()
            .and_then(|l| self.listen_addrs(l))
        {
            c.server.listen = addrs;
        }
        if let Some(f) = raw.server.users_file {
            if f.get_ref().trim().is_empty() {
                self.err(
                    f.span(),
                    "`users_file` is empty".into(),
                    format!("give a path, e.g. \"{DEFAULT_USERS_FILE}\""),
                );
            } else {
                c.server.users_file = resolve(self.base_dir, f.get_ref());
            }
        }
        if let Some(cs) = raw.server.control_socket {
            let p = cs.get_ref().trim();
            c.server.control_socket = if p.is_empty() {
                ControlSocket::Off
            } else if p.len() > MAX_SOCKET_PATH {
                self.err(
                    cs.span(),
                    format!("control_socket path is {} bytes long; a Unix socket path must be at most {MAX_SOCKET_PATH}", p.len()),
                    "choose a shorter path, e.g. \"/run/lanshare/control.sock\"",
                );
                ControlSocket::Default
            } else {
                ControlSocket::At(resolve(self.base_dir, p))
            };
        }
        if let Some(log) = raw.server.log {
            match tracing_subscriber::EnvFilter::try_new(log.get_ref()) {
                Ok(_) => c.server.log = log.get_ref().clone(),
                Err(e) => self.err(
                    log.span(),
                    format!("`log = \"{}\"` is not a valid filter: {e}", log.get_ref()),
                    "use a level (error, warn, info, debug, trace) or e.g. \"info,smb_engine=debug\"",
                ),
            }
        }

        // [security]
        if let Some(s) = raw.security.signing {
            match s.get_ref().to_ascii_lowercase().as_str() {
                "required" => c.security.signing = Signing::Required,
                "enabled" => c.security.signing = Signing::Enabled,
                other => {
                    let fix = choice_fix(other, &["required", "enabled"]);
                    self.err(
                        s.span(),
                        format!("`signing = \"{}\"` is not a policy", s.get_ref()),
                        fix,
                    )
                }
            }
        }
        if let Some(e) = raw.security.encryption {
            match e.get_ref().to_ascii_lowercase().as_str() {
                "off" => c.security.encryption = Encryption::Off,
                "enabled" => c.security.encryption = Encryption::Enabled,
                "desired" => c.security.encryption = Encryption::Desired,
                "required" => c.security.encryption = Encryption::Required,
                other => {
                    let fix = choice_fix(other, &Encryption::NAMES);
                    self.err(
                        e.span(),
                        format!("`encryption = \"{}\"` is not a policy", e.get_ref()),
                        fix,
                    )
                }
            }
        }
        if let Some(a) = raw.security.anonymous {
            match a.get_ref().to_ascii_lowercase().as_str() {
                "deny" => c.security.anonymous = Anonymous::Deny,
                "ipc-only" => c.security.anonymous = Anonymous::IpcOnly,
                "allow" => c.security.anonymous = Anonymous::Allow,
                other => {
                    let fix = choice_fix(other, &["deny", "ipc-only", "allow"]);
                    self.err(
                        a.span(),
                        format!("`anonymous = \"{}\"` is not a policy", a.get_ref()),
                        fix,
                    )
                }
            }
        }
        if let Some(g) = raw.security.guest {
            c.security.guest = g;
        }
        let min = raw
            .security
            .min_protocol
            .as_ref()
            .and_then(|p| self.protocol("min_protocol", p));
        let max = raw
            .security
            .max_protocol
            .as_ref()
            .and_then(|p| self.protocol("max_protocol", p));
        if let Some(p) = min {
            c.security.min_protocol = p;
        }
        if let Some(p) = max {
            c.security.max_protocol = p;
        }
        if c.security.min_protocol > c.security.max_protocol {
            let span = raw
                .security
                .min_protocol
                .as_ref()
                .or(raw.security.max_protocol.as_ref())
                .map(|s| s.span());
            let message = format!(
                "min_protocol {} is newer than max_protocol {}",
                c.security.min_protocol, c.security.max_protocol
            );
            let fix = "lower min_protocol or raise max_protocol (oldest to newest: SMB2_02, SMB2_10, SMB3_00, SMB3_02, SMB3_11)";
            match span {
                Some(span) => self.err(span, message, fix),
                None => self.err_nowhere(message, fix),
            }
        }

        // [limits]
        if let Some(m) = raw.limits.max_credits {
            match u16::try_from(*m.get_ref()) {
                Ok(v) if v >= 1 => c.limits.max_credits = v,
                _ => self.err(
                    m.span(),
                    format!("max_credits = {} is out of range", m.get_ref()),
                    format!("use 1..=65535 (default {DEFAULT_MAX_CREDITS})"),
                ),
            }
        }
        let lim = &mut c.limits;
        let counts = [
            (
                "max_sessions",
                raw.limits.max_sessions,
                &mut lim.max_sessions,
            ),
            (
                "max_connections",
                raw.limits.max_connections,
                &mut lim.max_connections,
            ),
            (
                "max_connections_per_ip",
                raw.limits.max_connections_per_ip,
                &mut lim.max_connections_per_ip,
            ),
            (
                "max_open_files",
                raw.limits.max_open_files,
                &mut lim.max_open_files,
            ),
            (
                "max_open_files_per_session",
                raw.limits.max_open_files_per_session,
                &mut lim.max_open_files_per_session,
            ),
            (
                "max_async_per_connection",
                raw.limits.max_async_per_connection,
                &mut lim.max_async_per_connection,
            ),
            (
                "max_inflight",
                raw.limits.max_inflight,
                &mut lim.max_inflight,
            ),
        ];
        let mut count_errors = Vec::new();
        for (key, value, slot) in counts {
            if let Some(v) = value {
                match count_value(&v) {
                    Some(n) => *slot = n,
                    None => count_errors.push((key, v)),
                }
            }
        }
        for (key, v) in count_errors {
            self.err(
                v.span(),
                format!("{key} = {} is out of range", v.get_ref()),
                "use a whole number from 0 (unlimited) to 4294967295",
            );
        }
        if let Some(k) = raw.limits.keepalive {
            c.limits.keepalive = k;
        }
        for (key, value, slot) in [
            (
                "handshake_timeout",
                raw.limits.handshake_timeout,
                &mut c.limits.handshake_timeout,
            ),
            (
                "idle_timeout",
                raw.limits.idle_timeout,
                &mut c.limits.idle_timeout,
            ),
            (
                "durable_handle_timeout",
                raw.limits.durable_handle_timeout,
                &mut c.limits.durable_handle_timeout,
            ),
            (
                "frame_read_timeout",
                raw.limits.frame_read_timeout,
                &mut c.limits.frame_read_timeout,
            ),
            (
                "oplock_break_timeout",
                raw.limits.oplock_break_timeout,
                &mut c.limits.oplock_break_timeout,
            ),
        ] {
            let Some(t) = value else { continue };
            match duration_value(t.get_ref()) {
                Ok(d) => *slot = d,
                Err(why) => self.err(
                    t.span(),
                    format!("{key}: {why}"),
                    "write e.g. \"500ms\", \"30s\", \"15m\", \"1h\", or 0 to turn it off",
                ),
            }
        }

        // [metrics]
        if let Some(l) = raw.metrics.listen {
            match parse_listen(l.get_ref()) {
                // Port 0 picks a free port each time: two of them never clash.
                Ok(a) if a.port() != 0 && c.server.listen.contains(&a) => self.err(
                    l.span(),
                    format!("metrics listen address {a} is also an SMB listen address"),
                    "use another port, e.g. \"127.0.0.1:9631\"",
                ),
                Ok(a) => c.metrics.listen = Some(a),
                Err(why) => self.err(
                    l.span(),
                    format!("metrics listen address `{}` {why}", l.get_ref()),
                    "write IP:PORT, e.g. \"127.0.0.1:9631\"",
                ),
            }
        }

        // [discovery]
        c.discovery.wsd = raw.discovery.wsd;
        c.discovery.mdns = raw.discovery.mdns;
        if let Some(w) = raw.discovery.workgroup {
            let upper = w.get_ref().trim().to_ascii_uppercase();
            match names::check_server_name(&upper) {
                Ok(()) => c.discovery.workgroup = upper,
                Err(why) => self.err(
                    w.span(),
                    format!("workgroup `{}` {why}", w.get_ref()),
                    format!(
                        "use the workgroup the Windows machines are in (System > About: usually \"{DEFAULT_WORKGROUP}\"), or remove `workgroup`"
                    ),
                ),
            }
        }

        // [[share]]
        if raw.share.is_empty() {
            self.err_nowhere(
                "no shares are defined".into(),
                "add at least one, e.g.\n\n[[share]]\nname = \"docs\"\npath = \"/srv/docs\"\n\n(or run `lanshare serve PATH` without a config to share a folder quickly)",
            );
        }
        let mut seen: Vec<(String, usize)> = Vec::new();
        for share in raw.share {
            let share = share.into_inner();
            let name = share.name.get_ref().clone();
            let name_span = share.name.span();
            match names::check_share_name(&name) {
                Ok(()) => {
                    let line = line_col(self.text, name_span.start).0;
                    if let Some((_, first)) =
                        seen.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name))
                    {
                        let first = *first;
                        self.err(
                            name_span.clone(),
                            format!("duplicate share name `{name}` (share names ignore case; first defined on line {first})"),
                            "rename one of them",
                        );
                    } else {
                        seen.push((name.clone(), line));
                    }
                }
                Err(why) => self.err(
                    name_span.clone(),
                    format!("share name `{name}` {why}"),
                    "rename the share",
                ),
            }
            let mut max_users = 0;
            if let Some(m) = &share.max_users {
                match count_value(m) {
                    Some(n) => max_users = n,
                    None => self.err(
                        m.span(),
                        format!(
                            "share `{name}`: max_users = {} is out of range",
                            m.get_ref()
                        ),
                        "use a whole number from 0 (unlimited) to 4294967295",
                    ),
                }
            }
            let raw_path = share.path.get_ref();
            let path = resolve(self.base_dir, raw_path);
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => self.err(
                    share.path.span(),
                    format!("share `{name}`: path {} is not a directory", path.display()),
                    "point `path` at a folder",
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.err(
                    share.path.span(),
                    format!("share `{name}`: path {} does not exist", path.display()),
                    format!(
                        "create it (`mkdir -p {}`) or correct `path`",
                        path.display()
                    ),
                ),
                Err(e) => self.err(
                    share.path.span(),
                    format!("share `{name}`: cannot use path {}: {e}", path.display()),
                    "check the path and its permissions",
                ),
            }
            // Absolute and free of `.`/`..` where possible, so logs and the engine see one
            // spelling; a path that cannot be canonicalised already produced an error above.
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            if share.guest_ok && !c.security.guest && c.security.anonymous != Anonymous::Allow {
                c.warnings.push(format!(
                    "share `{name}` has guest_ok = true, but security.guest = false and security.anonymous is not \"allow\": no guest can reach it"
                ));
            }
            if share.encrypt && c.security.encryption == Encryption::Off {
                c.warnings.push(format!(
                    "share `{name}` has encrypt = true, but security.encryption = \"off\": nobody can connect to it"
                ));
            } else if share.encrypt && share.guest_ok {
                c.warnings.push(format!(
                    "share `{name}` has encrypt = true and guest_ok = true: guest sessions cannot encrypt, so guests are refused"
                ));
            }
            c.shares.push(Share {
                name,
                path,
                comment: share.comment,
                read_only: share.read_only,
                guest_ok: share.guest_ok,
                browseable: share.browseable,
                max_users,
                encrypt: share.encrypt,
            });
        }
        c
    }

    fn protocol(&mut self, key: &str, p: &Spanned<String>) -> Option<Protocol> {
        match Protocol::parse(p.get_ref()) {
            Some(p) => Some(p),
            None => {
                let all: Vec<&str> = Protocol::ALL.iter().map(|p| p.name()).collect();
                let fix = choice_fix(p.get_ref(), &all);
                self.err(
                    p.span(),
                    format!("`{key} = \"{}\"` is not a protocol name", p.get_ref()),
                    fix,
                );
                None
            }
        }
    }

    fn listen_addrs(&mut self, listen: &Spanned<toml::Value>) -> Option<Vec<SocketAddr>> {
        let fix = "write IP:PORT, e.g. \"0.0.0.0:445\", \"192.168.1.10:445\" or \"[::]:445\"";
        let items: Vec<&toml::Value> = match listen.get_ref() {
            toml::Value::String(_) => vec![listen.get_ref()],
            toml::Value::Array(a) => a.iter().collect(),
            _ => {
                self.err(
                    listen.span(),
                    "`listen` must be a string or a list of strings".into(),
                    fix,
                );
                return None;
            }
        };
        if items.is_empty() {
            self.err(
                listen.span(),
                "`listen` is an empty list".into(),
                "give at least one address, e.g. listen = [\"0.0.0.0:445\"]",
            );
            return None;
        }
        // toml::Value carries no spans of its own: take each entry's from the toml_edit tree.
        let item_spans = listen_item_spans(self.text);
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.into_iter().enumerate() {
            let span = item_spans
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or_else(|| listen.span());
            let Some(s) = item.as_str() else {
                self.err(span, format!("listen entry {item} is not a string"), fix);
                ok = false;
                continue;
            };
            match parse_listen(s) {
                Ok(a) if out.contains(&a) => {
                    self.err(
                        span,
                        format!("listen address {a} is given twice"),
                        "remove one",
                    );
                    ok = false;
                }
                Ok(a) => out.push(a),
                Err(why) => {
                    self.err(span, format!("listen address `{s}` {why}"), fix);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

/// The spans of the entries of `server.listen` when it is an array (empty otherwise).
fn listen_item_spans(text: &str) -> Vec<Option<Range<usize>>> {
    let Ok(doc) = toml_edit::ImDocument::parse(text) else {
        return Vec::new();
    };
    doc.as_table()
        .get("server")
        .and_then(|s| s.as_table_like())
        .and_then(|s| s.get("listen"))
        .and_then(|l| l.as_array())
        .map(|a| a.iter().map(|v| v.span()).collect())
        .unwrap_or_default()
}

fn count_value(v: &Spanned<i64>) -> Option<u32> {
    u32::try_from(*v.get_ref()).ok()
}

fn choice_fix(got: &str, choices: &[&str]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    match names::did_you_mean(got, choices) {
        Some(s) => format!("did you mean \"{s}\"? (allowed: {})", quoted.join(", ")),
        None => format!("use one of {}", quoted.join(", ")),
    }
}

/// Parses a listen address: `IP:PORT` or `[IPv6]:PORT`. The error text completes "listen
/// address `X` …".
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.trim().parse::<SocketAddr>() {
        return Ok(a);
    }
    if s.trim().parse::<std::net::IpAddr>().is_ok() {
        return Err("has no port".into());
    }
    Err("is not IP:PORT (host names are not accepted: give the interface's address)".into())
}

fn duration_value(v: &toml::Value) -> Result<Duration, String> {
    match v {
        toml::Value::Integer(i) => u64::try_from(*i)
            .map(Duration::from_secs)
            .map_err(|_| format!("{i} is negative")),
        toml::Value::String(s) => parse_duration(s),
        other => Err(format!("{other} is not a duration")),
    }
}

/// Parses `"500ms"`, `"30s"`, `"15m"`, `"1h"`, `"0"` (one number, one unit; a bare number is
/// seconds). The error text explains what is wrong.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!("\"{s}\" does not start with a number"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("\"{s}\": the number is too large"))?;
    let ms_per_unit: u64 = match unit.trim() {
        "" | "s" => 1000,
        "ms" => 1,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        other => {
            return Err(format!(
                "\"{s}\": unknown unit `{other}` (use ms, s, m or h)"
            ));
        }
    };
    let ms = n
        .checked_mul(ms_per_unit)
        .ok_or_else(|| format!("\"{s}\" is too long"))?;
    Ok(Duration::from_millis(ms))
}

/// The shortest exact spelling of a duration in the units [`parse_duration`] accepts.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse_in(dir: &Path, text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(text, "lanshare.toml", dir)
    }

    fn first_err(dir: &Path, text: &str) -> ConfigError {
        parse_in(dir, text).unwrap_err().0.remove(0)
    }

    #[test]
    fn full_example_parses() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("docs")).unwrap();
        let text = r#"
[server]
name = "filesrv"
listen = ["127.0.0.1:4445", "[::1]:4445"]
users_file = "users"
log = "info,smb_engine=debug"

[security]
signing = "enabled"
anonymous = "ipc-only"
guest = true
min_protocol = "SMB2_10"
max_protocol = "smb3_02"

[limits]
max_sessions = 20
max_connections_per_ip = 4
idle_timeout = 0
durable_handle_timeout = "90s"
max_credits = 512
keepalive = false
handshake_timeout = "500ms"

[[share]]
name = "docs"
path = "docs"
comment = "Team documents"
read_only = true
guest_ok = true
browseable = false
max_users = 3
"#;
        let c = parse_in(dir.path(), text).unwrap();
        assert_eq!(c.server.name, "FILESRV");
        assert_eq!(c.server.listen.len(), 2);
        assert_eq!(c.server.users_file, dir.path().join("users"));
        assert_eq!(c.security.signing, Signing::Enabled);
        assert_eq!(c.security.anonymous, Anonymous::IpcOnly);
        assert!(c.security.guest);
        assert_eq!(c.security.min_protocol, Protocol::Smb2_10);
        assert_eq!(c.security.max_protocol, Protocol::Smb3_02);
        assert_eq!(c.limits.max_credits, 512);
        assert_eq!(c.limits.handshake_timeout, Duration::from_millis(500));
        assert_eq!(c.limits.max_sessions, 20);
        assert_eq!(c.limits.max_connections_per_ip, 4);
        assert_eq!(c.limits.max_connections, 0);
        assert!(c.limits.idle_timeout.is_zero());
        assert_eq!(c.limits.durable_handle_timeout, Duration::from_secs(90));
        assert!(!c.limits.keepalive);
        assert_eq!(c.limits.max_async_per_connection, DEFAULT_MAX_ASYNC);
        assert_eq!(c.shares[0].max_users, 3);
        let s = &c.shares[0];
        assert_eq!(
            s.path,
            std::fs::canonicalize(dir.path().join("docs")).unwrap()
        );
        assert!(s.read_only && s.guest_ok && !s.browseable);
        assert!(c.warnings.is_empty());
        assert!(c.summary().contains("docs"));
    }

    #[test]
    fn defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[[share]]\nname = \"x\"\npath = \"{}\"\n",
            dir.path().display()
        );
        let c = parse_in(dir.path(), &text).unwrap();
        assert_eq!(c.server.listen, vec!["0.0.0.0:445".parse().unwrap()]);
        assert_eq!(c.security.signing, Signing::Required);
        assert_eq!(c.security.anonymous, Anonymous::Deny);
        assert_eq!(c.limits.handshake_timeout, Duration::from_secs(30));
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(900));
        assert!(c.limits.keepalive);
        assert!(c.shares[0].browseable && !c.shares[0].read_only);
        assert_eq!(c.shares[0].max_users, 0);
        assert!(!c.server.name.is_empty());
        assert_eq!(c.security.encryption, Encryption::Enabled);
        assert_eq!(c.limits.frame_read_timeout, Duration::from_secs(30));
        assert_eq!(c.server.control_socket, ControlSocket::Default);
        assert_eq!(c.metrics.listen, None);
        assert!(!c.shares[0].encrypt);
    }

    #[test]
    fn encryption_control_socket_and_metrics_settings() {
        let dir = tempfile::tempdir().unwrap();
        let share = format!(
            "[[share]]\nname = \"x\"\npath = \"{}\"\n",
            dir.path().display()
        );
        for (text, want) in [
            ("off", Encryption::Off),
            ("Enabled", Encryption::Enabled),
            ("desired", Encryption::Desired),
            ("REQUIRED", Encryption::Required),
        ] {
            let c = parse_in(
                dir.path(),
                &format!("[security]\nencryption = \"{text}\"\n{share}"),
            )
            .unwrap();
            assert_eq!(c.security.encryption, want);
        }
        let e = first_err(
            dir.path(),
            &format!("[security]\nencryption = \"requird\"\n{share}"),
        );
        assert_eq!(
            e.to_string(),
            "lanshare.toml:2:14: `encryption = \"requird\"` is not a policy; did you mean \"required\"? (allowed: \"off\", \"enabled\", \"desired\", \"required\")"
        );
        let c = parse_in(
            dir.path(),
            &format!("[server]\ncontrol_socket = \"\"\n{share}"),
        )
        .unwrap();
        assert_eq!(c.server.control_socket, ControlSocket::Off);
        let long = format!("/{}", "x".repeat(200));
        let e = first_err(
            dir.path(),
            &format!("[server]\ncontrol_socket = \"{long}\"\n{share}"),
        );
        assert!(e.message.contains("at most 107"), "{e}");
        let e = first_err(
            dir.path(),
            &format!(
                "[server]\nlisten = \"127.0.0.1:4445\"\n[metrics]\nlisten = \"127.0.0.1:4445\"\n{share}"
            ),
        );
        assert!(e.message.contains("also an SMB listen address"), "{e}");
        let e = first_err(
            dir.path(),
            &format!("[metrics]\nlisten = \"9631\"\n{share}"),
        );
        assert!(
            e.message.starts_with("metrics listen address `9631`"),
            "{e}"
        );
        let e = first_err(dir.path(), &format!("[metrics]\nport = 1\n{share}"));
        assert!(
            e.to_string().contains("unknown key `port` in [metrics]"),
            "{e}"
        );
        let e = first_err(
            dir.path(),
            &format!("[limits]\nframe_read_timeout = \"2x\"\n{share}"),
        );
        assert!(e.message.starts_with("frame_read_timeout:"), "{e}");
    }

    #[test]
    fn encrypted_shares_that_nobody_can_reach_warn() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().display();
        let c = parse_in(
            dir.path(),
            &format!("[security]\nencryption = \"off\"\n[[share]]\nname = \"x\"\npath = \"{p}\"\nencrypt = true\n"),
        )
        .unwrap();
        assert!(
            c.warnings[0].contains("nobody can connect"),
            "{:?}",
            c.warnings
        );
        let c = parse_in(
            dir.path(),
            &format!("[security]\nguest = true\n[[share]]\nname = \"x\"\npath = \"{p}\"\nencrypt = true\nguest_ok = true\n"),
        )
        .unwrap();
        assert!(
            c.warnings[0].contains("guests are refused"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn control_socket_only_reads_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[server]\ncontrol_socket = \"run/ctl.sock\"\n[[share]]\nname=\"a\"\npath=\"/nonexistent/x\"\n",
        )
        .unwrap();
        assert_eq!(
            control_socket_from(&path).unwrap(),
            ControlSocket::At(dir.path().join("run/ctl.sock"))
        );
        std::fs::write(&path, "[[share]]\nname=\"a\"\npath=\"/x\"\n").unwrap();
        assert_eq!(control_socket_from(&path).unwrap(), ControlSocket::Default);
    }

    #[test]
    fn unknown_key_names_line_section_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let e = first_err(
            dir.path(),
            "[server]\nname = \"A\"\n\n\n\n[security]\nsgning = \"required\"\n",
        );
        assert_eq!(
            e.to_string(),
            "lanshare.toml:7:1: unknown key `sgning` in [security]; did you mean `signing`? (allowed: signing, encryption, anonymous, guest, min_protocol, max_protocol)"
        );
    }

    #[test]
    fn misplaced_and_unknown_sections() {
        let dir = tempfile::tempdir().unwrap();
        let e = first_err(dir.path(), "[securty]\nsigning = \"enabled\"\n");
        assert_eq!((e.line, e.column), (Some(1), Some(2)));
        assert!(e.to_string().contains("unknown section `[securty]`"));
        assert!(e.to_string().contains("did you mean `[security]`"));

        let e = first_err(dir.path(), "signing = \"enabled\"\n");
        assert!(e.to_string().contains("outside any section"));
        assert!(e.to_string().contains("[security]"));

        let e = first_err(dir.path(), "[server]\nguest = true\n");
        assert!(
            e.to_string().contains("`guest` belongs in [security]"),
            "{e}"
        );

        let e = first_err(dir.path(), "[share]\nname = \"a\"\npath = \"/\"\n");
        assert!(e.to_string().contains("[[share]]"), "{e}");

        let e = first_err(
            dir.path(),
            "[[share]]\nname = \"a\"\npath = \"/\"\nreadonly = true\n",
        );
        assert_eq!(e.line, Some(4));
        assert!(e.to_string().contains("did you mean `read_only`"), "{e}");
        assert!(e.to_string().contains("[[share]] #1"), "{e}");
    }

    #[test]
    fn syntax_and_type_errors_have_positions() {
        let dir = tempfile::tempdir().unwrap();
        let e = first_err(dir.path(), "[server]\nname = FILESRV\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("syntax"), "{e}");

        let e = first_err(dir.path(), "[security]\nguest = \"yes\"\n");
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().contains("true or false"), "{e}");

        let e = first_err(dir.path(), "[[share]]\nname = \"a\"\n");
        assert_eq!(e.line, Some(1));
        assert!(e.to_string().contains("missing field `path`"), "{e}");
    }

    #[test]
    fn semantic_errors_are_all_reported_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().display();
        let text = format!(
            "[server]\nname = \"WAYTOOLONGSERVERNAME\"\nlisten = [\"0.0.0.0\"]\n\
             [security]\nsigning = \"requird\"\nanonymous = \"nobody\"\nmin_protocol = \"SMB3_11\"\nmax_protocol = \"SMB2_10\"\n\
             [limits]\nmax_credits = 0\nhandshake_timeout = \"10 fortnights\"\nmax_sessions = -1\n\
             [[share]]\nname = \"Docs\"\npath = \"{p}\"\n\
             [[share]]\nname = \"docs\"\npath = \"{p}/missing\"\n\
             [[share]]\nname = \"IPC$\"\npath = \"{p}\"\n\
             [[share]]\nname = \"a|b\"\npath = \"{p}\"\n"
        );
        let errs = parse_in(dir.path(), &text).unwrap_err().0;
        let lines: Vec<usize> = errs.iter().map(|e| e.line.unwrap()).collect();
        let mut sorted = lines.clone();
        sorted.sort();
        assert_eq!(lines, sorted);
        let all = ConfigErrors(errs.clone()).to_string();
        for needle in [
            "lanshare.toml:2:8: server name `WAYTOOLONGSERVERNAME` is 20 characters",
            "lanshare.toml:3:11: listen address `0.0.0.0` has no port",
            "lanshare.toml:5:11: `signing = \"requird\"` is not a policy; did you mean \"required\"?",
            "`anonymous = \"nobody\"` is not a policy; use one of \"deny\", \"ipc-only\", \"allow\"",
            "lanshare.toml:7:16: min_protocol SMB3_11 is newer than max_protocol SMB2_10",
            "max_credits = 0 is out of range",
            "lanshare.toml:12:16: max_sessions = -1 is out of range; use a whole number from 0",
            "unknown unit",
            "lanshare.toml:17:8: duplicate share name `docs` (share names ignore case; first defined on line 14)",
            "missing does not exist; create it (`mkdir -p",
            "share name `IPC$` is reserved",
            "share name `a|b` contains `|`",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in\n{all}");
        }
    }

    #[test]
    fn no_shares_is_an_error_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let e = first_err(dir.path(), "[server]\nname = \"X\"\n");
        assert!(e.line.is_none());
        assert!(
            e.to_string()
                .starts_with("lanshare.toml: no shares are defined; add at least one")
        );
        assert!(e.to_string().contains("[[share]]"));
    }

    #[test]
    fn share_path_must_be_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let e = first_err(dir.path(), "[[share]]\nname = \"a\"\npath = \"f\"\n");
        assert_eq!(e.line, Some(3));
        assert!(e.to_string().contains("is not a directory"), "{e}");
    }

    #[test]
    fn inline_share_tables_are_checked_too() {
        let dir = tempfile::tempdir().unwrap();
        let e = first_err(
            dir.path(),
            "share = [{ name = \"a\", path = \".\", gest_ok = true }]\n",
        );
        assert_eq!(e.line, Some(1));
        assert!(e.to_string().contains("did you mean `guest_ok`"), "{e}");
    }

    #[test]
    fn guest_share_without_guests_warns() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse_in(
            dir.path(),
            "[[share]]\nname = \"a\"\npath = \".\"\nguest_ok = true\n",
        )
        .unwrap();
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn listen_forms() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse_in(
            dir.path(),
            "[server]\nlisten = \"127.0.0.1:0\"\n[[share]]\nname = \"a\"\npath = \".\"\n",
        )
        .unwrap();
        assert_eq!(c.server.listen, vec!["127.0.0.1:0".parse().unwrap()]);
        let e = first_err(
            dir.path(),
            "[server]\nlisten = []\n[[share]]\nname = \"a\"\npath = \".\"\n",
        );
        assert!(e.to_string().contains("empty list"));
        let e = first_err(
            dir.path(),
            "[server]\nlisten = [\"1.2.3.4:1\", \"1.2.3.4:1\"]\n[[share]]\nname = \"a\"\npath = \".\"\n",
        );
        assert!(e.to_string().contains("given twice"));
        assert_eq!((e.line, e.column), (Some(2), Some(24)), "{e}");
        assert!(parse_listen("localhost:445").is_err());
        assert!(parse_listen("[::]:445").is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        for d in ["500ms", "30s", "15m", "1h", "90s"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
        let dir = tempfile::tempdir().unwrap();
        let c = parse_in(
            dir.path(),
            "[limits]\nhandshake_timeout = 0\n[[share]]\nname = \"a\"\npath = \".\"\n",
        )
        .unwrap();
        assert!(c.limits.handshake_timeout.is_zero());
    }

    #[test]
    fn line_col_counts_chars() {
        let t = "ab\né=x\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 5), (2, 2)); // after the 2-byte é
        assert_eq!(line_col(t, 999), (3, 1));
    }

    #[test]
    fn schema_lists_match_the_serde_structs() {
        // Every key the walker allows must be accepted by serde, or the walker lets through a
        // key that then fails with a worse message.
        let dir = tempfile::tempdir().unwrap();
        let text = "[server]\nname=\"A\"\nlisten=\"1.2.3.4:5\"\nusers_file=\"u\"\nlog=\"info\"\ncontrol_socket=\"c.sock\"\n\
                    [security]\nsigning=\"enabled\"\nencryption=\"desired\"\nanonymous=\"deny\"\nguest=false\nmin_protocol=\"SMB2_02\"\nmax_protocol=\"SMB3_11\"\n\
                    [limits]\nmax_credits=1\nhandshake_timeout=\"1s\"\nmax_sessions=1\nmax_connections=1\n\
                    max_connections_per_ip=1\nmax_open_files=1\nmax_open_files_per_session=1\nidle_timeout=\"1m\"\n\
                    max_async_per_connection=1\nmax_inflight=1\nkeepalive=true\nframe_read_timeout=\"2s\"\n\
                    oplock_break_timeout=\"3s\"\ndurable_handle_timeout=\"4s\"\n\
                    [metrics]\nlisten=\"127.0.0.1:9631\"\n\
                    [discovery]\nwsd=false\nmdns=true\nworkgroup=\"lab\"\n\
                    [[share]]\nname=\"a\"\npath=\".\"\ncomment=\"\"\nread_only=false\nguest_ok=false\nbrowseable=true\nmax_users=1\nencrypt=true\n";
        let c = parse_in(dir.path(), text).unwrap();
        assert_eq!(
            c.server.control_socket,
            ControlSocket::At(dir.path().join("c.sock"))
        );
        assert_eq!(c.security.encryption, Encryption::Desired);
        assert_eq!(c.limits.frame_read_timeout, Duration::from_secs(2));
        assert_eq!(c.limits.oplock_break_timeout, Duration::from_secs(3));
        assert_eq!(c.limits.durable_handle_timeout, Duration::from_secs(4));
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9631".parse().unwrap()));
        assert_eq!(
            c.discovery,
            DiscoverySettings {
                wsd: Some(false),
                mdns: Some(true),
                workgroup: "LAB".into()
            }
        );
        assert!(c.shares[0].encrypt);
        let count = |t: &str| t.lines().filter(|l| l.contains('=')).count();
        assert_eq!(
            count(text),
            SERVER_KEYS.len()
                + SECURITY_KEYS.len()
                + LIMITS_KEYS.len()
                + METRICS_KEYS.len()
                + DISCOVERY_KEYS.len()
                + SHARE_KEYS.len()
        );
    }

    #[test]
    fn discovery_settings() {
        let dir = tempfile::tempdir().unwrap();
        let share = format!(
            "[[share]]\nname = \"x\"\npath = \"{}\"\n",
            dir.path().display()
        );
        // Automatic: on for a LAN listener, off for loopback only.
        let c = parse_in(dir.path(), &share).unwrap();
        assert_eq!(c.discovery, DiscoverySettings::default());
        assert_eq!(c.discovery.workgroup, "WORKGROUP");
        let lan: Vec<SocketAddr> = vec!["0.0.0.0:445".parse().unwrap()];
        let lo: Vec<SocketAddr> = vec![
            "127.0.0.1:445".parse().unwrap(),
            "[::1]:445".parse().unwrap(),
        ];
        let mixed: Vec<SocketAddr> = vec![lo[0], "192.168.1.5:445".parse().unwrap()];
        assert!(c.discovery.wsd_on(&lan) && c.discovery.mdns_on(&lan));
        assert!(!c.discovery.wsd_on(&lo) && !c.discovery.mdns_on(&lo));
        assert!(c.discovery.wsd_on(&mixed));
        assert!(
            c.summary()
                .contains("discovery:     WS-Discovery on, mDNS on (automatic")
        );
        // Explicit values win either way.
        let c = parse_in(
            dir.path(),
            &format!("[discovery]\nwsd = true\nmdns = false\n{share}"),
        )
        .unwrap();
        assert!(c.discovery.wsd_on(&lo) && !c.discovery.mdns_on(&lan));

        let e = first_err(dir.path(), &format!("[discovery]\nwsd = \"yes\"\n{share}"));
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().contains("write true or false"), "{e}");
        let e = first_err(
            dir.path(),
            &format!("[discovery]\nworkgroup = \"my group\"\n{share}"),
        );
        assert_eq!((e.line, e.column), (Some(2), Some(13)), "{e}");
        assert!(e.message.contains("workgroup `my group`"), "{e}");
        assert!(e.to_string().contains("WORKGROUP"), "{e}");
        let e = first_err(dir.path(), &format!("[discovery]\nmdn = true\n{share}"));
        assert!(
            e.to_string()
                .contains("unknown key `mdn` in [discovery]; did you mean `mdns`?"),
            "{e}"
        );
        let e = first_err(dir.path(), &format!("wsd = false\n{share}"));
        assert!(
            e.to_string()
                .contains("move it below the `[discovery]` header"),
            "{e}"
        );
    }

    #[test]
    fn the_reference_is_a_valid_config() {
        let r = reference();
        assert!(r.starts_with("[server]"), "{r}");
        assert!(r.contains("[[share]]"));
        let dir = tempfile::tempdir().unwrap();
        let docs = dir.path().join("docs");
        std::fs::create_dir(&docs).unwrap();
        let text = r.replace("/srv/docs", &docs.display().to_string());
        let c = parse_in(dir.path(), &text).unwrap();
        assert_eq!(c.shares[0].name, "docs");
        assert_eq!(c.limits.handshake_timeout, Duration::from_secs(30));
    }

    #[test]
    fn users_file_only_reads_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        // A missing share folder must not stop user management.
        std::fs::write(
            &path,
            "[server]\nusers_file = \"u.db\"\n[[share]]\nname=\"a\"\npath=\"/nonexistent/x\"\n",
        )
        .unwrap();
        assert_eq!(users_file_from(&path).unwrap(), dir.path().join("u.db"));
        std::fs::write(&path, "[[share]]\nname=\"a\"\npath=\"/x\"\n").unwrap();
        assert_eq!(
            users_file_from(&path).unwrap(),
            PathBuf::from(DEFAULT_USERS_FILE)
        );
    }
}
