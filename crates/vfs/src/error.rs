//! `VfsError`: what storage can say, fine-grained enough for every front-end.
//!
//! The mapping to wire codes lives in each front-end (one function with a table test there);
//! the table below is the guide they follow. NTSTATUS names are from [MS-ERREF] 2.3.1, HTTP
//! codes from RFC 9110 / RFC 4918 (WebDAV), FTP replies from RFC 959 / RFC 3659.
//!
//! | variant | NTSTATUS | HTTP | FTP |
//! |---|---|---|---|
//! | `NotFound` | `STATUS_OBJECT_NAME_NOT_FOUND` | 404 | 550 |
//! | `PathNotFound` | `STATUS_OBJECT_PATH_NOT_FOUND` | 409 (missing parent) | 550 |
//! | `Exists` | `STATUS_OBJECT_NAME_COLLISION` | 412 (Overwrite: F) / 405 (MKCOL) | 550 / 553 |
//! | `NotEmpty` | `STATUS_DIRECTORY_NOT_EMPTY` | 409 | 550 |
//! | `IsADirectory` | `STATUS_FILE_IS_A_DIRECTORY` | 405 (GET/PUT on a collection) | 550 |
//! | `NotADirectory` | `STATUS_NOT_A_DIRECTORY` | 409 | 550 |
//! | `AccessDenied` | `STATUS_ACCESS_DENIED` | 403 | 550 |
//! | `ReadOnly` | `STATUS_MEDIA_WRITE_PROTECTED` (read-only share: `STATUS_ACCESS_DENIED`) | 403 | 550 |
//! | `SharingViolation` | `STATUS_SHARING_VIOLATION` | 423 Locked | 450 |
//! | `LockConflict` | `STATUS_FILE_LOCK_CONFLICT` (READ/WRITE) / `STATUS_LOCK_NOT_GRANTED` (LOCK) | 423 | 450 |
//! | `DeletePending` | `STATUS_DELETE_PENDING` | 404 | 550 |
//! | `NoSpace` | `STATUS_DISK_FULL` | 507 | 552 |
//! | `FileTooLarge` | `STATUS_DISK_FULL` (Windows has no closer code) | 413 / 507 | 552 |
//! | `NameTooLong` | `STATUS_OBJECT_NAME_INVALID` (Windows reports long names so) | 414 / 400 | 553 |
//! | `InvalidName` | `STATUS_OBJECT_NAME_INVALID` | 400 | 553 |
//! | `StreamNotSupported` | `STATUS_OBJECT_NAME_INVALID` (or `STATUS_NOT_SUPPORTED` when streams are asked for explicitly) | 400 | 553 |
//! | `InvalidParameter` | `STATUS_INVALID_PARAMETER` | 400 | 501 |
//! | `CrossDevice` | `STATUS_NOT_SAME_DEVICE` | 502 (RFC 4918 9.9.4) | 550 |
//! | `TooManyOpenFiles` | `STATUS_TOO_MANY_OPENED_FILES` | 503 | 421 |
//! | `NotSupported` | `STATUS_NOT_SUPPORTED` | 501 | 502 / 504 |
//! | `Io` | `STATUS_UNEXPECTED_IO_ERROR` (`STATUS_DATA_ERROR` for `EIO`) | 500 | 451 |

use std::io;

use thiserror::Error;

