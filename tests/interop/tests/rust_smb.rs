//! The Rust `smb` crate (0.12, async, NTLM, always signs authenticated sessions) against the
//! server under test: on every dialect, connect + authenticate + tree connect to the share and
//! to IPC$, then tree disconnect and log off; wrong password; unknown share.
//! It needs no file operations: `Client::share_connect` stops at TREE_CONNECT.

use std::time::Duration;

use lanshare_interop::{ServerOptions, TestServer};
use smb::{Client, ClientConfig, ConnectionConfig, Dialect, UncPath};

const STATUS_LOGON_FAILURE: u32 = 0xC000_006D;
const STATUS_BAD_NETWORK_NAME: u32 = 0xC000_00CC;

fn start() -> TestServer {
    TestServer::start(ServerOptions::default()).expect("start the server under test")
}

fn client(server: &TestServer, dialect: Option<Dialect>) -> Client {
    let mut connection = ConnectionConfig {
        port: Some(server.port()),
        timeout: Some(Duration::from_secs(20)),
        min_dialect: dialect,
        max_dialect: dialect,
        // Encryption is another issue; keep this about signing.
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

fn unc(server: &TestServer, share: &str) -> UncPath {
    UncPath::new(&server.host())
        .and_then(|u| u.with_share(share))
        .expect("build UNC path")
}

/// The NTSTATUS a failed client call carried, if it carried one.
fn status_of(err: &smb::Error) -> Option<u32> {
    match err {
        smb::Error::UnexpectedMessageStatus(s) => Some(*s),
        smb::Error::ReceivedErrorMessage(s, _) => Some(*s),
        _ => None,
    }
}

async fn connects(dialect: Dialect) {
    let server = start();
    let c = client(&server, Some(dialect));
    let share = unc(&server, server.share());
    c.share_connect(&share, server.user(), server.password().to_string())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "share_connect {share} on {dialect:?} against {}: {e:?}\n--- server ---\n{}",
                server.target().name(),
                server.diagnostics()
            )
        });
    let conn = c
        .get_connection(&server.host())
        .await
        .expect("the connection is kept");
    let info = conn.conn_info().expect("negotiated connection info");
    assert_eq!(info.negotiation.dialect_rev, dialect, "negotiated dialect");

    // The same session reaches IPC$ too.
    let ipc = unc(&server, "IPC$");
    c.share_connect(&ipc, server.user(), server.password().to_string())
        .await
        .unwrap_or_else(|e| panic!("share_connect {ipc} on {dialect:?}: {e:?}"));
    for path in [&share, &ipc] {
        let tree = c.get_tree(path).await.expect("tree");
        tree.disconnect()
            .await
            .unwrap_or_else(|e| panic!("tree disconnect {path} on {dialect:?}: {e:?}"));
    }
    let session = c.get_session(&share).await.expect("session");
    session
        .logoff()
        .await
        .unwrap_or_else(|e| panic!("logoff on {dialect:?}: {e:?}"));
    // Not `Client::close`: it would disconnect the trees and log off a second time.
    conn.close().await.expect("close the connection");
}

macro_rules! dialect_tests {
    ($($name:ident => $dialect:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            connects($dialect).await;
        }
    )*};
}

dialect_tests! {
    tree_connect_smb2_0_2 => Dialect::Smb0202;
    tree_connect_smb2_1 => Dialect::Smb021;
    tree_connect_smb3_0 => Dialect::Smb030;
    tree_connect_smb3_0_2 => Dialect::Smb0302;
    tree_connect_smb3_1_1 => Dialect::Smb0311;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_logon_failure() {
    let server = start();
    for dialect in [Dialect::Smb0202, Dialect::Smb0311] {
        let c = client(&server, Some(dialect));
        let share = unc(&server, server.share());
        let bad = format!("{}x", server.password());
        let err = c
            .share_connect(&share, server.user(), bad)
            .await
            .expect_err("a wrong password must not authenticate");
        assert_eq!(
            status_of(&err),
            Some(STATUS_LOGON_FAILURE),
            "{dialect:?}: expected STATUS_LOGON_FAILURE, got {err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_share_is_bad_network_name() {
    let server = start();
    for dialect in [Dialect::Smb0202, Dialect::Smb0311] {
        let c = client(&server, Some(dialect));
        let share = unc(&server, "nosuchshare");
        let err = c
            .share_connect(&share, server.user(), server.password().to_string())
            .await
            .expect_err("an unknown share must not connect");
        assert_eq!(
            status_of(&err),
            Some(STATUS_BAD_NETWORK_NAME),
            "{dialect:?}: expected STATUS_BAD_NETWORK_NAME, got {err:?}"
        );
    }
}
