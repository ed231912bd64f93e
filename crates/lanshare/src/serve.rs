//! `lanshare serve`: builds the engine configuration, binds the listeners (with the fix when a
//! port may not be bound), prints one `lanshare listening on ADDR` line per listener, runs the
//! SMB engine, the control socket, the metrics endpoint and the network announcements
//! (WS-Discovery, mDNS), re-reads the config on SIGHUP or `lanshare reload`, and shuts down
//! gracefully on SIGINT/SIGTERM.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lanshare_auth::{MemoryUserDb, UserDb, WatchedUserFile};
use lanshare_discovery::{Discovery, DiscoveryConfig, DiscoveryError};
use serde::Serialize;
use smb_engine::{
    AnonymousPolicy, EncryptionPolicy, EngineConfig, Limits, Server, ServerStatus, ShareConfig,
    SigningPolicy,
};
use smb_wire::Dialect;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::cli::{CliError, ServeArgs};
use crate::config::{Anonymous, Config, ControlSocket, Encryption, Protocol, Signing};
use crate::control::{self, ControlListener, Request, Response};
use crate::quick::{self, QuickPlan};
use crate::reload::{self, ReloadReport};
use crate::{logging, names};

/// Below this many file descriptors a busy server runs out (one per connection and per open).
const LOW_NOFILE: u64 = 4096;

/// How long connections get to finish after a shutdown signal before the process exits anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Listen backlog: generous, because a burst of clients (a lab logging on at 9:00) is normal.
const BACKLOG: i32 = 1024;

