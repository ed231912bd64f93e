//! Per-open state ([MS-SMB2] 3.3.1.10 Open) and the one mapping from storage errors to NTSTATUS.
//!
//! An `Open` holds the storage handle, what CREATE granted, and its place in the server-wide
//! per-file state ([`crate::objects`]): the object-table token that carries its share mode,
//! and its byte-range locks. [`Open::close`] is the single place that gives all of it back —
//! CLOSE, TREE_DISCONNECT, LOGOFF, a dropped connection and `lanshare close-file` all end
//! there, and it runs once however many of them race.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use lanshare_vfs::{FileIdentity, OpenToken, Vfs, VfsError, VfsHandle, VfsPath};
use smb_wire::{FileId, NtStatus};

use crate::handlers::dir::DirSlot;
use crate::objects::{FileState, Objects};
use crate::server::ServerState;
use crate::session::lock;

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Open {
    pub file_id: FileId,
    /// The tree it was opened (or, durable, last reconnected) on.
    tree_id: AtomicU32,
    /// The name the open was created with (what `lanshare files` shows). After a rename the
    /// current name is [`Open::current_path`].
    pub path: VfsPath,
    pub handle: Arc<dyn VfsHandle>,
    pub vfs: Arc<dyn Vfs>,
    pub is_dir: bool,
    /// Open.GrantedAccess.
    pub access: u32,
    /// CreateOptions as sent (FileModeInformation reports some of them).
    pub create_options: u32,
    /// Server-wide unique id of this open: owner of its byte-range locks.
    pub uid: u64,
    pub identity: FileIdentity,
    /// FILE_DELETE_ON_CLOSE was asked at CREATE (also recorded in the object table).
    pub delete_on_close: AtomicBool,
    /// Set by the first close; later closes (logoff racing CLOSE) do nothing.
    pub closed: AtomicBool,
    /// FilePositionInformation.CurrentByteOffset.
    pub position: AtomicU64,
    /// The directory enumeration in progress (QUERY_DIRECTORY), for directories.
    pub dir: DirSlot,
    /// The change watch the first CHANGE_NOTIFY set up; it buffers changes between requests.
    pub notify: Mutex<Option<Arc<crate::handlers::notify::DirWatch>>>,
    pub file: Arc<FileState>,
    objects: Arc<Objects>,
    token: Mutex<Option<OpenToken>>,
    anchor: Mutex<Option<OpenToken>>,
    /// For the server-wide open-file count (`limits.max_open_files`).
    server: Weak<ServerState>,
    /// Set when CREATE granted a durable handle ([`crate::durable`]).
    pub durable: Mutex<Option<crate::durable::Durable>>,
    /// Open.LockSequenceArray ([MS-SMB2] 3.3.1.10): the last LockSequenceNumber applied per
    /// LockSequenceIndex 1..=64, or [`crate::durable::NO_LOCK_SEQUENCE`].
    pub lock_sequences: Mutex<[u8; 64]>,
}

/// Everything CREATE settled, to build an [`Open`] from.
pub(crate) struct NewOpen {
    pub file_id: FileId,
    pub tree_id: u32,
    pub path: VfsPath,
    pub handle: Arc<dyn VfsHandle>,
    pub vfs: Arc<dyn Vfs>,
    pub is_dir: bool,
    pub access: u32,
    pub create_options: u32,
    pub delete_on_close: bool,
    pub identity: FileIdentity,
    pub token: OpenToken,
    /// A named stream's registration on its file (see `Plan::anchor` in handlers/file.rs).
    pub anchor: Option<OpenToken>,
    pub file: Arc<FileState>,
    pub objects: Arc<Objects>,
}

/// A place in the server-wide open-file count, taken before CREATE touches storage: with a
/// check first and a count later, concurrent CREATEs of one pipelining client all passed the
/// check (1,024 opens under `max_open_files = 1000`, tests/interop/tests/hostile_opens.rs).
/// Given back when dropped, unless an [`Open`] took it over.
pub(crate) struct OpenSlot {
    server: Arc<ServerState>,
    held: bool,
}

