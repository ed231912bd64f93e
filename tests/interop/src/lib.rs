//! lanshare-interop: support code for the interop tests that drive lanshare with real SMB
//! clients (smbclient, smbtorture, Python `smbprotocol`, the Rust `smb` crate) and with
//! malformed traffic.
//!
//! Every test is first made to pass against Samba, then run against lanshare: the same test
//! code targets either server. [`TestServer::start`] picks the target from the environment
//! variable `LANSHARE_INTEROP_TARGET` (`lanshare`, the default, or `samba`).
//!
//! What it is not: a test of lanshare's internals (those live in each crate), nor a client
//! library. Missing tools are reported as errors that name the package to install, so a test
//! fails rather than silently skipping.
//!
//! Layout:
//! - this file: [`Target`], [`ServerOptions`], [`TestServer`], [`Error`];
//! - [`process`]: running external clients with a deadline, finding binaries;
//! - [`raw`]: a tiny hand-written SMB2 client for hostile traffic (independent of `smb-wire`
//!   on purpose, so a codec bug cannot hide itself);
//! - `samba`: a private `smbd` on a free loopback port;
//! - `inproc` (feature `lanshare`): the lanshare engine on its own tokio runtime thread.
#![forbid(unsafe_code)]

pub mod clients;
pub mod process;
pub mod raw;
mod samba;

#[cfg(feature = "lanshare")]
mod inproc;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// The user every test server knows. For Samba it must also be a Unix account: it is created
/// with `useradd --system` when missing (tests run as root in CI).
pub const DEFAULT_USER: &str = "lsinterop";
/// Satisfies any password-complexity rule a server might apply.
pub const DEFAULT_PASSWORD: &str = "Secret.123";
pub const DEFAULT_SHARE: &str = "share";
/// The environment variable that selects the server under test.
pub const TARGET_ENV: &str = "LANSHARE_INTEROP_TARGET";

/// Errors from setting up a test server or running a client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{tool}` not found: install {package}")]
    MissingTool { tool: String, package: String },
    #[error("{TARGET_ENV}={0:?} is not a target: use `lanshare` or `samba`")]
    BadTarget(String),
    #[error("I/O error while {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error(
        "this build has no lanshare target: build lanshare-interop with its default feature \
         `lanshare`, or set {TARGET_ENV}=samba"
    )]
    NoLanshare,
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// Which server a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Lanshare,
    Samba,
}

impl Target {
    /// Reads `LANSHARE_INTEROP_TARGET`; unset or empty means lanshare.
    pub fn from_env() -> Result<Target, Error> {
        match std::env::var(TARGET_ENV) {
            Err(_) => Ok(Target::Lanshare),
            Ok(v) => Target::parse(&v),
        }
    }

    /// `lanshare` (or empty) and `samba` (or `smbd`), in any case.
    pub fn parse(value: &str) -> Result<Target, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "lanshare" => Ok(Target::Lanshare),
            "samba" | "smbd" => Ok(Target::Samba),
            _ => Err(Error::BadTarget(value.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::Lanshare => "lanshare",
            Target::Samba => "samba",
        }
    }
}

/// Server-side signing policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Signing {
    /// Sign when the client asks (Samba `server signing = auto`).
    Enabled,
    /// Refuse unsigned sessions (Samba `server signing = mandatory`); lanshare's default.
    #[default]
    Required,
}

/// How to set up a test server. `Default` gives the share `share`, user `lsinterop` and
/// signing required.
#[derive(Clone)]
pub struct ServerOptions {
    pub signing: Signing,
    pub share: String,
    pub user: String,
    pub password: String,
    /// lanshare only: adjust the engine's configuration (limits, encryption, share settings)
    /// before the server starts. Samba ignores it.
    #[cfg(feature = "lanshare")]
    pub lanshare: Option<LanshareTweak>,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("signing", &self.signing)
            .field("share", &self.share)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A change to lanshare's `EngineConfig`, applied by `TestServer::start_lanshare`.
#[cfg(feature = "lanshare")]
pub type LanshareTweak = std::sync::Arc<dyn Fn(&mut smb_engine::EngineConfig) + Send + Sync>;

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            signing: Signing::default(),
            share: DEFAULT_SHARE.to_string(),
            user: DEFAULT_USER.to_string(),
            #[cfg(feature = "lanshare")]
            lanshare: None,
            password: DEFAULT_PASSWORD.to_string(),
        }
    }
}

impl ServerOptions {
    /// lanshare only: set up the engine's configuration (see [`ServerOptions::lanshare`]).
    #[cfg(feature = "lanshare")]
    pub fn lanshare(
        mut self,
        f: impl Fn(&mut smb_engine::EngineConfig) + Send + Sync + 'static,
    ) -> Self {
        self.lanshare = Some(std::sync::Arc::new(f));
        self
    }

    pub fn signing(mut self, signing: Signing) -> Self {
        self.signing = signing;
        self
    }
}

