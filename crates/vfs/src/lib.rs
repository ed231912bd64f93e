//! lanshare-vfs: protocol-neutral storage for the lanshare file server.
//!
//! What it is: the storage layer that the SMB engine (and later the WebDAV and FTP front-ends)
//! call into. It offers a validated share-relative path ([`VfsPath`]), one fine-grained error
//! type ([`VfsError`], with a table of the wire codes each variant stands for), a handle-based
//! blocking storage trait ([`Vfs`], [`VfsHandle`], [`DirStream`]) and two back-ends:
//! [`LocalFs`], a local directory in which every path is resolved beneath the share root by the
//! kernel (cap-std: `openat2(RESOLVE_BENEATH)` or its own checked walk), and [`MemFs`], an
//! in-memory tree for tests; an [`ObjectTable`] for state shared by all opens of a file. The
//! `battery` module (feature `battery`) is the conformance suite that every back-end passes.
//!
//! What it is not: it knows nothing of SMB, NTSTATUS, HTTP or FTP (front-ends map
//! [`VfsError`] themselves), and it does no async I/O: every call blocks, and the engine runs
//! them on a bounded blocking pool (or in place, for small calls on objects that live in memory:
//! [`Vfs::in_memory`], [`VfsHandle::in_memory`]). Access checks against users and share ACLs belong to the
//! front-ends; a handle only enforces the read/write access it was opened with.
//!
//! Layout:
//! - `path.rs`: [`VfsPath`] and its naming rules;
//! - `error.rs`: [`VfsError`], `from_io` errno mapping, the wire-code guide;
//! - `types.rs`: [`Metadata`], [`OpenOptions`], [`CreateMode`], [`DirMode`], [`OpenOutcome`],
//!   [`SetTimes`], [`DirEntry`], [`FsStats`], [`Capabilities`], DOS attribute bits, FILETIME
//!   conversions;
//! - `case.rs`: [`fold_case`] and the per-directory cache behind case-insensitive lookup;
//! - `dosattr.rs`: the xattr format that keeps DOS attributes and creation time;
//! - `local.rs`: [`LocalFs`];
//! - `mem.rs`: [`MemFs`];
//! - `objtable.rs`: [`ObjectTable`] (share modes, delete-pending, open counts by file identity)
//!   and its in-memory implementation [`MemObjectTable`];
//! - `watch.rs`: [`ChangeHub`], [`Watch`] and the [`Notifying`] wrapper (change notification);
//!   `inotify.rs`: the hub's view of changes other programs make on a local disk;
//! - `battery.rs`: the shared test battery and the `vfs_battery!` macro;
//! - `tests/hostile.rs`: the hostile-path suite; `tests/ci_bench.rs`: the (ignored) benchmark of
//!   case-insensitive lookup in a 100,000-entry directory.
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "battery"))]
pub mod battery;
mod case;
mod copy;
mod dosattr;
mod error;
mod inotify;
mod local;
mod mem;
mod objtable;
mod path;
pub mod streams;
mod types;
mod watch;
mod xcache;

pub use case::fold as fold_case;
pub use error::VfsError;
pub use local::{LocalFs, LocalFsOptions};
pub use mem::MemFs;
pub use objtable::{
    Access, MemObjectTable, ObjectTable, OpenRecord, OpenToken, ReleaseOutcome, ShareMode,
    compatible as share_compatible,
};
pub use path::{MAX_COMPONENT_BYTES, MAX_PATH_UTF16, VfsPath};
pub use streams::{StreamHandle, StreamView};
pub use types::{
    Capabilities, CreateMode, DirEntry, DirMode, FileIdentity, FsStats, Metadata, OpenOptions,
    OpenOutcome, SetTimes, dos, from_filetime, to_filetime,
};
pub use watch::{Change, ChangeAction, ChangeHub, Notifying, Pending, Watch, filter as change};

