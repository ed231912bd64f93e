//! Plain data exchanged through the [`crate::Vfs`] traits.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// DOS file attributes, [MS-FSCC] 2.6. Only the ones a back-end stores or derives.
pub mod dos {
    /// `FILE_ATTRIBUTE_READONLY`.
    pub const READONLY: u32 = 0x0000_0001;
    /// `FILE_ATTRIBUTE_HIDDEN`.
    pub const HIDDEN: u32 = 0x0000_0002;
    /// `FILE_ATTRIBUTE_SYSTEM`.
    pub const SYSTEM: u32 = 0x0000_0004;
    /// `FILE_ATTRIBUTE_DIRECTORY`: derived from the file type, never stored.
    pub const DIRECTORY: u32 = 0x0000_0010;
    /// `FILE_ATTRIBUTE_ARCHIVE`.
    pub const ARCHIVE: u32 = 0x0000_0020;
    /// `FILE_ATTRIBUTE_NORMAL`: reported alone when a file has no other attribute.
    pub const NORMAL: u32 = 0x0000_0080;
    /// `FILE_ATTRIBUTE_SPARSE_FILE`: kept with the stored attributes, but changed only by
    /// [`crate::VfsHandle::set_sparse`] (FSCTL_SET_SPARSE), never by a plain attribute set.
    pub const SPARSE_FILE: u32 = 0x0000_0200;
    /// The attributes a client may set and a back-end keeps (the rest are derived or dropped).
    pub const SETTABLE: u32 = READONLY | HIDDEN | SYSTEM | ARCHIVE;
}

/// The stable identity of a file: what the object table is keyed by. Two opens of one file,
/// through any path or hard link, have equal identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileIdentity {
    /// Device (`st_dev`).
    pub dev: u64,
    /// Inode (`st_ino`).
    pub ino: u64,
}

/// What a back-end knows about a file or directory.
///
/// Times are `SystemTime` (protocol-neutral; SMB converts with [`to_filetime`]). `created` is
/// the birth time when the filesystem or our xattr has one, else the oldest of the other times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Inode number: stable for the life of the file, unique within `dev`.
    pub file_id: u64,
    /// Device number.
    pub dev: u64,
    /// Logical size in bytes (0 for directories).
    pub size: u64,
    /// Bytes allocated on disk.
    pub alloc_size: u64,
    /// A directory.
    pub is_dir: bool,
    /// A symbolic link that could not be followed inside the share (dangling or pointing out).
    /// Opens never return one; directory listings may.
    pub is_symlink: bool,
    /// Hard-link count.
    pub nlink: u64,
    /// POSIX mode bits including the file type (`st_mode`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Birth time.
    pub created: SystemTime,
    /// Last access.
    pub accessed: SystemTime,
    /// Last data change.
    pub modified: SystemTime,
    /// Last metadata change (`st_ctime`).
    pub changed: SystemTime,
    /// [`dos`] attributes: `DIRECTORY` for directories, `NORMAL` for a file with none else.
    pub dos_attributes: u32,
}

impl Metadata {
    /// The key for the object table.
    pub fn identity(&self) -> FileIdentity {
        FileIdentity {
            dev: self.dev,
            ino: self.file_id,
        }
    }
}

/// What to do about an existing or missing file, [MS-SMB2] 2.2.13 `CreateDisposition` under
/// protocol-neutral names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreateMode {
    /// Open an existing file, fail with `NotFound` if missing (`FILE_OPEN`).
    Open,
    /// Create a new file, fail with `Exists` if present (`FILE_CREATE`).
    Create,
    /// Open if present, else create (`FILE_OPEN_IF`).
    OpenIf,
    /// Truncate an existing file, fail if missing (`FILE_OVERWRITE`).
    Overwrite,
    /// Truncate if present, else create (`FILE_OVERWRITE_IF`).
    OverwriteIf,
    /// Replace if present (contents and DOS attributes), else create (`FILE_SUPERSEDE`).
    Supersede,
}

/// Which kinds of object the open accepts, [MS-SMB2] 2.2.13 `FILE_DIRECTORY_FILE` /
/// `FILE_NON_DIRECTORY_FILE`. `Any` creates a file when it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DirMode {
    /// File or directory; a create makes a file.
    #[default]
    Any,
    /// Must be a file: an existing directory is `IsADirectory`.
    FileOnly,
    /// Must be a directory: an existing file is `NotADirectory`; a create makes a directory.
    DirOnly,
}

/// How to open. The access flags are enforced by the handle (a handle opened without `write`
/// refuses `write_at`, `set_len`), whatever the descriptor underneath allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// Data may be read.
    pub read: bool,
    /// Data may be written, the size changed.
    pub write: bool,
    /// Disposition.
    pub create: CreateMode,
    /// File / directory constraint.
    pub directory: DirMode,
    /// DOS attributes for a newly created (or superseded / overwritten) object; 0 = defaults.
    pub dos_attributes: u32,
}

impl OpenOptions {
    /// Read-only open of an existing file or directory.
    pub fn read() -> Self {
        OpenOptions {
            read: true,
            write: false,
            create: CreateMode::Open,
            directory: DirMode::Any,
            dos_attributes: 0,
        }
    }

