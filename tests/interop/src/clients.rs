//! The external clients, each run against a [`TestServer`] with a deadline.
//!
//! Clients get `-s /dev/null` (an empty smb.conf) so that the machine's own
//! `/etc/samba/smb.conf` cannot change what they offer.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::{self, Output, find_tool};
use crate::{Error, TestServer};

const SAMBA_CLIENT_PKG: &str = "the Debian package `smbclient` (apt-get install smbclient)";
const SMBTORTURE_PKG: &str =
    "the Debian package `samba-testsuite` (apt-get install samba-testsuite)";

/// smbclient's names for the dialects it can be capped at (`-m`), lowest first.
pub const SMBCLIENT_DIALECTS: [&str; 5] = ["SMB2_02", "SMB2_10", "SMB3_00", "SMB3_02", "SMB3_11"];

/// `smbclient //host/share -p PORT -U user%pass <extra…> -c COMMANDS`.
pub fn smbclient(server: &TestServer, extra: &[&str], commands: &str) -> Result<Output, Error> {
    smbclient_to(
        server,
        server.share(),
        &server.credentials(),
        extra,
        commands,
    )
}

/// Like [`smbclient`] with a chosen share and `user%password`, for the negative cases.
pub fn smbclient_to(
    server: &TestServer,
    share: &str,
    credentials: &str,
    extra: &[&str],
    commands: &str,
) -> Result<Output, Error> {
    let bin = find_tool("smbclient", SAMBA_CLIENT_PKG)?;
    let mut cmd = Command::new(bin);
    cmd.args(["-s", "/dev/null"])
        .arg(format!("//{}/{}", server.host(), share))
        .args(["-p", &server.port().to_string()])
        .args(["-U", credentials])
        .args(extra)
        .args(["-c", commands]);
    process::run(&mut cmd, Duration::from_secs(60))
}

/// One smbtorture test, bounded at 60 s like `timeout -k 5 60 smbtorture …`.
pub fn smbtorture(server: &TestServer, test: &str) -> Result<Output, Error> {
    smbtorture_within(server, test, Duration::from_secs(60))
}

/// [`smbtorture`] with its own time bound, for the few tests that legitimately run long
/// (`smb2.maxfid` opens files until the server refuses, about 20,000 on a debug build).
pub fn smbtorture_within(
    server: &TestServer,
    test: &str,
    limit: Duration,
) -> Result<Output, Error> {
    let bin = find_tool("smbtorture", SMBTORTURE_PKG)?;
    let mut cmd = Command::new(bin);
    cmd.args(["-s", "/dev/null"])
        .arg(server.unc())
        .args(["-p", &server.port().to_string()])
        .args(["-U", &server.credentials()])
        .arg(test);
    process::run(&mut cmd, limit)
}

/// A script from this crate's `py/` directory, run with the interpreter that has smbprotocol.
pub fn python_script(script: &str, args: &[String]) -> Result<Output, Error> {
    let py = process::require_smbprotocol()?;
    let path: PathBuf = process::crate_dir().join("py").join(script);
    let mut cmd = Command::new(py);
    cmd.arg(path).args(args);
    process::run(&mut cmd, Duration::from_secs(120))
}

/// `py/connect.py` against `server` with the common arguments filled in.
pub fn smbprotocol_connect(server: &TestServer, extra: &[&str]) -> Result<Output, Error> {
    smbprotocol_script(server, "connect.py", extra)
}

/// A script under `py/` run against `server`: `--host --port --user --password --share`
/// filled in, then `extra`.
pub fn smbprotocol_script(
    server: &TestServer,
    script: &str,
    extra: &[&str],
) -> Result<Output, Error> {
    let mut args = vec![
        "--host".to_string(),
        server.host(),
        "--port".to_string(),
        server.port().to_string(),
        "--user".to_string(),
        server.user().to_string(),
        "--password".to_string(),
        server.password().to_string(),
        "--share".to_string(),
        server.share().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    python_script(script, &args)
}

/// The last `n` lines of `text`, for assertion messages that would otherwise be pages long.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `py/hold.py`: one authenticated, signed smbprotocol session kept open and driven line by
/// line, so a test can check that an existing client keeps being served.
pub struct Holder {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Holder {
    /// Connects with `dialect` ("2.0.2", "3.0.2" or "3.1.1") and waits for it to be ready.
    pub fn start(server: &TestServer, dialect: &str) -> Result<Holder, Error> {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        use std::process::Stdio;

        let py = process::require_smbprotocol()?;
        let mut child = Command::new(py)
            .arg(process::crate_dir().join("py").join("hold.py"))
            .args(["--host", &server.host()])
            .args(["--port", &server.port().to_string()])
            .args(["--user", server.user()])
            .args(["--password", server.password()])
            .args(["--share", server.share()])
            .args(["--dialect", dialect])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .map_err(|e| Error::io("starting py/hold.py", e))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if let Some(out) = stdout {
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        });
        let mut h = Holder {
            child,
            stdin,
            lines,
            log: Vec::new(),
        };
        let first = h.next_line(Duration::from_secs(60))?;
        if first == "READY" {
            Ok(h)
        } else {
            Err(Error::Setup(format!("hold.py did not get ready: {first}")))
        }
    }

    fn next_line(&mut self, wait: Duration) -> Result<String, Error> {
        let line = self.lines.recv_timeout(wait).map_err(|e| {
            Error::Setup(format!(
                "hold.py said nothing in {wait:?} ({e}); before: {:?}",
                self.log
            ))
        })?;
        self.log.push(line.clone());
        Ok(line)
    }

    /// Sends one command line ("echo" or "badsig") and returns the answer line.
    pub fn command(&mut self, cmd: &str) -> Result<String, Error> {
        use std::io::Write;
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Error::Setup("hold.py's stdin is closed".into()))?;
        writeln!(stdin, "{cmd}")
            .and_then(|_| stdin.flush())
            .map_err(|e| Error::io("writing to hold.py (it exited?)", e))?;
        self.next_line(Duration::from_secs(30))
    }

    /// An ECHO on the held session must be answered.
    pub fn echo_ok(&mut self) -> Result<(), Error> {
        match self.command("echo")? {
            l if l == "OK" => Ok(()),
            other => Err(Error::Setup(format!("held session's ECHO failed: {other}"))),
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = process::wait_deadline(&mut self.child, Duration::from_secs(10));
    }
}