/// A storage back-end rooted at a share. Object-safe; shared across threads.
///
/// Paths are always relative to the share root and never leave it. Every call blocks.
pub trait Vfs: Send + Sync + 'static {
    /// Opens or creates according to `opts` (see [`CreateMode`] and [`DirMode`] for the
    /// semantics and errors). The handle stays valid if the path is later renamed or removed.
    fn open(
        &self,
        path: &VfsPath,
        opts: &OpenOptions,
    ) -> Result<(Box<dyn VfsHandle>, OpenOutcome), VfsError>;

    /// Metadata of the object at `path` (following symlinks that stay inside the share).
    fn stat(&self, path: &VfsPath) -> Result<Metadata, VfsError>;

    /// The identity of the object at `path`, as [`Vfs::stat`] gives it, for a caller that
    /// needs nothing else (a delete on close checks the name still leads to its file):
    /// back-ends skip what only the rest of the metadata needs (LocalFs: the DOS xattr).
    fn identity(&self, path: &VfsPath) -> Result<FileIdentity, VfsError> {
        self.stat(path).map(|m| m.identity())
    }

    /// Renames `from` to `to`, across directories of the share. Without `replace`, an existing
    /// `to` is [`VfsError::Exists`]; with it, an existing file is replaced atomically but an
    /// existing directory is [`VfsError::AccessDenied`] ([MS-FSA] 2.1.5.14.11). Renaming the
    /// root, or a directory into itself, is refused.
    fn rename(&self, from: &VfsPath, to: &VfsPath, replace: bool) -> Result<(), VfsError>;

    /// Removes a file (or a symlink). A directory is [`VfsError::IsADirectory`].
    fn remove_file(&self, path: &VfsPath) -> Result<(), VfsError>;

    /// Removes an empty directory: [`VfsError::NotEmpty`] otherwise, [`VfsError::NotADirectory`]
    /// for a file, [`VfsError::AccessDenied`] for the root.
    fn remove_dir(&self, path: &VfsPath) -> Result<(), VfsError>;

    /// Space and inode figures of the filesystem holding the share.
    fn statfs(&self) -> Result<FsStats, VfsError>;

    /// What this back-end supports.
    fn capabilities(&self) -> Capabilities;

    /// Whether the store keeps its objects in memory (LocalFs: the share root is on tmpfs;
    /// MemFs), so that an open, a create or a delete never waits for a disk: a protocol
    /// server may then make such a call on its network thread rather than hand it to a
    /// thread pool (the hand-off and the wake-up back cost more than the call). Decided
    /// once for the root: an object on another filesystem mounted beneath it is not covered
    /// (ask its handle, [`VfsHandle::in_memory`], once it is open).
    fn in_memory(&self) -> bool {
        false
    }
}

/// An open file or directory. Positioned I/O only: a handle has no file position of its own
/// (SMB, WebDAV and FTP all address by offset), so one handle may serve concurrent requests.
pub trait VfsHandle: Send + Sync {
    /// Current metadata (of the object, wherever it now lives).
    fn metadata(&self) -> Result<Metadata, VfsError>;

    /// Reads at `offset` into `buf`; returns fewer bytes than `buf.len()` only at end of file
    /// (0 at or past it). Needs read access; a directory is [`VfsError::IsADirectory`].
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, VfsError>;

    /// Reads up to `len` bytes at `offset`, appended to `buf`; returns how many (fewer only
    /// at end of file). Protocol servers build a response header first and let the file
    /// data land right after it: a `buf` whose spare capacity is exactly `len`
    /// (`Vec::with_capacity`) is filled without being zeroed first where the store can.
    fn read_append(&self, buf: &mut Vec<u8>, len: usize, offset: u64) -> Result<usize, VfsError> {
        let start = buf.len();
        buf.resize(start + len, 0);
        let r = buf
            .get_mut(start..)
            .map_or(Ok(0), |b| self.read_at(b, offset));
        let n = *r.as_ref().unwrap_or(&0);
        buf.truncate(start + n);
        r
    }

    /// For a read of up to `len` bytes at `offset` that [`VfsHandle::send_to`] can serve
    /// without waiting for a disk (the file's pages live in memory: tmpfs), how many bytes it
    /// holds now (clipped at end of file). `None`: read with [`VfsHandle::read_append`].
    /// Cheap (no data is touched): protocol servers call it on their network threads.
    fn in_memory_len(&self, offset: u64, len: usize) -> Option<usize> {
        let _ = (offset, len);
        None
    }

    /// Sends up to `len` bytes at `offset` straight from the file to `out` (a non-blocking
    /// socket) without passing them through user space (`sendfile`); returns how many, 0 at
    /// end of file; `WouldBlock` when the socket is full. `None` where the store cannot.
    /// Only for ranges [`VfsHandle::in_memory_len`] accepted: it must not wait for a disk.
    fn send_to(
        &self,
        out: std::os::fd::BorrowedFd<'_>,
        offset: u64,
        len: usize,
    ) -> Option<std::io::Result<usize>> {
        let _ = (out, offset, len);
        None
    }