    /// Read-write with the given disposition, any kind.
    pub fn read_write(create: CreateMode) -> Self {
        OpenOptions {
            read: true,
            write: true,
            create,
            directory: DirMode::Any,
            dos_attributes: 0,
        }
    }

    /// Create (`Create`) or open (`OpenIf`) a directory.
    pub fn directory(create: CreateMode) -> Self {
        OpenOptions {
            read: true,
            write: false,
            create,
            directory: DirMode::DirOnly,
            dos_attributes: 0,
        }
    }

    /// Builder: set the directory constraint.
    pub fn dir_mode(mut self, directory: DirMode) -> Self {
        self.directory = directory;
        self
    }
}

/// What an open did, [MS-SMB2] 2.2.14 `CreateAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpenOutcome {
    /// An existing object was opened (`FILE_OPENED`).
    Opened,
    /// A new object was created (`FILE_CREATED`).
    Created,
    /// An existing file was truncated (`FILE_OVERWRITTEN`).
    Overwritten,
    /// An existing file was replaced (`FILE_SUPERSEDED`).
    Superseded,
}

/// Times to change; `None` leaves a time alone. `changed` (ctime) cannot be set on POSIX and
/// is therefore absent; front-ends accept and ignore it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetTimes {
    /// New birth time (kept in the xattr where the filesystem cannot set it).
    pub created: Option<SystemTime>,
    /// New access time.
    pub accessed: Option<SystemTime>,
    /// New modification time.
    pub modified: Option<SystemTime>,
}

/// One entry of a directory listing. `.` and `..` are never returned: front-ends that need them
/// synthesize them from the directory's own metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name as stored (case preserved); always a valid [`crate::VfsPath`] component.
    pub name: String,
    /// Its metadata (of the symlink target when it resolves inside the share).
    pub metadata: Metadata,
}

/// Filesystem sizes, for `statfs`-like queries ([MS-FSCC] 2.5.4 FileFsFullSizeInformation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    /// Allocation unit in bytes (`f_frsize`).
    pub block_size: u64,
    /// Total units.
    pub total_blocks: u64,
    /// Free units.
    pub free_blocks: u64,
    /// Units available to the unprivileged (what a client should see as free).
    pub avail_blocks: u64,
    /// Total inodes (0 when unknown).
    pub total_files: u64,
    /// Free inodes.
    pub free_files: u64,
    /// Longest name component in bytes.
    pub max_name_len: u32,
}

/// What a back-end can do; front-ends report these to clients ([MS-FSCC] 2.5.1
/// FileFsAttributeInformation) and choose fallbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Names that differ only in case are different files.
    pub case_sensitive: bool,
    /// The case given at creation is kept.
    pub case_preserving: bool,
    /// HIDDEN, SYSTEM, ARCHIVE and READONLY survive a close and reopen.
    pub persistent_dos_attributes: bool,
    /// A creation time can be set and survives.
    pub settable_creation_time: bool,
    /// Hard links exist (nlink may exceed 1).
    pub hard_links: bool,
    /// Longest component, bytes.
    pub max_name_len: u32,
}

/// 100-ns intervals between 1601-01-01 and 1970-01-01.
const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

/// Converts to a Windows FILETIME ([MS-DTYP] 2.3.3); times before 1601 clamp to 0, times past
/// the year 30828 clamp to `i64::MAX` (the largest value SMB accepts as a time).
pub fn to_filetime(t: SystemTime) -> u64 {
    let ft = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => {
            let ticks = after.as_nanos() / 100;
            u128::from(FILETIME_UNIX_EPOCH).saturating_add(ticks)
        }
        Err(before) => {
            let ticks = before.duration().as_nanos() / 100;
            u128::from(FILETIME_UNIX_EPOCH).saturating_sub(ticks)
        }
    };
    u64::try_from(ft.min(i64::MAX as u128)).unwrap_or(i64::MAX as u64)
}

/// Converts a Windows FILETIME to `SystemTime` (exact to 100 ns).
pub fn from_filetime(ft: u64) -> SystemTime {
    if ft >= FILETIME_UNIX_EPOCH {
        let d = ft - FILETIME_UNIX_EPOCH;
        UNIX_EPOCH + Duration::new(d / 10_000_000, ((d % 10_000_000) * 100) as u32)
    } else {
        let d = FILETIME_UNIX_EPOCH - ft;
        UNIX_EPOCH - Duration::new(d / 10_000_000, ((d % 10_000_000) * 100) as u32)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filetime_round_trip() {
        assert_eq!(to_filetime(UNIX_EPOCH), FILETIME_UNIX_EPOCH);
        assert_eq!(from_filetime(FILETIME_UNIX_EPOCH), UNIX_EPOCH);
        // 2001-09-09T01:46:40Z
        let t = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(to_filetime(t), 126_444_736_000_000_000);
        for ft in [
            0u64,
            1,
            99,
            FILETIME_UNIX_EPOCH - 7,
            133_000_000_000_000_123,
        ] {
            assert_eq!(to_filetime(from_filetime(ft)), ft);
        }
        // Sub-100ns precision truncates.
        let t = UNIX_EPOCH + Duration::from_nanos(1_234);
        assert_eq!(to_filetime(t), FILETIME_UNIX_EPOCH + 12);
    }
}
