//! [MS-SMB2] 3.3.5.20 Receiving an SMB2 QUERY_INFO Request and 3.3.5.21 Receiving an SMB2
//! SET_INFO Request, with the object-store rules of [MS-FSA] 2.1.5.12 (query file
//! information), 2.1.5.14 (set file information) and 2.1.5.13 / 2.1.5.16 (security).
//!
//! MUSTs enforced here:
//! - OutputBufferLength (QUERY) / BufferLength (SET) above MaxTransactSize is
//!   STATUS_INVALID_PARAMETER, and so is a CreditCharge that does not cover them on dialects
//!   above 2.0.2;
//! - QUERY file classes: Basic, All, NetworkOpen and AttributeTag need FILE_READ_ATTRIBUTES,
//!   FullEa needs FILE_READ_EA, else STATUS_ACCESS_DENIED (SET FullEa: FILE_WRITE_EA); EAs
//!   are answered by `ea::query` and stored by `ea::apply`; FileStreamInformation lists the
//!   file's named streams; a stream is renamed by a target `:name`; FileNormalizedNameInformation
//!   exists from 3.1.1 on (STATUS_NOT_SUPPORTED before);
//! - a buffer smaller than a class's fixed part is STATUS_INFO_LENGTH_MISMATCH; variable data
//!   that does not fit is cut, with STATUS_BUFFER_OVERFLOW;
//! - QUERY security: owner, group and DACL need READ_CONTROL, the SACL
//!   ACCESS_SYSTEM_SECURITY (never granted: STATUS_ACCESS_DENIED); a descriptor larger than the
//!   buffer is STATUS_BUFFER_TOO_SMALL with the needed size as ErrorData (3.3.5.20.3);
//! - SET Basic needs FILE_WRITE_ATTRIBUTES; a time of 0 (or -1/-2) leaves it alone,
//!   attributes 0 leave them alone, DIRECTORY on a file, TEMPORARY on a directory or unknown
//!   bits are STATUS_INVALID_PARAMETER;
//! - SET Rename needs DELETE; RootDirectory must be 0; an existing target without
//!   ReplaceIfExists is STATUS_OBJECT_NAME_COLLISION; a target that is open, or a directory,
//!   is STATUS_ACCESS_DENIED; a directory with open files beneath it is STATUS_ACCESS_DENIED;
//!   an open of the parent directory with DELETE access, or without DELETE sharing, is
//!   STATUS_SHARING_VIOLATION;
//! - SET Disposition(Ex) needs DELETE; a READONLY file is STATUS_CANNOT_DELETE (unless
//!   FILE_DISPOSITION_IGNORE_READONLY_ATTRIBUTE), a non-empty directory
//!   STATUS_DIRECTORY_NOT_EMPTY, the share root STATUS_ACCESS_DENIED;
//! - SET EndOfFile / Allocation need FILE_WRITE_DATA; on a directory they are
//!   STATUS_INVALID_PARAMETER;
//! - a buffer shorter than a SET class needs is STATUS_INFO_LENGTH_MISMATCH;
//! - SET security needs WRITE_DAC (DACL) / WRITE_OWNER (owner, group); the descriptor must be
//!   well formed; owner, group and DACL are stored (`security::store`) and QUERY returns them,
//!   or the descriptor derived from the mode bits when none was stored;
//! - unknown classes are STATUS_INVALID_INFO_CLASS; quota is STATUS_NOT_SUPPORTED.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use lanshare_vfs::{SetTimes, Vfs, VfsError, VfsHandle, VfsPath, dos, fold_case, from_filetime};
use smb_wire::fscc::{self, DispositionFlags, FileBasicInformation, FileRenameInformation};
use smb_wire::msg::error::ErrorResponse;
use smb_wire::msg::query_info::{QueryInfoRequest, QueryInfoResponse};
use smb_wire::msg::set_info::{SetInfoRequest, SetInfoResponse};
use smb_wire::{AccessMask, Dialect, FileInfoClass, InfoType, NtStatus};

