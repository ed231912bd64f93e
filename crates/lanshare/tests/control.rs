//! The control socket end to end: `lanshare serve --config` with a socket in a temporary
//! folder, a real client (the Rust `smb` crate) holding a session and a file, and the
//! administration commands run as separate processes, as an administrator would.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use smb::{
    Client, ClientConfig, ConnectionConfig, CreateOptions, Dialect, FileAttributes, FileCreateArgs,
    UncPath,
};

mod common;
use common::Server;

fn add_user(users: &Path, name: &str, password: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lanshare"))
        .args(["user", "add", name, "--password-stdin", "--users-file"])
        .arg(users)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait().unwrap().success());
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `lanshare ARGS… --socket SOCKET`, run off the async runtime.
async fn admin(socket: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanshare"));
    cmd.args(args)
        .arg("--socket")
        .arg(socket)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

async fn admin_json(socket: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = admin(socket, &all).await;
    assert!(
        out.status.success(),
        "lanshare {args:?} failed: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?} --json is not JSON ({e}): {}", text(&out.stdout)))
}

fn limit<'a>(status: &'a serde_json::Value, setting: &str) -> &'a serde_json::Value {
    status["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["setting"] == setting)
        .unwrap_or_else(|| panic!("no {setting} in {status}"))
}

fn client(port: u16) -> Client {
    let mut connection = ConnectionConfig {
        port: Some(port),
        timeout: Some(Duration::from_secs(20)),
        max_dialect: Some(Dialect::Smb0302),
        encryption_mode: smb::connection::EncryptionMode::Disabled,
        ..Default::default()
    };
    connection.auth_methods.kerberos = false;
    connection.auth_methods.ntlm = true;
    Client::new(ClientConfig {
        connection,
        dfs: false,
        ..Default::default()
    })
}

async fn metrics(addr: SocketAddr) -> String {
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap()
}

