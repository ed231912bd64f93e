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

/// [MS-SMB2] 3.3.5.4 leaves the cipher to the server: a client that lists CCM first still
/// gets GCM when it offers it, and gets the only cipher it offers.
#[tokio::test]
async fn negotiate_picks_gcm_from_the_clients_ciphers_whatever_their_order() {
    use smb_wire::Cipher;
    let cases: [(&[Cipher], Option<Cipher>); 4] = [
        (
            &[
                Cipher::AES_128_CCM,
                Cipher::AES_256_CCM,
                Cipher::AES_128_GCM,
            ],
            Some(Cipher::AES_128_GCM),
        ),
        (
            &[Cipher::AES_256_CCM, Cipher::AES_256_GCM],
            Some(Cipher::AES_256_GCM),
        ),
        (&[Cipher::AES_256_CCM], Some(Cipher::AES_256_CCM)),
        (&[Cipher(0x7777)], None),
    ];
    for (offered, expected) in cases {
        let (srv, _d) = server();
        let (conn, mut rx) = testing::connection(srv.state.clone());
        let mut pdu = header(Command::NEGOTIATE, 0);
        let salt = [9u8; 32];
        NegotiateRequest {
            security_mode: SecurityMode::SIGNING_ENABLED,
            capabilities: Capabilities(0),
            client_guid: [1; 16],
            dialects: vec![Dialect::SMB3_1_1],
            contexts: vec![
                NegotiateContext::PreauthIntegrity {
                    hash_algorithms: vec![HashAlgorithm::SHA_512],
                    salt: &salt,
                },
                NegotiateContext::Encryption {
                    ciphers: offered.to_vec(),
                },
            ],
        }
        .encode(&mut pdu)
        .unwrap();
        let resp = exchange(&conn, &mut rx, pdu).await.unwrap();
        assert_eq!(Header::parse(&resp).unwrap().status, NtStatus::SUCCESS);
        let body = NegotiateResponse::parse(&resp).unwrap();
        let picked = body.contexts.iter().find_map(|c| match c {
            NegotiateContext::Encryption { ciphers } => Some(ciphers.clone()),
            _ => None,
        });
        assert_eq!(picked, expected.map(|c| vec![c]), "offered {offered:?}");
    }
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

/// A request PDU naming `file_id` at the place its command keeps it.
fn on_open(cmd: Command, mid: u64, file_id: (u64, u64)) -> Vec<u8> {
    let mut pdu = header(cmd, mid);
    let (size, at) = match cmd {
        Command::READ => (49, 16),
        Command::WRITE => (49, 16),
        Command::QUERY_INFO => (41, 24),
        Command::CLOSE | Command::CHANGE_NOTIFY | Command::QUERY_DIRECTORY => (33, 8),
        _ => unreachable!("not used here"),
    };
    let mut body = vec![0u8; 48];
    body[..2].copy_from_slice(&(size as u16).to_le_bytes());
    body[at..at + 8].copy_from_slice(&file_id.0.to_le_bytes());
    body[at + 8..at + 16].copy_from_slice(&file_id.1.to_le_bytes());
    pdu.extend_from_slice(&body);
    pdu
}

/// Chains PDUs into one compound frame (each but the last padded to 8 and pointing on),
/// each flagged related or not.
fn compound(pdus: &[(Vec<u8>, bool)]) -> Vec<u8> {
    let mut frame = Vec::new();
    let n = pdus.len();
    for (i, (p, related)) in pdus.iter().enumerate() {
        let mut p = p.clone();
        if i + 1 < n {
            p.resize(p.len().next_multiple_of(8), 0);
            let len = p.len() as u32;
            p[20..24].copy_from_slice(&len.to_le_bytes());
        }
        if *related {
            p[16] |= HeaderFlags::RELATED_OPERATIONS.0 as u8;
        }
        frame.extend_from_slice(&p);
    }
    frame
}

/// The PDUs of a response frame.
fn split(frame: &[u8]) -> Vec<Vec<u8>> {
    smb_wire::split_compound(frame)
        .map(|p| p.unwrap().to_vec())
        .collect()
}

/// Per-open order ([MS-SMB2] 3.3.5.2): READs and WRITEs on one open run together, every
/// other request on it waits for all before it, and requests on other opens wait for none.
#[tokio::test]
async fn requests_on_one_open_keep_their_order() {
    let (srv, _d) = server();
    let (conn, _rx) = testing::connection(srv.state.clone());
    let f = (1, 7);
    let r1 = conn.order_frame(&on_open(Command::READ, 1, f)).unwrap();
    let w2 = conn.order_frame(&on_open(Command::WRITE, 2, f)).unwrap();
    let find = conn
        .order_frame(&on_open(Command::QUERY_DIRECTORY, 3, f))
        .unwrap();
    let other = conn
        .order_frame(&on_open(Command::CLOSE, 4, (1, 8)))
        .unwrap();
    let r5 = conn.order_frame(&on_open(Command::READ, 5, f)).unwrap();
    let close = conn.order_frame(&on_open(Command::CLOSE, 6, f)).unwrap();
    assert!(
        !r1.blocked() && !w2.blocked(),
        "pipelined I/O runs together"
    );
    assert!(find.blocked(), "waits for the I/O before it");
    assert!(!other.blocked(), "another open waits for nothing");
    assert!(r5.blocked() && close.blocked());
    drop(r1);
    assert!(find.blocked(), "still the WRITE");
    drop(w2);
    assert!(!find.blocked());
    assert!(r5.blocked() && close.blocked(), "after the QUERY_DIRECTORY");
    // Going async releases a request's place (a pending CHANGE_NOTIFY holds up nothing).
    find.release();
    assert!(!r5.blocked());
    assert!(close.blocked(), "the CLOSE waits for the READ before it");
    drop(r5);
    assert!(!close.blocked());
    assert_eq!(
        close.order_entries(),
        2,
        "two opens with requests in progress"
    );
    drop((other, find));
    assert_eq!(close.order_entries(), 1);
    let t = conn
        .order_frame(&on_open(Command::READ, 8, (1, 8)))
        .unwrap();
    drop(close);
    assert_eq!(t.order_entries(), 1, "an idle open leaves the table");
    drop(t);
    assert!(
        conn.order_frame(&header(Command::CREATE, 9)).is_none(),
        "CREATE names no open"
    );
    assert!(
        conn.order_frame(&on_open(Command::CLOSE, 10, (u64::MAX, u64::MAX)))
            .is_none(),
        "nor does a related request's placeholder FileId"
    );
    // Two CHANGE_NOTIFYs on one handle: the second waits for the first.
    let n1 = conn
        .order_frame(&on_open(Command::CHANGE_NOTIFY, 11, f))
        .unwrap();
    let n2 = conn
        .order_frame(&on_open(Command::CHANGE_NOTIFY, 12, f))
        .unwrap();
    assert!(!n1.blocked() && n2.blocked());
    drop(n1);
    assert!(!n2.blocked());
}

/// A compound takes one place for all the opens it names, exclusive where any of its
/// requests is.
#[tokio::test]
async fn a_compound_is_ordered_as_a_whole() {
    let (srv, _d) = server();
    let (conn, _rx) = testing::connection(srv.state.clone());
    let (a, b) = ((1, 1), (1, 2));
    let read_a = conn.order_frame(&on_open(Command::READ, 1, a)).unwrap();
    let read_b = conn.order_frame(&on_open(Command::READ, 2, b)).unwrap();
    let both = conn
        .order_frame(&compound(&[
            (on_open(Command::READ, 3, a), false),
            (on_open(Command::QUERY_INFO, 4, b), false),
        ]))
        .unwrap();
    assert!(both.blocked(), "waits for the READ on b");
    drop(read_b);
    assert!(!both.blocked(), "a READ joins the READ on a");
    drop((read_a, both));
}

/// [MS-SMB2] 3.3.5.2.7.2: a related request takes the previous request's session; the first
/// request of a chain has none, so it and the related ones after it are
/// STATUS_INVALID_PARAMETER, while an unrelated request in the same compound stands alone.
#[tokio::test]
async fn a_related_chain_without_a_session_is_invalid() {
    let (srv, _d) = server();
    let (conn, mut rx) = testing::connection(srv.state.clone());
    exchange(&conn, &mut rx, negotiate(&[Dialect::SMB2_1], &[]))
        .await
        .unwrap();
    let any = (u64::MAX, u64::MAX);
    // Each names a session that does not exist, as a client that fills in its own would.
    let close = |mid| {
        let mut p = on_open(Command::CLOSE, mid, any);
        p[40..48].copy_from_slice(&0x55u64.to_le_bytes());
        p
    };
    let frame = compound(&[(close(1), true), (close(2), true), (close(3), false)]);
    let resp = exchange(&conn, &mut rx, frame).await.unwrap();
    let headers: Vec<Header> = split(&resp)
        .iter()
        .map(|p| Header::parse(p).unwrap())
        .collect();
    let statuses: Vec<NtStatus> = headers.iter().map(|h| h.status).collect();
    assert_eq!(
        statuses,
        [
            NtStatus::INVALID_PARAMETER,
            NtStatus::INVALID_PARAMETER,
            NtStatus::USER_SESSION_DELETED
        ]
    );
    // The responses name the session the requests named: a client looks up the key that
    // checks a response by that id (smbXcli fails the response when it finds none).
    for h in &headers {
        assert_eq!(h.session_id, SessionId(0x55));
    }
}

/// [MS-SMB2] 3.3.4.1.3: every response of a compound starts on an 8-byte boundary and is
/// padded to one, the last too (as Windows and Samba); a lone response is not padded.
#[tokio::test]
async fn compound_responses_are_padded_to_8_bytes() {
    let (srv, _d) = server();
    let (conn, mut rx) = testing::connection(srv.state.clone());
    exchange(&conn, &mut rx, negotiate(&[Dialect::SMB2_1], &[]))
        .await
        .unwrap();
    let echo = |mid| {
        let mut e = header(Command::ECHO, mid);
        e.extend_from_slice(&[4, 0, 0, 0]);
        e
    };
    let resp = exchange(
        &conn,
        &mut rx,
        compound(&[(echo(1), false), (echo(2), false)]),
    )
    .await
    .unwrap();
    let parts = split(&resp);
    assert_eq!(parts.len(), 2);
    assert_eq!(resp.len(), 2 * 72, "64 + 4, padded to 72, twice");
    assert_eq!(Header::parse(&parts[0]).unwrap().next_command, 72);
    assert_eq!(Header::parse(&parts[1]).unwrap().next_command, 0);
    let resp = exchange(&conn, &mut rx, echo(3)).await.unwrap();
    assert_eq!(resp.len(), 68, "a lone response is not padded");
}
