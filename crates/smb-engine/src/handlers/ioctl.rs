//! [MS-SMB2] 3.3.5.15 Receiving an SMB2 IOCTL Request.
//!
//! MUSTs enforced here:
//! - Flags must be SMB2_0_IOCTL_IS_FSCTL, else STATUS_NOT_SUPPORTED (3.3.5.15);
//! - MaxInputResponse/MaxOutputResponse above the negotiated MaxTransactSize are
//!   STATUS_INVALID_PARAMETER;
//! - FSCTL_VALIDATE_NEGOTIATE_INFO (3.3.5.15.12) is answered, signed, for 3.0/3.0.2;
//! - DFS referrals: we are not a DFS server → STATUS_NOT_FOUND, as Windows without DFS;
//! - anything we do not implement → STATUS_INVALID_DEVICE_REQUEST, never a dropped connection.

use smb_wire::msg::ioctl::{IoctlRequest, IoctlResponse};
use smb_wire::{CtlCode, FileId, IoctlFlags, NtStatus};

use crate::conn::Ctx;
use crate::error::ProtoResult;

pub(crate) async fn handle(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = IoctlRequest::parse(ctx.pdu)?;
    if !req.flags.contains(IoctlFlags::IS_FSCTL) {
        return Err(NtStatus::NOT_SUPPORTED.into());
    }
    let max = ctx.conn.server.config.max_io_size;
    if req.max_input_response > max || req.max_output_response > max {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if req.ctl_code == CtlCode::PIPE_TRANSCEIVE {
        if !ctx.tree.as_ref().is_some_and(|t| t.share.is_ipc) {
            return Err(NtStatus::INVALID_DEVICE_REQUEST.into());
        }
        return super::pipe::transceive(
            ctx,
            req.file_id,
            req.input,
            req.max_output_response,
            req.ctl_code,
        );
    }
    let output = match req.ctl_code {
        CtlCode::VALIDATE_NEGOTIATE_INFO => {
            super::negotiate::validate_negotiate_info(ctx, req.input)?
        }
        CtlCode::DFS_GET_REFERRALS | CtlCode::DFS_GET_REFERRALS_EX => {
            return Err(NtStatus::NOT_FOUND.into());
        }
        // No multichannel: Windows without RSS/RDMA NICs answers the same.
        CtlCode::QUERY_NETWORK_INTERFACE_INFO => return Err(NtStatus::NOT_SUPPORTED.into()),
        _ => return Err(NtStatus::INVALID_DEVICE_REQUEST.into()),
    };
    if output.len() > req.max_output_response as usize {
        return Err(NtStatus::BUFFER_TOO_SMALL.into());
    }
    IoctlResponse {
        ctl_code: req.ctl_code,
        file_id: if req.file_id == FileId::ANY {
            FileId::ANY
        } else {
            req.file_id
        },
        input: &[],
        output: &output,
        flags: IoctlFlags(0),
    }
    .encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}