    /// Whether this object lives in memory (a file or directory on tmpfs, or in MemFs): its
    /// reads, writes and removal never wait for a disk, so a protocol server may make
    /// small ones on its network thread. Cheap after the first call (LocalFs asks the
    /// kernel once per handle).
    fn in_memory(&self) -> bool {
        false
    }

    /// Whether [`VfsHandle::splice_from`] can write to this handle without waiting for a
    /// disk (a file whose pages live in memory: tmpfs; access is checked by `splice_from`
    /// and by the caller, not here). Cheap: protocol servers ask
    /// on their network threads, before they take a request's data off the socket.
    fn splice_target(&self) -> bool {
        false
    }

    /// Moves up to `len` bytes from the front of `pipe` (the read end of a pipe holding at
    /// least that many) into the file at `offset`, without passing them through user space
    /// (`splice`); returns how many moved. Same rules as [`VfsHandle::write_at`] (write
    /// access, size limit, zeros in any gap). `None` where the store cannot; only for
    /// handles [`VfsHandle::splice_target`] accepted: it must not wait for a disk.
    fn splice_from(
        &self,
        pipe: std::os::fd::BorrowedFd<'_>,
        offset: u64,
        len: usize,
    ) -> Option<Result<usize, VfsError>> {
        let _ = (pipe, offset, len);
        None
    }

    /// Writes all of `data` at `offset`, extending the file (with zeros in any gap) as needed.
    /// Returns `data.len()`. Needs write access.
    fn write_at(&self, data: &[u8], offset: u64) -> Result<usize, VfsError>;

    /// Truncates or extends (with zeros) to `len`. Needs write access.
    fn set_len(&self, len: u64) -> Result<(), VfsError>;

    /// Flushes data and metadata to stable storage.
    fn sync(&self) -> Result<(), VfsError>;

    /// Changes the given times.
    fn set_times(&self, times: SetTimes) -> Result<(), VfsError>;

    /// Sets the DOS attributes ([`dos::SETTABLE`] bits are kept; DIRECTORY and NORMAL are
    /// ignored). Where the back-end cannot store HIDDEN/SYSTEM/ARCHIVE they are dropped
    /// silently; [`Capabilities::persistent_dos_attributes`] says which.
    fn set_dos_attributes(&self, attrs: u32) -> Result<(), VfsError>;

    /// Starts a listing of this directory; [`VfsError::NotADirectory`] for a file.
    fn read_dir(&self) -> Result<Box<dyn DirStream>, VfsError>;

    /// Reads one of lanshare's own attributes of this object (`name` within lanshare's
    /// namespace: LocalFs stores it as the user xattr `user.lanshare.<name>`); `None` when
    /// absent. Named streams, EAs and security descriptors live there (see [`streams`]).
    /// Back-ends without such storage answer [`VfsError::NotSupported`].
    fn get_attr(&self, name: &str) -> Result<Option<Vec<u8>>, VfsError> {
        let _ = name;
        Err(VfsError::NotSupported)
    }

    /// Creates or replaces one of lanshare's attributes. Values above [`MAX_ATTR_SIZE`] (the
    /// Linux xattr value limit; some filesystems hold less, ext4 about one block per inode)
    /// are [`VfsError::FileTooLarge`], a full attribute area [`VfsError::NoSpace`]. The
    /// handle's read/write access is not checked: callers decide what may change.
    fn set_attr(&self, name: &str, value: &[u8]) -> Result<(), VfsError> {
        let _ = (name, value);
        Err(VfsError::NotSupported)
    }

    /// Removes one of lanshare's attributes; [`VfsError::NotFound`] when absent.
    fn remove_attr(&self, name: &str) -> Result<(), VfsError> {
        let _ = name;
        Err(VfsError::NotSupported)
    }

    /// Names of lanshare's attributes of this object (without the storage prefix).
    fn list_attrs(&self) -> Result<Vec<String>, VfsError> {
        Err(VfsError::NotSupported)
    }

    /// This handle as a named-stream handle (see [`streams`]), for the operations only
    /// streams have (rename within the file, removal).
    fn as_stream(&self) -> Option<&StreamHandle> {
        None
    }

