//! [MS-SMB2] 3.3.5.5 Receiving an SMB2 SESSION_SETUP Request.
//!
//! MUSTs enforced here:
//! - SessionId 0 starts a new session (3.3.5.5.1); an unknown SessionId is
//!   STATUS_USER_SESSION_DELETED; a valid one is re-authenticated (3.3.5.5.2);
//! - 3.1.1: every SESSION_SETUP request, and every response but the final one, is folded
//!   into Session.PreauthIntegrityHashValue, from which the signing key is derived (3.3.5.5.3);
//! - the final response of an authenticated 3.1.1 session is signed;
//! - guest and anonymous sessions are never signed (SMB2_SESSION_FLAG_IS_GUEST / IS_NULL);
//! - Session.SigningRequired when the server requires signing or the client asked for it;
//! - binding a session to a second channel (multichannel) is refused: not implemented.

use std::sync::Arc;

use lanshare_auth::{Acceptor, AuthError, Identity, Step};
use smb_wire::msg::session_setup::{SessionSetupRequest, SessionSetupResponse};
use smb_wire::{Dialect, NtStatus, SecurityMode, SessionFlags, SessionSetupFlags};
use tracing::{info, warn};

use crate::config::{EncryptionPolicy, SigningPolicy};
use crate::conn::{Ctx, PreauthHook};
use crate::crypto;
use crate::error::ProtoResult;
use crate::session::{Session, SessionAuth, SessionState, lock};

/// Logons one connection may have in progress at once (real clients use one).
const MAX_LOGONS_IN_PROGRESS: usize = 8;

/// The one place an authentication failure becomes a wire status.
pub(crate) fn auth_error_status(e: &AuthError) -> NtStatus {
    match e {
        AuthError::AccountDisabled { .. } => NtStatus::ACCOUNT_DISABLED,
        AuthError::LockedOut { .. } => NtStatus::ACCOUNT_LOCKED_OUT,
        // A token that does not parse ([MS-SPNG]/[MS-NLMP] framing) is a protocol error, as
        // Windows reports it; Samba's bug 14932 test checks for it.
        AuthError::Malformed(_) | AuthError::Finished => NtStatus::INVALID_PARAMETER,
        // Everything else looks the same to the client, so a guesser learns nothing about
        // which part was wrong; the log says it precisely.
        _ => NtStatus::LOGON_FAILURE,
    }
}

