//! [MS-SMB2] 3.3.5.9 Receiving an SMB2 CREATE Request, 3.3.5.10 CLOSE, 3.3.5.11 FLUSH,
//! 3.3.5.12 READ, 3.3.5.13 WRITE; the open semantics of [MS-FSA] 2.1.5.1.
//!
//! MUSTs enforced here:
//! - CREATE: a name starting with `\` is STATUS_INVALID_PARAMETER (the name is relative to the
//!   share); `::$DATA` is the file itself (a directory: STATUS_FILE_IS_A_DIRECTORY), a named
//!   stream (`names::create_target`) is opened through a `StreamView` with the same rules,
//!   asked for as a directory it is STATUS_NOT_A_DIRECTORY; an ImpersonationLevel above Delegate is
//!   STATUS_BAD_IMPERSONATION_LEVEL; an unknown disposition, FILE_DIRECTORY_FILE with
//!   FILE_NON_DIRECTORY_FILE or with a disposition other than open/create/open-if, reserved
//!   option bits, unknown share bits or attribute bits are STATUS_INVALID_PARAMETER;
//!   FILE_OPEN_BY_FILE_ID, FILE_RESERVE_OPFILTER and FILE_CREATE_TREE_CONNECTION are
//!   STATUS_NOT_SUPPORTED; TEMPORARY on a directory is STATUS_INVALID_PARAMETER; reserved access
//!   bits are STATUS_ACCESS_DENIED and ACCESS_SYSTEM_SECURITY is STATUS_PRIVILEGE_NOT_HELD;
//!   GENERIC_* rights are mapped, MAXIMUM_ALLOWED grants the file's maximal access; access
//!   beyond the maximal access (read-only share; READONLY file: no data writes) is
//!   STATUS_ACCESS_DENIED, and so is overwriting a READONLY file, or a HIDDEN / SYSTEM one
//!   without asking for that attribute again; FILE_DELETE_ON_CLOSE needs
//!   DELETE access (STATUS_ACCESS_DENIED) and a file without READONLY, existing or asked for
//!   (STATUS_CANNOT_DELETE);
//!   a directory asked to be a file is STATUS_FILE_IS_A_DIRECTORY and the reverse
//!   STATUS_NOT_A_DIRECTORY; share modes are checked in the object table before an existing
//!   file is truncated (STATUS_SHARING_VIOLATION), and a delete-pending file cannot be opened
//!   (STATUS_DELETE_PENDING); a missing parent is STATUS_OBJECT_PATH_NOT_FOUND; a `..`
//!   component is STATUS_OBJECT_PATH_SYNTAX_BAD; a generated 8.3 name opens its long name; MxAc and QFid
//!   contexts are answered, a TWrp (previous version) context is STATUS_OBJECT_NAME_NOT_FOUND
//!   (no snapshots), other contexts are ignored; `limits.max_open_files[_per_session]` give
//!   STATUS_TOO_MANY_OPENED_FILES; IPC$ pipes are not served yet (STATUS_OBJECT_NAME_NOT_FOUND).
//! - CLOSE: releases the open once, with its locks and share mode; the last close of a
//!   delete-pending file deletes it before the response; POSTQUERY_ATTRIB returns attributes.
//! - READ/WRITE: Length above MaxReadSize/MaxWriteSize (64 KiB on 2.0.2) is
//!   STATUS_INVALID_PARAMETER, and so is a CreditCharge below ceil(Length / 64 KiB) on
//!   dialects above 2.0.2; a directory is STATUS_INVALID_DEVICE_REQUEST; the open needs
//!   FILE_READ_DATA|FILE_EXECUTE (FILE_WRITE_DATA|FILE_APPEND_DATA), else STATUS_ACCESS_DENIED;
//!   a byte-range lock of another open is STATUS_FILE_LOCK_CONFLICT; a read at or past EOF
//!   (Length > 0) or shorter than MinimumCount is STATUS_END_OF_FILE; a range ending past
//!   INT64_MAX is STATUS_INVALID_PARAMETER, a write reaching NTFS's largest file size
//!   STATUS_DISK_FULL; an append-only open (FILE_APPEND_DATA alone) writes at the end of file;
//!   WRITE_THROUGH (flag or create option) flushes before the response.
//! - FLUSH without write access is STATUS_ACCESS_DENIED.
//! - an unknown FileId is STATUS_FILE_CLOSED.
//!
//! File I/O is blocking on Linux: it runs on tokio's blocking pool with positioned I/O.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use lanshare_vfs::{
    Access, CreateMode, DirMode, Metadata, OpenOptions, OpenOutcome, ShareMode, Vfs, VfsError,
    VfsHandle, VfsPath, dos, to_filetime,
};
use smb_wire::msg::close::{CloseRequest, CloseResponse};
use smb_wire::msg::create::{CreateRequest, CreateResponse};
use smb_wire::msg::create_context::{
    CreateContext, DURABLE_HANDLE_RESPONSE_DATA, DurableHandleReconnect, DurableHandleReconnectV2,
    DurableHandleRequestV2, DurableHandleResponseV2, Lease, LeaseFlags, LeaseState, LeaseV2,
    MaximalAccessResponse, QueryOnDiskIdResponse, names,
};
use smb_wire::msg::flush::{FlushRequest, FlushResponse};
use smb_wire::msg::read::{ReadRequest, ReadResponse};
use smb_wire::msg::write::{WriteRequest, WriteResponse};
use smb_wire::{
    AccessMask, CreateDisposition, CreateOptions, Dialect, FileAttributes, FileId,
    ImpersonationLevel, NtStatus, WireError,
};

use crate::conn::Ctx;
use crate::durable::{Durable, ReconnectError};
use crate::error::{ProtoError, ProtoResult};
use crate::fileinfo::{allocation, attributes, change_time};
use crate::names::{is_8dot3, short_name};
use crate::objects::{Objects, vfs_key};
use crate::open::{NewOpen, Open, OpenSlot, vfs_status};
use crate::oplock::{
    Check, Holder, Intent, LeaseId, is_lease_stat_open, is_stat_open, wait_for_breaks,
};
use crate::session::{Session, Tree, lock};

const READ_DATA: u32 = AccessMask::FILE_READ_DATA.0;
const WRITE_DATA: u32 = AccessMask::FILE_WRITE_DATA.0;
const APPEND_DATA: u32 = AccessMask::FILE_APPEND_DATA.0;
const EXECUTE: u32 = AccessMask::FILE_EXECUTE.0;
const DELETE: u32 = AccessMask::DELETE.0;

/// Largest file offset: the object store's offsets are signed 64-bit.
const MAX_OFFSET: u64 = i64::MAX as u64;
/// Largest NTFS file size ([MS-FSA] 2.1.5.4); writes reaching it fail with STATUS_DISK_FULL.
const MAX_FILE_SIZE: u64 = 0xFFF_FFFF_0000;

/// Access bits no request may carry ([MS-DTYP] 2.4.3: reserved).
const RESERVED_ACCESS: u32 = 0x0CE0_FE00;
/// Valid CreateOptions bits ([MS-SMB2] 2.2.13); the rest are reserved.
const VALID_OPTIONS: u32 = 0x00FF_FFFF;
/// FILE_CREATE_TREE_CONNECTION, FILE_OPEN_BY_FILE_ID, FILE_RESERVE_OPFILTER: not offered.
const NOT_SUPPORTED_OPTIONS: u32 =
    0x0000_0080 | CreateOptions::OPEN_BY_FILE_ID.0 | CreateOptions::RESERVE_OPFILTER.0;
/// FILE_ATTRIBUTE_VALID_FLAGS ([MS-FSCC] 2.6).
const VALID_ATTRIBUTES: u32 = 0x0000_7FB7;
/// Rights a READONLY file withholds ([MS-FSA] 2.1.5.1.2.1: no data writes).
const READONLY_DENIED: u32 = WRITE_DATA | APPEND_DATA | AccessMask::FILE_WRITE_EA.0;

