//! A private Samba `smbd` for a test: its own configuration, passdb, lock, state, cache, pid
//! and ncalrpc directories inside the test's temporary directory, listening on a free loopback
//! port only.
//!
//! Lifetime: smbd runs in the foreground in its own process group with a pipe as stdin.
//! A foreground smbd whose stdin reaches end-of-file shuts down with its children, so closing
//! the pipe stops it, and so does this process dying for any reason. (It also signals its
//! whole process group when it exits, which is why it must not share ours.)
//!
//! Samba maps every SMB user to a Unix account, so [`crate::DEFAULT_USER`] must exist: it is
//! created with `useradd --system` when missing, which needs root (as CI has).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{self, find_tool};
use crate::{Error, ServerOptions, Signing};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// A free port found by binding :0 can be taken by someone else before smbd binds it.
const START_ATTEMPTS: usize = 3;

pub(crate) struct Smbd {
    child: Child,
    stdin: Option<ChildStdin>,
    log_dir: PathBuf,
}

impl Smbd {
    pub(crate) fn start(
        root: &Path,
        share_dir: &Path,
        opts: &ServerOptions,
    ) -> Result<(Smbd, SocketAddr), Error> {
        let smbd = find_tool("smbd", "the Debian package `samba` (apt-get install samba)")?;
        let smbpasswd = find_tool(
            "smbpasswd",
            "the Debian package `samba` (apt-get install samba)",
        )?;
        ensure_unix_user(&opts.user)?;

        // smbd serves as the connecting user, who must be able to walk down to the share.
        set_mode(root, 0o755)?;
        for sub in ["private", "lock", "state", "cache", "pid", "ncalrpc", "log"] {
            let d = root.join(sub);
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        }
        std::fs::create_dir_all(share_dir).map_err(|e| Error::io("creating the share dir", e))?;
        set_mode(share_dir, 0o777)?;
        set_mode(&root.join("private"), 0o700)?;

        let conf = root.join("smb.conf");
        let mut last_err = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            std::fs::write(&conf, smb_conf(root, share_dir, port, opts))
                .map_err(|e| Error::io("writing smb.conf", e))?;
            add_samba_user(&smbpasswd, &conf, opts)?;
            let mut child = Command::new(&smbd)
                .arg("--foreground")
                .arg("--no-process-group")
                .arg(format!("--configfile={}", conf.display()))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::from(
                    std::fs::File::create(root.join("log").join("smbd.stderr"))
                        .map_err(|e| Error::io("creating smbd.stderr", e))?,
                ))
                .process_group(0)
                .spawn()
                .map_err(|e| Error::io("starting smbd", e))?;
            let stdin = child.stdin.take();
            let mut server = Smbd {
                child,
                stdin,
                log_dir: root.join("log"),
            };
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            match server.wait_listening(addr) {
                Ok(()) => return Ok((server, addr)),
                Err(e) => {
                    last_err = format!("{e}\n{}", server.log_tail());
                    server.stop();
                }
            }
        }
        Err(Error::Setup(format!(
            "smbd did not start after {START_ATTEMPTS} attempts: {last_err}"
        )))
    }

    fn wait_listening(&mut self, addr: SocketAddr) -> Result<(), Error> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Setup(format!("smbd exited early with {status}")));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Setup(format!(
                    "smbd did not listen on {addr} within {STARTUP_TIMEOUT:?}"
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of every log smbd wrote, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let mut out = String::new();
        let Ok(entries) = std::fs::read_dir(&self.log_dir) else {
            return out;
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            let _ = writeln!(out, "==> {} <==\n{}", p.display(), tail.join("\n"));
        }
        out
    }

    fn stop(&mut self) {
        // End of file on stdin is smbd's cue for an orderly shutdown of it and its children.
        drop(self.stdin.take());
        let _ = process::wait_deadline(&mut self.child, STOP_TIMEOUT);
        // Children of a parent that was killed rather than stopped would linger.
        process::kill_group(self.child.id());
    }
}

impl Drop for Smbd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn smb_conf(root: &Path, share_dir: &Path, port: u16, opts: &ServerOptions) -> String {
    let d = |sub: &str| root.join(sub).display().to_string();
    let signing = match opts.signing {
        Signing::Enabled => "auto",
        Signing::Required => "mandatory",
    };
    format!(
        "[global]
\tnetbios name = SAMBATEST
\tworkgroup = WORKGROUP
\tserver role = standalone server
\tsmb ports = {port}
\tinterfaces = 127.0.0.1
\tbind interfaces only = yes
\tdisable netbios = yes
\tprivate dir = {private}
\tlock directory = {lock}
\tstate directory = {state}
\tcache directory = {cache}
\tpid directory = {pid}
\tncalrpc dir = {ncalrpc}
\tlog file = {log}/log.%m
\tlog level = 1
\tpassdb backend = tdbsam
\tserver min protocol = SMB2_02
\tserver signing = {signing}
\tmap to guest = never
\tload printers = no
\tprinting = bsd
\tprintcap name = /dev/null
\tdisable spoolss = yes
\n[{share}]
\tpath = {share_dir}
\tread only = no
\tguest ok = no
\tvfs objects = streams_xattr
",
        private = d("private"),
        lock = d("lock"),
        state = d("state"),
        cache = d("cache"),
        pid = d("pid"),
        ncalrpc = d("ncalrpc"),
        log = d("log"),
        share = opts.share,
        share_dir = share_dir.display(),
    )
}

fn add_samba_user(smbpasswd: &Path, conf: &Path, opts: &ServerOptions) -> Result<(), Error> {
    let mut child = Command::new(smbpasswd)
        .arg("-c")
        .arg(conf)
        .args(["-s", "-a", &opts.user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("starting smbpasswd", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let pw = format!("{0}\n{0}\n", opts.password);
        stdin
            .write_all(pw.as_bytes())
            .map_err(|e| Error::io("writing to smbpasswd", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io("waiting for smbpasswd", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Setup(format!(
            "smbpasswd -a {} failed ({}): {}{}",
            opts.user,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// Parallel tests may all find the user missing: serialise the check-and-create.
static USERADD: Mutex<()> = Mutex::new(());

fn ensure_unix_user(user: &str) -> Result<(), Error> {
    let _guard = USERADD.lock().unwrap_or_else(|p| p.into_inner());
    if unix_user_exists(user) {
        return Ok(());
    }
    let useradd = find_tool("useradd", "the Debian package `passwd`")?;
    let out = process::run(
        Command::new(useradd).args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            user,
        ]),
        Duration::from_secs(30),
    )?;
    // Exit code 9: another test binary created it in the meantime.
    if out.success() || out.code == Some(9) || unix_user_exists(user) {
        Ok(())
    } else {
        Err(Error::Setup(format!(
            "Samba needs a Unix account `{user}` and `useradd` could not create it (run the \
             tests as root, or create it: useradd --system {user}): {}",
            out.describe()
        )))
    }
}

fn unix_user_exists(user: &str) -> bool {
    std::fs::read_to_string("/etc/passwd")
        .map(|t| t.lines().any(|l| l.split(':').next() == Some(user)))
        .unwrap_or(false)
        || Command::new("getent")
            .args(["passwd", user])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("chmod {mode:o} {}", path.display()), e))
}

/// Binds :0 on loopback, reads the port, closes: smbd cannot take a listener from us.
pub(crate) fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::io("finding a free port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free port", e))
}
