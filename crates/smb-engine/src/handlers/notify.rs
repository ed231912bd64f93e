//! [MS-SMB2] 3.3.5.19 Receiving an SMB2 CHANGE_NOTIFY Request.
//!
//! MUSTs enforced here:
//! - the open must be a directory, else STATUS_INVALID_PARAMETER;
//! - the request goes async (interim STATUS_PENDING) and is counted against
//!   `max_async_per_connection`, not against the connection's credits;
//! - CANCEL completes it with STATUS_CANCELLED; CLOSE of the directory, TREE_DISCONNECT and
//!   LOGOFF with STATUS_NOTIFY_CLEANUP.
//!
//! What is not here yet: watching the directory (inotify and changes made through lanshare).
//! Until then a watch completes only through cancel or cleanup, which is what a client sees
//! from a folder where nothing changes.

use smb_wire::NtStatus;
use smb_wire::msg::change_notify::ChangeNotifyRequest;

use crate::conn::Ctx;
use crate::error::ProtoResult;

pub(crate) async fn change_notify(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = ChangeNotifyRequest::parse(ctx.pdu)?;
    let open = super::file::find_open(ctx, req.file_id)?;
    if !open.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let (done, _guard) = ctx.go_async(Some(open.file_id)).await?;
    let status = done.await.unwrap_or(NtStatus::NOTIFY_CLEANUP);
    Err(status.into())
}
