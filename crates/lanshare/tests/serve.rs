//! `lanshare serve` as a person would run it: the listening line, the generated password,
//! the users file in config mode, bind failures, and SIGTERM.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;
use common::{Server, lanshare};

fn run(args: &[&str]) -> Output {
    lanshare().args(args).stdin(Stdio::null()).output().unwrap()
}

fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = lanshare()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading its input closes the pipe: that is its answer,
    // not a test failure.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("lanshare.toml");
    std::fs::write(&path, body).unwrap();
    path
}

// ---------------------------------------------------------------------------------------------
// serve

/// `lanshare ARGS…` run in `cwd`.
fn start(args: &[&str], cwd: &Path) -> Server {
    let mut cmd = lanshare();
    cmd.args(args).current_dir(cwd);
    Server::spawn(cmd)
}

fn listening_addr(line: &str) -> std::net::SocketAddr {
    line.strip_prefix("lanshare listening on ")
        .unwrap_or_else(|| panic!("not a listening line: {line:?}"))
        .parse()
        .unwrap()
}

#[test]
fn serve_without_config_prints_address_and_password_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("Photos");
    std::fs::create_dir(&photos).unwrap();
    let mut server = start(
        &[
            "serve",
            photos.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--name",
            "testbox",
        ],
        dir.path(),
    );
    let first = server.read_until(|l| l.starts_with("lanshare listening on "));
    let addr = listening_addr(first.last().unwrap());
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0);

    let rest = server.read_until(|l| l.contains("smbclient "));
    let smbclient = rest.last().unwrap();
    let expected = format!(
        "smbclient //127.0.0.1/Photos -p {} -U lanshare%",
        addr.port()
    );
    assert!(smbclient.contains(&expected), "{smbclient}");
    let password = smbclient.rsplit('%').next().unwrap();
    assert_eq!(password.len(), 16, "{smbclient}");
    assert!(
        rest.iter()
            .any(|l| l.contains(&format!("password: {password}"))),
        "{rest:?}"
    );

    // The listener accepts connections.
    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();

    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn serve_creates_the_default_share_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(&["serve", "--listen", "127.0.0.1:0"], dir.path());
    let lines = server.read_until(|l| l.contains("smbclient "));
    assert!(lines.last().unwrap().contains("/share -p "), "{lines:?}");
    assert!(dir.path().join("share").is_dir());
    assert!(server.terminate(Duration::from_secs(20)).success());
}

#[test]
fn serve_with_config_uses_the_users_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    let cfg = write_config(
        dir.path(),
        "[server]\nlisten = [\"0.0.0.0:1\"]\nusers_file = \"users\"\n[[share]]\nname = \"docs\"\npath = \"docs\"\n",
    );
    let users = dir.path().join("users");
    let out = run_with_stdin(
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--users-file",
            users.to_str().unwrap(),
        ],
        "pw\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // --listen replaces the config's list (port 1 would need root and is surely closed).
    let mut server = start(
        &[
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    let a = listening_addr(
        server
            .read_until(|l| l.starts_with("lanshare listening"))
            .last()
            .unwrap(),
    );
    let b = listening_addr(
        server
            .read_until(|l| l.starts_with("lanshare listening"))
            .last()
            .unwrap(),
    );
    assert_ne!(a, b);
    TcpStream::connect_timeout(&b, Duration::from_secs(5)).unwrap();
    assert!(server.terminate(Duration::from_secs(20)).success());
    // No generated password in config mode.
    let rest: Vec<String> = server.stdout_so_far();
    assert!(!rest.iter().any(|l| l.contains("password")), "{rest:?}");
}

#[test]
fn serve_with_config_but_no_users_file_fails_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[server]\nusers_file = \"users\"\n[[share]]\nname = \"d\"\npath = \".\"\n",
    );
    let out = run(&[
        "serve",
        "--config",
        cfg.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("lanshare user add NAME --users-file"),
        "{stderr}"
    );
}

#[test]
fn serve_reports_a_busy_port() {
    let dir = tempfile::tempdir().unwrap();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let out = run(&["serve", dir.path().to_str().unwrap(), "--listen", &addr]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains("ss -ltnp"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing may be announced: {}",
        text(&out.stdout)
    );
}

#[test]
fn serve_rejects_a_missing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = run(&[
        "serve",
        missing.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no such folder"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_rejects_an_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[server]\nlisten = \"nowhere\"\n");
    let out = run(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(":2:10: listen address `nowhere`"),
        "{stderr}"
    );
    assert!(stderr.contains("no shares are defined"), "{stderr}");
}

#[test]
fn serve_explains_how_to_get_port_445() {
    let unprivileged_start: u16 =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1024);
    if unprivileged_start <= 445 {
        eprintln!(
            "this kernel lets anyone bind port 445 (ip_unprivileged_port_start = {unprivileged_start}): nothing to explain"
        );
        return;
    }
    let uid = Command::new("id").arg("-u").output().unwrap();
    let is_root = text(&uid.stdout).trim() == "0";
    // Root may bind 445: drop to `nobody`, with no capabilities, to be refused like a user.
    // The binary is copied to a world-readable folder first: the build tree may sit under a
    // directory `nobody` cannot enter (/root in CI).
    let exe_dir = tempfile::tempdir().unwrap();
    let mut cmd = if is_root {
        use std::os::unix::fs::PermissionsExt;
        let exe = exe_dir.path().join("lanshare");
        std::fs::copy(env!("CARGO_BIN_EXE_lanshare"), &exe).unwrap();
        std::fs::set_permissions(exe_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&exe);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_lanshare"))
    };
    cmd.args(["serve", "/tmp", "--listen", "127.0.0.1:445"])
        .current_dir("/")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    // The fresh copy can be "busy" for a moment (ETXTBSY): a child forked by a parallel test
    // may hold the copy's write descriptor until it execs.
    let mut out = cmd.output().unwrap();
    for _ in 0..50 {
        if !text(&out.stderr).contains("Text file busy") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        out = cmd.output().unwrap();
    }
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs root or CAP_NET_BIND_SERVICE"),
        "{stderr}"
    );
    assert!(
        stderr.contains("sudo setcap cap_net_bind_service=+ep $(command -v lanshare)"),
        "{stderr}"
    );
    assert!(stderr.contains("--listen 0.0.0.0:4445"), "{stderr}");
}