pub fn run(args: ServeArgs, verbose: u8) -> Result<(), CliError> {
    let (config, plan) = match &args.config {
        Some(path) => {
            let mut config = Config::load(path)?;
            if !args.listen.is_empty() {
                config.server.listen = args.listen.clone();
            }
            if let Some(n) = &args.name {
                let upper = n.to_ascii_uppercase();
                names::check_server_name(&upper)
                    .map_err(|why| CliError::Usage(format!("--name {n:?} {why}")))?;
                config.server.name = upper;
            }
            (config, None)
        }
        None => {
            let plan = quick::plan(&args.paths, args.name.as_deref(), &args.listen)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            (plan.config.clone(), Some(plan))
        }
    };
    let mut config = config;
    if let Some(p) = &args.control_socket {
        config.server.control_socket = ControlSocket::At(p.clone());
    }
    logging::init(verbose, &config.server.log);
    if let Some(dir) = plan.as_ref().and_then(|p| p.created.as_ref()) {
        eprintln!(
            "note: created the folder {} to share (it is empty: put files there, or run `lanshare serve PATH`)",
            dir.display()
        );
    }
    for w in &config.warnings {
        warn!("{w}");
    }
    raise_nofile_limit();

    let users: Arc<dyn UserDb> = match &plan {
        Some(p) => Arc::new(MemoryUserDb::new().with_user(&p.user, &p.password)),
        None => load_users(&config)?,
    };
    let engine_config = engine_config(&config);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the async runtime: {e}")))?;
    let reload = args.config.as_ref().map(|path| ReloadSource {
        path: path.clone(),
        listen: args.listen.clone(),
        name: config.server.name.clone(),
        control_socket: args.control_socket.clone(),
    });
    let result = runtime.block_on(serve_async(
        &config,
        engine_config,
        users,
        plan.as_ref(),
        reload,
    ));
    // Blocking file I/O still running after the drain must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

/// The engine's view of a validated config.
pub fn engine_config(config: &Config) -> EngineConfig {
    let mut e = EngineConfig::new(config.server.name.clone());
    e.workgroup = config.discovery.workgroup.clone();
    e.signing = match config.security.signing {
        Signing::Required => SigningPolicy::Required,
        Signing::Enabled => SigningPolicy::Enabled,
    };
    e.encryption = match config.security.encryption {
        Encryption::Off => EncryptionPolicy::Off,
        Encryption::Enabled => EncryptionPolicy::Enabled,
        Encryption::Desired => EncryptionPolicy::Desired,
        Encryption::Required => EncryptionPolicy::Required,
    };
    e.anonymous = match config.security.anonymous {
        Anonymous::Deny => AnonymousPolicy::Deny,
        Anonymous::IpcOnly => AnonymousPolicy::IpcOnly,
        Anonymous::Allow => AnonymousPolicy::Allow,
    };
    e.allow_guest = config.security.guest;
    e.min_dialect = dialect(config.security.min_protocol);
    e.max_dialect = dialect(config.security.max_protocol);
    let l = &config.limits;
    e.max_credits = l.max_credits;
    e.handshake_timeout = l.handshake_timeout;
    // The engine has no "off" for the frame deadline; a day is as good as off.
    e.frame_read_timeout = if l.frame_read_timeout.is_zero() {
        Duration::from_secs(24 * 3600)
    } else {
        l.frame_read_timeout
    };
    e.oplock_break_timeout = if l.oplock_break_timeout.is_zero() {
        crate::config::DEFAULT_OPLOCK_BREAK_TIMEOUT
    } else {
        l.oplock_break_timeout
    };
    e.max_async_per_connection = l.max_async_per_connection;
    e.max_inflight = l.max_inflight;
    e.tcp_keepalive = l.keepalive;
    e.limits = Limits {
        max_sessions: l.max_sessions,
        max_connections: l.max_connections,
        max_connections_per_ip: l.max_connections_per_ip,
        max_open_files: l.max_open_files,
        max_open_files_per_session: l.max_open_files_per_session,
        idle_timeout: l.idle_timeout,
        durable_handle_timeout: l.durable_handle_timeout,
    };
    e.shares = config
        .shares
        .iter()
        .map(|s| {
            let mut sc = ShareConfig::new(s.name.clone(), s.path.clone());
            sc.comment = s.comment.clone();
            sc.read_only = s.read_only;
            sc.guest_ok = s.guest_ok;
            sc.browseable = s.browseable;
            sc.max_users = s.max_users;
            sc.encrypt = s.encrypt;
            sc
        })
        .collect();
    e
}

pub fn dialect(p: Protocol) -> Dialect {
    match p {
        Protocol::Smb2_02 => Dialect::SMB2_0_2,
        Protocol::Smb2_10 => Dialect::SMB2_1,
        Protocol::Smb3_00 => Dialect::SMB3_0,
        Protocol::Smb3_02 => Dialect::SMB3_0_2,
        Protocol::Smb3_11 => Dialect::SMB3_1_1,
    }
}

fn load_users(config: &Config) -> Result<Arc<dyn UserDb>, CliError> {
    let path = &config.server.users_file;
    let guests_possible = config.security.guest || config.security.anonymous != Anonymous::Deny;
    if !path.exists() {
        if !guests_possible {
            return Err(CliError::Failed(format!(
                "the users file {} does not exist; add a user with `lanshare user add NAME --users-file {}`",
                path.display(),
                path.display()
            )));
        }
        warn!(
            users_file = %path.display(),
            "the users file does not exist yet: only guest/anonymous sessions can connect until `lanshare user add` creates it"
        );
    }
    if let Some(why) = users_file_exposure(path) {
        warn!(users_file = %path.display(), "{why}");
    }
    // Watched: `lanshare user add|del|passwd` takes effect without a restart (a missing file
    // counts as empty until it appears).
    let users = WatchedUserFile::open(path).map_err(|e| CliError::Failed(e.to_string()))?;
    let n = users.current().users().count();
    info!(users_file = %path.display(), users = n, "users loaded (additions and new passwords apply at the next logon, removals within a second)");
    if n == 0 && !guests_possible {
        warn!("the users file has no users: nobody can connect (`lanshare user add NAME`)");
    }
    Ok(Arc::new(users))
}

/// Why the users file is readable by others, if it is: NT hashes are as good as passwords to
/// an NTLM client (pass-the-hash), so the file must be private to the server's account.
pub fn users_file_exposure(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "the users file has mode {mode:o}: others can read the password hashes; run `chmod 600 {}`",
            path.display()
        )
    })
}

/// Sets the soft open-files limit to the hard limit: every connection and every open file
/// costs a descriptor, and distributions default the soft limit to 1024.
fn raise_nofile_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < LOW_NOFILE => warn!(
            limit = n,
            "open-files limit is low: about {n} connections and open files in all; raise the hard limit (LimitNOFILE= in a systemd unit, or /etc/security/limits.conf)"
        ),
        Ok(n) => info!(limit = n, "open-files limit raised to the hard limit"),
        Err(e) => warn!(error = %e, "cannot read or raise the open-files limit"),
    }
}

