//! [MS-SMB2] 3.3.5.3 Receiving an SMB_COM_NEGOTIATE (the SMB1 multi-protocol negotiate) and
//! 3.3.5.4 Receiving an SMB2 NEGOTIATE Request.
//!
//! MUSTs enforced here:
//! - a second NEGOTIATE on a negotiated connection disconnects (checked in the pipeline);
//! - DialectCount 0 → STATUS_INVALID_PARAMETER; no common dialect → STATUS_NOT_SUPPORTED;
//! - 3.1.1: exactly one PREAUTH_INTEGRITY context, listing SHA-512, else
//!   STATUS_INVALID_PARAMETER; at most one ENCRYPTION and one SIGNING context;
//! - the response and request are folded into Connection.PreauthIntegrityHashValue;
//! - encryption: 3.0/3.0.2 set SMB2_GLOBAL_CAP_ENCRYPTION (AES-128-CCM) when the client has it;
//!   3.1.1 answers ENCRYPTION_CAPABILITIES with one cipher the client offered, in our order of
//!   preference ([`crate::cipher::SUPPORTED`]: GCM before CCM), and leaves the context
//!   unanswered when none is common;
//! - we advertise only what we implement: no compression, no multichannel, no leasing.

use std::sync::Arc;

use smb_wire::header::{Header, HeaderId};
use smb_wire::msg::negotiate::{NegotiateContext, NegotiateRequest, NegotiateResponse};
use smb_wire::{
    Capabilities, Command, Dialect, HashAlgorithm, HeaderFlags, NtStatus, SecurityMode, SessionId,
    SigningAlgorithm, TreeId,
};

use crate::config::{EncryptionPolicy, SigningPolicy};
use crate::conn::{Connection, Ctx, PreauthHook};
use crate::crypto::{PreauthHash, SigningAlgo};
use crate::error::{ProtoError, ProtoResult};
use crate::server::filetime_now;
use crate::session::lock;

/// Dialects we implement, best first.
const DIALECTS: [Dialect; 5] = [
    Dialect::SMB3_1_1,
    Dialect::SMB3_0_2,
    Dialect::SMB3_0,
    Dialect::SMB2_1,
    Dialect::SMB2_0_2,
];

fn server_security_mode(conn: &Connection) -> u16 {
    match conn.server.config.signing {
        SigningPolicy::Required => {
            SecurityMode::SIGNING_ENABLED.0 | SecurityMode::SIGNING_REQUIRED.0
        }
        SigningPolicy::Enabled => SecurityMode::SIGNING_ENABLED.0,
    }
}

fn capabilities_for(dialect: Dialect) -> u32 {
    // LARGE_MTU from 2.1 on: multi-credit requests let a client read/write 8 MiB at once.
    // LEASING from 2.1 on: file leases (crate::oplock).
    if dialect.0 >= Dialect::SMB2_1.0 {
        Capabilities::LARGE_MTU.0 | Capabilities::LEASING.0
    } else {
        0
    }
}

/// MaxReadSize, MaxWriteSize and MaxTransactSize as advertised; READ and WRITE enforce the
/// same value ([MS-SMB2] 3.3.5.12, 3.3.5.13).
pub(crate) fn io_size(conn: &Connection, dialect: Dialect) -> u32 {
    // 2.0.2 has no multi-credit requests: 64 KiB is its ceiling.
    if dialect == Dialect::SMB2_0_2 {
        65536
    } else {
        conn.server.config.max_io_size.max(65536)
    }
}

fn in_range(conn: &Connection, d: Dialect) -> bool {
    d.0 >= conn.server.config.min_dialect.0 && d.0 <= conn.server.config.max_dialect.0
}

fn base_response<'a>(conn: &Connection, dialect: Dialect, hint: &'a [u8]) -> NegotiateResponse<'a> {
    NegotiateResponse {
        security_mode: SecurityMode(server_security_mode(conn)),
        dialect_revision: dialect,
        server_guid: conn.server.config.server_guid,
        capabilities: Capabilities(capabilities_for(dialect)),
        max_transact_size: io_size(conn, dialect),
        max_read_size: io_size(conn, dialect),
        max_write_size: io_size(conn, dialect),
        system_time: filetime_now(),
        // [MS-SMB2] 2.2.4: ServerStartTime SHOULD be 0.
        server_start_time: 0,
        security_buffer: hint,
        contexts: Vec::new(),
    }
}