struct Setup {
    _dir: tempfile::TempDir,
    config: PathBuf,
    base: String,
    socket: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    add_user(&dir.path().join("users"), "alice", "pw");
    let socket = dir.path().join("run").join("control.sock");
    let base = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nusers_file = \"users\"\ncontrol_socket = \"{}\"\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n",
        socket.display()
    );
    let config = dir.path().join("lanshare.toml");
    std::fs::write(
        &config,
        format!("{base}[[share]]\nname = \"data\"\npath = \"data\"\n"),
    )
    .unwrap();
    Setup {
        _dir: dir,
        config,
        base,
        socket,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_sessions_files_close_and_reload() {
    let s = setup();
    let server = Server::serve_config(&s.config);
    let addr: SocketAddr = server.announced("lanshare listening on ").parse().unwrap();
    let announced = PathBuf::from(server.announced("lanshare control socket "));
    assert_eq!(announced, s.socket);
    let metrics_url = server.announced("lanshare metrics on http://");
    let metrics_addr: SocketAddr = metrics_url.trim_end_matches("/metrics").parse().unwrap();

    // Private on disk.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.socket), 0o600);
    assert_eq!(mode(s.socket.parent().unwrap()), 0o700);

    let st = admin_json(&s.socket, &["status"]).await;
    assert_eq!(st["listeners"][0], addr.to_string());
    assert_eq!(st["sessions"], 0);
    assert_eq!(st["pid"], server.child.id());
    assert_eq!(st["encryption_policy"], "enabled");
    assert_eq!(limit(&st, "limits.max_sessions")["limit"], 0);
    let table = admin(&s.socket, &["status"]).await;
    assert!(table.status.success(), "{}", text(&table.stderr));
    let table = text(&table.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("  sessions ")
            && l.contains("0 / unlimited")
            && l.contains("refused 0")),
        "{table}"
    );
    assert!(
        table.contains("idle timeout") && table.contains("15m"),
        "{table}"
    );

    // A real client holds a session and a file.
    let c = client(addr.port());
    let share = UncPath::new("127.0.0.1")
        .unwrap()
        .with_share("data")
        .unwrap();
    c.share_connect(&share, "alice", "pw".to_string())
        .await
        .unwrap();
    let file = c
        .create_file(
            &share.clone().with_path("held.txt"),
            &FileCreateArgs::make_overwrite(FileAttributes::new(), CreateOptions::new()),
        )
        .await
        .unwrap()
        .unwrap_file();

    let sessions = admin_json(&s.socket, &["sessions"]).await;
    let list = sessions.as_array().unwrap();
    assert_eq!(list.len(), 1, "{sessions}");
    assert_eq!(list[0]["user"], "alice");
    assert!(
        list[0]["dialect"].as_str().unwrap().contains('3'),
        "{sessions}"
    );
    assert_eq!(list[0]["signing"], true);
    assert_eq!(list[0]["opens"], 1);
    assert!(
        list[0]["client"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let session_id = list[0]["id"].as_u64().unwrap();
    let table = text(&admin(&s.socket, &["sessions"]).await.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&format!("{session_id} "))
                && l.contains("alice")
                && l.contains(" 3.0.2 ")),
        "{table}"
    );

    let files = admin_json(&s.socket, &["files"]).await;
    let f = &files.as_array().unwrap()[0];
    assert_eq!(f["path"], "held.txt");
    assert_eq!(f["share"], "data");
    assert_eq!(f["session"], session_id);
    assert!(f["access_text"].as_str().unwrap().contains('W'), "{f}");
    let table = text(&admin(&s.socket, &["files"]).await.stdout);
    assert!(table.contains("held.txt"), "{table}");

    let m = metrics(metrics_addr).await;
    assert!(m.starts_with("HTTP/1.1 200 OK"), "{m}");
    assert!(m.contains("\nlanshare_sessions 1\n"), "{m}");
    assert!(m.contains("\nlanshare_open_files 1\n"), "{m}");

    // close-file: the server closes it; the listing no longer shows it.
    let file_id = f["id"].as_u64().unwrap().to_string();
    let out = admin(&s.socket, &["close-file", &file_id]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        admin_json(&s.socket, &["files"]).await,
        serde_json::json!([])
    );
    let out = admin(&s.socket, &["close-file", &file_id]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no open file"),
        "{}",
        text(&out.stderr)
    );
    drop(file);

    // close-session: the client's next request fails.
    let out = admin(&s.socket, &["close-session", &format!("{session_id:#x}")]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("session {session_id} closed")
    );
    let after = c
        .create_file(
            &share.clone().with_path("after.txt"),
            &FileCreateArgs::make_overwrite(FileAttributes::new(), CreateOptions::new()),
        )
        .await;
    assert!(after.is_err(), "a closed session must not be served");
    assert!(!Path::new(&s._dir.path().join("data/after.txt")).exists());
    assert_eq!(
        admin_json(&s.socket, &["sessions"]).await,
        serde_json::json!([])
    );
    let out = admin(&s.socket, &["close-session", &session_id.to_string()]).await;
    assert_eq!(out.status.code(), Some(1));

    // reload after editing max_sessions: live at once; a security change waits for a restart.
    std::fs::write(
        &s.config,
        format!(
            "{}[security]\nsigning = \"enabled\"\n[limits]\nmax_sessions = 1\n[[share]]\nname = \"data\"\npath = \"data\"\nmax_users = 5\n",
            s.base
        ),
    )
    .unwrap();
    let out = admin(&s.socket, &["reload"]).await;
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    assert!(
        said.contains("  limits.max_sessions: unlimited -> 1\n"),
        "{said}"
    );
    assert!(
        said.contains("  share `data`: max_users unlimited -> 5\n"),
        "{said}"
    );
    assert!(
        said.contains("after a restart:\n  security.signing: required -> enabled\n"),
        "{said}"
    );
    let st = admin_json(&s.socket, &["status"]).await;
    let l = limit(&st, "limits.max_sessions");
    assert_eq!(
        (l["limit"].as_u64(), l["current"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(st["shares"][0]["max_users"], 5);
    assert_eq!(
        st["signing"], "required",
        "a restart-only setting must not change"
    );
    let m = metrics(metrics_addr).await;
    assert!(
        m.contains("lanshare_limit{limit=\"limits.max_sessions\"} 1\n"),
        "{m}"
    );

    // At the new limit the next logon is refused, and the status view counts it.
    let first = client(addr.port());
    first
        .share_connect(&share, "alice", "pw".to_string())
        .await
        .unwrap();
    let second = client(addr.port());
    let refused = second
        .share_connect(&share, "alice", "pw".to_string())
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            smb::Error::UnexpectedMessageStatus(0xC000_00D0)
                | smb::Error::ReceivedErrorMessage(0xC000_00D0, _)
        ),
        "expected STATUS_REQUEST_NOT_ACCEPTED: {refused:?}"
    );
    let table = text(&admin(&s.socket, &["status"]).await.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("  sessions ")
            && l.contains(" 1 / 1 ")
            && l.contains("refused 1")),
        "{table}"
    );
    drop(first);

    // A broken file changes nothing and says why.
    std::fs::write(&s.config, format!("{}[limits]\nmax_sesions = 2\n", s.base)).unwrap();
    let out = admin(&s.socket, &["reload"]).await;
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stdout);
    assert!(said.starts_with("reload refused: "), "{said}");
    assert!(said.contains("did you mean `max_sessions`"), "{said}");
    let st = admin_json(&s.socket, &["status"]).await;
    assert_eq!(limit(&st, "limits.max_sessions")["limit"], 1);
}