/// An error from a [`crate::Vfs`] or [`crate::VfsHandle`] operation.
#[derive(Debug, Error)]
pub enum VfsError {
    /// The last component does not exist (`ENOENT` with the parent present).
    #[error("no such file or directory")]
    NotFound,
    /// A directory on the way to the target is missing or is not a directory.
    #[error("a parent directory is missing")]
    PathNotFound,
    /// The target already exists (create-new, rename without replace, `EEXIST`).
    #[error("already exists")]
    Exists,
    /// A directory to remove or replace still has entries (`ENOTEMPTY`).
    #[error("directory not empty")]
    NotEmpty,
    /// A file operation was asked of a directory (`EISDIR`).
    #[error("is a directory")]
    IsADirectory,
    /// A directory operation was asked of something else (`ENOTDIR` on the target itself).
    #[error("not a directory")]
    NotADirectory,
    /// Permission denied, by the filesystem (`EACCES`, `EPERM`), by the handle's access, or
    /// because the path tried to leave the share (`ELOOP`, `EXDEV` under `RESOLVE_BENEATH`).
    #[error("access denied")]
    AccessDenied,
    /// The storage is read-only (`EROFS`, or the share is configured read-only).
    #[error("read-only storage")]
    ReadOnly,
    /// Another open's share mode forbids this open.
    #[error("sharing violation")]
    SharingViolation,
    /// A byte-range lock held by another open covers the range.
    #[error("byte-range lock conflict")]
    LockConflict,
    /// The file is marked for deletion and may not be opened again.
    #[error("delete pending")]
    DeletePending,
    /// No space or quota left (`ENOSPC`, `EDQUOT`).
    #[error("no space left")]
    NoSpace,
    /// The file would exceed the filesystem's maximum size (`EFBIG`).
    #[error("file too large")]
    FileTooLarge,
    /// A component or the whole path is too long (`ENAMETOOLONG`).
    #[error("name too long")]
    NameTooLong,
    /// The name breaks the naming rules (see [`crate::VfsPath`]).
    #[error("invalid name")]
    InvalidName,
    /// The name addresses an alternate data stream (`name:stream`), which is not stored.
    #[error("alternate data streams are not supported")]
    StreamNotSupported,
    /// The request is self-contradictory (`EINVAL`, a directory asked to be overwritten, a
    /// directory moved into itself).
    #[error("invalid parameter")]
    InvalidParameter,
    /// A rename across filesystems inside one share (`EXDEV` from `rename`).
    #[error("not the same device")]
    CrossDevice,
    /// The process is out of file descriptors (`EMFILE`, `ENFILE`).
    #[error("too many open files")]
    TooManyOpenFiles,
    /// The back-end cannot do this (`EOPNOTSUPP`, `ENOSYS`, special files).
    #[error("not supported")]
    NotSupported,
    /// Any other I/O error; `op` names what we were doing.
    #[error("I/O error during {op}: {source}")]
    Io {
        /// The operation that failed, for the log.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl VfsError {
    /// Maps an OS error precisely; `op` names the operation for the [`VfsError::Io`] fallback.
    ///
    /// `ENOTDIR` maps to [`VfsError::PathNotFound`] because, coming from a path lookup, it means
    /// a middle component is a file; a back-end that knows the target itself is the culprit
    /// reports [`VfsError::NotADirectory`] instead. `EXDEV` maps to [`VfsError::AccessDenied`]
    /// because under `RESOLVE_BENEATH` it means "this path leaves the root"; `rename` maps it to
    /// [`VfsError::CrossDevice`] itself.
    pub fn from_io(e: io::Error, op: &'static str) -> VfsError {
        let Some(errno) = e.raw_os_error() else {
            // cap-std reports an escape it caught by itself as PermissionDenied without errno.
            return match e.kind() {
                io::ErrorKind::NotFound => VfsError::NotFound,
                io::ErrorKind::PermissionDenied => VfsError::AccessDenied,
                io::ErrorKind::AlreadyExists => VfsError::Exists,
                io::ErrorKind::InvalidInput => VfsError::InvalidParameter,
                io::ErrorKind::Unsupported => VfsError::NotSupported,
                io::ErrorKind::IsADirectory => VfsError::IsADirectory,
                io::ErrorKind::NotADirectory => VfsError::NotADirectory,
                io::ErrorKind::DirectoryNotEmpty => VfsError::NotEmpty,
                _ => VfsError::Io { op, source: e },
            };
        };
        use rustix::io::Errno;
        match Errno::from_raw_os_error(errno) {
            Errno::NOENT => VfsError::NotFound,
            Errno::NOTDIR => VfsError::PathNotFound,
            Errno::EXIST => VfsError::Exists,
            Errno::NOTEMPTY => VfsError::NotEmpty,
            Errno::ISDIR => VfsError::IsADirectory,
            Errno::ACCESS | Errno::PERM => VfsError::AccessDenied,
            Errno::ROFS => VfsError::ReadOnly,
            Errno::NOSPC | Errno::DQUOT => VfsError::NoSpace,
            Errno::FBIG => VfsError::FileTooLarge,
            Errno::NAMETOOLONG => VfsError::NameTooLong,
            Errno::XDEV | Errno::LOOP => VfsError::AccessDenied,
            Errno::INVAL => VfsError::InvalidParameter,
            Errno::BUSY | Errno::TXTBSY => VfsError::SharingViolation,
            Errno::MFILE | Errno::NFILE => VfsError::TooManyOpenFiles,
            Errno::NOTSUP | Errno::NOSYS | Errno::NXIO | Errno::NODEV => VfsError::NotSupported,
            _ => VfsError::Io { op, source: e },
        }
    }
}

/// Equality by variant; two `Io` errors are equal when their OS error (or kind) matches. Meant
/// for tests and for front-ends that match on a specific outcome.
impl PartialEq for VfsError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (VfsError::Io { source: a, .. }, VfsError::Io { source: b, .. }) => {
                a.raw_os_error() == b.raw_os_error() && a.kind() == b.kind()
            }
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn errno_table() {
        let table: &[(i32, VfsError)] = &[
            (rustix::io::Errno::NOENT.raw_os_error(), VfsError::NotFound),
            (
                rustix::io::Errno::NOTDIR.raw_os_error(),
                VfsError::PathNotFound,
            ),
            (rustix::io::Errno::EXIST.raw_os_error(), VfsError::Exists),
            (
                rustix::io::Errno::NOTEMPTY.raw_os_error(),
                VfsError::NotEmpty,
            ),
            (
                rustix::io::Errno::ISDIR.raw_os_error(),
                VfsError::IsADirectory,
            ),
            (
                rustix::io::Errno::ACCESS.raw_os_error(),
                VfsError::AccessDenied,
            ),
            (
                rustix::io::Errno::PERM.raw_os_error(),
                VfsError::AccessDenied,
            ),
            (rustix::io::Errno::ROFS.raw_os_error(), VfsError::ReadOnly),
            (rustix::io::Errno::NOSPC.raw_os_error(), VfsError::NoSpace),
            (rustix::io::Errno::DQUOT.raw_os_error(), VfsError::NoSpace),
            (
                rustix::io::Errno::FBIG.raw_os_error(),
                VfsError::FileTooLarge,
            ),
            (
                rustix::io::Errno::NAMETOOLONG.raw_os_error(),
                VfsError::NameTooLong,
            ),
            (
                rustix::io::Errno::XDEV.raw_os_error(),
                VfsError::AccessDenied,
            ),
            (
                rustix::io::Errno::LOOP.raw_os_error(),
                VfsError::AccessDenied,
            ),
            (
                rustix::io::Errno::INVAL.raw_os_error(),
                VfsError::InvalidParameter,
            ),
            (
                rustix::io::Errno::BUSY.raw_os_error(),
                VfsError::SharingViolation,
            ),
            (
                rustix::io::Errno::MFILE.raw_os_error(),
                VfsError::TooManyOpenFiles,
            ),
            (
                rustix::io::Errno::NOTSUP.raw_os_error(),
                VfsError::NotSupported,
            ),
        ];
        for (errno, want) in table {
            let got = VfsError::from_io(io::Error::from_raw_os_error(*errno), "test");
            assert_eq!(&got, want, "errno {errno}");
        }
        let eio = rustix::io::Errno::IO.raw_os_error();
        assert!(matches!(
            VfsError::from_io(io::Error::from_raw_os_error(eio), "read"),
            VfsError::Io { op: "read", .. }
        ));
    }

    #[test]
    fn cap_std_escape_is_access_denied() {
        let e = io::Error::new(io::ErrorKind::PermissionDenied, "a path led outside");
        assert_eq!(VfsError::from_io(e, "open"), VfsError::AccessDenied);
    }
}