    /// The kernel file descriptor of this open regular file, when the back-end has one and
    /// the handle may read it, so that another handle of a back-end with descriptors can
    /// copy from it inside the kernel ([`VfsHandle::copy_from`]). Wrappers pass it through;
    /// named streams (data in an attribute) have none.
    fn readable_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }

    /// Copies `len` bytes of `src` starting at `src_offset` into this file at `offset`,
    /// extending it as a write would, without the data leaving the store: LocalFs uses
    /// `copy_file_range(2)` (reflink or in-kernel copy) when both ends have descriptors and
    /// falls back to positioned reads and writes otherwise. Returns the bytes copied, fewer
    /// than `len` only when `src` ends first. `src` may be this very file; overlapping
    /// ranges are copied as if through an intermediate buffer. Needs read access on `src`
    /// and write access here; byte-range locks are the caller's business.
    fn copy_from(
        &self,
        src: &dyn VfsHandle,
        src_offset: u64,
        offset: u64,
        len: u64,
    ) -> Result<u64, VfsError> {
        copy::buffered(src, self, src_offset, offset, len)
    }

    /// Marks the file sparse or not ([MS-FSA] 2.1.5.10.35 FSCTL_SET_SPARSE): the
    /// [`dos::SPARSE_FILE`] attribute, kept with the DOS attributes. Only this call changes
    /// it. Clearing it does not fill holes (Linux files are sparse either way).
    fn set_sparse(&self, sparse: bool) -> Result<(), VfsError> {
        let _ = sparse;
        Err(VfsError::NotSupported)
    }

    /// Makes `[offset, offset + len)` read as zeros without changing the file size
    /// (FSCTL_SET_ZERO_DATA); the part beyond the end of file is ignored. With `deallocate`
    /// the range is also freed where the store can (`fallocate(PUNCH_HOLE)`); otherwise it
    /// stays allocated. Needs write access.
    fn zero_range(&self, offset: u64, len: u64, deallocate: bool) -> Result<(), VfsError> {
        let _ = deallocate;
        copy::write_zeros(self, offset, len)
    }

    /// The allocated (data-holding) parts of `[offset, offset + len)`, clipped to the end of
    /// file, in order, at most `max` of them (FSCTL_QUERY_ALLOCATED_RANGES). A back-end that
    /// cannot tell answers the whole clipped range as one.
    fn allocated_ranges(
        &self,
        offset: u64,
        len: u64,
        max: usize,
    ) -> Result<Vec<(u64, u64)>, VfsError> {
        copy::whole_range(self, offset, len, max)
    }
}

/// Largest value of one attribute ([`VfsHandle::set_attr`]): `XATTR_SIZE_MAX` on Linux.
pub const MAX_ATTR_SIZE: usize = 65_536;

/// A streaming directory listing: entries are produced as the caller asks, never collected
/// up front, so a 100,000-entry directory costs memory for one entry at a time (plus the
/// back-end's own buffer). Entries added or removed during a listing may or may not appear.
pub trait DirStream: Send {
    /// The next entry, `None` at the end.
    fn next_entry(&mut self) -> Option<Result<DirEntry, VfsError>>;

    /// Starts again from the first entry.
    fn rewind(&mut self) -> Result<(), VfsError>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod battery_tests {
    use crate::{LocalFs, LocalFsOptions, MemFs};

    fn local_in(base: Option<&str>, opts: LocalFsOptions) -> (LocalFs, tempfile::TempDir) {
        let dir = match base {
            Some(b) if std::path::Path::new(b).is_dir() => tempfile::tempdir_in(b),
            _ => tempfile::tempdir(),
        }
        .unwrap();
        let fs = LocalFs::with_options(dir.path(), opts).unwrap();
        (fs, dir)
    }

    crate::vfs_battery!(memfs, (MemFs::new(), ()));
    crate::vfs_battery!(memfs_case_sensitive, (MemFs::case_sensitive(), ()));
    crate::vfs_battery!(
        localfs,
        super::local_in(None, crate::LocalFsOptions::default())
    );
    crate::vfs_battery!(
        localfs_tmpfs,
        super::local_in(Some("/dev/shm"), crate::LocalFsOptions::default())
    );
    crate::vfs_battery!(
        localfs_no_xattr_case_sensitive,
        super::local_in(
            None,
            crate::LocalFsOptions {
                use_xattrs: false,
                case_insensitive: false,
                ..Default::default()
            }
        )
    );
}
