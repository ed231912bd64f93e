//! One module per SMB2 command group; `dispatch` routes a request to its handler.
//!
//! Handlers append the response body to `ctx.out` (after the 64-byte header placeholder) and
//! return the status for the header, or an error: a status to answer with, or a reason to drop
//! the connection. They never see another request's state except through `Ctx`.

pub(crate) mod dir;
pub(crate) mod file;
pub(crate) mod info;
pub(crate) mod ioctl;
pub(crate) mod lock;
pub(crate) mod misc;
pub(crate) mod negotiate;
pub(crate) mod notify;
pub(crate) mod pipe;
pub(crate) mod session_setup;
pub(crate) mod tree;

use smb_wire::{Command, NtStatus};

use crate::conn::Ctx;
use crate::error::ProtoResult;

pub(crate) async fn dispatch(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    // IPC$ holds named pipes, not files: its handles go to the pipe module.
    if ctx.tree.as_ref().is_some_and(|t| t.share.is_ipc) {
        match ctx.hdr.command {
            Command::CREATE => return pipe::create(ctx).await,
            Command::CLOSE => return pipe::close(ctx).await,
            Command::READ => return pipe::read(ctx).await,
            Command::WRITE => return pipe::write(ctx).await,
            Command::QUERY_INFO => return pipe::query_info(ctx).await,
            Command::FLUSH | Command::SET_INFO => return pipe::nothing_to_do(ctx),
            Command::QUERY_DIRECTORY | Command::LOCK | Command::CHANGE_NOTIFY => {
                return Err(NtStatus::INVALID_DEVICE_REQUEST.into());
            }
            _ => {}
        }
    }
    match ctx.hdr.command {
        Command::NEGOTIATE => negotiate::handle(ctx).await,
        Command::SESSION_SETUP => session_setup::handle(ctx).await,
        Command::LOGOFF => misc::logoff(ctx).await,
        Command::TREE_CONNECT => tree::connect(ctx).await,
        Command::TREE_DISCONNECT => tree::disconnect(ctx).await,
        Command::ECHO => misc::echo(ctx).await,
        Command::CANCEL => misc::cancel(ctx).await,
        Command::IOCTL => ioctl::handle(ctx).await,
        Command::CREATE => file::create(ctx).await,
        Command::CLOSE => file::close(ctx).await,
        Command::READ => file::read(ctx).await,
        Command::WRITE => file::write(ctx).await,
        Command::FLUSH => file::flush(ctx).await,
        Command::QUERY_INFO => info::query_info(ctx).await,
        Command::SET_INFO => info::set_info(ctx).await,
        Command::QUERY_DIRECTORY => dir::query_directory(ctx).await,
        Command::LOCK => lock::lock(ctx).await,
        Command::CHANGE_NOTIFY => notify::change_notify(ctx).await,
        Command::OPLOCK_BREAK => crate::oplock::acknowledge(ctx).await,
        // [MS-SMB2] 3.3.5.2: an unknown command is STATUS_INVALID_PARAMETER.
        _ => Err(NtStatus::INVALID_PARAMETER.into()),
    }
}
