//! [MS-SMB2] 3.3.5.18 Receiving an SMB2 QUERY_DIRECTORY Request, with the enumeration rules
//! of [MS-FSA] 2.1.5.6.3 (Directory Information Queries) and 2.1.4.4 (name matching).
//!
//! MUSTs enforced here:
//! - the open must be a directory, else STATUS_INVALID_PARAMETER; it needs
//!   FILE_LIST_DIRECTORY access, else STATUS_ACCESS_DENIED;
//! - OutputBufferLength above MaxTransactSize is STATUS_INVALID_PARAMETER, and so is a
//!   CreditCharge below ceil(OutputBufferLength / 64 KiB) on dialects above 2.0.2;
//! - an information class that is not a directory class is STATUS_INVALID_INFO_CLASS;
//! - a buffer smaller than the class's fixed part is STATUS_INFO_LENGTH_MISMATCH; a first
//!   entry whose name does not fit is returned cut, with STATUS_BUFFER_OVERFLOW;
//! - entries are 8-byte aligned and chained by NextEntryOffset (0 in the last); never more
//!   than OutputBufferLength bytes; RETURN_SINGLE_ENTRY returns one;
//! - the search pattern is taken on the first query, on RESTART_SCANS and on REOPEN (which
//!   also restarts); an empty pattern is `*`; `*`, `?`, `<`, `>`, `"` are wildcards, names
//!   compare case-insensitively; a pattern with `~` also matches generated 8.3 names;
//! - `.` and `..` come first (when they match), then the directory's entries;
//! - no match on the first query after a (re)start is STATUS_NO_SUCH_FILE, the end of the
//!   enumeration afterwards STATUS_NO_MORE_FILES;
//! - INDEX_SPECIFIED is accepted and the enumeration continues where it was (NTFS keeps no
//!   resumable FileIndex either).
//!
//! Memory: the open keeps a streaming cursor ([`lanshare_vfs::DirStream`]) and at most one
//! entry that did not fit, so listing a 100,000-entry directory never holds it whole.

use lanshare_vfs::{DirStream, Metadata};
use smb_wire::fscc::{DirWriter, dir::encode_entry};
use smb_wire::msg::query_directory::{
    QueryDirectoryFlags, QueryDirectoryRequest, QueryDirectoryResponse,
};
use smb_wire::{AccessMask, FileInfoClass, NtStatus};

use crate::conn::Ctx;
use crate::error::ProtoResult;
use crate::fileinfo::{dir_entry, dir_fixed_len, dir_has_short_name};
use crate::names::{MAX_PATTERN_CHARS, Pattern};
use crate::names::{is_8dot3, short_name};
use crate::open::{Open, vfs_status};
use crate::session::lock;

use super::file::{blocking, check_credit_charge, find_open};

/// One entry ready to be encoded.
struct Entry {
    name: String,
    meta: Metadata,
}

/// The state of a directory enumeration, kept on the open between queries.
pub(crate) struct DirCursor {
    pattern: Pattern,
    /// The pattern names an 8.3 name (`~`): match short names too ([MS-FSA] 2.1.5.6.3).
    /// Other patterns match long names only, as on a volume without 8.3 names, so `*.txt`
    /// does not find `a.txtx` through its short name.
    short_names: bool,
    stream: Option<Box<dyn DirStream>>,
    /// `.` and `..` emitted so far (0, 1, 2).
    dots: u8,
    /// An entry read from the stream that did not fit in the last response.
    pending: Option<Entry>,
    /// Something was returned since the last (re)start.
    returned_any: bool,
}

impl DirCursor {
    fn new(pattern: &str) -> DirCursor {
        DirCursor {
            pattern: Pattern::new(pattern),
            short_names: pattern.contains('~'),
            stream: None,
            dots: 0,
            pending: None,
            returned_any: false,
        }
    }