pub(crate) async fn handle(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = SessionSetupRequest::parse(ctx.pdu)?;
    let conn = ctx.conn;
    let server = &conn.server;
    let dialect = ctx.dialect();
    let is_311 = dialect == Dialect::SMB3_1_1;

    if req.flags.contains(SessionSetupFlags::BINDING) {
        // Multichannel is not implemented; Windows Server without it answers the same.
        return Err(NtStatus::REQUEST_NOT_ACCEPTED.into());
    }

    let conn_preauth = lock(&conn.neg).preauth;
    let sid = ctx.hdr.session_id.0;
    let session = if sid == 0 {
        // A connection may have only a few logons in progress at once: each holds the client's
        // NTLM tokens, and an unauthenticated client opening them without end would grow
        // memory without bound (found by reading the fuzz fixture; docs/security.md).
        let in_progress = lock(&conn.sessions)
            .values()
            .filter(|s| {
                matches!(
                    *lock(&s.state),
                    SessionState::InProgress { previous: None, .. }
                )
            })
            .count();
        if in_progress >= MAX_LOGONS_IN_PROGRESS {
            warn!(peer = %conn.peer, in_progress, "logon refused: too many logons in progress on one connection");
            return Err(NtStatus::INSUFFICIENT_RESOURCES.into());
        }
        let id = server.new_session_id();
        let acceptor = Acceptor::new(server.users.clone(), server.auth_policy.clone())
            .with_throttle(server.throttle.clone(), conn.peer.ip());
        let s = Arc::new(Session::new(
            id,
            acceptor,
            conn_preauth,
            conn.peer,
            dialect,
            server.now_secs(),
        ));
        // limits.max_sessions: checked and taken in one step under the table's lock, so that
        // concurrent logons cannot overshoot. Sessions being set up count: a slot is held from
        // the first SESSION_SETUP.
        let limit = server.limits().max_sessions;
        if let Err(current) = server.sessions.insert_within(s.clone(), limit) {
            server.counters.refuse(crate::server::Refusal::MaxSessions);
            warn!(peer = %conn.peer, current, limit,
                  "session refused: limits.max_sessions reached (client sees STATUS_REQUEST_NOT_ACCEPTED)");
            return Err(NtStatus::REQUEST_NOT_ACCEPTED.into());
        }
        lock(&conn.sessions).insert(id, s.clone());
        ctx.resp_session_id = id;
        s
    } else {
        let Some(s) = lock(&conn.sessions).get(&sid).cloned() else {
            return Err(NtStatus::USER_SESSION_DELETED.into());
        };
        let mut st = lock(&s.state);
        if let SessionState::Valid(prev) = &*st {
            // Re-authentication (3.3.5.5.2): a fresh exchange on the same session, which stays
            // usable meanwhile.
            let acceptor = Acceptor::new(server.users.clone(), server.auth_policy.clone())
                .with_throttle(server.throttle.clone(), conn.peer.ip());
            let previous = Some(prev.clone());
            *st = SessionState::InProgress {
                acceptor: Box::new(acceptor),
                preauth: conn_preauth,
                previous,
            };
        }
        drop(st);
        s
    };

    let (step, preauth, previous) = {
        let mut st = lock(&session.state);
        match &mut *st {
            SessionState::InProgress {
                acceptor,
                preauth,
                previous,
            } => {
                if is_311 {
                    preauth.update(ctx.pdu);
                }
                (
                    acceptor.step(req.security_buffer),
                    *preauth,
                    previous.clone(),
                )
            }
            SessionState::Valid(_) => return Err(NtStatus::INTERNAL_ERROR.into()),
        }
    };
    // A re-authentication's responses are signed with the keys the session already has.
    if let Some(prev) = &previous
        && ctx.hdr.flags.contains(smb_wire::HeaderFlags::SIGNED)
    {
        ctx.force_sign = prev.signing;
    }

    match step {
        Ok(Step::Continue(token)) => {
            SessionSetupResponse {
                session_flags: SessionFlags(0),
                security_buffer: &token,
            }
            .encode(&mut ctx.out)?;
            if is_311 {
                ctx.preauth_hook = PreauthHook::Session(session);
            }
            Ok(NtStatus::MORE_PROCESSING_REQUIRED)
        }
        Ok(Step::Done {
            token,
            identity,
            session_key,
        }) => {
            let unsigned = matches!(identity, Identity::Guest | Identity::Anonymous);
            let algo = lock(&conn.neg)
                .signing_algo
                .unwrap_or(crypto::SigningAlgo::HmacSha256);
            let signing = match (unsigned, session_key) {
                (false, Some(k)) => Some((
                    algo,
                    crypto::signing_key(dialect.0, &k, is_311.then_some(&preauth.0)),
                )),
                _ => None,
            };
            let client_requires = (req.security_mode.0 | lock(&conn.neg).client_security_mode)
                & SecurityMode::SIGNING_REQUIRED.0
                != 0;
            let signing_required = signing.is_some()
                && (server.config.signing == SigningPolicy::Required || client_requires);
            let flags = match identity {
                Identity::Guest => SessionFlags::IS_GUEST.0,
                Identity::Anonymous => SessionFlags::IS_NULL.0,
                Identity::User { .. } => 0,
            };
            // SMB3 encryption keys ([MS-SMB2] 3.3.5.5.3), for sessions with a key and a cipher.
            let cipher = lock(&conn.neg).cipher;
            let session_crypto = match (unsigned, session_key, cipher) {
                (false, Some(k), Some(c)) => crate::cipher::SessionCrypto::derive(
                    dialect.0,
                    c,
                    &k,
                    is_311.then_some(&preauth.0),
                )
                .map(Arc::new),
                _ => None,
            };
            let policy = server.config.encryption;
            if policy == EncryptionPolicy::Required && session_crypto.is_none() {
                session.expire();
                lock(&conn.sessions).remove(&session.id);
                server.sessions.remove(session.id);
                warn!(peer = %conn.peer, ?dialect, "logon refused: security.encryption = required and this client cannot encrypt");
                return Err(NtStatus::ACCESS_DENIED.into());
            }
            let encrypt_data = session_crypto.is_some()
                && matches!(
                    policy,
                    EncryptionPolicy::Desired | EncryptionPolicy::Required
                );
            let auth = match &previous {
                // Re-authentication keeps the session's keys ([MS-SMB2] 3.3.5.5.3 derives
                // them only for a new session); the identity is refreshed.
                Some(prev) => Arc::new(SessionAuth {
                    identity,
                    signing: prev.signing,
                    signing_required: prev.signing_required,
                    crypto: prev.crypto.clone(),
                    encrypt_data: prev.encrypt_data,
                }),
                None => Arc::new(SessionAuth {
                    identity,
                    signing,
                    signing_required,
                    crypto: session_crypto,
                    encrypt_data,
                }),
            };
            info!(
                peer = %conn.peer, session = format_args!("{:#x}", session.id), user = auth.user_name(),
                                ?dialect, signing = ?auth.signing.map(|s| s.0), signing_required,
                encryption = ?auth.crypto.as_ref().map(|c| c.cipher), encrypt_data = auth.encrypt_data, "session established"
            );
            *lock(&session.state) = SessionState::Valid(auth.clone());
            server
                .counters
                .logons
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);

            if req.previous_session_id.0 != 0 && req.previous_session_id.0 != session.id {
                expire_previous(ctx, req.previous_session_id.0, &auth);
            }
            SessionSetupResponse {
                session_flags: SessionFlags(if auth.encrypt_data {
                    flags | SessionFlags::ENCRYPT_DATA.0
                } else {
                    flags
                }),
                security_buffer: &token,
            }
            .encode(&mut ctx.out)?;
            if let Some(sig) = auth.signing
                && (is_311
                    || auth.signing_required
                    || ctx.hdr.flags.contains(smb_wire::HeaderFlags::SIGNED))
            {
                ctx.force_sign = Some(sig);
            }
            Ok(NtStatus::SUCCESS)
        }
        Err(e) => {
            // A failed logon, or a failed re-authentication, ends the session.
            session.expire();
            lock(&conn.sessions).remove(&session.id);
            server.sessions.remove(session.id);
            session.close_opens(None);
            conn.finish_pending(NtStatus::NOTIFY_CLEANUP, |_, op| {
                op.session_id == session.id
            });
            let status = auth_error_status(&e);
            server
                .counters
                .logon_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            warn!(peer = %conn.peer, reason = %e, %status, "logon refused");
            if !server.config.logon_failure_delay.is_zero() {
                tokio::time::sleep(server.config.logon_failure_delay).await;
            }
            Err(status.into())
        }
    }
}

