//! The everyday file commands, in the form the protocol core needs:
//! [MS-SMB2] 3.3.5.9 CREATE, 3.3.5.10 CLOSE, 3.3.5.11 FLUSH, 3.3.5.12 READ, 3.3.5.13 WRITE,
//! 3.3.5.20 QUERY_INFO.
//!
//! MUSTs enforced here:
//! - CREATE: FILE_DIRECTORY_FILE with FILE_NON_DIRECTORY_FILE is STATUS_INVALID_PARAMETER; an
//!   unknown disposition is STATUS_INVALID_PARAMETER; GENERIC_* rights are mapped and
//!   MAXIMUM_ALLOWED grants the tree's maximal access; on a read-only share any write-type
//!   access or creating disposition is STATUS_ACCESS_DENIED; IPC$ pipes are not served yet
//!   (STATUS_OBJECT_NAME_NOT_FOUND);
//! - READ/WRITE: Length above MaxReadSize/MaxWriteSize is STATUS_INVALID_PARAMETER; the open
//!   must have been granted FILE_READ_DATA / FILE_WRITE_DATA|FILE_APPEND_DATA, else
//!   STATUS_ACCESS_DENIED; a read at or past EOF is STATUS_END_OF_FILE; a read shorter than
//!   MinimumCount is STATUS_END_OF_FILE;
//! - FLUSH without write access is STATUS_ACCESS_DENIED;
//! - an unknown FileId is STATUS_FILE_CLOSED.
//!
//! File I/O is blocking on Linux: it runs on tokio's blocking pool with positioned I/O.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use lanshare_vfs::{CreateMode, DirMode, Metadata, OpenOptions, VfsPath, to_filetime};
use smb_wire::msg::close::{CloseRequest, CloseResponse};
use smb_wire::msg::create::{CreateRequest, CreateResponse};
use smb_wire::msg::flush::{FlushRequest, FlushResponse};
use smb_wire::msg::query_info::{QueryInfoRequest, QueryInfoResponse};
use smb_wire::msg::read::{ReadRequest, ReadResponse};
use smb_wire::msg::write::{WriteRequest, WriteResponse};
use smb_wire::{
    AccessMask, CreateDisposition, CreateOptions, FileAttributes, FileId, InfoType, NtStatus,
};

use crate::conn::Ctx;
use crate::error::{ProtoError, ProtoResult};
use crate::open::{Open, vfs_status};
use crate::session::lock;

/// Rights that change data, metadata or the namespace: refused on a read-only share.
const WRITE_RIGHTS: u32 = AccessMask::FILE_WRITE_DATA.0
    | AccessMask::FILE_APPEND_DATA.0
    | AccessMask::FILE_WRITE_EA.0
    | AccessMask::FILE_WRITE_ATTRIBUTES.0
    | AccessMask::FILE_DELETE_CHILD.0
    | AccessMask::DELETE.0
    | AccessMask::WRITE_DAC.0
    | AccessMask::WRITE_OWNER.0;

/// Map GENERIC_* and MAXIMUM_ALLOWED to specific rights ([MS-SMB2] 3.3.5.9, [MS-DTYP] 2.4.3).
fn map_access(desired: u32, maximal: u32) -> u32 {
    let mut a = desired & 0x0FFF_FFFF & !AccessMask::MAXIMUM_ALLOWED.0;
    if desired & AccessMask::GENERIC_READ.0 != 0 {
        a |= AccessMask::FILE_GENERIC_READ.0;
    }
    if desired & AccessMask::GENERIC_WRITE.0 != 0 {
        a |= AccessMask::FILE_GENERIC_WRITE.0;
    }
    if desired & AccessMask::GENERIC_EXECUTE.0 != 0 {
        a |= AccessMask::FILE_GENERIC_EXECUTE.0;
    }
    if desired & AccessMask::GENERIC_ALL.0 != 0 {
        a |= AccessMask::FILE_ALL_ACCESS.0;
    }
    if desired & AccessMask::MAXIMUM_ALLOWED.0 != 0 {
        a |= maximal;
    }
    a
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ProtoResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        if e.is_panic() {
            ProtoError::Drop("storage operation panicked (bug)".into())
        } else {
            ProtoError::Status(NtStatus::INTERNAL_ERROR)
        }
    })
}

fn attributes(m: &Metadata) -> u32 {
    m.dos_attributes
}

