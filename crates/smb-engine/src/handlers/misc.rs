//! The small commands: [MS-SMB2] 3.3.5.6 LOGOFF, 3.3.5.17 ECHO, 3.3.5.16 CANCEL.

use smb_wire::NtStatus;
use smb_wire::msg::echo::EchoResponse;
use smb_wire::msg::logoff::LogoffResponse;

use crate::conn::Ctx;
use crate::error::ProtoResult;
use crate::session::lock;

/// 3.3.5.6: the session and everything under it goes; later requests on it get
/// STATUS_USER_SESSION_DELETED. The response is still signed with the session's key.
/// Durable opens stay for a reconnect from a new session, as Windows and Samba keep them
/// (smbtorture smb2.durable-open.reopen4).
pub(crate) async fn logoff(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let session = ctx.session()?.clone();
    lock(&ctx.conn.sessions).remove(&session.id);
    ctx.conn.server.sessions.remove(session.id);
    session.disconnect_opens();
    session.expire();
    lock(&session.trees).clear();
    ctx.conn.finish_pending(NtStatus::NOTIFY_CLEANUP, |_, op| {
        op.session_id == session.id
    });
    tracing::debug!(session = format_args!("{:#x}", session.id), "logoff");
    LogoffResponse.encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

/// 3.3.5.17.
pub(crate) async fn echo(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    EchoResponse.encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

/// 3.3.5.16: no response is ever sent for CANCEL. An async CANCEL names the AsyncId, a sync
/// one the MessageId of what it cancels; that request then completes with STATUS_CANCELLED.
/// Only the session that started an operation may cancel it.
pub(crate) async fn cancel(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let hdr = ctx.hdr;
    let session = hdr.session_id.0;
    match hdr.async_id() {
        Some(a) => {
            ctx.conn.finish_pending(NtStatus::CANCELLED, |id, op| {
                id == a.0 && op.session_id == session
            });
        }
        None => ctx.conn.cancel_by_message_id(hdr.message_id, session),
    }
    Ok(NtStatus::SUCCESS)
}