#[test]
fn commands_without_a_server_say_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_lanshare"))
        .args(["status", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "no lanshare server is listening on {}: start it with `lanshare serve`, or pass --socket",
            socket.display()
        )),
        "{err}"
    );
    // --config finds the socket in the file.
    let cfg = dir.path().join("l.toml");
    std::fs::write(
        &cfg,
        format!("[server]\ncontrol_socket = \"{}\"\n", socket.display()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lanshare"))
        .args(["sessions", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(text(&out.stderr).contains(&socket.display().to_string()));
}

/// Runs `lanshare ARGS…` as `nobody` (uid 65534) from a world-readable copy of the binary.
fn as_nobody(exe: &Path, args: &[&str], socket: &Path) -> Output {
    let mut tries = 0;
    loop {
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(exe)
            .args(args)
            .arg("--socket")
            .arg(socket)
            .current_dir("/")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        // The fresh copy can be "busy" for a moment: a child forked by a parallel test may
        // still hold the copy's write descriptor until it execs.
        tries += 1;
        if tries < 50 && text(&out.stderr).contains("Text file busy") {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        return out;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_users_are_refused() {
    let uid = text(&Command::new("id").arg("-u").output().unwrap().stdout);
    if uid.trim() != "0" {
        eprintln!("not root: cannot run a client as another user; skipped");
        return;
    }
    let s = setup();
    let server = Server::serve_config(&s.config);
    server.announced("lanshare control socket ");
    let exe_dir = tempfile::tempdir().unwrap();
    let exe = exe_dir.path().join("lanshare");
    std::fs::copy(env!("CARGO_BIN_EXE_lanshare"), &exe).unwrap();
    std::fs::set_permissions(exe_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The temporary folder above the socket's own folder must be passable for the later steps.
    let top = s.socket.parent().unwrap().parent().unwrap();
    std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = s.socket.parent().unwrap();

    // 1. The socket's folder (0700) keeps others out.
    let out = as_nobody(&exe, &["status"], &s.socket);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("permission denied on"), "{err}");

    // 2. So does the socket's own mode (0600), with the folder opened up.
    std::fs::set_permissions(run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = as_nobody(&exe, &["status"], &s.socket);
    let err = text(&out.stderr);
    assert!(err.contains("permission denied on"), "{err}");

    // 3. And with both opened up, the server itself checks who is calling.
    std::fs::set_permissions(&s.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&exe, &["close-session", "1"], &s.socket);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("permission denied: uid 65534 may not control this server"),
        "{err}"
    );
    assert!(
        server
            .log_within(
                "connection from another user refused",
                Duration::from_secs(10)
            )
            .is_some()
    );
    // The owner is still served.
    let st = admin_json(&s.socket, &["status"]).await;
    assert_eq!(st["sessions"], 0);
}