/// Binds one listener. `SO_REUSEADDR` lets a restarted server bind while old connections sit in
/// TIME_WAIT; `IPV6_V6ONLY` lets `0.0.0.0:445` and `[::]:445` be listed side by side.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol as IpProto, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(IpProto::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// What to tell the person when a listener cannot be bound.
pub fn bind_error_message(addr: SocketAddr, e: &std::io::Error) -> String {
    let port = addr.port();
    match e.kind() {
        std::io::ErrorKind::PermissionDenied if port < 1024 => format!(
            "cannot listen on {addr}: {e}. Binding port {port} needs root or CAP_NET_BIND_SERVICE: run \
             `sudo setcap cap_net_bind_service=+ep $(command -v lanshare)`, or use --listen 0.0.0.0:4445 \
             (then clients need the port: smbclient -p 4445; Windows cannot use another port)"
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot listen on {addr}: {e} (a security policy such as SELinux or a seccomp filter refuses it)"
        ),
        std::io::ErrorKind::AddrInUse if port == 445 => format!(
            "cannot listen on {addr}: port 445 is already in use, probably by Samba's smbd \
             (`sudo systemctl stop smbd`) or another SMB server; `sudo ss -ltnp 'sport = :445'` shows which \
             process. Or use another port, e.g. --listen 0.0.0.0:4445"
        ),
        std::io::ErrorKind::AddrInUse => format!(
            "cannot listen on {addr}: the port is already in use; `sudo ss -ltnp 'sport = :{port}'` shows \
             which process holds it. Pick another port, or 0 for any free one"
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "cannot listen on {addr}: that address is not on this machine; use 0.0.0.0 (every interface) \
             or one of the addresses `ip -brief address` lists"
        ),
        _ => format!("cannot listen on {addr}: {e}"),
    }
}

/// What `[discovery]` makes of the bound SMB listeners: `None` when both announcers are off.
/// Announced on the interfaces the listeners are on (every one for a wildcard address);
/// loopback only when every listener is on loopback and discovery was asked for explicitly.
pub fn discovery_config(config: &Config, bound: &[SocketAddr]) -> Option<DiscoveryConfig> {
    let d = &config.discovery;
    let (wsd, mdns) = (d.wsd_on(bound), d.mdns_on(bound));
    if !wsd && !mdns {
        return None;
    }
    let lan: Vec<&SocketAddr> = bound.iter().filter(|a| !a.ip().is_loopback()).collect();
    let chosen = if lan.is_empty() {
        bound.iter().collect()
    } else {
        lan
    };
    let mut interfaces: Vec<IpAddr> = Vec::new();
    if !chosen.iter().any(|a| a.ip().is_unspecified()) {
        for a in &chosen {
            if !interfaces.contains(&a.ip()) {
                interfaces.push(a.ip());
            }
        }
    }
    let smb_port = chosen.first().map_or(445, |a| a.port());
    let mut dc = DiscoveryConfig::new(&config.server.name, &d.workgroup, smb_port);
    dc.interfaces = interfaces;
    dc.wsd = wsd;
    dc.mdns = mdns;
    Some(dc)
}

/// The announcers that are running, for `lanshare status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiscoveryStatus {
    pub wsd: bool,
    pub mdns: bool,
    pub workgroup: String,
}

/// WS-Discovery and mDNS, started separately so that one failing (a port held by wsdd, say)
/// leaves the other running.
#[derive(Default)]
pub struct Announcers {
    wsd: Option<Discovery>,
    mdns: Option<Discovery>,
    workgroup: String,
}