    /// The next entry that matches the pattern, `None` at the end.
    fn next(&mut self, open: &Open) -> Result<Option<Entry>, NtStatus> {
        if let Some(e) = self.pending.take() {
            return Ok(Some(e));
        }
        while self.dots < 2 {
            self.dots += 1;
            let name = if self.dots == 1 { "." } else { ".." };
            if !self.pattern.matches(name) {
                continue;
            }
            let meta = if self.dots == 1 {
                open.handle.metadata()
            } else {
                let here = open.current_path();
                open.vfs.stat(&here.parent().unwrap_or(here))
            };
            match meta {
                Ok(meta) => {
                    return Ok(Some(Entry {
                        name: name.into(),
                        meta,
                    }));
                }
                // `..` may be gone or unreadable; the listing goes on without it.
                Err(_) => continue,
            }
        }
        if self.stream.is_none() {
            self.stream = Some(open.handle.read_dir().map_err(|e| vfs_status(&e))?);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        loop {
            match stream.next_entry() {
                None => return Ok(None),
                Some(Err(e)) => return Err(vfs_status(&e)),
                Some(Ok(e))
                    if self.pattern.matches(&e.name)
                        || (self.short_names
                            && !is_8dot3(&e.name)
                            && self.pattern.matches(&short_name(&e.name))) =>
                {
                    return Ok(Some(Entry {
                        name: e.name,
                        meta: e.metadata,
                    }));
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Where FileNameLength sits in an entry of `class`.
fn name_length_at(class: FileInfoClass) -> usize {
    if class == FileInfoClass::NAMES { 8 } else { 60 }
}

/// Fills one response: whole entries while they fit; a first entry that does not fit at all
/// is returned with its name cut (STATUS_BUFFER_OVERFLOW, [MS-FSA] 2.1.5.6.3).
fn fill(
    cursor: &mut DirCursor,
    open: &Open,
    class: FileInfoClass,
    fixed: usize,
    max: usize,
    single: bool,
) -> Result<(Vec<u8>, NtStatus), NtStatus> {
    let mut out: Vec<u8> = Vec::new();
    let with_short = dir_has_short_name(class);
    let wire = |_: smb_wire::WireError| NtStatus::INTERNAL_ERROR;
    let mut w = DirWriter::new(&mut out, class, max).map_err(wire)?;
    while let Some(e) = cursor.next(open)? {
        let short = if with_short && e.name != "." && e.name != ".." {
            short_name(&e.name)
        } else {
            String::new()
        };
        let entry = dir_entry(&e.name, &short, &e.meta);
        if !w.push(&entry).map_err(wire)? {
            if w.is_empty() {
                // Not even the first entry fits: as much of its name as there is room for.
                encode_entry(class, &entry, &mut out).map_err(wire)?;
                let name_bytes = max.saturating_sub(fixed) & !1;
                out.truncate(fixed + name_bytes);
                let at = name_length_at(class);
                if let Some(f) = out.get_mut(at..at + 4) {
                    f.copy_from_slice(&(name_bytes as u32).to_le_bytes());
                }
                cursor.returned_any = true;
                return Ok((out, NtStatus::BUFFER_OVERFLOW));
            }
            cursor.pending = Some(e);
            break;
        }
        cursor.returned_any = true;
        if single {
            break;
        }
    }
    if w.is_empty() {
        return Err(if cursor.returned_any {
            NtStatus::NO_MORE_FILES
        } else {
            NtStatus::NO_SUCH_FILE
        });
    }
    Ok((out, NtStatus::SUCCESS))
}

/// 3.3.5.18.
pub(crate) async fn query_directory(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = QueryDirectoryRequest::parse(ctx.pdu)?;
    let open = find_open(ctx, req.file_id)?;
    if !open.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if req.output_buffer_length > ctx.conn.server.config.max_io_size {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    check_credit_charge(ctx, req.output_buffer_length)?;
    if !open.has_access(AccessMask::FILE_LIST_DIRECTORY.0) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let class = req.file_information_class;
    let Some(fixed) = dir_fixed_len(class) else {
        return Err(NtStatus::INVALID_INFO_CLASS.into());
    };
    let max = req.output_buffer_length as usize;
    if max < fixed {
        return Err(NtStatus::INFO_LENGTH_MISMATCH.into());
    }
    if req.file_name.chars().count() > MAX_PATTERN_CHARS {
        return Err(NtStatus::OBJECT_NAME_INVALID.into());
    }
    let flags = req.flags;
    let restart = flags.contains(QueryDirectoryFlags::RESTART_SCANS)
        || flags.contains(QueryDirectoryFlags::REOPEN);
    let single = flags.contains(QueryDirectoryFlags::RETURN_SINGLE_ENTRY);
    let pattern = req.file_name;
    let o = open.clone();
    let (buf, status) = blocking(move || {
        let mut guard = lock(&o.dir);
        let cursor = match guard.as_mut() {
            Some(c) if !restart => c,
            _ => guard.insert(DirCursor::new(&pattern)),
        };
        fill(cursor, &o, class, fixed, max, single)
    })
    .await??;
    QueryDirectoryResponse { buffer: &buf }.encode(&mut ctx.out)?;
    Ok(status)
}