impl OpenSlot {
    /// `None` when `limit` (0 = unlimited) opens are counted already.
    pub fn take(server: &Arc<ServerState>, limit: u32) -> Option<OpenSlot> {
        server
            .counters
            .open_files
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (limit == 0 || n < u64::from(limit)).then_some(n + 1)
            })
            .ok()
            .map(|_| OpenSlot {
                server: server.clone(),
                held: true,
            })
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        if self.held {
            self.server
                .counters
                .open_files
                .fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Open {
    /// Keeps `slot` in the count of `limits.max_open_files`; the count drops in [`Open::close`].
    pub fn new(n: NewOpen, mut slot: OpenSlot) -> Open {
        slot.held = false;
        let server = Arc::downgrade(&slot.server);
        Open {
            file_id: n.file_id,
            tree_id: AtomicU32::new(n.tree_id),
            path: n.path,
            handle: n.handle,
            vfs: n.vfs,
            is_dir: n.is_dir,
            access: n.access,
            create_options: n.create_options,
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            identity: n.identity,
            delete_on_close: AtomicBool::new(n.delete_on_close),
            closed: AtomicBool::new(false),
            position: AtomicU64::new(0),
            dir: DirSlot::default(),
            notify: Mutex::new(None),
            file: n.file,
            objects: n.objects,
            token: Mutex::new(Some(n.token)),
            anchor: Mutex::new(n.anchor),
            server,
            durable: Mutex::new(None),
            lock_sequences: Mutex::new([crate::durable::NO_LOCK_SEQUENCE; 64]),
        }
    }

    pub fn tree_id(&self) -> u32 {
        self.tree_id.load(Ordering::Acquire)
    }

    /// A durable open reconnected on another tree ([MS-SMB2] 3.3.5.9.7).
    pub fn set_tree_id(&self, id: u32) {
        self.tree_id.store(id, Ordering::Release);
    }

    pub fn objects_durable(&self) -> Arc<crate::durable::DurableTable> {
        self.objects.durable.clone()
    }

    pub fn is_durable(&self) -> bool {
        lock(&self.durable).is_some()
    }

    /// Where the file is now (renames through any open move it).
    pub fn current_path(&self) -> VfsPath {
        self.file.path()
    }

    /// Release the open once: its byte-range locks, its share mode, and — when it was the
    /// last open of a delete-pending file — the file itself ([MS-FSA] 2.1.5.4).
    ///
    /// Blocking (a filesystem call): callers on the async side wrap it in spawn_blocking.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(s) = self.server.upgrade() {
            s.counters.open_files.fetch_sub(1, Ordering::Relaxed);
        }
        self.objects
            .durable
            .forget(self.file_id.persistent, self.uid);
        self.file.unlock_all(self.uid);
        self.dir.clear();
        lock(&self.notify).take();
        self.release_share_mode();
        // Last: a CREATE waiting on this open's oplock break retries once the share mode
        // and a pending delete are gone.
        self.file.release_oplock(self.uid);
    }

    fn release_share_mode(&self) {
        self.release_token();
        // A stream's registration on its file: the last of those of a delete-pending file
        // (its own opens all closed) removes the file.
        if let Some(anchor) = lock(&self.anchor).take() {
            let file = anchor.identity();
            if self.objects.table.release(anchor).delete_now {
                let path = self.current_path();
                match self.vfs.identity(&path) {
                    Ok(id) if id == file => {
                        if let Err(e) = self.vfs.remove_file(&path) {
                            tracing::warn!(path = %path, error = %e, "delete of a file after its last stream closed failed");
                        }
                    }
                    _ => {
                        tracing::warn!(path = %path, "delete-pending file moved away; not deleted")
                    }
                }
            }
        }
    }

    fn release_token(&self) {
        let Some(token) = lock(&self.token).take() else {
            return;
        };
        let outcome = self.objects.table.release(token);
        if !outcome.delete_now {
            return;
        }
        // A named stream goes from its file; the file stays.
        if let Some(stream) = self.handle.as_stream() {
            if let Err(e) = stream.remove() {
                tracing::warn!(path = %self.current_path(), stream = %stream.name(), error = %e, "delete on close of a stream failed");
            }
            return;
        }
        let path = self.current_path();
        // The name may have been reused since (a rename elsewhere): delete only our file.
        match self.vfs.identity(&path) {
            Ok(id) if id == self.identity => {}
            _ => {
                tracing::warn!(path = %path, "delete-pending file moved away; not deleted");
                return;
            }
        }
        let r = if self.is_dir {
            self.vfs.remove_dir(&path)
        } else {
            self.vfs.remove_file(&path)
        };
        if let Err(e) = r {
            tracing::warn!(path = %path, error = %e, "delete on close failed");
        }
    }

    pub fn has_access(&self, mask: u32) -> bool {
        self.access & mask != 0
    }

    /// Marks the file delete-pending or not (SET_INFO FileDispositionInformation).
    pub fn set_delete_pending(&self, on: bool) -> Result<(), VfsError> {
        match &*lock(&self.token) {
            Some(t) => self.objects.table.set_delete_pending(t, on),
            None => Err(VfsError::InvalidParameter),
        }
    }

    /// Makes this open's close delete the file (FILE_DELETE_ON_CLOSE semantics).
    pub fn set_delete_on_close(&self, on: bool) -> Result<(), VfsError> {
        self.delete_on_close.store(on, Ordering::Release);
        match &*lock(&self.token) {
            Some(t) => self.objects.table.set_delete_on_close(t, on),
            None => Err(VfsError::InvalidParameter),
        }
    }

    /// FileStandardInformation.DeletePending: the file is pending deletion, or this open will
    /// make it so.
    pub fn delete_pending(&self) -> bool {
        self.delete_on_close.load(Ordering::Acquire)
            || self.objects.table.is_delete_pending(self.identity)
    }
}