enum Backend {
    Samba(samba::Smbd),
    #[cfg(feature = "lanshare")]
    Lanshare(inproc::InProcess),
}

/// A running server with one share over a fresh temporary directory. Dropping it stops the
/// server and removes the directory.
pub struct TestServer {
    // Field order matters: the server must stop before its directory is removed.
    backend: Backend,
    target: Target,
    addr: SocketAddr,
    opts: ServerOptions,
    share_dir: PathBuf,
    _dir: TempDir,
}

impl TestServer {
    /// Starts the server chosen by `LANSHARE_INTEROP_TARGET`.
    pub fn start(opts: ServerOptions) -> Result<TestServer, Error> {
        Self::start_target(Target::from_env()?, opts)
    }

    pub fn start_target(target: Target, opts: ServerOptions) -> Result<TestServer, Error> {
        match target {
            Target::Lanshare => Self::start_lanshare(opts),
            Target::Samba => Self::start_samba(opts),
        }
    }

    /// A private `smbd` on a free loopback port (see `samba.rs` for the configuration).
    pub fn start_samba(opts: ServerOptions) -> Result<TestServer, Error> {
        let dir = new_tempdir()?;
        let share_dir = dir.path().join("share");
        let (smbd, addr) = samba::Smbd::start(dir.path(), &share_dir, &opts)?;
        Ok(TestServer {
            backend: Backend::Samba(smbd),
            target: Target::Samba,
            addr,
            opts,
            share_dir,
            _dir: dir,
        })
    }

    /// lanshare's engine in this process, on its own multi-thread runtime, so blocking client
    /// calls in the test thread cannot starve it.
    #[cfg(feature = "lanshare")]
    pub fn start_lanshare(opts: ServerOptions) -> Result<TestServer, Error> {
        let dir = new_tempdir()?;
        let share_dir = dir.path().join("share");
        std::fs::create_dir(&share_dir).map_err(|e| Error::io("creating the share dir", e))?;
        let (server, addr) = inproc::InProcess::start(&share_dir, &opts)?;
        Ok(TestServer {
            backend: Backend::Lanshare(server),
            target: Target::Lanshare,
            addr,
            opts,
            share_dir,
            _dir: dir,
        })
    }

    #[cfg(not(feature = "lanshare"))]
    pub fn start_lanshare(_opts: ServerOptions) -> Result<TestServer, Error> {
        Err(Error::NoLanshare)
    }

    pub fn target(&self) -> Target {
        self.target
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The address clients are given, always an IPv4 loopback literal.
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    pub fn share(&self) -> &str {
        &self.opts.share
    }
    pub fn user(&self) -> &str {
        &self.opts.user
    }
    pub fn password(&self) -> &str {
        &self.opts.password
    }
    pub fn options(&self) -> &ServerOptions {
        &self.opts
    }
    /// The directory behind the share, for checking what clients wrote.
    pub fn share_dir(&self) -> &Path {
        &self.share_dir
    }
    /// `//127.0.0.1/share`, as smbclient and smbtorture take it.
    pub fn unc(&self) -> String {
        format!("//{}/{}", self.host(), self.opts.share)
    }
    /// `user%password`, as smbclient's and smbtorture's `-U` take it.
    pub fn credentials(&self) -> String {
        format!("{}%{}", self.opts.user, self.opts.password)
    }

    /// What the server said, for a failing test's message: the tail of Samba's logs; for
    /// lanshare, which logs through `tracing` (set `RUST_LOG`), its live counters.
    pub fn diagnostics(&self) -> String {
        match &self.backend {
            Backend::Samba(s) => s.log_tail(),
            #[cfg(feature = "lanshare")]
            Backend::Lanshare(s) => s.status(),
        }
    }
}

fn new_tempdir() -> Result<TempDir, Error> {
    tempfile::Builder::new()
        .prefix("lanshare-interop-")
        .tempdir()
        .map_err(|e| Error::io("creating a temporary directory", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names() {
        assert_eq!(Target::parse("").unwrap(), Target::Lanshare);
        assert_eq!(Target::parse("LanShare").unwrap(), Target::Lanshare);
        assert_eq!(Target::parse(" samba\n").unwrap(), Target::Samba);
        let err = Target::parse("windows").unwrap_err().to_string();
        assert!(err.contains("windows") && err.contains("samba"), "{err}");
    }

    #[test]
    fn missing_tool_names_the_package() {
        let err = process::find_tool("no-such-tool-lanshare", "the package `frob`").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`no-such-tool-lanshare` not found: install the package `frob`"
        );
    }

    #[test]
    fn run_reports_exit_code_output_and_timeout() {
        let out = process::run(
            std::process::Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            std::time::Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!((out.code, out.timed_out), (Some(3), false));
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("out\n", "err\n")
        );
        assert!(!out.success());

        let slow = process::run(
            std::process::Command::new("sleep").arg("30"),
            std::time::Duration::from_millis(200),
        )
        .unwrap();
        assert!(slow.timed_out && !slow.success(), "{slow:?}");
    }
}
