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
    let bin = find_tool("smbtorture", SMBTORTURE_PKG)?;
    let mut cmd = Command::new(bin);
    cmd.args(["-s", "/dev/null"])
        .arg(server.unc())
        .args(["-p", &server.port().to_string()])
        .args(["-U", &server.credentials()])
        .arg(test);
    process::run(&mut cmd, Duration::from_secs(60))
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
    python_script("connect.py", &args)
}

/// The last `n` lines of `text`, for assertion messages that would otherwise be pages long.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