impl Announcers {
    /// Starts what `cfg` asks for. Never fails: discovery is a convenience, and the SMB
    /// server must run without it; each failure is one warning with the fix.
    pub async fn start(cfg: Option<DiscoveryConfig>, why_off: &str) -> Announcers {
        let Some(cfg) = cfg else {
            info!("discovery: off ({why_off})");
            return Announcers::default();
        };
        let mut me = Announcers {
            workgroup: cfg.workgroup.clone(),
            ..Announcers::default()
        };
        let name = &cfg.computer_name;
        if cfg.wsd {
            let c = DiscoveryConfig {
                mdns: false,
                ..cfg.clone()
            };
            match Discovery::start(c).await {
                Ok(d) => me.wsd = Some(d),
                Err(e) => warn!(
                    "discovery: WS-Discovery not started: {e}; {}. The SMB server runs on, but Windows will not list {name} under Network (\\\\{name} still works). `[discovery] wsd = false` silences this",
                    discovery_fix(&e, cfg.wsd_udp_port, cfg.wsd_http_port)
                ),
            }
        }
        if cfg.mdns {
            let c = DiscoveryConfig {
                wsd: false,
                ..cfg.clone()
            };
            match Discovery::start(c).await {
                Ok(d) => me.mdns = Some(d),
                Err(e) => warn!(
                    "discovery: mDNS not started: {e}; {}. The SMB server runs on, but Finder and Linux file managers will not list {name} by themselves. `[discovery] mdns = false` silences this",
                    discovery_fix(&e, cfg.wsd_udp_port, cfg.wsd_http_port)
                ),
            }
        }
        let mut what = Vec::new();
        if me.wsd.is_some() {
            what.push(format!(
                "WS-Discovery (UDP {}, metadata on HTTP {}) as {name} in workgroup {}",
                cfg.wsd_udp_port, cfg.wsd_http_port, cfg.workgroup
            ));
        }
        if me.mdns.is_some() {
            what.push(format!(
                "mDNS (UDP 5353) {name}._smb._tcp.local port {} and _device-info._tcp",
                cfg.smb_port
            ));
        }
        if !what.is_empty() {
            let place = if cfg.interfaces.is_empty() {
                "every non-loopback interface".to_string()
            } else {
                cfg.interfaces
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            info!("discovery: announcing {} on {place}", what.join(" and "));
        }
        me
    }

    pub fn status(&self) -> DiscoveryStatus {
        DiscoveryStatus {
            wsd: self.wsd.is_some(),
            mdns: self.mdns.is_some(),
            workgroup: self.workgroup.clone(),
        }
    }

    /// Says goodbye (WS-Discovery Bye, mDNS goodbye records) and stops, both at once.
    pub async fn stop(self) {
        let wsd = async {
            if let Some(d) = self.wsd {
                d.stop().await;
            }
        };
        let mdns = async {
            if let Some(d) = self.mdns {
                d.stop().await;
            }
        };
        tokio::join!(wsd, mdns);
    }
}

/// What to do about a discovery start failure.
fn discovery_fix(e: &DiscoveryError, udp: u16, http: u16) -> String {
    match e {
        DiscoveryError::Bind { addr, source, .. }
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            let (proto, port) = if addr.port() == http {
                ("t", http)
            } else {
                ("u", udp)
            };
            format!(
                "another WS-Discovery responder (wsdd, or a second lanshare) holds port {port}; `sudo ss -l{proto}np 'sport = :{port}'` shows which; stop it, or turn WS-Discovery off here"
            )
        }
        DiscoveryError::Bind { .. } => {
            "the address may have gone, or a firewall/security policy refuses the socket".into()
        }
        DiscoveryError::NoInterfaces => {
            "no network interface with a non-loopback address is up (check `ip -brief address`)"
                .into()
        }
        DiscoveryError::Interfaces(_) => "the interface list cannot be read here".into(),
        DiscoveryError::Mdns(_) => {
            "multicast may be unavailable on this network (`ip link` shows MULTICAST per interface)"
                .into()
        }
        DiscoveryError::InvalidName(..) | DiscoveryError::InvalidWorkgroup(..) => {
            "change server.name or discovery.workgroup".into()
        }
    }
}

/// Why discovery is off, for the log line.
fn discovery_off_reason(config: &Config, bound: &[SocketAddr]) -> &'static str {
    let d = &config.discovery;
    if d.wsd == Some(false) && d.mdns == Some(false) {
        "[discovery] wsd = false and mdns = false"
    } else if !crate::config::listens_on_lan(bound) {
        "every listen address is loopback; `[discovery] wsd = true` / `mdns = true` announce anyway"
    } else {
        "turned off in [discovery]"
    }
}

/// Where SIGHUP re-reads the configuration from, and the command-line overrides to keep.
pub struct ReloadSource {
    pub path: std::path::PathBuf,
    /// `--listen` addresses (empty: the file's).
    pub listen: Vec<SocketAddr>,
    /// The server name in force (from the file or `--name`); a reload cannot change it.
    pub name: String,
    /// `--control-socket`, which replaces the file's setting.
    pub control_socket: Option<PathBuf>,
}

/// The running server as the control socket and SIGHUP see it.
pub struct Running {
    pub server: Server,
    /// The configuration the server started with: settings that need a restart are compared
    /// with it.
    started: Config,
    /// The configuration in force (the last one applied).
    current: Mutex<Config>,
    source: Option<ReloadSource>,
    control_socket: Option<PathBuf>,
    metrics: Option<SocketAddr>,
    discovery: DiscoveryStatus,
}

/// `lanshare status --json`: the engine's view plus what only the binary knows.
#[derive(Serialize)]
struct StatusReport {
    #[serde(flatten)]
    engine: ServerStatus,
    pid: u32,
    config_file: Option<String>,
    control_socket: Option<String>,
    metrics: Option<String>,
    encryption_policy: String,
    frame_read_timeout_ms: u64,
    keepalive: bool,
    discovery: DiscoveryStatus,
}

impl Running {
    pub fn new(server: Server, config: &Config, source: Option<ReloadSource>) -> Running {
        Running {
            server,
            started: config.clone(),
            current: Mutex::new(config.clone()),
            source,
            control_socket: None,
            metrics: None,
            discovery: DiscoveryStatus::default(),
        }
    }