/// The SMB1 negotiate Windows sends first ([MS-SMB2] 3.3.5.3.1). Returns the whole response PDU.
///
/// With "SMB 2.???" offered we answer the wildcard 0x02FF and wait for an SMB2 NEGOTIATE; with
/// only "SMB 2.002" we settle on 2.0.2 at once; with neither we do not speak SMB1 and hang up.
pub(crate) fn smb1_negotiate(conn: &Arc<Connection>, frame: &[u8]) -> Result<Vec<u8>, String> {
    if lock(&conn.neg).dialect.is_some() {
        return Err("SMB1 negotiate on a negotiated connection".into());
    }
    let dialects = smb_wire::smb1::parse_negotiate(frame)
        .map_err(|e| format!("malformed SMB1 negotiate: {e}"))?;
    let wildcard = dialects.iter().any(|d| *d == b"SMB 2.???".as_slice());
    let smb202 = dialects.iter().any(|d| *d == b"SMB 2.002".as_slice());
    let dialect = if wildcard && conn.server.config.max_dialect.0 > Dialect::SMB2_0_2.0 {
        Dialect::WILDCARD
    } else if (wildcard || smb202) && in_range(conn, Dialect::SMB2_0_2) {
        Dialect::SMB2_0_2
    } else {
        return Err("client offered only SMB1 dialects; lanshare speaks SMB2/3 only".into());
    };
    // The SMB1 request used message id 0; the SMB2 NEGOTIATE that follows uses 1.
    {
        let mut credits = lock(&conn.credits);
        credits.consume(0, 1).map_err(|e| e.to_string())?;
        credits.grant(1);
    }
    let mut pdu = vec![0u8; Header::SIZE];
    base_response(conn, dialect, lanshare_auth::negotiate_hint_bytes())
        .encode(&mut pdu)
        .map_err(|e| format!("encoding NEGOTIATE response: {e}"))?;
    Header {
        credit_charge: 0,
        status: NtStatus::SUCCESS,
        command: Command::NEGOTIATE,
        credit: 1,
        flags: HeaderFlags::SERVER_TO_REDIR,
        next_command: 0,
        message_id: 0,
        id: HeaderId::Sync {
            process_id: 0xFEFF,
            tree_id: TreeId(0),
        },
        session_id: SessionId(0),
        signature: [0; 16],
    }
    .write(&mut pdu[..Header::SIZE]);
    if dialect != Dialect::WILDCARD {
        let mut neg = lock(&conn.neg);
        neg.dialect = Some(dialect);
        neg.server_security_mode = server_security_mode(conn);
        neg.signing_algo = Some(SigningAlgo::HmacSha256);
        neg.client_dialects = vec![Dialect::SMB2_0_2];
    }
    Ok(pdu)
}

