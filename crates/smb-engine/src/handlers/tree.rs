//! [MS-SMB2] 3.3.5.7 Receiving an SMB2 TREE_CONNECT Request and
//! 3.3.5.8 Receiving an SMB2 TREE_DISCONNECT Request.
//!
//! MUSTs enforced here:
//! - the share name is the last component of `\\server\share`, matched case-insensitively;
//!   an unknown share is STATUS_BAD_NETWORK_NAME;
//! - anonymous sessions follow `security.anonymous` (deny: nothing; ipc-only: IPC$ only;
//!   allow: IPC$ and `guest_ok` shares); guest sessions reach only `guest_ok` shares (and IPC$);
//! - MaximalAccess reflects a read-only share;
//! - a disconnected tree id is STATUS_NETWORK_NAME_DELETED from then on (pipeline).

use smb_wire::msg::tree_connect::{TreeConnectRequest, TreeConnectResponse};
use smb_wire::msg::tree_disconnect::TreeDisconnectResponse;
use smb_wire::{AccessMask, NtStatus, ShareCaps, ShareFlags, ShareType};
use tracing::{info, warn};

use crate::config::AnonymousPolicy;
use crate::conn::Ctx;
use crate::error::ProtoResult;
use crate::session::lock;

/// FILE_ALL_ACCESS and FILE_GENERIC_READ | FILE_GENERIC_EXECUTE ([MS-SMB2] 2.2.13.1.1).
const FILE_ALL_ACCESS: u32 = 0x001F_01FF;
const READ_ONLY_ACCESS: u32 = 0x0012_00A9;

pub(crate) async fn connect(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = TreeConnectRequest::parse(ctx.pdu)?;
    let session = ctx.session()?.clone();
    let auth = session.auth().ok_or(NtStatus::USER_SESSION_DELETED)?;
    let server = &ctx.conn.server;
    let name = req.path.rsplit('\\').next().unwrap_or_default();
    if !req.path.starts_with("\\\\") || name.is_empty() {
        return Err(NtStatus::BAD_NETWORK_NAME.into());
    }
    let Some(share) = server.find_share(name) else {
        info!(peer = %ctx.conn.peer, user = auth.user_name(), share = name, "tree connect to unknown share");
        return Err(NtStatus::BAD_NETWORK_NAME.into());
    };
    let allowed = if auth.is_anonymous() {
        match server.config.anonymous {
            AnonymousPolicy::Deny => false,
            AnonymousPolicy::IpcOnly => share.is_ipc,
            AnonymousPolicy::Allow => share.is_ipc || share.config.guest_ok,
        }
    } else if auth.is_guest() {
        share.is_ipc || share.config.guest_ok
    } else {
        true
    };
    if !allowed {
        warn!(peer = %ctx.conn.peer, user = auth.user_name(), share = %share.config.name,
              "tree connect refused: share is not open to guest/anonymous sessions (share.guest_ok, security.anonymous)");
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let maximal_access = if share.config.read_only {
        READ_ONLY_ACCESS
    } else {
        FILE_ALL_ACCESS
    };
    // share.encrypt ([MS-SMB2] 3.3.5.7: Share.EncryptData): only sessions that can encrypt.
    let encrypt = share.config.encrypt && !share.is_ipc;
    if encrypt && auth.crypto.is_none() {
        warn!(peer = %ctx.conn.peer, user = auth.user_name(), share = %share.config.name,
              "tree connect refused: the share has encrypt = true and this session cannot encrypt (SMB 2.x, guest, or encryption off)");
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let Some(tree) = session.add_tree(share.clone(), maximal_access, encrypt) else {
        server.counters.refuse(crate::server::Refusal::MaxUsers);
        warn!(peer = %ctx.conn.peer, user = auth.user_name(), share = %share.config.name, limit = share.config.max_users,
              "tree connect refused: share.max_users reached (client sees STATUS_REQUEST_NOT_ACCEPTED)");
        return Err(NtStatus::REQUEST_NOT_ACCEPTED.into());
    };
    ctx.resp_tree_id = tree.id;
    let (share_type, share_flags) = if share.is_ipc {
        (ShareType::PIPE, ShareFlags::NO_CACHING.0)
    } else {
        // Manual caching (0): offline files only when the user asks, like a default Windows share.
        (
            ShareType::DISK,
            if encrypt {
                ShareFlags::ENCRYPT_DATA.0
            } else {
                0
            },
        )
    };
    TreeConnectResponse {
        share_type,
        share_flags: ShareFlags(share_flags),
        capabilities: ShareCaps(0),
        maximal_access: AccessMask(maximal_access),
    }
    .encode(&mut ctx.out)?;
    tracing::debug!(user = auth.user_name(), share = %share.config.name, tree = tree.id, "tree connected");
    Ok(NtStatus::SUCCESS)
}

pub(crate) async fn disconnect(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let session = ctx.session()?.clone();
    let tree = ctx.tree()?.clone();
    lock(&session.trees).remove(&tree.id);
    let closed = session.close_opens(Some(tree.id));
    ctx.conn.finish_pending(NtStatus::NOTIFY_CLEANUP, |_, op| {
        op.file_id.is_some_and(|f| closed.contains(&f))
    });
    TreeDisconnectResponse.encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}