use crate::conn::Ctx;
use crate::ea;
use crate::error::{ProtoError, ProtoResult};
use crate::fileinfo::{MODE_BITS, OpenView, VolumeView, file_info, fs_info, stream_info};
use crate::names::{StreamName, split_stream};
use crate::open::{Open, vfs_status};
use crate::oplock::{Check, wait_for_breaks};
use crate::security;

use super::file::{blocking, check_credit_charge, find_open};

const READ_ATTRIBUTES: u32 = AccessMask::FILE_READ_ATTRIBUTES.0;
const WRITE_ATTRIBUTES: u32 = AccessMask::FILE_WRITE_ATTRIBUTES.0;
const READ_EA: u32 = AccessMask::FILE_READ_EA.0;
const WRITE_EA: u32 = AccessMask::FILE_WRITE_EA.0;
const WRITE_DATA: u32 = AccessMask::FILE_WRITE_DATA.0;
const DELETE: u32 = AccessMask::DELETE.0;
const READ_CONTROL: u32 = AccessMask::READ_CONTROL.0;
const WRITE_DAC: u32 = AccessMask::WRITE_DAC.0;
const WRITE_OWNER: u32 = AccessMask::WRITE_OWNER.0;

/// Applies the buffer rules to a full answer: (bytes to send, status).
fn fit(mut data: Vec<u8>, min: usize, max: usize) -> Result<(Vec<u8>, NtStatus), NtStatus> {
    if max < min {
        return Err(NtStatus::INFO_LENGTH_MISMATCH);
    }
    if data.len() > max {
        data.truncate(max);
        return Ok((data, NtStatus::BUFFER_OVERFLOW));
    }
    Ok((data, NtStatus::SUCCESS))
}

/// The on-disk spelling of each component of `path` (FileNormalizedNameInformation): a
/// client may have opened `A\B` as `a\b` on a case-insensitive share.
fn canonical(vfs: &Arc<dyn Vfs>, path: &VfsPath) -> VfsPath {
    let mut out = VfsPath::root();
    for c in path.components() {
        let found = vfs
            .open(&out, &lanshare_vfs::OpenOptions::read())
            .and_then(|(h, _)| h.read_dir())
            .ok()
            .and_then(|mut s| {
                let want = fold_case(c);
                let mut folded = None;
                while let Some(Ok(e)) = s.next_entry() {
                    if e.name == *c {
                        return Some(e.name);
                    }
                    if folded.is_none() && fold_case(&e.name) == want {
                        folded = Some(e.name);
                    }
                }
                folded
            });
        let name = found.unwrap_or_else(|| c.clone());
        out = match out.join(&name) {
            Ok(p) => p,
            Err(_) => return path.clone(),
        };
    }
    out
}

fn windows_name(p: &VfsPath) -> String {
    format!("\\{}", p.to_windows_string())
}

