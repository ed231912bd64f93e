//! Named pipes on IPC$: [MS-SMB2] 3.3.5.9 (CREATE of a pipe), 3.3.5.12/3.3.5.13 (READ/WRITE on
//! a pipe), 3.3.5.15.1 (FSCTL_PIPE_TRANSCEIVE), 3.3.5.10 (CLOSE); the DCE/RPC behind them is
//! `lanshare-rpc` (srvsvc, wkssvc).
//!
//! MUSTs enforced here:
//! - a pipe we do not serve is STATUS_OBJECT_NAME_NOT_FOUND;
//! - a READ or TRANSCEIVE whose answer does not fit returns what fits with
//!   STATUS_BUFFER_OVERFLOW, and the rest on the next READ (message-mode pipe); a whole
//!   DCE/RPC fragment with more fragments queued is a plain success, as Samba and Windows
//!   answer (the client reads on until the last-fragment flag);
//! - a READ with nothing to read is STATUS_PIPE_EMPTY… rather than blocking forever: our pipes
//!   only ever answer a request that was written first;
//! - anonymous sessions reach pipes only when `security.anonymous` allows IPC$ (checked at
//!   TREE_CONNECT).

use std::sync::{Arc, Mutex};

use lanshare_rpc::{Pipe, RpcContext, ServerInfo, ShareInfo, ShareKind};
use smb_wire::msg::close::{CloseRequest, CloseResponse};
use smb_wire::msg::create::{CreateRequest, CreateResponse};
use smb_wire::msg::ioctl::IoctlResponse;
use smb_wire::msg::read::{ReadRequest, ReadResponse};
use smb_wire::msg::write::{WriteRequest, WriteResponse};
use smb_wire::{FileAttributes, FileId, IoctlFlags, NtStatus};

use crate::conn::Ctx;
use crate::error::{ProtoError, ProtoResult};
use crate::server::ServerState;
use crate::session::lock;

/// The server as srvsvc/wkssvc describe it.
struct Context<'a>(&'a ServerState);

impl RpcContext for Context<'_> {
    fn shares(&self) -> Vec<ShareInfo> {
        let live = self.0.live();
        let mut out: Vec<ShareInfo> = live
            .shares
            .iter()
            .map(|s| ShareInfo {
                name: s.config.name.clone(),
                comment: s.config.comment.clone(),
                kind: ShareKind::Disk,
                // Samba and Windows list `$` shares too (flagged STYPE_SPECIAL by the rpc
                // crate); clients such as Explorer hide them. Only browseable = false hides.
                hidden_from_list: !s.config.browseable,
                path: format!("C:\\{}", s.config.name),
                max_uses: if s.config.max_users == 0 {
                    u32::MAX
                } else {
                    s.config.max_users
                },
                current_uses: s.users.load(std::sync::atomic::Ordering::Relaxed),
            })
            .collect();
        out.push(ShareInfo {
            name: "IPC$".into(),
            comment: "IPC Service".into(),
            kind: ShareKind::Ipc,
            hidden_from_list: false,
            path: String::new(),
            max_uses: u32::MAX,
            current_uses: self.0.ipc.users.load(std::sync::atomic::Ordering::Relaxed),
        });
        out
    }

    fn server(&self) -> ServerInfo {
        ServerInfo {
            name: self.0.config.server_name.clone(),
            comment: "lanshare".into(),
            version_major: 10,
            version_minor: 0,
            domain: self.0.config.workgroup.clone(),
        }
    }
}

pub(crate) type PipeHandle = Arc<Mutex<Pipe>>;

fn find(ctx: &Ctx<'_>, id: FileId) -> ProtoResult<PipeHandle> {
    let id = ctx.file_id(id)?;
    let pipe = lock(&ctx.session()?.pipes).get(&id.volatile).cloned();
    pipe.ok_or(ProtoError::Status(NtStatus::FILE_CLOSED))
}

pub(crate) async fn create(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = CreateRequest::parse(ctx.pdu)?;
    let session = ctx.session()?.clone();
    let Some(pipe) = lanshare_rpc::open_pipe(&req.name) else {
        return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into());
    };
    let volatile = session.next_volatile_id();
    let file_id = FileId {
        persistent: volatile,
        volatile,
    };
    lock(&session.pipes).insert(volatile, Arc::new(Mutex::new(pipe)));
    ctx.new_file_id = Some(file_id);
    CreateResponse {
        oplock_level: smb_wire::OplockLevel::NONE,
        flags: 0,
        create_action: 1,
        creation_time: 0,
        last_access_time: 0,
        last_write_time: 0,
        change_time: 0,
        allocation_size: 4096,
        end_of_file: 0,
        file_attributes: FileAttributes::NORMAL,
        file_id,
        contexts: Vec::new(),
    }
    .encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