/// PreviousSessionId ([MS-SMB2] 3.3.5.5.3): a client reconnecting after a network failure
/// names its old session; if the same user owns it, the old session and its opens go away.
fn expire_previous(ctx: &Ctx<'_>, previous: u64, auth: &SessionAuth) {
    let server = &ctx.conn.server;
    let Some(old) = server.sessions.get(previous) else {
        return;
    };
    let same_user = old.auth().is_some_and(|a| a.identity == auth.identity);
    if !same_user {
        return;
    }
    server.sessions.remove(previous);
    // As for a lost connection (3.3.7.1): its durable opens wait for this client's reconnect.
    old.disconnect_opens();
    old.expire();
    // Its pending requests (CHANGE_NOTIFY) end with STATUS_NOTIFY_CLEANUP, like at LOGOFF
    // (smbtorture smb2.notify.session-reconnect). Only those on this connection can be
    // reached here: an old session on a dropped connection took its requests with it.
    if lock(&ctx.conn.sessions).remove(&previous).is_some() {
        ctx.conn
            .finish_pending(NtStatus::NOTIFY_CLEANUP, |_, op| op.session_id == previous);
    }
    info!(
        old = format_args!("{previous:#x}"),
        "previous session of a reconnecting client closed"
    );
}

/// Called with the finished response when it is not the final one (3.1.1 pre-auth hash).
pub(crate) fn hash_response(session: &Arc<Session>, pdu: &[u8]) {
    if let SessionState::InProgress { preauth, .. } = &mut *lock(&session.state) {
        preauth.update(pdu);
    }
}