    fn current(&self) -> Config {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-reads the config file and hands shares and limits to the running engine. An invalid
    /// file changes nothing. Everything is logged as well as returned.
    pub fn reload(&self) -> ReloadReport {
        let Some(source) = &self.source else {
            let why = "this server was started without a config file (lanshare serve PATH…): there is nothing to re-read";
            info!("reload: {why}");
            return ReloadReport {
                errors: vec![why.into()],
                ..Default::default()
            };
        };
        let mut report = ReloadReport {
            file: source.path.display().to_string(),
            ..Default::default()
        };
        let mut new = match Config::load(&source.path) {
            Ok(c) => c,
            Err(errs) => {
                for e in &errs.0 {
                    error!("reload: {e}");
                    report.errors.push(e.to_string());
                }
                warn!(
                    "reload refused: {} problem(s) in {}; the running configuration stays",
                    errs.0.len(),
                    source.path.display()
                );
                return report;
            }
        };
        if !source.listen.is_empty() {
            new.server.listen = source.listen.clone();
        }
        if let Some(p) = &source.control_socket {
            new.server.control_socket = ControlSocket::At(p.clone());
        }
        new.server.name = source.name.clone();
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        match self.server.reload(engine_config(&new)) {
            Ok(engine_notes) => {
                for n in engine_notes {
                    debug!("reload (engine): {n}");
                }
            }
            Err(e) => {
                let why = format!("the engine refused the new configuration: {e}");
                error!("reload: {why}");
                report.errors.push(why);
                return report;
            }
        }
        report.applied = true;
        report.changed = reload::live_changes(&current, &new);
        report.restart_needed = reload::restart_changes(&self.started, &new);
        report.warnings = new.warnings.clone();
        for w in &new.warnings {
            warn!("{w}");
        }
        for c in &report.changed {
            info!("reload: {c}");
        }
        for c in &report.restart_needed {
            info!("reload: needs a restart: {c}");
        }
        info!(path = %source.path.display(), shares = new.shares.len(), changed = report.changed.len(), "configuration re-read");
        *current = new;
        report
    }

    fn status(&self) -> StatusReport {
        let c = self.current();
        StatusReport {
            engine: self.server.status(),
            pid: std::process::id(),
            config_file: self.source.as_ref().map(|s| {
                std::fs::canonicalize(&s.path)
                    .unwrap_or_else(|_| s.path.clone())
                    .display()
                    .to_string()
            }),
            control_socket: self
                .control_socket
                .as_ref()
                .map(|p| p.display().to_string()),
            metrics: self.metrics.map(|a| format!("http://{a}/metrics")),
            encryption_policy: self.started.security.encryption.to_string(),
            frame_read_timeout_ms: u64::try_from(
                self.started.limits.frame_read_timeout.as_millis(),
            )
            .unwrap_or(u64::MAX),
            keepalive: c.limits.keepalive,
            discovery: self.discovery.clone(),
        }
    }

    /// One control-socket request.
    pub fn handle(&self, req: Request) -> Response {
        match req {
            Request::Status => Response::ok(self.status()),
            Request::Sessions => Response::ok(self.server.sessions()),
            Request::Files => Response::ok(self.server.open_files()),
            Request::CloseSession { id } => {
                if self.server.close_session(id) {
                    info!(session = id, "control: session closed");
                    Response::ok(serde_json::json!({ "closed": id }))
                } else {
                    Response::error(format!("no session {id} (`lanshare sessions` lists them)"))
                }
            }
            Request::CloseFile { id, session } => {
                if self.server.close_file(id, session) {
                    Response::ok(serde_json::json!({ "closed": id }))
                } else {
                    Response::error(format!(
                        "no open file {id}{} (`lanshare files` lists them)",
                        session.map_or(String::new(), |s| format!(" in session {s}"))
                    ))
                }
            }
            Request::Reload => {
                let report = self.reload();
                if self.source.is_none() {
                    Response::error(report.errors.join("; "))
                } else {
                    Response::ok(report)
                }
            }
        }
    }
}

/// Binds the control socket. A socket the config names must work; the default one may be
/// taken by another server of the same user (then this one goes without, and says so).
fn bind_control(
    config: &Config,
) -> Result<Option<(ControlListener, control::SocketFile)>, CliError> {
    let Some((path, dedicated)) = control::socket_path(&config.server.control_socket) else {
        info!(
            "no control socket (server.control_socket = \"\"): lanshare status and friends cannot reach this server"
        );
        return Ok(None);
    };
    match ControlListener::bind(&path, dedicated) {
        Ok(bound) => Ok(Some(bound)),
        Err(e) if matches!(config.server.control_socket, ControlSocket::Default) => {
            warn!(
                "no control socket: {e}; set server.control_socket (or --control-socket) to run several servers"
            );
            Ok(None)
        }
        Err(e) => Err(CliError::Failed(format!(
            "cannot create the control socket: {e}"
        ))),
    }
}

async fn serve_async(
    config: &Config,
    engine_config: EngineConfig,
    users: Arc<dyn UserDb>,
    plan: Option<&QuickPlan>,
    reload_from: Option<ReloadSource>,
) -> Result<(), CliError> {
    let server = Server::new(engine_config, users)
        .map_err(|e| CliError::Failed(format!("cannot start the SMB server: {e}")))?;

    let mut signals = Signals::install();
    // Bind everything before announcing anything, so a half-started server never prints.
    let mut listeners = Vec::with_capacity(config.server.listen.len());
    for addr in &config.server.listen {
        let listener = bind(*addr).map_err(|e| CliError::Failed(bind_error_message(*addr, &e)))?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError::Failed(format!("cannot read the bound address: {e}")))?;
        listeners.push((local, listener));
    }
    let metrics = match config.metrics.listen {
        Some(addr) => {
            let l = bind(addr).map_err(|e| {
                CliError::Failed(format!("[metrics] {}", bind_error_message(addr, &e)))
            })?;
            let local = l
                .local_addr()
                .map_err(|e| CliError::Failed(format!("cannot read the bound address: {e}")))?;
            Some((local, l))
        }
        None => None,
    };
    // Held until the end of this function: dropping it removes the socket file.
    let control = bind_control(config)?;
    let bound: Vec<SocketAddr> = listeners.iter().map(|(a, _)| *a).collect();
    let announcers = Announcers::start(
        discovery_config(config, &bound),
        discovery_off_reason(config, &bound),
    )
    .await;
    let mut running = Running::new(server.clone(), config, reload_from);
    running.control_socket = control.as_ref().map(|(l, _)| l.path().to_path_buf());
    running.metrics = metrics.as_ref().map(|(a, _)| *a);
    running.discovery = announcers.status();
    let running = Arc::new(running);

