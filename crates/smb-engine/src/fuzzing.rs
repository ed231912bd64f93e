//! An entry point for the `connection` fuzz target: a whole connection, without a socket, fed
//! arbitrary frames after a scripted NEGOTIATE. Built only with the `fuzzing` feature.

use std::sync::{Arc, OnceLock};

use crate::conn::testing;
use crate::{EngineConfig, Server, ShareConfig};

struct Fixture {
    server: Server,
    rt: tokio::runtime::Runtime,
    _dir: std::path::PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lanshare-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let cfg = EngineConfig::new("FUZZ").with_share(ShareConfig::new("share", &dir));
        let users = Arc::new(lanshare_auth::MemoryUserDb::new().with_user("alice", "pw"));
        let server = Server::new(cfg, users).expect("fuzz fixture server");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("fuzz runtime");
        Fixture {
            server,
            rt,
            _dir: dir,
        }
    })
}

/// A NEGOTIATE offering every dialect up to 3.0.2 (no contexts), as a client sends first.
fn negotiate() -> Vec<u8> {
    use smb_wire::header::{Header, HeaderId};
    use smb_wire::msg::negotiate::NegotiateRequest;
    use smb_wire::{
        Capabilities, Command, Dialect, HeaderFlags, NtStatus, SecurityMode, SessionId, TreeId,
    };
    let mut pdu = Vec::new();
    Header {
        credit_charge: 0,
        status: NtStatus::SUCCESS,
        command: Command::NEGOTIATE,
        credit: 31,
        flags: HeaderFlags(0),
        next_command: 0,
        message_id: 0,
        id: HeaderId::Sync {
            process_id: 1,
            tree_id: TreeId(0),
        },
        session_id: SessionId(0),
        signature: [0; 16],
    }
    .encode(&mut pdu);
    let req = NegotiateRequest {
        security_mode: SecurityMode::SIGNING_ENABLED,
        capabilities: Capabilities(0),
        client_guid: [7; 16],
        dialects: vec![
            Dialect::SMB2_0_2,
            Dialect::SMB2_1,
            Dialect::SMB3_0,
            Dialect::SMB3_0_2,
        ],
        contexts: Vec::new(),
    };
    let _ = req.encode(&mut pdu);
    pdu
}

/// Feed `data` to a fresh connection: a NEGOTIATE first, then `data` cut into frames by 16-bit
/// little-endian length prefixes. Every outcome (a response, a dropped connection) is fine; a
/// panic or a hang is the bug the fuzzer looks for.
pub fn feed(data: &[u8]) {
    let f = fixture();
    let (conn, mut rx) = testing::connection(f.server.state.clone());
    f.rt.block_on(async {
        if conn.process_frame(negotiate()).await.is_err() {
            return;
        }
        let mut rest = data;
        while rest.len() >= 2 {
            let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
            let frame = rest[2..2 + n].to_vec();
            rest = &rest[2 + n..];
            while rx.try_recv().is_ok() {}
            if conn.process_frame(frame).await.is_err() {
                break;
            }
        }
    });
}
