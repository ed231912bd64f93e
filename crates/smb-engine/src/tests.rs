//! Connection-level tests without sockets: frames in, frames out.

use std::sync::Arc;

use smb_wire::header::{Header, HeaderId};
use smb_wire::msg::negotiate::{NegotiateContext, NegotiateRequest, NegotiateResponse};
use smb_wire::{
    Capabilities, Command, Dialect, HashAlgorithm, HeaderFlags, NtStatus, SecurityMode, SessionId,
    SigningAlgorithm, TreeId,
};

use crate::conn::testing;
use crate::{EngineConfig, Server, ShareConfig};

fn server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig::new("TEST").with_share(ShareConfig::new("share", dir.path()));
    let users = Arc::new(lanshare_auth::MemoryUserDb::new().with_user("alice", "pw"));
    (Server::new(cfg, users).unwrap(), dir)
}

fn header(cmd: Command, mid: u64) -> Vec<u8> {
    let mut out = Vec::new();
    Header {
        credit_charge: 1,
        status: NtStatus::SUCCESS,
        command: cmd,
        credit: 31,
        flags: HeaderFlags(0),
        next_command: 0,
        message_id: mid,
        id: HeaderId::Sync {
            process_id: 1,
            tree_id: TreeId(0),
        },
        session_id: SessionId(0),
        signature: [0; 16],
    }
    .encode(&mut out);
    out
}

fn negotiate(dialects: &[Dialect], signing: &[SigningAlgorithm]) -> Vec<u8> {
    let mut pdu = header(Command::NEGOTIATE, 0);
    let salt = [9u8; 32];
    let mut contexts = vec![NegotiateContext::PreauthIntegrity {
        hash_algorithms: vec![HashAlgorithm::SHA_512],
        salt: &salt,
    }];
    if !signing.is_empty() {
        contexts.push(NegotiateContext::Signing {
            algorithms: signing.to_vec(),
        });
    }
    NegotiateRequest {
        security_mode: SecurityMode::SIGNING_ENABLED,
        capabilities: Capabilities(0),
        client_guid: [1; 16],
        dialects: dialects.to_vec(),
        contexts: if dialects.contains(&Dialect::SMB3_1_1) {
            contexts
        } else {
            vec![]
        },
    }
    .encode(&mut pdu)
    .unwrap();
    pdu
}

async fn exchange(
    conn: &Arc<crate::conn::Connection>,
    rx: &mut tokio::sync::mpsc::Receiver<Vec<Vec<u8>>>,
    frame: Vec<u8>,
) -> Result<Vec<u8>, String> {
    conn.process_frame(frame).await?;
    Ok(rx.recv().await.unwrap().concat())
}

#[tokio::test]
async fn negotiate_picks_311_with_gmac_and_no_cipher() {
    let (srv, _d) = server();
    let (conn, mut rx) = testing::connection(srv.state.clone());
    let resp = exchange(
        &conn,
        &mut rx,
        negotiate(
            &[Dialect::SMB2_0_2, Dialect::SMB3_1_1],
            &[SigningAlgorithm::AES_CMAC, SigningAlgorithm::AES_GMAC],
        ),
    )
    .await
    .unwrap();
    let hdr = Header::parse(&resp).unwrap();
    assert_eq!(hdr.status, NtStatus::SUCCESS);
    assert!(hdr.flags.contains(HeaderFlags::SERVER_TO_REDIR));
    let body = NegotiateResponse::parse(&resp).unwrap();
    assert_eq!(body.dialect_revision, Dialect::SMB3_1_1);
    assert!(
        body.security_mode.contains(SecurityMode::SIGNING_REQUIRED),
        "signing required by default"
    );
    assert!(body.contexts.iter().any(|c| matches!(c, NegotiateContext::Signing { algorithms } if algorithms == &[SigningAlgorithm::AES_GMAC])));
    assert!(!body.security_buffer.is_empty(), "SPNEGO hint present");
    assert_eq!(body.max_read_size, 8 * 1024 * 1024);
}

#[tokio::test]
async fn negotiate_without_common_dialect_and_with_none() {
    let (srv, _d) = server();
    let (conn, mut rx) = testing::connection(srv.state.clone());
    let resp = exchange(&conn, &mut rx, negotiate(&[Dialect(0x0999)], &[]))
        .await
        .unwrap();
    assert_eq!(
        Header::parse(&resp).unwrap().status,
        NtStatus::NOT_SUPPORTED
    );
    let (conn, mut rx) = testing::connection(srv.state.clone());
    let resp = exchange(&conn, &mut rx, negotiate(&[], &[])).await.unwrap();
    assert_eq!(
        Header::parse(&resp).unwrap().status,
        NtStatus::INVALID_PARAMETER
    );
}