    announce(
        config,
        plan,
        &listeners,
        running.control_socket.as_deref(),
        running.metrics,
    );
    for share in &config.shares {
        info!(share = %share.name, path = %share.path.display(), read_only = share.read_only, "sharing");
    }

    let mut tasks = JoinSet::new();
    for (local, listener) in listeners {
        let server = server.clone();
        tasks.spawn(async move { (local, server.serve(listener).await) });
    }
    // Helpers that end with the server: aborted below, never a reason to stop serving.
    let mut helpers = JoinSet::new();
    let socket_file = match control {
        Some((listener, file)) => {
            info!(path = %listener.path().display(), "control socket ready (lanshare status, sessions, files, reload)");
            let r = running.clone();
            helpers.spawn(listener.run(Arc::new(move |req| r.handle(req))));
            Some(file)
        }
        None => None,
    };
    if let Some((local, l)) = metrics {
        info!(%local, "metrics endpoint ready: http://{local}/metrics");
        helpers.spawn(crate::metrics::serve(l, server.clone()));
    }

    loop {
        tokio::select! {
            sig = signals.stop.recv() => {
                info!(signal = sig, "shutting down: no new connections; open ones get {}s", DRAIN_TIMEOUT.as_secs());
                server.shutdown();
                break;
            }
            () = next_signal(&mut signals.hup) => {
                info!("SIGHUP: re-reading the config file");
                let r = running.clone();
                // Reading files and opening share folders is blocking work.
                let _ = tokio::task::spawn_blocking(move || r.reload()).await;
            }
            Some(done) = tasks.join_next() => {
                // A listener ended on its own: something is wrong with it; stop the rest cleanly.
                match done {
                    Ok((local, Ok(()))) => warn!(%local, "listener stopped unexpectedly"),
                    Ok((local, Err(e))) => error!(%local, error = %e, "listener failed"),
                    Err(e) => error!(error = %e, "listener task failed"),
                }
                server.shutdown();
                break;
            }
        }
    }

    helpers.abort_all();
    // Goodbyes first, so clients stop offering a server that is going away.
    announcers.stop().await;
    drop(socket_file);
    let drain = async {
        while tasks.join_next().await.is_some() {}
        while server.connection_count() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = drain => info!("all connections closed"),
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => warn!(
            connections = server.connection_count(),
            "connections still open after {}s; exiting anyway", DRAIN_TIMEOUT.as_secs()
        ),
        sig = signals.stop.recv() => warn!(signal = sig, "second signal: exiting now"),
    }
    Ok(())
}