/// 3.3.5.20.
pub(crate) async fn query_info(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = QueryInfoRequest::parse(ctx.pdu)?;
    let open = find_open(ctx, req.file_id)?;
    let max_io = ctx.conn.server.config.max_io_size;
    if req.output_buffer_length > max_io || req.input.len() > max_io as usize {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    check_credit_charge(ctx, req.output_buffer_length.max(req.input.len() as u32))?;
    let max = req.output_buffer_length as usize;
    let (buf, status) = match req.info_type {
        InfoType::FILE => {
            let single = req.flags & QueryInfoRequest::SL_RETURN_SINGLE_ENTRY != 0;
            query_file(ctx, &open, req.file_class(), max, (req.input, single)).await?
        }
        InfoType::FILESYSTEM => query_fs(ctx, &open, req.file_info_class, max).await?,
        InfoType::SECURITY => {
            let info = req.additional_information;
            if info & security::SACL != 0 {
                return Err(NtStatus::ACCESS_DENIED.into());
            }
            if info & (security::OWNER | security::GROUP | security::DACL) != 0
                && !open.has_access(READ_CONTROL)
            {
                return Err(NtStatus::ACCESS_DENIED.into());
            }
            let o = open.clone();
            let sd = blocking(move || {
                o.handle
                    .metadata()
                    .map(|m| security::query(&*o.handle, &m, info))
            })
            .await?
            .map_err(|e| ProtoError::Status(vfs_status(&e)))?;
            if sd.len() > max {
                // The size needed goes back as ErrorData, so the client can retry.
                ctx.out.truncate(smb_wire::header::Header::SIZE);
                ErrorResponse {
                    error_context_count: 0,
                    error_data: &(sd.len() as u32).to_le_bytes(),
                }
                .encode(&mut ctx.out)?;
                return Ok(NtStatus::BUFFER_TOO_SMALL);
            }
            (sd, NtStatus::SUCCESS)
        }
        InfoType::QUOTA => return Err(NtStatus::NOT_SUPPORTED.into()),
        _ => return Err(NtStatus::INVALID_PARAMETER.into()),
    };
    QueryInfoResponse { buffer: &buf }.encode(&mut ctx.out)?;
    Ok(status)
}

async fn query_file(
    ctx: &Ctx<'_>,
    open: &Arc<Open>,
    class: FileInfoClass,
    max: usize,
    (ea_list, single): (&[u8], bool),
) -> ProtoResult<(Vec<u8>, NtStatus)> {
    let needs = match class {
        FileInfoClass::BASIC
        | FileInfoClass::ALL
        | FileInfoClass::NETWORK_OPEN
        | FileInfoClass::ATTRIBUTE_TAG => READ_ATTRIBUTES,
        FileInfoClass::FULL_EA => READ_EA,
        _ => 0,
    };
    if needs != 0 && !open.has_access(needs) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    if class == FileInfoClass::NORMALIZED_NAME && ctx.dialect() < Dialect::SMB3_1_1 {
        return Err(NtStatus::NOT_SUPPORTED.into());
    }
    if class == FileInfoClass::FULL_EA {
        let o = open.clone();
        let list = ea_list.to_vec();
        return Ok(blocking(move || ea::query(&*o.handle, &list, single, max)).await??);
    }
    let o = open.clone();
    let r = blocking(move || -> Result<(Vec<u8>, usize), NtStatus> {
        let stream = o.handle.as_stream();
        if class == FileInfoClass::STREAM {
            // The file's streams, whichever of them this open is.
            let file: &dyn VfsHandle = match stream {
                Some(s) => s.file(),
                None => &*o.handle,
            };
            let fm = file.metadata().map_err(|e| vfs_status(&e))?;
            let named = lanshare_vfs::streams::list(file).map_err(|e| vfs_status(&e))?;
            return stream_info(&fm, &named);
        }
        let m = o.handle.metadata().map_err(|e| vfs_status(&e))?;
        let path = if class == FileInfoClass::NORMALIZED_NAME {
            canonical(&o.vfs, &o.current_path())
        } else {
            o.current_path()
        };
        let mut name = windows_name(&path);
        if let Some(s) = stream {
            // A stream's name is its file's with `:stream` ([MS-FSCC] 2.1.5.1).
            name.push(':');
            name.push_str(&s.name());
        }
        let view = OpenView {
            access: o.access,
            position: o.position.load(Ordering::Relaxed),
            mode: o.create_options & MODE_BITS,
            delete_pending: o.delete_pending(),
            ea_size: if matches!(class, FileInfoClass::EA | FileInfoClass::ALL) {
                ea::ea_size(&*o.handle)
            } else {
                0
            },
            name: &name,
            leaf: path.file_name().unwrap_or(""),
        };
        file_info(class, &view, &m)
    })
    .await??;
    Ok(fit(r.0, r.1, max)?)
}

async fn query_fs(
    ctx: &Ctx<'_>,
    open: &Arc<Open>,
    class: u8,
    max: usize,
) -> ProtoResult<(Vec<u8>, NtStatus)> {
    let v = open.vfs.clone();
    let (stats, root) = blocking(move || {
        let stats = v.statfs()?;
        let root = v.stat(&VfsPath::root())?;
        Ok::<_, VfsError>((stats, root))
    })
    .await?
    .map_err(|e| ProtoError::Status(vfs_status(&e)))?;
    let cfg = &ctx.conn.server.config;
    let tree = ctx.tree()?;
    let guid = cfg.server_guid;
    let mut object_id = guid;
    // Distinct per volume: the root's identity folded into the server GUID.
    for (i, b) in root.dev.to_le_bytes().iter().enumerate() {
        object_id[i] ^= b;
    }
    let serial = u32::from_le_bytes([guid[0], guid[1], guid[2], guid[3]]) ^ (root.dev as u32);
    let view = VolumeView {
        stats: &stats,
        label: &tree.share.config.name,
        serial,
        created: lanshare_vfs::to_filetime(root.created),
        object_id,
        case_sensitive: open.vfs.capabilities().case_sensitive,
        sparse: open.vfs.capabilities().persistent_dos_attributes,
    };
    let (data, min) = fs_info(smb_wire::FsInfoClass(class), &view)?;
    Ok(fit(data, min, max)?)
}

/// 3.3.5.21.
pub(crate) async fn set_info(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = SetInfoRequest::parse(ctx.pdu)?;
    let open = find_open(ctx, req.file_id)?;
    if req.buffer.len() > ctx.conn.server.config.max_io_size as usize {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    check_credit_charge(ctx, req.buffer.len() as u32)?;
    match req.info_type {
        InfoType::FILE => {
            let class = req.file_class();
            if matches!(
                class,
                FileInfoClass::END_OF_FILE | FileInfoClass::ALLOCATION
            ) && open.has_access(WRITE_DATA)
            {
                // [MS-FSA] 2.1.5.14.4 / 2.1.5.14.1: a size change breaks oplocks like a write.
                crate::oplock::break_for_write(ctx, &open).await?;
            }
            if class == FileInfoClass::RENAME && open.has_access(DELETE) {
                // [MS-SMB2] 3.3.5.21.1: other leases lose handle caching first, and the
                // rename waits (async) for their acknowledgments.
                let (file, uid) = (open.file.clone(), open.uid);
                if let Check::Wait = file.break_for_rename(uid) {
                    let f = file.clone();
                    wait_for_breaks(ctx, &file, move || f.break_for_rename(uid)).await?;
                }
            }
            set_file(ctx, &open, class, req.buffer).await?
        }
        InfoType::SECURITY => {
            let info = req.additional_information;
            if info & security::SACL != 0 {
                return Err(NtStatus::ACCESS_DENIED.into());
            }
            if info & security::DACL != 0 && !open.has_access(WRITE_DAC) {
                return Err(NtStatus::ACCESS_DENIED.into());
            }
            if info & (security::OWNER | security::GROUP) != 0 && !open.has_access(WRITE_OWNER) {
                return Err(NtStatus::ACCESS_DENIED.into());
            }
            security::validate(req.buffer)?;
            let o = open.clone();
            let sd = req.buffer.to_vec();
            blocking(move || security::store(&*o.handle, info, &sd)).await??;
        }
        InfoType::FILESYSTEM | InfoType::QUOTA => return Err(NtStatus::NOT_SUPPORTED.into()),
        _ => return Err(NtStatus::INVALID_PARAMETER.into()),
    }
    SetInfoResponse.encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

fn need(open: &Open, mask: u32) -> Result<(), NtStatus> {
    if open.has_access(mask) {
        Ok(())
    } else {
        Err(NtStatus::ACCESS_DENIED)
    }
}

fn at_least(buf: &[u8], n: usize) -> Result<(), NtStatus> {
    if buf.len() < n {
        Err(NtStatus::INFO_LENGTH_MISMATCH)
    } else {
        Ok(())
    }
}

async fn set_file(
    ctx: &Ctx<'_>,
    open: &Arc<Open>,
    class: FileInfoClass,
    buf: &[u8],
) -> ProtoResult<()> {
    let o = open.clone();
    match class {
        FileInfoClass::BASIC => {
            need(open, WRITE_ATTRIBUTES)?;
            at_least(buf, FileBasicInformation::SIZE)?;
            let b = FileBasicInformation::parse(buf).map_err(|_| NtStatus::INVALID_PARAMETER)?;
            // 0: unchanged; -1 / -2: stop / resume automatic updates, nothing to set.
            let time = |t: u64| match t {
                0 | u64::MAX | 0xFFFF_FFFF_FFFF_FFFE => None,
                t => Some(from_filetime(t)),
            };
            let times = SetTimes {
                created: time(b.creation_time),
                accessed: time(b.last_access_time),
                modified: time(b.last_write_time),
            };
            let attrs = b.file_attributes.0;
            // [MS-FSA] 2.1.5.14.2: DIRECTORY on a file, TEMPORARY on a directory.
            if attrs != 0
                && (attrs & !0x0000_7FB7 != 0
                    || (!open.is_dir && attrs & dos::DIRECTORY != 0)
                    || (open.is_dir && attrs & 0x100 != 0))
            {
                return Err(NtStatus::INVALID_PARAMETER.into());
            }
            blocking(move || -> Result<(), VfsError> {
                if times != SetTimes::default() {
                    o.handle.set_times(times)?;
                }
                if attrs != 0 {
                    o.handle.set_dos_attributes(attrs & dos::SETTABLE)?;
                }
                Ok(())
            })
            .await?
            .map_err(|e| ProtoError::Status(vfs_status(&e)))?;
        }
        FileInfoClass::RENAME => {
            need(open, DELETE)?;
            rename(ctx, open, buf).await?;
        }
        FileInfoClass::DISPOSITION | FileInfoClass::DISPOSITION_EX => {
            need(open, DELETE)?;
            let (delete, on_close, ignore_ro) = if class == FileInfoClass::DISPOSITION {
                at_least(buf, 1)?;
                let d = fscc::parse_disposition(buf).map_err(|_| NtStatus::INVALID_PARAMETER)?;
                (d, false, false)
            } else {
                at_least(buf, 4)?;
                let f = fscc::parse_disposition_ex(buf).map_err(|_| NtStatus::INVALID_PARAMETER)?;
                (
                    f.contains(DispositionFlags::DELETE),
                    f.contains(DispositionFlags::ON_CLOSE),
                    f.contains(DispositionFlags::IGNORE_READONLY_ATTRIBUTE),
                )
            };
            let r = blocking(move || -> Result<(), NtStatus> {
                if delete {
                    check_deletable(&o, ignore_ro)?;
                }
                let r = if on_close {
                    o.set_delete_on_close(delete)
                } else {
                    o.set_delete_pending(delete)
                };
                r.map_err(|e| vfs_status(&e))
            })
            .await?;
            r?;
        }
        FileInfoClass::END_OF_FILE | FileInfoClass::ALLOCATION => {
            need(open, WRITE_DATA)?;
            at_least(buf, 8)?;
            if open.is_dir {
                return Err(NtStatus::INVALID_PARAMETER.into());
            }
            let len = fscc::parse_end_of_file(buf).map_err(|_| NtStatus::INVALID_PARAMETER)?;
            if len > i64::MAX as u64 {
                return Err(NtStatus::INVALID_PARAMETER.into());
            }
            let eof = class == FileInfoClass::END_OF_FILE;
            let fits = {
                let o = o.clone();
                move || -> Result<(), VfsError> {
                    if eof {
                        o.handle.set_len(len)
                    } else if len < o.handle.metadata()?.size {
                        // An allocation below the data truncates it ([MS-FSA] 2.1.5.14.1);
                        // above, space is allocated on write.
                        o.handle.set_len(len)
                    } else {
                        Ok(())
                    }
                }
            };
            blocking(fits)
                .await?
                .map_err(|e| ProtoError::Status(vfs_status(&e)))?;
        }
        FileInfoClass::POSITION => {
            at_least(buf, 8)?;
            let pos = fscc::parse_position(buf).map_err(|_| NtStatus::INVALID_PARAMETER)?;
            if pos > i64::MAX as u64 {
                return Err(NtStatus::INVALID_PARAMETER.into());
            }
            open.position.store(pos, Ordering::Relaxed);
        }
        FileInfoClass::FULL_EA => {
            need(open, WRITE_EA)?;
            let set = ea::parse(buf)?;
            blocking(move || ea::apply(&*o.handle, &set)).await??;
        }
        FileInfoClass::LINK
        | FileInfoClass::SHORT_NAME
        | FileInfoClass::VALID_DATA_LENGTH
        | FileInfoClass::MODE => return Err(NtStatus::NOT_SUPPORTED.into()),
        _ => return Err(NtStatus::INVALID_INFO_CLASS.into()),
    }
    Ok(())
}

/// [MS-FSA] 2.1.5.14.3: what may be marked for deletion.
fn check_deletable(o: &Open, ignore_readonly: bool) -> Result<(), NtStatus> {
    let path = o.current_path();
    if path.is_root() {
        return Err(NtStatus::ACCESS_DENIED);
    }
    let m = o.handle.metadata().map_err(|e| vfs_status(&e))?;
    if !m.is_dir && !ignore_readonly && m.dos_attributes & dos::READONLY != 0 {
        return Err(NtStatus::CANNOT_DELETE);
    }
    if m.is_dir {
        let mut s = o.handle.read_dir().map_err(|e| vfs_status(&e))?;
        if s.next_entry().is_some() {
            return Err(NtStatus::DIRECTORY_NOT_EMPTY);
        }
    }
    Ok(())
}

/// Moves a named stream's bytes into its file's unnamed data stream and removes the stream
/// ([MS-FSA] 2.1.5.14.11.1). Data already there is replaced only with ReplaceIfExists.
fn stream_to_default(o: &Open, replace: bool) -> Result<(), NtStatus> {
    let Some(s) = o.handle.as_stream() else {
        return Err(NtStatus::INVALID_PARAMETER);
    };
    let status = |e: VfsError| vfs_status(&e);
    let file = o
        .vfs
        .open(
            &o.current_path(),
            &lanshare_vfs::OpenOptions::read_write(lanshare_vfs::CreateMode::Open),
        )
        .map_err(status)?
        .0;
    if file.metadata().map_err(status)?.size != 0 && !replace {
        return Err(NtStatus::OBJECT_NAME_COLLISION);
    }
    let size = o.handle.metadata().map_err(status)?.size as usize;
    let mut data = vec![0u8; size.min(lanshare_vfs::MAX_ATTR_SIZE)];
    let n = o.handle.read_at(&mut data, 0).map_err(status)?;
    file.set_len(0).map_err(status)?;
    file.write_at(data.get(..n).unwrap_or_default(), 0)
        .map_err(status)?;
    s.remove().map_err(status)
}

/// FILE_RENAME_INFORMATION_TYPE_2 ([MS-FSCC] 2.4.42.2): ReplaceIfExists (1), Reserved (7),
/// RootDirectory (8), FileNameLength (4), FileName.
async fn rename(ctx: &Ctx<'_>, open: &Arc<Open>, buf: &[u8]) -> ProtoResult<()> {
    at_least(buf, FileRenameInformation::FIXED_SIZE)?;
    let info = FileRenameInformation::parse(buf).map_err(|e| match e {
        smb_wire::WireError::BadUtf16 => NtStatus::OBJECT_NAME_INVALID,
        _ => NtStatus::INVALID_PARAMETER,
    })?;
    if info.root_directory != 0 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let replace = info.replace_if_exists;
    let name = info.file_name;
    // Windows clients send the path from the share root; some prefix it with `\`.
    let name = name.strip_prefix('\\').unwrap_or(&name);
    let name = match split_stream(name)? {
        // A stream renamed onto its file's unnamed data stream (`::$DATA`): the stream's bytes
        // become the file's data, when that is empty or may be replaced.
        StreamName::Default {
            base: "",
            data: true,
        } if open.handle.as_stream().is_some() => {
            let o = open.clone();
            blocking(move || stream_to_default(&o, replace)).await??;
            return Ok(());
        }
        StreamName::Default { base, .. } => base,
        // [MS-FSA] 2.1.5.14.11: a stream is renamed within its file, the target named
        // `:name[:$DATA]`.
        StreamName::Named { base: "", stream } => {
            let Some(_) = open.handle.as_stream() else {
                // Turning the unnamed data stream into a named one is not offered.
                return Err(NtStatus::INVALID_PARAMETER.into());
            };
            let o = open.clone();
            let stream = stream.to_owned();
            blocking(move || match o.handle.as_stream() {
                Some(s) => s.rename(&stream, replace),
                None => Err(VfsError::InvalidParameter),
            })
            .await?
            .map_err(|e| ProtoError::Status(vfs_status(&e)))?;
            return Ok(());
        }
        // `file:stream` naming this stream's own file: the file is open (through this very
        // stream), as Windows answers; another file is not a valid stream-rename target.
        StreamName::Named { base, .. } if open.handle.as_stream().is_some() => {
            let same = VfsPath::parse(base.strip_prefix('\\').unwrap_or(base)).is_ok_and(|p| {
                fold_case(&p.to_string()) == fold_case(&open.current_path().to_string())
            });
            return Err(if same {
                NtStatus::SHARING_VIOLATION
            } else {
                NtStatus::INVALID_PARAMETER
            }
            .into());
        }
        StreamName::Named { .. } => return Err(NtStatus::INVALID_PARAMETER.into()),
    };
    if open.handle.as_stream().is_some() {
        // A stream cannot become a file of its own.
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let to = VfsPath::parse(name).map_err(|e| ProtoError::Status(vfs_status(&e)))?;
    if to.is_root() {
        return Err(NtStatus::OBJECT_NAME_INVALID.into());
    }
    let objects = ctx.conn.server.objects.clone();
    let o = open.clone();
    blocking(move || -> Result<(), NtStatus> {
        let from = o.current_path();
        if from.is_root() {
            return Err(NtStatus::ACCESS_DENIED);
        }
        if from == to {
            return Ok(());
        }
        if o.is_dir && objects.has_open_below(&o.vfs, &from) {
            return Err(NtStatus::ACCESS_DENIED);
        }
        // Renaming changes the parent directory, which is opened for that as if with DELETE
        // access and read/write sharing: an open of the parent holding DELETE, or not
        // sharing DELETE, is a sharing violation (Windows' behaviour; smbtorture
        // smb2.rename.*_delete_*).
        if let Some(parent) = from.parent() {
            let pm = o.vfs.stat(&parent).map_err(|e| vfs_status(&e))?;
            let probe = objects
                .table
                .acquire(
                    pm.identity(),
                    lanshare_vfs::Access::DELETE,
                    lanshare_vfs::ShareMode::READ | lanshare_vfs::ShareMode::WRITE,
                )
                .map_err(|e| vfs_status(&e))?;
            objects.table.release(probe);
        }
        match o.vfs.stat(&to) {
            Ok(t) if t.identity() != o.identity => {
                if !replace {
                    return Err(NtStatus::OBJECT_NAME_COLLISION);
                }
                // [MS-FSA] 2.1.5.14.11: an open target, or a directory, is not replaced.
                if t.is_dir || !objects.table.opens(t.identity()).is_empty() {
                    return Err(NtStatus::ACCESS_DENIED);
                }
            }
            Ok(_) | Err(VfsError::NotFound) => {}
            Err(e) => return Err(vfs_status(&e)),
        }
        o.vfs
            .rename(&from, &to, replace)
            .map_err(|e| vfs_status(&e))?;
        o.file.set_path(to);
        Ok(())
    })
    .await??;
    Ok(())
}