impl Drop for Open {
    /// A safety net: every path that ends an open calls [`Open::close`] first (so deletion
    /// happens on the blocking pool, before a response); an open dropped any other way still
    /// gives back its share mode and locks.
    fn drop(&mut self) {
        self.close();
    }
}

/// The one place a storage error becomes an NTSTATUS ([MS-ERREF] 2.3; the choices follow what
/// Windows returns for the same condition, per [MS-FSA]).
pub(crate) fn vfs_status(e: &VfsError) -> NtStatus {
    match e {
        VfsError::NotFound => NtStatus::OBJECT_NAME_NOT_FOUND,
        VfsError::PathNotFound => NtStatus::OBJECT_PATH_NOT_FOUND,
        VfsError::Exists => NtStatus::OBJECT_NAME_COLLISION,
        VfsError::NotEmpty => NtStatus::DIRECTORY_NOT_EMPTY,
        VfsError::IsADirectory => NtStatus::FILE_IS_A_DIRECTORY,
        VfsError::NotADirectory => NtStatus::NOT_A_DIRECTORY,
        VfsError::AccessDenied => NtStatus::ACCESS_DENIED,
        VfsError::ReadOnly => NtStatus::MEDIA_WRITE_PROTECTED,
        VfsError::SharingViolation => NtStatus::SHARING_VIOLATION,
        VfsError::LockConflict => NtStatus::FILE_LOCK_CONFLICT,
        VfsError::DeletePending => NtStatus::DELETE_PENDING,
        VfsError::NoSpace => NtStatus::DISK_FULL,
        VfsError::FileTooLarge => NtStatus::DISK_FULL,
        VfsError::NameTooLong => NtStatus::OBJECT_NAME_INVALID,
        VfsError::InvalidName => NtStatus::OBJECT_NAME_INVALID,
        // Named streams are not stored: the stream a name asks for does not exist.
        VfsError::StreamNotSupported => NtStatus::OBJECT_NAME_NOT_FOUND,
        VfsError::InvalidParameter => NtStatus::INVALID_PARAMETER,
        VfsError::CrossDevice => NtStatus::NOT_SAME_DEVICE,
        VfsError::TooManyOpenFiles => NtStatus::TOO_MANY_OPENED_FILES,
        VfsError::NotSupported => NtStatus::NOT_SUPPORTED,
        VfsError::Io { source, .. }
            if source.raw_os_error() == Some(5) /* EIO */ =>
        {
            NtStatus::DATA_ERROR
        }
        _ => NtStatus::UNEXPECTED_IO_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vfs_error_table() {
        let table = [
            (VfsError::NotFound, 0xC000_0034u32),
            (VfsError::PathNotFound, 0xC000_003A),
            (VfsError::Exists, 0xC000_0035),
            (VfsError::NotEmpty, 0xC000_0101),
            (VfsError::IsADirectory, 0xC000_00BA),
            (VfsError::NotADirectory, 0xC000_0103),
            (VfsError::AccessDenied, 0xC000_0022),
            (VfsError::ReadOnly, 0xC000_00A2),
            (VfsError::SharingViolation, 0xC000_0043),
            (VfsError::LockConflict, 0xC000_0054),
            (VfsError::DeletePending, 0xC000_0056),
            (VfsError::NoSpace, 0xC000_007F),
            (VfsError::FileTooLarge, 0xC000_007F),
            (VfsError::NameTooLong, 0xC000_0033),
            (VfsError::InvalidName, 0xC000_0033),
            (VfsError::StreamNotSupported, 0xC000_0034),
            (VfsError::InvalidParameter, 0xC000_000D),
            (VfsError::CrossDevice, 0xC000_00D4),
            (VfsError::TooManyOpenFiles, 0xC000_011F),
            (VfsError::NotSupported, 0xC000_00BB),
            (
                VfsError::Io {
                    op: "read",
                    source: std::io::Error::from_raw_os_error(5),
                },
                0xC000_003E,
            ),
            (
                VfsError::Io {
                    op: "read",
                    source: std::io::Error::other("x"),
                },
                0xC000_00E9,
            ),
        ];
        for (e, code) in table {
            assert_eq!(vfs_status(&e).0, code, "{e:?}");
        }
    }
}