/// Prints the listening lines (scripts and tests parse them), the control socket and metrics
/// lines, and, without a config file, how to connect. Stdout is flushed so a reader on a pipe
/// sees it at once.
fn announce(
    config: &Config,
    plan: Option<&QuickPlan>,
    listeners: &[(SocketAddr, TcpListener)],
    control: Option<&std::path::Path>,
    metrics: Option<SocketAddr>,
) {
    let mut out = std::io::stdout().lock();
    for (local, _) in listeners {
        let _ = writeln!(out, "lanshare listening on {local}");
    }
    if let Some(path) = control {
        let _ = writeln!(out, "lanshare control socket {}", path.display());
    }
    if let Some(m) = metrics {
        let _ = writeln!(out, "lanshare metrics on http://{m}/metrics");
    }
    if let (Some(plan), Some((first, _))) = (plan, listeners.first()) {
        let hostname = names::hostname();
        let host = quick::connect_host(first, hostname.as_deref());
        let _ = writeln!(out);
        if first.ip().is_unspecified() {
            let addrs = quick::machine_addresses(first.is_ipv6());
            if !addrs.is_empty() {
                let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                let _ = writeln!(
                    out,
                    "this machine's addresses: {} (use one instead of {host} where that name does not resolve)",
                    list.join(", ")
                );
            }
        }
        let _ = write!(
            out,
            "{}",
            quick::connect_instructions(
                &host,
                first.port(),
                &config.shares,
                &plan.user,
                &plan.password
            )
        );
    }
    let _ = out.flush();
}

/// SIGINT and SIGTERM, installed before the listening lines are printed: whoever reads them
/// may signal at once, and an uninstalled handler would mean the default action (death).
struct Signals {
    stop: StopSignals,
    hup: Option<tokio::signal::unix::Signal>,
}

/// SIGINT and SIGTERM.
struct StopSignals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        let get = |kind: SignalKind, name: &str| {
            signal(kind)
                .map_err(|e| warn!(error = %e, "cannot handle {name}; it will kill the server"))
                .ok()
        };
        Signals {
            stop: StopSignals {
                int: get(SignalKind::interrupt(), "SIGINT"),
                term: get(SignalKind::terminate(), "SIGTERM"),
            },
            hup: get(SignalKind::hangup(), "SIGHUP"),
        }
    }
}

impl StopSignals {
    /// Resolves at the next SIGINT or SIGTERM with the signal's name.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = next_signal(&mut self.int) => "SIGINT",
            _ = next_signal(&mut self.term) => "SIGTERM",
        }
    }
}