/// Map GENERIC_* to specific rights ([MS-DTYP] 2.4.3); MAXIMUM_ALLOWED is handled by the
/// caller once the file's maximal access is known.
fn map_generic(desired: u32) -> u32 {
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
    a
}

/// Runs blocking storage work on the blocking pool. A panic there is a bug: the connection
/// ends (as for a panic in the handler itself).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> ProtoResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        if e.is_panic() {
            ProtoError::Drop("storage operation panicked (bug)".into())
        } else {
            ProtoError::Status(NtStatus::INTERNAL_ERROR)
        }
    })
}

/// Largest READ or WRITE made on the connection's own thread when its file lives in memory
/// ([`storage`]): up to this a `pread`/`pwrite` on tmpfs takes a few microseconds, less than
/// the hand-off to the blocking pool and the wake-up back; larger copies stay off the
/// runtime's threads (and signed or encrypted large I/O stays spread over tasks).
const INLINE_IO_MAX: usize = 64 * 1024;

/// Largest file a delete on close removes on the connection's thread when the file lives in
/// memory: freeing a tmpfs file's pages takes time in proportion to its size. (Directories
/// are removed on the blocking pool, as they are created: see `create`.)
const INLINE_DELETE_MAX: u64 = 1024 * 1024;

/// Storage work that `inline` says never waits for a disk (the object lives in memory:
/// [`lanshare_vfs::Vfs::in_memory`], [`lanshare_vfs::VfsHandle::in_memory`]) runs right here,
/// on the request's task: on tmpfs an open, a small read or write or a delete costs a few
/// microseconds, and the blocking pool's round trip (a thread woken to run it, the task
/// woken back) cost more than that and two thread switches per request. A small request
/// then finishes in its first poll on the connection's task, with no task spawned. Any
/// other work goes to the blocking pool ([`blocking`]).
pub(crate) async fn storage<T: Send + 'static>(
    inline: bool,
    f: impl FnOnce() -> T + Send + 'static,
) -> ProtoResult<T> {
    if inline { Ok(f()) } else { blocking(f).await }
}

/// The maximal access to an existing object: the tree's, less data writes for a READONLY
/// file.
pub(crate) fn maximal_access(tree_max: u32, m: &Metadata) -> u32 {
    if !m.is_dir && m.dos_attributes & dos::READONLY != 0 {
        tree_max & !READONLY_DENIED
    } else {
        tree_max
    }
}

/// The object-table view of an access mask ([MS-FSA] 2.1.5.1.2).
fn table_access(access: u32) -> Access {
    let mut a = Access::NONE;
    if access & (READ_DATA | EXECUTE) != 0 {
        a |= Access::READ;
    }
    if access & (WRITE_DATA | APPEND_DATA) != 0 {
        a |= Access::WRITE;
    }
    if access & DELETE != 0 {
        a |= Access::DELETE;
    }
    a
}

/// What CREATE decided before touching storage.
struct Plan {
    vfs: Arc<dyn Vfs>,
    objects: Arc<Objects>,
    path: VfsPath,
    mode: CreateMode,
    dir_mode: DirMode,
    /// DesiredAccess with GENERIC_* mapped, MAXIMUM_ALLOWED removed.
    desired: u32,
    maximum_allowed: bool,
    tree_max: u32,
    share: ShareMode,
    delete_on_close: bool,
    attributes: u32,
    read_only_share: bool,
    /// For a named stream: the share's storage, where its file is.
    stream_of: Option<Arc<dyn Vfs>>,
}

struct Opened {
    handle: Box<dyn VfsHandle>,
    outcome: OpenOutcome,
    meta: Metadata,
    token: lanshare_vfs::OpenToken,
    /// For a named stream: its place among the file's opens ([`Plan::anchor`]).
    anchor: Option<lanshare_vfs::OpenToken>,
    access: u32,
    max_access: u32,
}

impl Plan {
    fn grant(&self, max: u32) -> Result<u32, NtStatus> {
        if self.desired & !max != 0 {
            return Err(NtStatus::ACCESS_DENIED);
        }
        let access = if self.maximum_allowed {
            self.desired | max
        } else {
            self.desired
        };
        if self.delete_on_close && access & DELETE == 0 {
            return Err(NtStatus::ACCESS_DENIED);
        }
        Ok(access)
    }

    fn options(&self, access: u32, is_dir: bool) -> OpenOptions {
        let truncates = matches!(
            self.mode,
            CreateMode::Overwrite | CreateMode::OverwriteIf | CreateMode::Supersede
        );
        OpenOptions {
            read: true,
            write: !is_dir && (access & (WRITE_DATA | APPEND_DATA) != 0 || truncates),
            create: self.mode,
            directory: self.dir_mode,
            // [MS-FSA] 2.1.5.1.2.1: a file created, overwritten or superseded gets ARCHIVE.
            dos_attributes: if is_dir || self.dir_mode == DirMode::DirOnly {
                self.attributes
            } else {
                self.attributes | dos::ARCHIVE
            },
        }
    }