/// 3.3.5.9.
pub(crate) async fn create(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = CreateRequest::parse(ctx.pdu)?;
    let session = ctx.session()?.clone();
    let tree = ctx.tree()?.clone();
    let Some(vfs) = tree.share.vfs.clone() else {
        // IPC$: named pipes (srvsvc, wkssvc) are not served yet.
        return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into());
    };
    let opts_bits = req.create_options.0;
    let want_dir = opts_bits & CreateOptions::DIRECTORY_FILE.0 != 0;
    let want_file = opts_bits & CreateOptions::NON_DIRECTORY_FILE.0 != 0;
    if want_dir && want_file {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let mode = match req.create_disposition {
        CreateDisposition::SUPERSEDE => CreateMode::Supersede,
        CreateDisposition::OPEN => CreateMode::Open,
        CreateDisposition::CREATE => CreateMode::Create,
        CreateDisposition::OPEN_IF => CreateMode::OpenIf,
        CreateDisposition::OVERWRITE => CreateMode::Overwrite,
        CreateDisposition::OVERWRITE_IF => CreateMode::OverwriteIf,
        _ => return Err(NtStatus::INVALID_PARAMETER.into()),
    };
    let access = map_access(req.desired_access.0, tree.maximal_access);
    if tree.share.config.read_only && (access & WRITE_RIGHTS != 0 || mode != CreateMode::Open) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let delete_on_close = opts_bits & CreateOptions::DELETE_ON_CLOSE.0 != 0;
    if delete_on_close && access & AccessMask::DELETE.0 == 0 {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let path = VfsPath::parse(&req.name).map_err(|e| ProtoError::Status(vfs_status(&e)))?;
    let options = OpenOptions {
        read: true,
        write: access & (AccessMask::FILE_WRITE_DATA.0 | AccessMask::FILE_APPEND_DATA.0) != 0
            || matches!(
                mode,
                CreateMode::Overwrite | CreateMode::OverwriteIf | CreateMode::Supersede
            ),
        create: mode,
        directory: if want_dir {
            DirMode::DirOnly
        } else if want_file {
            DirMode::FileOnly
        } else {
            DirMode::Any
        },
        dos_attributes: req.file_attributes.0
            & !FileAttributes::DIRECTORY.0
            & !FileAttributes::NORMAL.0,
    };
    let open_path = path.clone();
    let v = vfs.clone();
    let (handle, outcome, meta) = blocking(move || {
        let (h, outcome) = v.open(&open_path, &options)?;
        let meta = h.metadata()?;
        Ok::<_, lanshare_vfs::VfsError>((h, outcome, meta))
    })
    .await?
    .map_err(|e| ProtoError::Status(vfs_status(&e)))?;

    let volatile = session.next_volatile_id();
    let file_id = FileId {
        persistent: volatile,
        volatile,
    };
    let open = Arc::new(Open {
        file_id,
        tree_id: tree.id,
        path,
        handle: Arc::from(handle),
        vfs,
        is_dir: meta.is_dir,
        access,
        delete_on_close: AtomicBool::new(delete_on_close),
        closed: AtomicBool::new(false),
    });
    lock(&session.opens).insert(volatile, open);
    ctx.new_file_id = Some(file_id);

    CreateResponse {
        oplock_level: smb_wire::OplockLevel::NONE,
        flags: 0,
        create_action: match outcome {
            lanshare_vfs::OpenOutcome::Superseded => 0,
            lanshare_vfs::OpenOutcome::Opened => 1,
            lanshare_vfs::OpenOutcome::Created => 2,
            lanshare_vfs::OpenOutcome::Overwritten => 3,
        },
        creation_time: to_filetime(meta.created),
        last_access_time: to_filetime(meta.accessed),
        last_write_time: to_filetime(meta.modified),
        change_time: to_filetime(meta.changed),
        allocation_size: meta.alloc_size,
        end_of_file: meta.size,
        file_attributes: FileAttributes(attributes(&meta)),
        file_id,
        contexts: Vec::new(),
    }
    .encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

pub(crate) fn find_open(ctx: &Ctx<'_>, id: FileId) -> ProtoResult<Arc<Open>> {
    let id = ctx.file_id(id)?;
    let session = ctx.session()?;
    let open = lock(&session.opens).get(&id.volatile).cloned();
    match open {
        Some(o) if o.file_id == id && ctx.tree.as_ref().is_some_and(|t| t.id == o.tree_id) => Ok(o),
        _ => Err(NtStatus::FILE_CLOSED.into()),
    }
}

/// 3.3.5.10.
pub(crate) async fn close(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = CloseRequest::parse(ctx.pdu)?;
    let open = find_open(ctx, req.file_id)?;
    lock(&ctx.session()?.opens).remove(&open.file_id.volatile);
    // A watch on this handle ends with it ([MS-SMB2] 3.3.5.10).
    ctx.conn.finish_pending(NtStatus::NOTIFY_CLEANUP, |_, op| {
        op.file_id == Some(open.file_id)
    });
    let postquery = req.postquery_attrib();
    let o = open.clone();
    let meta = blocking(move || {
        let meta = if postquery {
            o.handle.metadata().ok()
        } else {
            None
        };
        o.close();
        meta
    })
    .await?;
    let mut resp = CloseResponse {
        flags: 0,
        ..Default::default()
    };
    if let Some(m) = meta {
        resp.flags = CloseRequest::FLAG_POSTQUERY_ATTRIB;
        resp.creation_time = to_filetime(m.created);
        resp.last_access_time = to_filetime(m.accessed);
        resp.last_write_time = to_filetime(m.modified);
        resp.change_time = to_filetime(m.changed);
        resp.allocation_size = m.alloc_size;
        resp.end_of_file = m.size;
        resp.file_attributes = FileAttributes(attributes(&m));
    }
    resp.encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

/// 3.3.5.11.
pub(crate) async fn flush(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = FlushRequest::parse(ctx.pdu)?;
    let open = find_open(ctx, req.file_id)?;
    if !open.has_access(AccessMask::FILE_WRITE_DATA.0 | AccessMask::FILE_APPEND_DATA.0) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let o = open.clone();
    blocking(move || o.handle.sync())
        .await?
        .map_err(|e| ProtoError::Status(vfs_status(&e)))?;
    FlushResponse.encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

/// 3.3.5.12. The file is read straight into the response buffer, after its fixed part.
pub(crate) async fn read(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = ReadRequest::parse(ctx.pdu)?;
    let open = find_open(ctx, req.file_id)?;
    if req.length > ctx.conn.server.config.max_io_size {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if open.is_dir {
        return Err(NtStatus::INVALID_DEVICE_REQUEST.into());
    }
    if !open.has_access(AccessMask::FILE_READ_DATA.0 | AccessMask::FILE_EXECUTE.0) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let len = req.length as usize;
    let offset = req.offset;
    let min = req.minimum_count as usize;
    let mut out = std::mem::take(&mut ctx.out);
    let start = out.len() + ReadResponse::FIXED_LEN;
    out.resize(start + len, 0);
    let o = open.clone();
    let (mut out, n) = blocking(move || {
        let mut done = 0;
        while done < len {
            match o
                .handle
                .read_at(&mut out[start + done..], offset + done as u64)
            {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) => return (out, Err(e)),
            }
        }
        (out, Ok(done))
    })
    .await?;
    let n = n.map_err(|e| ProtoError::Status(vfs_status(&e)));
    let n = match n {
        Ok(n) => n,
        Err(e) => {
            ctx.out = out;
            return Err(e);
        }
    };
    if (n == 0 && len > 0) || n < min {
        out.truncate(start - ReadResponse::FIXED_LEN);
        ctx.out = out;
        return Err(NtStatus::END_OF_FILE.into());
    }
    out.truncate(start + n);
    let fixed = start - ReadResponse::FIXED_LEN;
    ReadResponse::write_fixed(&mut out[fixed..start], n as u32, 0);
    ctx.out = out;
    Ok(NtStatus::SUCCESS)
}

/// 3.3.5.13.
pub(crate) async fn write(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = WriteRequest::parse(ctx.pdu)?;
    let open = find_open(ctx, req.file_id)?;
    if req.data.len() > ctx.conn.server.config.max_io_size as usize {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if open.is_dir {
        return Err(NtStatus::INVALID_DEVICE_REQUEST.into());
    }
    if !open.has_access(AccessMask::FILE_WRITE_DATA.0 | AccessMask::FILE_APPEND_DATA.0) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    // One copy: the request buffer belongs to the frame, the blocking pool needs 'static data.
    let data = req.data.to_vec();
    let offset = req.offset;
    let o = open.clone();
    let n = blocking(move || o.handle.write_at(&data, offset))
        .await?
        .map_err(|e| ProtoError::Status(vfs_status(&e)))?;
    WriteResponse {
        count: n as u32,
        remaining: 0,
    }
    .encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

/// 3.3.5.20, the classes smbtorture's connect test and smbclient's `allinfo` use; the full
/// set arrives with the file-operations work.
pub(crate) async fn query_info(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = QueryInfoRequest::parse(ctx.pdu)?;
    let open = find_open(ctx, req.file_id)?;
    let o = open.clone();
    let meta = blocking(move || o.handle.metadata())
        .await?
        .map_err(|e| ProtoError::Status(vfs_status(&e)))?;
    let buf = match req.info_type {
        InfoType::FILE => crate::fileinfo::file_info(req.file_info_class, &open, &meta)?,
        InfoType::FILESYSTEM => {
            let v = open.vfs.clone();
            let stats = blocking(move || v.statfs())
                .await?
                .map_err(|e| ProtoError::Status(vfs_status(&e)))?;
            crate::fileinfo::fs_info(req.file_info_class, &open, &stats, &ctx.conn.server.config)?
        }
        _ => return Err(NtStatus::NOT_SUPPORTED.into()),
    };
    let max = req.output_buffer_length as usize;
    if buf.len() > max {
        return Err(NtStatus::INFO_LENGTH_MISMATCH.into());
    }
    QueryInfoResponse { buffer: &buf }.encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}