/// The next delivery of a signal; never, when its handler could not be installed.
async fn next_signal(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Share;

    #[test]
    fn engine_config_carries_every_setting() {
        let mut c = Config::defaults("BOX");
        c.security.signing = Signing::Enabled;
        c.security.anonymous = Anonymous::IpcOnly;
        c.security.guest = true;
        c.security.min_protocol = Protocol::Smb2_10;
        c.security.max_protocol = Protocol::Smb3_02;
        c.limits.max_credits = 100;
        c.limits.handshake_timeout = Duration::from_millis(1500);
        c.limits.max_sessions = 5;
        c.limits.max_connections = 6;
        c.limits.max_connections_per_ip = 7;
        c.limits.max_open_files = 8;
        c.limits.max_open_files_per_session = 9;
        c.limits.idle_timeout = Duration::from_secs(60);
        c.limits.max_async_per_connection = 10;
        c.limits.max_inflight = 11;
        c.limits.keepalive = false;
        c.security.encryption = Encryption::Desired;
        c.limits.frame_read_timeout = Duration::from_secs(2);
        c.shares.push(Share {
            name: "d".into(),
            path: "/srv/d".into(),
            comment: "c".into(),
            read_only: true,
            guest_ok: true,
            browseable: false,
            max_users: 12,
            encrypt: true,
        });
        let e = engine_config(&c);
        assert_eq!(e.server_name, "BOX");
        assert_eq!(e.signing, SigningPolicy::Enabled);
        assert_eq!(e.anonymous, AnonymousPolicy::IpcOnly);
        assert!(e.allow_guest);
        assert_eq!(e.min_dialect, Dialect::SMB2_1);
        assert_eq!(e.max_dialect, Dialect::SMB3_0_2);
        assert_eq!(e.max_credits, 100);
        assert_eq!(e.handshake_timeout, Duration::from_millis(1500));
        let l = &e.limits;
        assert_eq!(
            (l.max_sessions, l.max_connections, l.max_connections_per_ip),
            (5, 6, 7)
        );
        assert_eq!((l.max_open_files, l.max_open_files_per_session), (8, 9));
        assert_eq!(l.idle_timeout, Duration::from_secs(60));
        assert_eq!((e.max_async_per_connection, e.max_inflight), (10, 11));
        assert!(!e.tcp_keepalive);
        assert_eq!(e.shares[0].max_users, 12);
        let s = &e.shares[0];
        assert_eq!((s.name.as_str(), s.comment.as_str()), ("d", "c"));
        assert!(s.read_only && s.guest_ok && !s.browseable && s.encrypt);
        assert_eq!(e.encryption, EncryptionPolicy::Desired);
        assert_eq!(e.frame_read_timeout, Duration::from_secs(2));
        for (policy, engine) in [
            (Encryption::Off, EncryptionPolicy::Off),
            (Encryption::Enabled, EncryptionPolicy::Enabled),
            (Encryption::Required, EncryptionPolicy::Required),
        ] {
            c.security.encryption = policy;
            assert_eq!(engine_config(&c).encryption, engine);
        }
        c.limits.frame_read_timeout = Duration::ZERO;
        assert!(engine_config(&c).frame_read_timeout >= Duration::from_secs(3600));
    }

    #[test]
    fn discovery_follows_the_listeners() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let mut c = Config::defaults("BOX");
        c.discovery.workgroup = "LAB".into();
        // A wildcard: every interface, the bound port, both announcers.
        let d = discovery_config(&c, &[a("0.0.0.0:4445")]).unwrap();
        assert_eq!(
            (d.computer_name.as_str(), d.workgroup.as_str()),
            ("BOX", "LAB")
        );
        assert!(d.interfaces.is_empty() && d.wsd && d.mdns && d.multicast);
        assert_eq!(d.smb_port, 4445);
        assert_eq!(
            (d.wsd_udp_port, d.wsd_http_port),
            (
                lanshare_discovery::WSD_UDP_PORT,
                lanshare_discovery::WSD_HTTP_PORT
            )
        );
        // Specific LAN addresses: those only, loopback left out, no duplicates.
        let d = discovery_config(
            &c,
            &[
                a("127.0.0.1:445"),
                a("192.168.1.5:445"),
                a("192.168.1.5:4445"),
                a("[fd00::5]:445"),
            ],
        )
        .unwrap();
        let want: Vec<IpAddr> = vec!["192.168.1.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        assert_eq!(d.interfaces, want);
        assert_eq!(d.smb_port, 445);
        // Loopback only: off unless asked for, then on loopback.
        assert!(discovery_config(&c, &[a("127.0.0.1:4445")]).is_none());
        c.discovery.mdns = Some(true);
        let d = discovery_config(&c, &[a("127.0.0.1:4445")]).unwrap();
        assert!(d.mdns && !d.wsd);
        assert_eq!(d.interfaces, vec![IpAddr::from([127, 0, 0, 1])]);
        // Both off.
        c.discovery.mdns = Some(false);
        c.discovery.wsd = Some(false);
        assert!(discovery_config(&c, &[a("0.0.0.0:445")]).is_none());
        assert!(discovery_off_reason(&c, &[a("0.0.0.0:445")]).contains("wsd = false"));
    }

    #[test]
    fn discovery_failures_name_the_fix() {
        let busy = |port: u16| DiscoveryError::Bind {
            what: "x",
            addr: SocketAddr::from(([0, 0, 0, 0], port)),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        let m = discovery_fix(&busy(5357), 3702, 5357);
        assert!(
            m.contains("ss -ltnp 'sport = :5357'") && m.contains("wsdd"),
            "{m}"
        );
        let m = discovery_fix(&busy(3702), 3702, 5357);
        assert!(m.contains("ss -lunp 'sport = :3702'"), "{m}");
        assert!(discovery_fix(&DiscoveryError::NoInterfaces, 3702, 5357).contains("ip -brief"));
    }

    #[test]
    fn dialects_match_the_wire_values() {
        for p in Protocol::ALL {
            assert_eq!(dialect(p).0, p.dialect_revision());
        }
    }

    #[test]
    fn bind_messages_give_the_fix() {
        let a445: SocketAddr = "0.0.0.0:445".parse().unwrap();
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let m = bind_error_message(a445, &denied);
        assert!(m.contains("setcap cap_net_bind_service=+ep"), "{m}");
        assert!(m.contains("--listen 0.0.0.0:4445"), "{m}");
        let busy = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let m = bind_error_message(a445, &busy);
        assert!(
            m.contains("smbd") && m.contains("ss -ltnp 'sport = :445'"),
            "{m}"
        );
        let a = "127.0.0.1:4445".parse().unwrap();
        assert!(bind_error_message(a, &busy).contains("sport = :4445"));
    }

    #[test]
    fn exposed_users_file_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("users");
        std::fs::write(&f, "").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(users_file_exposure(&f).unwrap().contains("chmod 600"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(users_file_exposure(&f).is_none());
        assert!(users_file_exposure(&dir.path().join("missing")).is_none());
    }

    #[tokio::test]
    async fn bind_port_zero_and_busy_port() {
        let l = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let local = l.local_addr().unwrap();
        assert_ne!(local.port(), 0);
        let e = bind(local).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    }
}