    /// [MS-FSA] 2.1.5.1: an existing file is checked (type, access, share modes) before it is
    /// truncated; a new one is created, then registered. A file replaced between the check
    /// and the open (another client's rename) is detected by its identity and retried.
    fn run(&self) -> Result<Opened, NtStatus> {
        if self.stream_of.is_none()
            && let Some(r) = self.first_try()
        {
            return r;
        }
        for _ in 0..4 {
            let existing = if self.mode == CreateMode::Create {
                None
            } else {
                match self.vfs.stat(&self.path) {
                    Ok(m) => Some(m),
                    Err(VfsError::NotFound) => None,
                    Err(e) => return Err(vfs_status(&e)),
                }
            };
            let r = match existing {
                Some(m) => self.open_existing(&m),
                None => self.create_new(),
            };
            match r {
                Ok(Some(mut o)) => {
                    if let Some(base) = &self.stream_of {
                        match self.anchor(base) {
                            Ok(a) => o.anchor = Some(a),
                            Err(e) => {
                                self.objects.table.release(o.token);
                                return Err(e);
                            }
                        }
                    }
                    return Ok(o);
                }
                Ok(None) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(NtStatus::SHARING_VIOLATION)
    }

    /// The common cases without the `stat` that [`Self::run`] starts with: an open of an
    /// existing object opens it, then checks what it opened (its own `fstat` says what it is);
    /// an overwrite-if first tries to create (`O_CREAT|O_EXCL`), which for a new
    /// name is the only lookup. `None` whenever that does not settle it (the name exists, or
    /// anything is refused before a file was created): the general path then runs from the
    /// start, so every error keeps the order of checks [MS-FSA] 2.1.5.1 gives it.
    fn first_try(&self) -> Option<Result<Opened, NtStatus>> {
        match self.mode {
            // Only a plain read or stat-like open: the handle does not depend on what the
            // file turns out to be (MAXIMUM_ALLOWED and write access do).
            CreateMode::Open
                if !self.maximum_allowed && self.desired & (WRITE_DATA | APPEND_DATA) == 0 =>
            {
                self.open_first().map(Ok)
            }
            // Overwrite-if is how clients write a file out (copies, saves), mostly a new one;
            // open-if mostly finds its file, and a failed create would cost it a lookup.
            CreateMode::OverwriteIf => self.create_first(),
            _ => None,
        }
    }

    fn open_first(&self) -> Option<Opened> {
        let (handle, outcome) = self
            .vfs
            .open(&self.path, &self.options(self.desired, false))
            .ok()?;
        let meta = handle.metadata().ok()?;
        if meta.is_dir {
            if self.dir_mode == DirMode::FileOnly {
                return None;
            }
        } else if self.dir_mode == DirMode::DirOnly {
            return None;
        }
        let max = maximal_access(self.tree_max, &meta);
        let access = self.grant(max).ok()?;
        if self.delete_on_close && !meta.is_dir && meta.dos_attributes & dos::READONLY != 0 {
            return None;
        }
        let token = self
            .objects
            .table
            .acquire(meta.identity(), table_access(access), self.share)
            .ok()?;
        Some(Opened {
            handle,
            outcome,
            meta,
            token,
            anchor: None,
            access,
            max_access: max,
        })
    }

    fn create_first(&self) -> Option<Result<Opened, NtStatus>> {
        if self.read_only_share || (self.delete_on_close && self.attributes & dos::READONLY != 0) {
            return None;
        }
        let access = self.grant(self.tree_max).ok()?;
        let is_dir = self.dir_mode == DirMode::DirOnly;
        let mut opts = self.options(access, is_dir);
        opts.create = CreateMode::Create;
        let (handle, outcome) = self.vfs.open(&self.path, &opts).ok()?;
        // Created: from here on, as `create_new`.
        Some(self.register_new(handle, outcome, access))
    }

    /// A named stream's open registered on its file ([`ObjectTable::acquire_stream_anchor`]):
    /// a DELETE open of the file then checks that the stream shares delete, and a
    /// delete-pending file refuses new stream opens and outlives its open streams
    /// (smbtorture smb2.streams.delete).
    ///
    /// [`ObjectTable::acquire_stream_anchor`]: lanshare_vfs::ObjectTable::acquire_stream_anchor
    fn anchor(&self, base: &Arc<dyn Vfs>) -> Result<lanshare_vfs::OpenToken, NtStatus> {
        let m = base.stat(&self.path).map_err(|e| vfs_status(&e))?;
        self.objects
            .table
            .acquire_stream_anchor(m.identity(), self.share)
            .map_err(|e| vfs_status(&e))
    }

    fn open_existing(&self, m: &Metadata) -> Result<Option<Opened>, NtStatus> {
        let truncates = matches!(
            self.mode,
            CreateMode::Overwrite | CreateMode::OverwriteIf | CreateMode::Supersede
        );
        if m.is_dir {
            if self.dir_mode == DirMode::FileOnly || truncates {
                return Err(NtStatus::FILE_IS_A_DIRECTORY);
            }
        } else if self.dir_mode == DirMode::DirOnly {
            return Err(NtStatus::NOT_A_DIRECTORY);
        }
        let max = maximal_access(self.tree_max, m);
        let access = self.grant(max)?;
        // [MS-FSA] 2.1.5.1.2.1: overwriting keeps HIDDEN and SYSTEM only when asked to.
        let kept = m.dos_attributes & (dos::HIDDEN | dos::SYSTEM);
        if truncates && !m.is_dir && kept & !self.attributes != 0 {
            return Err(NtStatus::ACCESS_DENIED);
        }
        if !m.is_dir && m.dos_attributes & dos::READONLY != 0 {
            if truncates {
                return Err(NtStatus::ACCESS_DENIED);
            }
            if self.delete_on_close {
                return Err(NtStatus::CANNOT_DELETE);
            }
        }
        let token = self
            .objects
            .table
            .acquire(m.identity(), table_access(access), self.share)
            .map_err(|e| vfs_status(&e))?;
        let opened = self
            .vfs
            .open(&self.path, &self.options(access, m.is_dir))
            .and_then(|(h, outcome)| {
                let meta = h.metadata()?;
                Ok((h, outcome, meta))
            });
        match opened {
            Ok((handle, outcome, meta)) if meta.identity() == m.identity() => Ok(Some(Opened {
                handle,
                outcome,
                meta,
                token,
                anchor: None,
                access,
                max_access: max,
            })),
            // Replaced or removed since the stat: start again with what is there now.
            Ok(_) | Err(VfsError::NotFound) => {
                self.objects.table.release(token);
                Ok(None)
            }
            Err(e) => {
                self.objects.table.release(token);
                Err(vfs_status(&e))
            }
        }
    }

    fn create_new(&self) -> Result<Option<Opened>, NtStatus> {
        if matches!(self.mode, CreateMode::Open | CreateMode::Overwrite) {
            return Err(NtStatus::OBJECT_NAME_NOT_FOUND);
        }
        if self.read_only_share {
            return Err(NtStatus::ACCESS_DENIED);
        }
        // A file born READONLY could never be deleted by its own close.
        if self.delete_on_close && self.attributes & dos::READONLY != 0 {
            return Err(NtStatus::CANNOT_DELETE);
        }
        // A new file may be written through this open even when created READONLY.
        let access = self.grant(self.tree_max)?;
        let is_dir = self.dir_mode == DirMode::DirOnly;
        let (handle, outcome) = match self.vfs.open(&self.path, &self.options(access, is_dir)) {
            Ok(x) => x,
            // Created by someone else since the stat: open it as existing.
            Err(VfsError::Exists) if self.mode != CreateMode::Create => return Ok(None),
            Err(e) => return Err(vfs_status(&e)),
        };
        self.register_new(handle, outcome, access).map(Some)
    }

    fn register_new(
        &self,
        handle: Box<dyn VfsHandle>,
        outcome: OpenOutcome,
        access: u32,
    ) -> Result<Opened, NtStatus> {
        let meta = handle.metadata().map_err(|e| vfs_status(&e))?;
        let token = self
            .objects
            .table
            .acquire(meta.identity(), table_access(access), self.share)
            .map_err(|e| vfs_status(&e))?;
        Ok(Opened {
            handle,
            outcome,
            meta,
            token,
            anchor: None,
            access,
            max_access: self.tree_max,
        })
    }
}

/// A last component that does not exist but looks like a generated 8.3 name (`ABCD~1XY.TXT`)
/// is looked up among the folder's long names by their short names ([MS-FSCC] 2.1.5.2.1:
/// either name opens the file). Names that exist, or have no `~`, are left alone, so the
/// folder is scanned only for such misses.
fn resolve_short_name(vfs: &Arc<dyn Vfs>, path: VfsPath) -> VfsPath {
    let Some(leaf) = path.file_name() else {
        return path;
    };
    if !leaf.contains('~') || !is_8dot3(leaf) || !matches!(vfs.stat(&path), Err(VfsError::NotFound))
    {
        return path;
    }
    let parent = path.parent().unwrap_or_default();
    let found = vfs
        .open(&parent, &OpenOptions::read())
        .and_then(|(h, _)| h.read_dir())
        .ok()
        .and_then(|mut entries| {
            while let Some(Ok(e)) = entries.next_entry() {
                if !is_8dot3(&e.name) && short_name(&e.name).eq_ignore_ascii_case(leaf) {
                    return Some(e.name);
                }
            }
            None
        });
    match found.and_then(|n| parent.join(&n).ok()) {
        Some(p) => p,
        None => path,
    }
}

/// 3.3.5.9.
pub(crate) async fn create(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = CreateRequest::parse(ctx.pdu).map_err(|e| match e {
        WireError::BadUtf16 => ProtoError::Status(NtStatus::OBJECT_NAME_INVALID),
        e => e.into(),
    })?;
    let session = ctx.session()?.clone();
    let tree = ctx.tree()?.clone();
    let Some(vfs) = tree.share.vfs.clone() else {
        // IPC$: named pipes (srvsvc, wkssvc) are not served yet.
        return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into());
    };
    let durable_ask = DurableAsk::parse(&req.contexts, ctx.dialect())?;
    match durable_ask {
        DurableAsk::ReconnectV1(id) => {
            return reconnect(ctx, &req, &session, &tree, &vfs, id, None).await;
        }
        DurableAsk::ReconnectV2(r) => {
            return reconnect(ctx, &req, &session, &tree, &vfs, r.file_id, Some(r)).await;
        }
        DurableAsk::RequestV2(r)
            if ctx
                .hdr
                .flags
                .contains(smb_wire::HeaderFlags::REPLAY_OPERATION) =>
        {
            // 3.3.5.9.10: a replayed CREATE whose open exists returns that open.
            let client = lock(&ctx.conn.neg).client_guid;
            if let Some(open) = ctx
                .conn
                .server
                .objects
                .durable
                .by_create_guid(client, r.create_guid)
                && lock(&session.opens)
                    .get(&open.file_id.volatile)
                    .is_some_and(|o| Arc::ptr_eq(o, &open))
            {
                return respond_existing(ctx, &req, &open, true).await;
            }
        }
        _ => {}
    }
    if req.impersonation_level.0 > ImpersonationLevel::DELEGATE.0 {
        return Err(NtStatus::BAD_IMPERSONATION_LEVEL.into());
    }
    let opts = req.create_options.0;
    let want_dir = opts & CreateOptions::DIRECTORY_FILE.0 != 0;
    let want_file = opts & CreateOptions::NON_DIRECTORY_FILE.0 != 0;
    let mode = match req.create_disposition {
        CreateDisposition::SUPERSEDE => CreateMode::Supersede,
        CreateDisposition::OPEN => CreateMode::Open,
        CreateDisposition::CREATE => CreateMode::Create,
        CreateDisposition::OPEN_IF => CreateMode::OpenIf,
        CreateDisposition::OVERWRITE => CreateMode::Overwrite,
        CreateDisposition::OVERWRITE_IF => CreateMode::OverwriteIf,
        _ => return Err(NtStatus::INVALID_PARAMETER.into()),
    };
    // Access first: Windows answers a reserved access bit with STATUS_ACCESS_DENIED even
    // when the attributes are invalid too (smbtorture smb2.create.gentest).
    let desired = req.desired_access.0;
    if desired & RESERVED_ACCESS != 0 {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    if desired & AccessMask::ACCESS_SYSTEM_SECURITY.0 != 0 {
        return Err(NtStatus::PRIVILEGE_NOT_HELD.into());
    }
    let attrs = req.file_attributes.0;
    if (want_dir && want_file)
        || opts & !VALID_OPTIONS != 0
        || (want_dir
            && !matches!(
                mode,
                CreateMode::Open | CreateMode::Create | CreateMode::OpenIf
            ))
        || req.share_access.0 & !0x7 != 0
        || attrs & !VALID_ATTRIBUTES != 0
        || (want_dir && attrs & FileAttributes::TEMPORARY.0 != 0)
    {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if opts & NOT_SUPPORTED_OPTIONS != 0 {
        return Err(NtStatus::NOT_SUPPORTED.into());
    }
    // [MS-SMB2] 3.3.5.9: the name is relative to the share; Windows refuses a leading `\`.
    if req.name.starts_with('\\') {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    // Named streams open through a view of the share that addresses the stream.
    let (name, open_vfs, data_only) =
        crate::names::create_target(&req.name, &vfs, want_dir).map_err(ProtoError::Status)?;
    let want_file = want_file || data_only;
    // `..` is never interpreted: Windows calls such a path a syntax error.
    if name.split('\\').any(|c| c == "..") {
        return Err(NtStatus::OBJECT_PATH_SYNTAX_BAD.into());
    }
    let path = VfsPath::parse(name).map_err(|e| ProtoError::Status(vfs_status(&e)))?;
    if CreateContext::find(&req.contexts, names::TW_RP).is_some() {
        return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into());
    }
    let server = ctx.conn.server.clone();
    let limits = server.limits();
    let session_opens = lock(&session.opens).len();
    let slot = OpenSlot::take(&server, limits.max_open_files);
    if slot.is_none()
        || (limits.max_open_files_per_session != 0
            && session_opens >= limits.max_open_files_per_session as usize)
    {
        let which = if slot.is_none() {
            crate::server::Refusal::MaxOpenFiles
        } else {
            crate::server::Refusal::MaxOpenFilesPerSession
        };
        server.counters.refuse(which);
        tracing::warn!(peer = %ctx.conn.peer, limit = which.setting(), "CREATE refused: open-file limit reached");
        return Err(NtStatus::TOO_MANY_OPENED_FILES.into());
    }
    let Some(slot) = slot else {
        return Err(NtStatus::TOO_MANY_OPENED_FILES.into());
    };
    let read_only_share = tree.share.config.read_only;
    if read_only_share && !matches!(mode, CreateMode::Open | CreateMode::OpenIf) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let delete_on_close = opts & CreateOptions::DELETE_ON_CLOSE.0 != 0;
    let stream_of = (!Arc::ptr_eq(&open_vfs, &vfs)).then(|| vfs.clone());
    let plan = Plan {
        vfs: open_vfs,
        objects: server.objects.clone(),
        path,
        mode,
        dir_mode: if want_dir {
            DirMode::DirOnly
        } else if want_file {
            DirMode::FileOnly
        } else {
            DirMode::Any
        },
        desired: map_generic(desired),
        maximum_allowed: desired & AccessMask::MAXIMUM_ALLOWED.0 != 0,
        tree_max: tree.maximal_access,
        share: ShareMode((req.share_access.0 & 0x7) as u8),
        delete_on_close,
        attributes: req.file_attributes.0
            & !FileAttributes::DIRECTORY.0
            & !FileAttributes::NORMAL.0,
        read_only_share,
        stream_of,
    };
    // ExtA ([MS-SMB2] 2.2.13.2.1): EAs for a created or replaced file, checked up front.
    let create_eas = CreateContext::find(&req.contexts, names::EXT_A)
        .map(|c| crate::ea::parse(c.data))
        .transpose()?;
    let asked_oplock = req.requested_oplock_level.0;
    // [MS-SMB2] 3.3.5.9.8 / 3.3.5.9.11: a lease request counts from 2.1 on, version 2
    // from 3.0 on (a 2.1 client's v2 context is read as v1).
    let lease_req = match CreateContext::find(&req.contexts, names::RQ_LS) {
        Some(c)
            if asked_oplock == smb_wire::OplockLevel::LEASE.0
                && ctx.dialect().0 >= Dialect::SMB2_1.0 =>
        {
            let mut l = Lease::parse(c.data).map_err(|_| NtStatus::INVALID_PARAMETER)?;
            if ctx.dialect().0 < Dialect::SMB3_0.0 {
                l.v2 = None;
            }
            Some(l)
        }
        _ => None,
    };
    let lease_id = lease_req.map(|l| LeaseId {
        client: lock(&ctx.conn.neg).client_guid,
        key: l.key,
    });
    let overwrites = matches!(
        mode,
        CreateMode::Overwrite | CreateMode::OverwriteIf | CreateMode::Supersede
    );
    // [MS-SMB2] 3.3.5.9.8: a key leased on another file is refused before anything is
    // created (smbtorture smb2.lease.request leaves no directory behind).
    if let Some(f) = lease_id.and_then(|id| server.objects.lease_file(id))
        && lanshare_vfs::fold_case(&f.path().to_string())
            != lanshare_vfs::fold_case(&plan.path.to_string())
    {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    break_oplocks(ctx, &plan, lease_id).await?;
    // Directories keep the pool's pace: a CHANGE_NOTIFY set up on another connection while
    // the directory is being deleted learns of the delete only if its watch registers first
    // (the watch is set up on the blocking pool; see notify.rs).
    let inline = plan.vfs.in_memory() && plan.dir_mode != DirMode::DirOnly;
    let (opened, path) = storage(inline, move || {
        let mut plan = plan;
        plan.path = resolve_short_name(&plan.vfs, plan.path);
        let o = plan.run()?;
        if let Some(eas) = create_eas.filter(|_| o.outcome != OpenOutcome::Opened)
            && let Err(e) = crate::ea::apply(&*o.handle, &eas)
        {
            plan.objects.table.release(o.token);
            if let Some(a) = o.anchor {
                plan.objects.table.release(a);
            }
            return Err(e);
        }
        Ok((o, plan.path))
    })
    .await??;

    let volatile = session.next_volatile_id();
    let file_id = FileId {
        persistent: volatile,
        volatile,
    };
    let share_key = vfs_key(&vfs);
    let identity = opened.meta.identity();
    let file = server.objects.file(&vfs, identity, &path);
    let open = Arc::new(Open::new(
        NewOpen {
            file_id,
            tree_id: tree.id,
            path,
            handle: Arc::from(opened.handle),
            vfs,
            is_dir: opened.meta.is_dir,
            access: opened.access,
            create_options: opts,
            delete_on_close,
            identity,
            token: opened.token,
            anchor: opened.anchor,
            file,
            objects: server.objects.clone(),
        },
        slot,
    ));
    if delete_on_close {
        // The token is fresh and ours: this cannot fail.
        let _ = open.set_delete_on_close(true);
    }
    let holder = Holder {
        conn: Arc::downgrade(ctx.conn),
        session_id: session.id,
        file_id,
    };
    let stat = (
        is_stat_open(open.access) && !overwrites,
        is_lease_stat_open(open.access) && !overwrites,
    );
    let mut lease_out = Vec::new();
    let mut lease_granted: Option<u8> = None;
    if let Some(id) = lease_id
        && server
            .objects
            .lease_file(id)
            .is_some_and(|f| !Arc::ptr_eq(&f, &open.file))
    {
        // [MS-SMB2] 3.3.5.9.8: the key is leased on another file.
        let o = open.clone();
        blocking(move || o.close()).await?;
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let oplock_level = match (lease_req, lease_id) {
        // No directory leases: a directory gets no lease and no oplock.
        (Some(req_lease), Some(id)) if !open.is_dir => {
            if !server.objects.bind_lease(id, &open.file) {
                // Bound to another file since the check just above.
                let o = open.clone();
                blocking(move || o.close()).await?;
                return Err(NtStatus::INVALID_PARAMETER.into());
            }
            let g = open.file.grant_lease(
                open.uid,
                stat,
                id,
                (req_lease.state.0 & 7) as u8,
                req_lease.v2.map(|v| v.epoch),
                holder,
            );
            lease_granted = Some(g.state);
            let mut flags = 0;
            if g.breaking {
                flags |= LeaseFlags::BREAK_IN_PROGRESS.0;
            }
            // The lease's version answers, whatever this request's was (smb2.lease.v2_epoch2/3).
            let v2 = g.v2.then(|| {
                let parent = req_lease
                    .v2
                    .filter(|_| req_lease.flags.0 & LeaseFlags::PARENT_LEASE_KEY_SET.0 != 0);
                if parent.is_some() {
                    flags |= LeaseFlags::PARENT_LEASE_KEY_SET.0;
                }
                LeaseV2 {
                    parent_key: parent.map_or([0; 16], |v| v.parent_key),
                    epoch: g.epoch,
                }
            });
            Lease {
                key: req_lease.key,
                state: LeaseState(u32::from(g.state)),
                flags: LeaseFlags(flags),
                duration: 0,
                v2,
            }
            .encode(&mut lease_out);
            smb_wire::OplockLevel::LEASE.0
        }
        _ => open.file.grant_oplock(
            open.uid,
            stat,
            open.is_dir,
            if asked_oplock == smb_wire::OplockLevel::LEASE.0 {
                smb_wire::OplockLevel::NONE.0
            } else {
                asked_oplock
            },
            holder,
        ),
    };
    let durable_out = grant_durable(
        ctx,
        &session,
        &tree,
        &open,
        durable_ask,
        share_key,
        oplock_level,
        lease_granted.zip(lease_id),
    );
    lock(&session.opens).insert(volatile, open);
    ctx.new_file_id = Some(file_id);

    let meta = &opened.meta;
    let mut mxac = Vec::new();
    let mut qfid = Vec::new();
    let mut contexts = Vec::new();
    if CreateContext::find(&req.contexts, names::MX_AC).is_some() {
        MaximalAccessResponse {
            query_status: NtStatus::SUCCESS,
            maximal_access: AccessMask(opened.max_access),
        }
        .encode(&mut mxac);
        contexts.push(CreateContext::new(names::MX_AC, &mxac));
    }
    if CreateContext::find(&req.contexts, names::QFID).is_some() {
        QueryOnDiskIdResponse {
            disk_file_id: meta.file_id,
            volume_id: meta.dev,
        }
        .encode(&mut qfid);
        contexts.push(CreateContext::new(names::QFID, &qfid));
    }
    // Apple's AAPL context (macOS): answered by `aapl::reply`.
    let case_sensitive = tree
        .share
        .vfs
        .as_ref()
        .is_some_and(|v| v.capabilities().case_sensitive);
    let aapl = CreateContext::find(&req.contexts, b"AAPL")
        .and_then(|c| crate::aapl::reply(c.data, case_sensitive));
    if let Some((reply, readdir)) = &aapl {
        if *readdir {
            ctx.conn.aapl_readdir.store(true, Ordering::Relaxed);
        }
        contexts.push(CreateContext::new(b"AAPL", reply));
    }
    if !lease_out.is_empty() {
        contexts.push(CreateContext::new(names::RQ_LS, &lease_out));
    }
    if let Some((name, data)) = &durable_out {
        contexts.push(CreateContext::new(name, data));
    }
    CreateResponse {
        oplock_level: smb_wire::OplockLevel(oplock_level),
        flags: 0,
        create_action: match opened.outcome {
            OpenOutcome::Superseded => CreateResponse::ACTION_SUPERSEDED,
            OpenOutcome::Opened => CreateResponse::ACTION_OPENED,
            OpenOutcome::Created => CreateResponse::ACTION_CREATED,
            OpenOutcome::Overwritten => CreateResponse::ACTION_OVERWRITTEN,
        },
        creation_time: to_filetime(meta.created),
        last_access_time: to_filetime(meta.accessed),
        last_write_time: to_filetime(meta.modified),
        change_time: change_time(meta),
        allocation_size: allocation(meta),
        end_of_file: if meta.is_dir { 0 } else { meta.size },
        file_attributes: FileAttributes(attributes(meta)),
        file_id,
        contexts,
    }
    .encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

/// The durable-handle contexts of a CREATE, validated together.
#[derive(Clone, Copy)]
enum DurableAsk {
    None,
    RequestV1,
    RequestV2(DurableHandleRequestV2),
    ReconnectV1(FileId),
    ReconnectV2(DurableHandleReconnectV2),
}

impl DurableAsk {
    /// [MS-SMB2] 3.3.5.9.6, 3.3.5.9.7, 3.3.5.9.10, 3.3.5.9.12: DHnC wins over DHnQ; a v1
    /// context beside a v2 one, or two v2 ones, is STATUS_INVALID_PARAMETER; v2 contexts
    /// count from 3.0 on; malformed data is STATUS_INVALID_PARAMETER.
    fn parse(contexts: &[CreateContext<'_>], dialect: Dialect) -> ProtoResult<DurableAsk> {
        let bad = || ProtoError::Status(NtStatus::INVALID_PARAMETER);
        let v3 = dialect.0 >= Dialect::SMB3_0.0;
        let q1 = CreateContext::find(contexts, names::DHNQ);
        let c1 = CreateContext::find(contexts, names::DHNC);
        let q2 = CreateContext::find(contexts, names::DH2Q).filter(|_| v3);
        let c2 = CreateContext::find(contexts, names::DH2C).filter(|_| v3);
        if (q1.is_some() || c1.is_some()) && (q2.is_some() || c2.is_some())
            || (q2.is_some() && c2.is_some())
        {
            return Err(bad());
        }
        if let Some(c) = c1 {
            let r = DurableHandleReconnect::parse(c.data).map_err(|_| bad())?;
            return Ok(DurableAsk::ReconnectV1(r.file_id));
        }
        if let Some(c) = c2 {
            let r = DurableHandleReconnectV2::parse(c.data).map_err(|_| bad())?;
            return Ok(DurableAsk::ReconnectV2(r));
        }
        if let Some(c) = q2 {
            let r = DurableHandleRequestV2::parse(c.data).map_err(|_| bad())?;
            return Ok(DurableAsk::RequestV2(r));
        }
        if let Some(c) = q1 {
            if c.data.len() != 16 {
                return Err(bad());
            }
            return Ok(DurableAsk::RequestV1);
        }
        Ok(DurableAsk::None)
    }
}

/// [MS-SMB2] 3.3.5.9.6 (DHnQ) and 3.3.5.9.10 (DH2Q), "Successful Open Initialization": a
/// file open holding a batch oplock or a lease with handle caching becomes durable, unless
/// `limits.durable_handle_timeout` is 0. A v2 open is kept for the timeout it asked (0: the
/// server's), at most the limit; persistence is never granted (no continuously available
/// shares). Returns the response context.
#[allow(clippy::too_many_arguments)]
fn grant_durable(
    ctx: &Ctx<'_>,
    session: &Session,
    tree: &Tree,
    open: &Arc<Open>,
    ask: DurableAsk,
    share_key: usize,
    oplock_level: u8,
    lease: Option<(u8, LeaseId)>,
) -> Option<(&'static [u8], Vec<u8>)> {
    let (v2, req) = match ask {
        DurableAsk::RequestV1 => (false, None),
        DurableAsk::RequestV2(r) => (true, Some(r)),
        _ => return None,
    };
    let limit = ctx.conn.server.limits().durable_handle_timeout;
    let cached = oplock_level == smb_wire::OplockLevel::BATCH.0
        || lease.is_some_and(|(s, _)| s & LeaseState::HANDLE_CACHING.0 as u8 != 0);
    if open.is_dir || limit.is_zero() || !cached {
        return None;
    }
    let owner = session.auth()?.identity.clone();
    let timeout = match req {
        Some(r) if r.timeout != 0 => {
            std::time::Duration::from_millis(u64::from(r.timeout)).min(limit)
        }
        _ => crate::durable::DEFAULT_TIMEOUT.min(limit),
    };
    *lock(&open.durable) = Some(Durable {
        v2,
        create_guid: req.map_or([0; 16], |r| r.create_guid),
        client_guid: lock(&ctx.conn.neg).client_guid,
        timeout,
        owner,
        lease: lease.map(|(_, id)| id),
        share: share_key,
        share_name: tree.share.config.name.clone(),
    });
    ctx.conn.server.objects.durable.register(open.clone());
    Some(durable_context(v2, timeout))
}

/// The DHnQ / DH2Q response context ([MS-SMB2] 2.2.14.2.3, 2.2.14.2.12).
fn durable_context(v2: bool, timeout: std::time::Duration) -> (&'static [u8], Vec<u8>) {
    if v2 {
        let mut out = Vec::new();
        DurableHandleResponseV2 {
            timeout: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
            flags: 0,
        }
        .encode(&mut out);
        (names::DH2Q, out)
    } else {
        (names::DHNQ, DURABLE_HANDLE_RESPONSE_DATA.to_vec())
    }
}

/// [MS-SMB2] 3.3.5.9.7 (DHnC) and 3.3.5.9.12 (DH2C): a client whose connection was lost
/// reclaims a detached durable open, with the same FileId, in its new session and tree.
/// No such detached open, another CreateGuid (v2), another share, a lease missing on either
/// side, with another key or from another ClientGuid: STATUS_OBJECT_NAME_NOT_FOUND;
/// a leased open under another name: STATUS_INVALID_PARAMETER; another user:
/// STATUS_ACCESS_DENIED. The open keeps its share mode, byte-range locks and its oplock or
/// lease, whose breaks now go to the new connection.
async fn reconnect(
    ctx: &mut Ctx<'_>,
    req: &CreateRequest<'_>,
    session: &Arc<Session>,
    tree: &Arc<Tree>,
    vfs: &Arc<dyn Vfs>,
    file_id: FileId,
    v2: Option<DurableHandleReconnectV2>,
) -> ProtoResult<NtStatus> {
    let client_guid = lock(&ctx.conn.neg).client_guid;
    let identity = session
        .auth()
        .ok_or(NtStatus::USER_SESSION_DELETED)?
        .identity
        .clone();
    // The lease context counts whatever RequestedOplockLevel says (clients send 0 here).
    let lease_key = match CreateContext::find(&req.contexts, names::RQ_LS) {
        Some(c) if ctx.dialect().0 >= Dialect::SMB2_1.0 => Some(
            Lease::parse(c.data)
                .map_err(|_| NtStatus::INVALID_PARAMETER)?
                .key,
        ),
        _ => None,
    };
    let share = vfs_key(vfs);
    let wanted = lanshare_vfs::fold_case(&req.name);
    let check = |open: &Open, d: &Durable| -> Result<(), NtStatus> {
        let not_found = Err(NtStatus::OBJECT_NAME_NOT_FOUND);
        if d.share != share {
            return not_found;
        }
        // A v1 open may come back through DH2C (its CreateGuid is then zero), as Windows
        // allows (smbtorture smb2.durable-open.reopen2-lease). The ClientGuid counts only
        // for a leased open (below), as 3.3.5.9.12 says: a client that lost its connection
        // may come back as a new client process.
        if v2.is_some_and(|r| r.create_guid != d.create_guid) {
            return not_found;
        }
        match (d.lease, lease_key) {
            (Some(id), Some(key)) if id.client == client_guid && id.key == key => {}
            (None, None) => {}
            _ => return not_found,
        }
        // Only a leased open's name is checked (3.3.5.9.7); without a lease the name is
        // ignored, as Windows does (smbtorture smb2.durable-open.reopen2).
        let same_name = |p: &VfsPath| lanshare_vfs::fold_case(&p.to_windows_string()) == wanted;
        if d.lease.is_some() && !same_name(&open.path) && !same_name(&open.current_path()) {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        if d.owner != identity {
            return Err(NtStatus::ACCESS_DENIED);
        }
        Ok(())
    };
    let table = ctx.conn.server.objects.durable.clone();
    // The client may come back before this server has seen its old connection end: give
    // the teardown a moment before calling the open still held.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    let open = loop {
        match table.reconnect(file_id.persistent, check) {
            Ok(open) => break open,
            // Held on this very connection: no teardown to wait for.
            Err(ReconnectError::Attached)
                if tokio::time::Instant::now() < deadline && !held_here(ctx, file_id) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(ReconnectError::Refused(s)) => return Err(s.into()),
            Err(_) => return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into()),
        }
    };
    open.set_tree_id(tree.id);
    lock(&session.opens).insert(open.file_id.volatile, open.clone());
    tracing::info!(path = %open.current_path(), session = format_args!("{:#x}", session.id), "durable open reconnected");
    respond_existing(ctx, req, &open, false).await
}

/// Whether a session of this connection holds the open `id`.
fn held_here(ctx: &Ctx<'_>, id: FileId) -> bool {
    lock(&ctx.conn.sessions).values().any(|s| {
        lock(&s.opens)
            .values()
            .any(|o| o.file_id.persistent == id.persistent)
    })
}

/// The CREATE response for an open that exists already (a durable reconnect, a replayed
/// CREATE): its oplock or lease as they are now, action "opened". A reconnect answers no
/// durable context (as Windows; smbtorture checks it), a replay its DH2Q one.
async fn respond_existing(
    ctx: &mut Ctx<'_>,
    req: &CreateRequest<'_>,
    open: &Arc<Open>,
    with_durable: bool,
) -> ProtoResult<NtStatus> {
    let session_id = ctx.session()?.id;
    let holder = Holder {
        conn: Arc::downgrade(ctx.conn),
        session_id,
        file_id: open.file_id,
    };
    let (level, lease) = open.file.reattach_caching(open.uid, holder);
    ctx.new_file_id = Some(open.file_id);
    let h = open.handle.clone();
    let meta = blocking(move || h.metadata())
        .await?
        .map_err(|e| vfs_status(&e))?;
    let durable = lock(&open.durable).clone();
    let mut lease_out = Vec::new();
    let mut contexts = Vec::new();
    let oplock_level = match (lease, durable.as_ref().and_then(|d| d.lease)) {
        (Some((state, epoch, v2)), Some(id)) => {
            Lease {
                key: id.key,
                state: LeaseState(u32::from(state)),
                flags: LeaseFlags(0),
                duration: 0,
                v2: v2.then_some(LeaseV2 {
                    parent_key: [0; 16],
                    epoch,
                }),
            }
            .encode(&mut lease_out);
            smb_wire::OplockLevel::LEASE.0
        }
        _ => level,
    };
    if !lease_out.is_empty() {
        contexts.push(CreateContext::new(names::RQ_LS, &lease_out));
    }
    let durable_out = durable
        .filter(|_| with_durable)
        .map(|d| durable_context(d.v2, d.timeout));
    if let Some((name, data)) = &durable_out {
        contexts.push(CreateContext::new(name, data));
    }
    let mut qfid = Vec::new();
    if CreateContext::find(&req.contexts, names::QFID).is_some() {
        QueryOnDiskIdResponse {
            disk_file_id: meta.file_id,
            volume_id: meta.dev,
        }
        .encode(&mut qfid);
        contexts.push(CreateContext::new(names::QFID, &qfid));
    }
    CreateResponse {
        oplock_level: smb_wire::OplockLevel(oplock_level),
        flags: 0,
        create_action: CreateResponse::ACTION_OPENED,
        creation_time: to_filetime(meta.created),
        last_access_time: to_filetime(meta.accessed),
        last_write_time: to_filetime(meta.modified),
        change_time: change_time(&meta),
        allocation_size: allocation(&meta),
        end_of_file: if meta.is_dir { 0 } else { meta.size },
        file_attributes: FileAttributes(attributes(&meta)),
        file_id: open.file_id,
        contexts,
    }
    .encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

/// [MS-SMB2] 3.3.5.9 with [MS-FSA] 2.1.5.1.2: before an existing file is opened, the oplocks
/// other opens hold on it are broken as the open requires, and the CREATE waits (async) for
/// the acknowledgments ([`crate::oplock`]).
async fn break_oplocks(ctx: &mut Ctx<'_>, plan: &Plan, lease: Option<LeaseId>) -> ProtoResult<()> {
    // Nothing held anywhere: no stat, no lookup (the common case costs nothing).
    if plan.mode == CreateMode::Create || !crate::oplock::any_caching() {
        return Ok(());
    }
    let (vfs, path) = (plan.vfs.clone(), plan.path.clone());
    let Ok(Ok(meta)) = blocking(move || vfs.stat(&path)).await else {
        return Ok(());
    };
    let Some(file) = plan.objects.existing(&plan.vfs, meta.identity()) else {
        return Ok(());
    };
    let id = meta.identity();
    if plan.objects.table.is_delete_pending(id) {
        // The open fails with STATUS_DELETE_PENDING; nothing to break for it.
        return Ok(());
    }
    let access = table_access(if plan.maximum_allowed {
        plan.desired | plan.tree_max
    } else {
        plan.desired
    });
    let share = plan.share;
    let table = plan.objects.table.clone();
    let intent = move || Intent {
        lease,
        stat: !plan.maximum_allowed && is_stat_open(plan.desired),
        lease_stat: !plan.maximum_allowed && is_lease_stat_open(plan.desired),
        overwrite: matches!(
            plan.mode,
            CreateMode::Overwrite | CreateMode::OverwriteIf | CreateMode::Supersede
        ),
        sharing_violation: table
            .opens(id)
            .iter()
            .any(|r| !lanshare_vfs::share_compatible(r, access, share)),
    };
    // A detached durable open whose oplock or lease must break is closed instead
    // ([MS-SMB2] 3.3.4.6, 3.3.4.7), and the check runs again without it.
    let objects = plan.objects.clone();
    let check =
        move |f: &crate::objects::FileState, first: bool| match f.check_create(&intent(), first) {
            Check::Wait if objects.purge_detached(f) => f.check_create(&intent(), first),
            c => c,
        };
    match check(&file, true) {
        Check::Clear => Ok(()),
        Check::Wait => {
            let f = file.clone();
            wait_for_breaks(ctx, &file, move || check(&f, false)).await
        }
    }
}

pub(crate) fn find_open(ctx: &Ctx<'_>, id: FileId) -> ProtoResult<Arc<Open>> {
    let id = ctx.file_id(id)?;
    let session = ctx.session()?;
    let open = lock(&session.opens).get(&id.volatile).cloned();
    match open {
        Some(o) if o.file_id == id && ctx.tree.as_ref().is_some_and(|t| t.id == o.tree_id()) => {
            Ok(o)
        }
        _ => Err(NtStatus::FILE_CLOSED.into()),
    }
}

/// 3.3.5.10.
pub(crate) async fn close(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = CloseRequest::parse(ctx.pdu)?;
    let open = find_open(ctx, req.file_id)?;
    if lock(&ctx.session()?.opens)
        .remove(&open.file_id.volatile)
        .is_none()
    {
        // A concurrent CLOSE of the same handle won the race.
        return Err(NtStatus::FILE_CLOSED.into());
    }
    // A watch on this handle ends with it ([MS-SMB2] 3.3.5.10).
    ctx.conn.finish_pending(NtStatus::NOTIFY_CLEANUP, |_, op| {
        op.file_id == Some(open.file_id)
    });
    let postquery = req.postquery_attrib();
    // Without a pending delete, closing is table bookkeeping, a close(2) and at most an fstat:
    // done here, it spares the request two thread switches. A delete (stat, unlink or rmdir)
    // goes to the blocking pool, unless its object lives in memory and is small: then it too
    // is done here, the attributes asked for read first, here too, and their size deciding.
    // (A delete set by another open in between only runs here.)
    // The attributes asked for are read before the close, while the handle is still open.
    let close_reading = move |o: &Open| {
        let meta = postquery.then(|| o.handle.metadata().ok()).flatten();
        o.close();
        meta
    };
    let meta = if !open.delete_pending() {
        close_reading(&open)
    } else if open.handle.in_memory() {
        let seen = open.handle.metadata().ok();
        let small = seen
            .as_ref()
            .is_some_and(|m| !m.is_dir && m.size <= INLINE_DELETE_MAX);
        let o = open.clone();
        storage(small, move || o.close()).await?;
        seen.filter(|_| postquery)
    } else {
        let o = open.clone();
        blocking(move || close_reading(&o)).await?
    };
    // Watches on a directory that is now delete-pending complete with STATUS_DELETE_PENDING
    // ([MS-FSA] 2.1.5.4, 2.1.5.10).
    if open.is_dir
        && open.delete_pending()
        && let Ok(t) = ctx.tree()
    {
        t.share.changes.directory_deleted(&open.current_path());
    }
    let mut resp = CloseResponse {
        flags: 0,
        ..Default::default()
    };
    if let Some(m) = meta {
        resp.flags = CloseRequest::FLAG_POSTQUERY_ATTRIB;
        resp.creation_time = to_filetime(m.created);
        resp.last_access_time = to_filetime(m.accessed);
        resp.last_write_time = to_filetime(m.modified);
        resp.change_time = change_time(&m);
        resp.allocation_size = allocation(&m);
        resp.end_of_file = if m.is_dir { 0 } else { m.size };
        resp.file_attributes = FileAttributes(attributes(&m));
    }
    resp.encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

/// 3.3.5.11.
pub(crate) async fn flush(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = FlushRequest::parse(ctx.pdu)?;
    let open = find_open(ctx, req.file_id)?;
    if !open.has_access(WRITE_DATA | APPEND_DATA) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let o = open.clone();
    blocking(move || o.handle.sync())
        .await?
        .map_err(|e| ProtoError::Status(vfs_status(&e)))?;
    FlushResponse.encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

/// [MS-SMB2] 3.3.5.12 / 3.3.5.13: with multi-credit requests (dialects above 2.0.2) the
/// CreditCharge must cover the payload, one credit per 64 KiB.
pub(crate) fn check_credit_charge(ctx: &Ctx<'_>, len: u32) -> ProtoResult<()> {
    if ctx.dialect() == Dialect::SMB2_0_2 {
        return Ok(());
    }
    let charge = u32::from(ctx.hdr.credit_charge.max(1));
    let needed = len.div_ceil(65536).max(1);
    if charge < needed {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    Ok(())
}

/// Smallest READ sent by the kernel from the page cache: below it one buffered `writev` is
/// cheaper than a separate `sendfile`.
const ZERO_COPY_MIN: usize = 64 * 1024;

/// 3.3.5.12. The file is read straight into the response buffer, after its fixed part, or
/// (unsigned, unencrypted, file in memory) sent by the kernel after the response header.
pub(crate) async fn read(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = ReadRequest::parse(ctx.pdu)?;
    let open = find_open(ctx, req.file_id)?;
    if req.length > super::negotiate::io_size(ctx.conn, ctx.dialect()) {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    check_credit_charge(ctx, req.length)?;
    if open.is_dir {
        return Err(NtStatus::INVALID_DEVICE_REQUEST.into());
    }
    if !open.has_access(READ_DATA | EXECUTE) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    // Offsets are signed 64-bit on the object store: the range must end at or below
    // INT64_MAX ([MS-FSA] 2.1.5.3).
    match req.offset.checked_add(u64::from(req.length)) {
        Some(end) if end <= MAX_OFFSET => {}
        _ => return Err(NtStatus::INVALID_PARAMETER.into()),
    }
    if !open
        .file
        .can_read(open.uid, req.offset, u64::from(req.length))
    {
        return Err(NtStatus::FILE_LOCK_CONFLICT.into());
    }
    let len = req.length as usize;
    let offset = req.offset;
    let min = req.minimum_count as usize;
    if ctx.zero_copy
        && len >= ZERO_COPY_MIN
        && let Some(n) = open.handle.in_memory_len(offset, len)
    {
        // The length goes out in the header before the data: it is decided here, from the
        // file's size now. The kernel then sends the range from the page cache to the
        // socket (no read into a buffer, no copy into the socket); a file that shrinks
        // meanwhile has the rest sent as zeros.
        if (n == 0 && len > 0) || n < min {
            return Err(NtStatus::END_OF_FILE.into());
        }
        open.position.store(offset + n as u64, Ordering::Relaxed);
        let at = ctx.out.len();
        ctx.out.resize(at + ReadResponse::FIXED_LEN, 0);
        if let Some(hdr) = ctx.out.get_mut(at..) {
            ReadResponse::write_fixed(hdr, n as u32, 0);
        }
        ctx.file_tail = Some(crate::outbox::FileTail {
            handle: open.handle.clone(),
            offset,
            len: n,
        });
        return Ok(NtStatus::SUCCESS);
    }
    // The response is allocated once at its final size: header and fixed part, then the
    // file data read by the store straight into the spare capacity after them (no zero-fill,
    // no copy), later signed in place and written to the socket as is. A large one is a
    // buffer an earlier READ of the same size gave back once sent (`bufpool`): no fresh
    // pages to fault in and zero.
    let fixed = ctx.out.len();
    let start = fixed + ReadResponse::FIXED_LEN;
    let mut out = crate::bufpool::take(start + len);
    out.extend_from_slice(&ctx.out);
    out.resize(start, 0);
    let o = open.clone();
    let inline = len <= INLINE_IO_MAX && open.handle.in_memory();
    let (mut out, n) = storage(inline, move || {
        let r = o.handle.read_append(&mut out, len, offset);
        (out, r)
    })
    .await?;
    let n = match n {
        Ok(n) => n,
        Err(e) => return Err(vfs_status(&e).into()),
    };
    if (n == 0 && len > 0) || n < min {
        return Err(NtStatus::END_OF_FILE.into());
    }
    // Samba reports the position after a read in FilePositionInformation; Windows leaves it.
    // Clients that track it themselves are unaffected either way.
    open.position.store(offset + n as u64, Ordering::Relaxed);
    if let Some(hdr) = out.get_mut(fixed..start) {
        ReadResponse::write_fixed(hdr, n as u32, 0);
    }
    ctx.out = out;
    Ok(NtStatus::SUCCESS)
}

/// 3.3.5.13. The data is a slice of the received frame, or, for a large plain WRITE to a
/// file in memory, still on the socket (`Ctx::body`): then it is taken off the socket only
/// after every check below passed, straight into the file (`splice.rs`); a refused WRITE's
/// data is discarded by the connection.
pub(crate) async fn write(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let (req, data_len) = match ctx.body {
        // The connection checked that Length is what follows the fixed part in the frame.
        Some(body) => (WriteRequest::parse_without_data(ctx.pdu)?.0, body.len()),
        None => {
            let req = WriteRequest::parse(ctx.pdu)?;
            let n = req.data.len();
            (req, n)
        }
    };
    let open = find_open(ctx, req.file_id)?;
    if data_len > super::negotiate::io_size(ctx.conn, ctx.dialect()) as usize {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    check_credit_charge(ctx, data_len as u32)?;
    if open.is_dir {
        return Err(NtStatus::INVALID_DEVICE_REQUEST.into());
    }
    if !open.has_access(WRITE_DATA | APPEND_DATA) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let len = data_len as u64;
    if len == 0 {
        // Nothing to write: only the offset is checked ([MS-FSA] 2.1.5.4).
        if req.offset > MAX_OFFSET {
            return Err(NtStatus::INVALID_PARAMETER.into());
        }
        WriteResponse {
            count: 0,
            remaining: 0,
        }
        .encode(&mut ctx.out)?;
        return Ok(NtStatus::SUCCESS);
    }
    // Offsets are signed 64-bit on the object store; -1 (FILE_WRITE_TO_END_OF_FILE) is not
    // accepted over SMB2. NTFS files end below MAX_FILE_SIZE: a write that would reach it
    // fails as a full disk, one that starts beyond it as invalid.
    match req.offset.checked_add(len) {
        Some(end) if end <= MAX_OFFSET && req.offset < MAX_FILE_SIZE => {
            if end >= MAX_FILE_SIZE {
                return Err(NtStatus::DISK_FULL.into());
            }
        }
        _ => return Err(NtStatus::INVALID_PARAMETER.into()),
    }
    crate::oplock::break_for_write(ctx, &open).await?;
    let write_through = req.flags & WriteRequest::FLAG_WRITE_THROUGH != 0
        || open.create_options & CreateOptions::WRITE_THROUGH.0 != 0;
    // An append-only open ([MS-FSA] 2.1.5.4: FILE_APPEND_DATA without FILE_WRITE_DATA)
    // cannot change existing bytes: its writes land at the end of file.
    let at_end = !open.has_access(WRITE_DATA);
    let offset = req.offset;
    let data = match ctx.body {
        Some(body) if open.handle.splice_target() => {
            // The store is in memory: no step below waits for a disk, so all of it runs on
            // this (the connection's) task.
            let offset = if at_end {
                open.handle.metadata().map_err(|e| vfs_status(&e))?.size
            } else {
                offset
            };
            if !open.file.can_write(open.uid, offset, len) {
                return Err(NtStatus::FILE_LOCK_CONFLICT.into());
            }
            let n = body
                .splice_into(open.handle.as_ref(), offset)
                .await
                .map_err(|e| match e {
                    crate::splice::BodyError::Socket(why) => ProtoError::Drop(why),
                    crate::splice::BodyError::Store(e) => vfs_status(&e).into(),
                })?;
            if write_through {
                open.handle.sync().map_err(|e| vfs_status(&e))?;
            }
            WriteResponse {
                count: n as u32,
                remaining: 0,
            }
            .encode(&mut ctx.out)?;
            return Ok(NtStatus::SUCCESS);
        }
        // A store that cannot splice: the data is read into a buffer after all.
        Some(body) => bytes::Bytes::from(body.read_all().await.map_err(ProtoError::Drop)?),
        // The blocking pool needs 'static data: a shared slice of the received frame, not a
        // copy.
        None => ctx.shared(req.data),
    };
    let o = open.clone();
    let inline = data.len() <= INLINE_IO_MAX && open.handle.in_memory();
    let n = storage(inline, move || -> Result<usize, NtStatus> {
        let offset = if at_end {
            o.handle.metadata().map_err(|e| vfs_status(&e))?.size
        } else {
            offset
        };
        if !o.file.can_write(o.uid, offset, data.len() as u64) {
            return Err(NtStatus::FILE_LOCK_CONFLICT);
        }
        let n = o
            .handle
            .write_at(&data, offset)
            .map_err(|e| vfs_status(&e))?;
        if write_through {
            o.handle.sync().map_err(|e| vfs_status(&e))?;
        }
        Ok(n)
    })
    .await??;
    WriteResponse {
        count: n as u32,
        remaining: 0,
    }
    .encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}