#[tokio::test]
async fn protocol_violations_end_the_connection() {
    let (srv, _d) = server();
    // A request before NEGOTIATE.
    let (conn, _rx) = testing::connection(srv.state.clone());
    let mut echo = header(Command::ECHO, 0);
    echo.extend_from_slice(&[4, 0, 0, 0]);
    assert!(conn.process_frame(echo.clone()).await.is_err());
    // A second NEGOTIATE.
    let (conn, mut rx) = testing::connection(srv.state.clone());
    exchange(&conn, &mut rx, negotiate(&[Dialect::SMB2_1], &[]))
        .await
        .unwrap();
    let mut again = negotiate(&[Dialect::SMB2_1], &[]);
    again[24] = 1;
    assert!(conn.process_frame(again).await.is_err());
    // A message id outside the window, and a replayed one.
    let (conn, mut rx) = testing::connection(srv.state.clone());
    exchange(&conn, &mut rx, negotiate(&[Dialect::SMB2_1], &[]))
        .await
        .unwrap();
    let mut far = echo.clone();
    far[24] = 200;
    assert!(
        conn.process_frame(far).await.is_err(),
        "beyond the granted window"
    );
    let mut ok = echo.clone();
    ok[24] = 1;
    exchange(&conn, &mut rx, ok.clone()).await.unwrap();
    assert!(conn.process_frame(ok).await.is_err(), "replayed message id");
    // Garbage, a truncated header, a response flag, a bad NextCommand.
    for frame in [
        vec![0xFE, b'S', b'M', b'B', 1, 2],
        b"\xFFSMBgarbage".to_vec(),
        {
            let mut f = negotiate(&[Dialect::SMB2_1], &[]);
            f[16] |= 1;
            f
        },
        {
            let mut f = negotiate(&[Dialect::SMB2_1], &[]);
            f[20] = 3;
            f
        },
    ] {
        let (conn, _rx) = testing::connection(srv.state.clone());
        assert!(conn.process_frame(frame).await.is_err());
    }
}

#[tokio::test]
async fn echo_after_negotiate_needs_no_session_but_other_commands_do() {
    let (srv, _d) = server();
    let (conn, mut rx) = testing::connection(srv.state.clone());
    exchange(&conn, &mut rx, negotiate(&[Dialect::SMB3_0], &[]))
        .await
        .unwrap();
    let mut echo = header(Command::ECHO, 1);
    echo.extend_from_slice(&[4, 0, 0, 0]);
    let resp = exchange(&conn, &mut rx, echo).await.unwrap();
    assert_eq!(Header::parse(&resp).unwrap().status, NtStatus::SUCCESS);
    let mut tdis = header(Command::TREE_DISCONNECT, 2);
    tdis.extend_from_slice(&[4, 0, 0, 0]);
    let resp = exchange(&conn, &mut rx, tdis).await.unwrap();
    assert_eq!(
        Header::parse(&resp).unwrap().status,
        NtStatus::USER_SESSION_DELETED
    );
}

#[tokio::test]
async fn smb1_negotiate_gets_the_wildcard() {
    let (srv, _d) = server();
    let (conn, mut rx) = testing::connection(srv.state.clone());
    // SMB_COM_NEGOTIATE with "NT LM 0.12", "SMB 2.002", "SMB 2.???".
    let mut f = vec![0xFF, b'S', b'M', b'B', 0x72, 0, 0, 0, 0, 0x18, 0x53, 0xC8];
    f.extend_from_slice(&[0u8; 20]);
    f.push(0);
    let mut dialects = Vec::new();
    for d in ["NT LM 0.12", "SMB 2.002", "SMB 2.???"] {
        dialects.push(2);
        dialects.extend_from_slice(d.as_bytes());
        dialects.push(0);
    }
    f.extend_from_slice(&(dialects.len() as u16).to_le_bytes());
    f.extend_from_slice(&dialects);
    let resp = exchange(&conn, &mut rx, f).await.unwrap();
    let body = NegotiateResponse::parse(&resp).unwrap();
    assert_eq!(body.dialect_revision, Dialect::WILDCARD);
    // The SMB2 NEGOTIATE that follows uses message id 1.
    let mut n = negotiate(&[Dialect::SMB3_1_1], &[]);
    n[24] = 1;
    let resp = exchange(&conn, &mut rx, n).await.unwrap();
    assert_eq!(
        NegotiateResponse::parse(&resp).unwrap().dialect_revision,
        Dialect::SMB3_1_1
    );
}

/// `lanshare serve` prints "listening" and then spawns the accept loop; a status query in
/// between must already list the listener (CI once saw an empty list there).
#[tokio::test]
async fn a_listener_is_listed_before_its_accept_loop_runs() {
    let (server, _dir) = server();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let accepting = server.serve(listener);
    assert_eq!(server.listeners(), vec![local]);
    assert_eq!(server.status().listeners, vec![local.to_string()]);
    let task = tokio::spawn(accepting);
    server.shutdown();
    task.await.unwrap().unwrap();
    assert!(server.listeners().is_empty());
}