/// [MS-SMB2] 3.3.5.4.
pub(crate) async fn handle(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = NegotiateRequest::parse(ctx.pdu)?;
    let conn = ctx.conn;
    if req.dialects.is_empty() {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let Some(dialect) = DIALECTS
        .iter()
        .copied()
        .find(|d| in_range(conn, *d) && req.dialects.contains(d))
    else {
        tracing::info!(peer = %conn.peer, offered = ?req.dialects, "no common dialect");
        return Err(NtStatus::NOT_SUPPORTED.into());
    };

    let salt: [u8; 32] = rand::random();
    let mut resp = base_response(conn, dialect, lanshare_auth::negotiate_hint_bytes());
    let mut cipher = None;
    // 3.0/3.0.2 have one cipher, AES-128-CCM, agreed through the ENCRYPTION capability.
    if matches!(dialect, Dialect::SMB3_0 | Dialect::SMB3_0_2)
        && conn.server.config.encryption != EncryptionPolicy::Off
        && req.capabilities.contains(Capabilities::ENCRYPTION)
    {
        cipher = Some(smb_wire::Cipher::AES_128_CCM);
        resp.capabilities = Capabilities(resp.capabilities.0 | Capabilities::ENCRYPTION.0);
    }
    let mut signing_algo = if dialect.0 >= Dialect::SMB3_0.0 {
        SigningAlgo::AesCmac
    } else {
        SigningAlgo::HmacSha256
    };

    if dialect == Dialect::SMB3_1_1 {
        let (mut preauth, mut encryption, mut signing) = (0, 0, 0);
        let mut client_ciphers: Vec<smb_wire::Cipher> = Vec::new();
        let mut sha512 = false;
        let mut client_signing: Vec<SigningAlgorithm> = Vec::new();
        for c in &req.contexts {
            match c {
                NegotiateContext::PreauthIntegrity {
                    hash_algorithms, ..
                } => {
                    preauth += 1;
                    sha512 = hash_algorithms.contains(&HashAlgorithm::SHA_512);
                }
                NegotiateContext::Encryption { ciphers } => {
                    encryption += 1;
                    client_ciphers = ciphers.clone();
                }
                NegotiateContext::Signing { algorithms } => {
                    signing += 1;
                    client_signing = algorithms.clone();
                }
                // Compression, netname, transport, RDMA, POSIX (Linux), and unknown contexts:
                // tolerated and not answered, since we implement none of them.
                _ => {}
            }
        }
        if preauth != 1 || encryption > 1 || signing > 1 {
            return Err(NtStatus::INVALID_PARAMETER.into());
        }
        if !sha512 {
            // 3.3.5.4: no hash algorithm in common.
            return Err(NtStatus::SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP.into());
        }
        resp.contexts.push(NegotiateContext::PreauthIntegrity {
            hash_algorithms: vec![HashAlgorithm::SHA_512],
            salt: &salt,
        });
        if encryption == 1 && conn.server.config.encryption != EncryptionPolicy::Off {
            // 3.3.5.4 leaves the choice among the client's ciphers to the server, as with
            // signing: the first of ours (GCM first, a fraction of CCM's CPU per byte) that the
            // client offered, as Samba does. With none in common the context is not answered
            // (encryption stays off).
            if let Some(c) = crate::cipher::SUPPORTED
                .into_iter()
                .find(|c| client_ciphers.contains(c))
            {
                cipher = Some(c);
                resp.contexts
                    .push(NegotiateContext::Encryption { ciphers: vec![c] });
            }
        }
        if signing == 1 {
            // Our preference: GMAC (fastest), then CMAC; HMAC-SHA256 only if that's all.
            let pick = [
                SigningAlgorithm::AES_GMAC,
                SigningAlgorithm::AES_CMAC,
                SigningAlgorithm::HMAC_SHA256,
            ]
            .into_iter()
            .find(|a| client_signing.contains(a))
            .unwrap_or(SigningAlgorithm::AES_CMAC);
            signing_algo = match pick {
                SigningAlgorithm::AES_GMAC => SigningAlgo::AesGmac,
                SigningAlgorithm::HMAC_SHA256 => SigningAlgo::HmacSha256,
                _ => SigningAlgo::AesCmac,
            };
            resp.contexts.push(NegotiateContext::Signing {
                algorithms: vec![pick],
            });
        }
    }

    {
        let mut neg = lock(&conn.neg);
        neg.dialect = Some(dialect);
        neg.client_guid = req.client_guid;
        neg.client_capabilities = req.capabilities.0;
        neg.client_security_mode = req.security_mode.0;
        neg.client_dialects = req.dialects.clone();
        neg.server_security_mode = resp.security_mode.0;
        neg.server_capabilities = resp.capabilities.0;
        neg.signing_algo = Some(signing_algo);
        neg.cipher = cipher;
        if dialect == Dialect::SMB3_1_1 {
            let mut h = PreauthHash::ZERO;
            h.update(ctx.pdu);
            neg.preauth = h;
        }
    }
    if dialect == Dialect::SMB3_1_1 {
        ctx.preauth_hook = PreauthHook::Connection;
    }
    resp.encode(&mut ctx.out)?;
    tracing::debug!(peer = %conn.peer, ?dialect, ?signing_algo, "negotiated");
    Ok(NtStatus::SUCCESS)
}

/// FSCTL_VALIDATE_NEGOTIATE_INFO ([MS-SMB2] 3.3.5.15.12): the client proves nobody downgraded
/// the negotiate. Any mismatch terminates the connection.
pub(crate) fn validate_negotiate_info(ctx: &Ctx<'_>, input: &[u8]) -> ProtoResult<Vec<u8>> {
    use smb_wire::fsctl::{ValidateNegotiateInfoRequest, ValidateNegotiateInfoResponse};
    let conn = ctx.conn;
    let req = ValidateNegotiateInfoRequest::parse(input)
        .map_err(|_| ProtoError::Drop("malformed VALIDATE_NEGOTIATE_INFO".into()))?;
    let neg = lock(&conn.neg);
    let dialect = neg.dialect.unwrap_or(Dialect::SMB2_0_2);
    if dialect == Dialect::SMB3_1_1 {
        // 3.1.1 is protected by the pre-auth hash; Windows Server drops the connection here.
        return Err(ProtoError::Drop(
            "VALIDATE_NEGOTIATE_INFO on a 3.1.1 connection".into(),
        ));
    }
    let mismatch = req.capabilities.0 != neg.client_capabilities
        || req.guid != neg.client_guid
        || req.security_mode.0 != neg.client_security_mode
        || req.dialects != neg.client_dialects;
    if mismatch {
        return Err(ProtoError::Drop(
            "VALIDATE_NEGOTIATE_INFO does not match the NEGOTIATE (possible downgrade)".into(),
        ));
    }
    let resp = ValidateNegotiateInfoResponse {
        capabilities: Capabilities(neg.server_capabilities),
        guid: conn.server.config.server_guid,
        security_mode: SecurityMode(neg.server_security_mode),
        dialect,
    };
    let mut out = Vec::with_capacity(24);
    resp.encode(&mut out);
    Ok(out)
}
