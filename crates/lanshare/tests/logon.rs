//! The binary end to end with an independent client (the Rust `smb` crate): the password that
//! `serve` prints logs on to the share it names; in config mode the users file decides who
//! gets in, changes to it apply without a restart, and `max_protocol` caps the dialect.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use smb::{Client, ClientConfig, ConnectionConfig, Dialect, UncPath};

const STATUS_LOGON_FAILURE: u32 = 0xC000_006D;
const STATUS_BAD_NETWORK_NAME: u32 = 0xC000_00CC;

mod common;
use common::{Server, lanshare};

/// `lanshare ARGS…`.
fn start(args: &[&str]) -> Server {
    let mut cmd = lanshare();
    cmd.args(args);
    Server::spawn(cmd)
}

fn client(port: u16, max: Option<Dialect>) -> Client {
    let mut connection = ConnectionConfig {
        port: Some(port),
        timeout: Some(Duration::from_secs(20)),
        max_dialect: max,
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

fn status_of(err: &smb::Error) -> Option<u32> {
    match err {
        smb::Error::UnexpectedMessageStatus(s) => Some(*s),
        smb::Error::ReceivedErrorMessage(s, _) => Some(*s),
        _ => None,
    }
}

/// Connects and tree-connects with a fresh client; the negotiated dialect on success.
async fn logon(port: u16, share: &str, user: &str, password: &str) -> Result<Dialect, smb::Error> {
    // Capped at 3.0.2: this test is about the binary's wiring, and the `smb` crate's 3.1.1
    // exchange is the engine's business (tests/interop rust_smb::tree_connect_smb3_1_1).
    let c = client(port, Some(Dialect::Smb0302));
    let unc = UncPath::new("127.0.0.1")
        .unwrap()
        .with_share(share)
        .unwrap();
    c.share_connect(&unc, user, password.to_string()).await?;
    let conn = c.get_connection("127.0.0.1").await?;
    let dialect = conn.conn_info().unwrap().negotiation.dialect_rev;
    let _ = conn.close().await;
    Ok(dialect)
}

fn add_user(users: &Path, name: &str, password: &str, verb: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lanshare"))
        .args(["user", verb, name, "--password-stdin", "--users-file"])
        .arg(users)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printed_password_logs_on_to_the_printed_share() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("Holiday Photos");
    std::fs::create_dir(&folder).unwrap();
    let server = start(&["serve", folder.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    let port = server.listening().port();
    let hint = server.line(|l| l.contains("smbclient "));
    let password = hint.rsplit('%').next().unwrap().to_string();
    assert!(hint.contains("\"//127.0.0.1/Holiday Photos\""), "{hint}");

    let dialect = logon(port, "Holiday Photos", "lanshare", &password)
        .await
        .unwrap();
    assert_eq!(dialect, Dialect::Smb0302);
    let err = logon(port, "Holiday Photos", "lanshare", "not-it")
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(STATUS_LOGON_FAILURE), "{err:?}");
    let err = logon(port, "nope", "lanshare", &password)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(STATUS_BAD_NETWORK_NAME), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_mode_follows_the_users_file_and_protocol_cap() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let users = dir.path().join("users");
    add_user(&users, "alice", "alice-pw", "add");
    let cfg = dir.path().join("lanshare.toml");
    std::fs::write(
        &cfg,
        "[server]\nlisten = \"127.0.0.1:0\"\nusers_file = \"users\"\n\
         [security]\nmax_protocol = \"SMB3_00\"\n\
         [[share]]\nname = \"Data\"\npath = \"data\"\n",
    )
    .unwrap();
    let server = start(&["serve", "--config", cfg.to_str().unwrap()]);
    let port = server.listening().port();

    assert_eq!(
        logon(port, "data", "alice", "alice-pw").await.unwrap(),
        Dialect::Smb030
    );
    let err = logon(port, "data", "bob", "bob-pw").await.unwrap_err();
    assert_eq!(status_of(&err), Some(STATUS_LOGON_FAILURE), "{err:?}");

    // The running server sees user changes without a restart.
    add_user(&users, "bob", "bob-pw", "add");
    add_user(&users, "alice", "alice-new", "passwd");
    logon(port, "data", "bob", "bob-pw").await.unwrap();
    logon(port, "data", "alice", "alice-new").await.unwrap();
    let err = logon(port, "data", "alice", "alice-pw").await.unwrap_err();
    assert_eq!(status_of(&err), Some(STATUS_LOGON_FAILURE), "{err:?}");
}

fn hup(server: &Server) {
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Retries `logon` until it succeeds or 15 s pass (a reload is asynchronous).
async fn eventually_logs_on(port: u16, share: &str, user: &str, password: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match logon(port, share, user, password).await {
            Ok(_) => return,
            Err(e) if Instant::now() > deadline => panic!("{share} never became reachable: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_shares_and_survives_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    for d in ["data", "extra"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
    }
    let users = dir.path().join("users");
    add_user(&users, "alice", "pw", "add");
    let cfg = dir.path().join("lanshare.toml");
    let base = "[server]\nlisten = \"127.0.0.1:0\"\nusers_file = \"users\"\n[[share]]\nname = \"data\"\npath = \"data\"\n";
    std::fs::write(&cfg, base).unwrap();
    let server = start(&["serve", "--config", cfg.to_str().unwrap()]);
    let port = server.listening().port();
    logon(port, "data", "alice", "pw").await.unwrap();
    let err = logon(port, "extra", "alice", "pw").await.unwrap_err();
    assert_eq!(status_of(&err), Some(STATUS_BAD_NETWORK_NAME), "{err:?}");

    // A broken file is refused and the server keeps what it had.
    std::fs::write(&cfg, format!("{base}[security]\nsgning = \"enabled\"\n")).unwrap();
    hup(&server);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(server.child_alive());
    logon(port, "data", "alice", "pw").await.unwrap();

    std::fs::write(
        &cfg,
        format!("{base}[[share]]\nname = \"extra\"\npath = \"extra\"\n"),
    )
    .unwrap();
    hup(&server);
    eventually_logs_on(port, "extra", "alice", "pw").await;
    logon(port, "data", "alice", "pw").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_sessions_from_the_config_refuses_the_next_logon() {
    const STATUS_REQUEST_NOT_ACCEPTED: u32 = 0xC000_00D0;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let users = dir.path().join("users");
    add_user(&users, "alice", "pw", "add");
    let cfg = dir.path().join("lanshare.toml");
    std::fs::write(
        &cfg,
        "[server]\nlisten = \"127.0.0.1:0\"\nusers_file = \"users\"\n[limits]\nmax_sessions = 1\n\
         [[share]]\nname = \"data\"\npath = \"data\"\n",
    )
    .unwrap();
    let server = start(&["serve", "--config", cfg.to_str().unwrap()]);
    let port = server.listening().port();

    // Hold one session open while a second client tries.
    let first = client(port, Some(Dialect::Smb0302));
    let unc = UncPath::new("127.0.0.1")
        .unwrap()
        .with_share("data")
        .unwrap();
    first
        .share_connect(&unc, "alice", "pw".to_string())
        .await
        .unwrap();
    let err = logon(port, "data", "alice", "pw").await.unwrap_err();
    assert_eq!(
        status_of(&err),
        Some(STATUS_REQUEST_NOT_ACCEPTED),
        "{err:?}"
    );
    drop(first);
}