pub(crate) async fn close(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = CloseRequest::parse(ctx.pdu)?;
    let id = ctx.file_id(req.file_id)?;
    if lock(&ctx.session()?.pipes).remove(&id.volatile).is_none() {
        return Err(NtStatus::FILE_CLOSED.into());
    }
    CloseResponse::default().encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

fn pipe_write(ctx: &Ctx<'_>, pipe: &PipeHandle, data: &[u8]) -> ProtoResult<()> {
    let rpc = Context(&ctx.conn.server);
    let r = lock(pipe).write(data, &rpc);
    match r {
        Ok(()) => Ok(()),
        // Too much unread output: the client must read first (Windows answers the same).
        Err(lanshare_rpc::RpcError::Busy) => Err(NtStatus::PIPE_BUSY.into()),
        // Not DCE/RPC at all, or written after that: the pipe is dead and stays so.
        Err(e) => {
            tracing::info!(peer = %ctx.conn.peer, error = %e, "malformed DCE/RPC on a pipe: pipe closed");
            Err(NtStatus::PIPE_BROKEN.into())
        }
    }
}

pub(crate) async fn write(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = WriteRequest::parse(ctx.pdu)?;
    let pipe = find(ctx, req.file_id)?;
    pipe_write(ctx, &pipe, req.data)?;
    WriteResponse {
        count: req.data.len() as u32,
        remaining: 0,
    }
    .encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

pub(crate) async fn read(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = ReadRequest::parse(ctx.pdu)?;
    let pipe = find(ctx, req.file_id)?;
    let (data, more) = lock(&pipe).read(req.length as usize);
    if data.is_empty() {
        return Err(NtStatus::PIPE_EMPTY.into());
    }
    ReadResponse::encode_header(data.len() as u32, 0, &mut ctx.out)?;
    ctx.out.extend_from_slice(&data);
    Ok(if more {
        NtStatus::BUFFER_OVERFLOW
    } else {
        NtStatus::SUCCESS
    })
}

/// FSCTL_PIPE_TRANSCEIVE: write the input, answer with what the pipe has to say.
pub(crate) fn transceive(
    ctx: &mut Ctx<'_>,
    file_id: FileId,
    input: &[u8],
    max_output: u32,
    ctl_code: smb_wire::CtlCode,
) -> ProtoResult<NtStatus> {
    let pipe = find(ctx, file_id)?;
    pipe_write(ctx, &pipe, input)?;
    let (data, more) = lock(&pipe).read(max_output as usize);
    IoctlResponse {
        ctl_code,
        file_id,
        input: &[],
        output: &data,
        flags: IoctlFlags(0),
    }
    .encode(&mut ctx.out)?;
    Ok(if more {
        NtStatus::BUFFER_OVERFLOW
    } else {
        NtStatus::SUCCESS
    })
}

/// QUERY_INFO on a pipe: the standard information clients ask for; anything else is refused.
pub(crate) async fn query_info(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    use smb_wire::msg::query_info::{QueryInfoRequest, QueryInfoResponse};
    let req = QueryInfoRequest::parse(ctx.pdu)?;
    let _pipe = find(ctx, req.file_id)?;
    if req.info_type != smb_wire::InfoType::FILE || req.file_info_class != 5 {
        return Err(NtStatus::NOT_SUPPORTED.into());
    }
    // FileStandardInformation: AllocationSize 4096, EndOfFile 0, 1 link, not deleted, not a dir.
    let mut buf = Vec::with_capacity(24);
    buf.extend_from_slice(&4096u64.to_le_bytes());
    buf.extend_from_slice(&0u64.to_le_bytes());
    buf.extend_from_slice(&1u32.to_le_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0]);
    if buf.len() > req.output_buffer_length as usize {
        return Err(NtStatus::INFO_LENGTH_MISMATCH.into());
    }
    QueryInfoResponse { buffer: &buf }.encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

/// FLUSH and SET_INFO on a pipe: accepted (Windows accepts them on message-mode pipes; there
/// is no state to change).
pub(crate) fn nothing_to_do(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    match ctx.hdr.command {
        smb_wire::Command::FLUSH => {
            let req = smb_wire::msg::flush::FlushRequest::parse(ctx.pdu)?;
            find(ctx, req.file_id)?;
            smb_wire::msg::flush::FlushResponse.encode(&mut ctx.out)?;
        }
        _ => {
            let req = smb_wire::msg::set_info::SetInfoRequest::parse(ctx.pdu)?;
            find(ctx, req.file_id)?;
            smb_wire::msg::set_info::SetInfoResponse.encode(&mut ctx.out)?;
        }
    }
    Ok(NtStatus::SUCCESS)
}
